"""How a hook that did not succeed is put into a sentence."""
from ansible_collections.patchops.docker.plugins.module_utils import hooks


def test_a_hook_that_exited_names_its_code_and_one_that_did_not_finish_says_why():
    assert hooks.hook_outcome(hooks.HookResult('exit 4', 4, 'busy')) == 'exited with code 4'
    assert hooks.hook_outcome(hooks.HookResult('sleep 300', None, 'did not finish within 3 s')) == \
        'did not finish within 3 s'


def test_a_blank_label_is_no_hook():
    assert hooks.hook_command({'patchops.docker.pre-update': '  '}, hooks.LABEL_PRE_UPDATE) is None
    assert hooks.hook_command({'patchops.docker.pre-update': ' echo x '}, hooks.LABEL_PRE_UPDATE) == 'echo x'
    assert hooks.hook_command(None, hooks.LABEL_PRE_UPDATE) is None
