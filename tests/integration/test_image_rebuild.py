"""patchops.docker.image_rebuild against the real sandbox engine and registry.

The images it builds are named under the sandbox registry (never pushed there), so that any
attempt to pull one would show in the registry's access log and fail, instead of leaving loopback.
"""
import datetime
import json
import os
import subprocess

import pytest

from conftest import SLEEPER, run_module, sandbox, target_python

pytestmark = pytest.mark.engines


@pytest.fixture
def names(sb, unique):
    """The base repository (published to the registry) and the owned image (built here) of one test."""
    return dict(base='%s/itest/rb-base-%s' % (sb['registry'], unique),
                other='%s/itest/rb-other-%s' % (sb['registry'], unique),
                app='%s/itest/rb-app-%s:1' % (sb['registry'], unique))


@pytest.fixture
def context(tmp_path):
    """A build context; call it with the Dockerfile's text."""
    ctx = tmp_path / 'ctx'
    ctx.mkdir()

    def write(text, name='Dockerfile'):
        (ctx / name).write_text(text)
        return str(ctx)
    return write


def image(ref):
    out = sandbox.docker('image', 'inspect', ref, check=False)
    data = json.loads(out) if out.strip().startswith('[') else []
    return data[0] if data else None


def labels(ref):
    return (image(ref)['Config'] or {}).get('Labels') or {}


def rebuild(docker_host, images, check=False, diff=False, **options):
    args = dict(docker_host=docker_host, images=images)
    args.update(options)
    return run_module('image_rebuild', args, check=check, diff=diff)


def only(result):
    assert len(result['images']) == 1, result
    return result['images'][0]


@pytest.mark.once
def test_rebuilt_when_the_base_moves_and_never_otherwise(docker_host, names, context, unique):
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER)
    ctx = context('FROM %s:1\nRUN echo %s > /built\n' % (names['base'], unique))
    spec = [dict(name=names['app'], context=ctx)]

    first = rebuild(docker_host, spec)

    assert not first.failed, first.stdout
    entry = only(first)
    assert first['changed'] is True
    assert entry['action'] == 'rebuilt' and entry['old_image_id'] is None
    assert entry['reason'] == 'Rebuilt: the image is not on the host.'
    built = image(names['app'])
    assert built['Id'] == entry['new_image_id']
    assert labels(names['app'])['patchops.docker.build-context'] == ctx
    recorded = json.loads(labels(names['app'])['patchops.docker.base-images'])
    base_now = {'digest': sandbox.registry_digest(names['base'] + ':1'), 'id': image(names['base'] + ':1')['Id']}
    assert recorded == {names['base'] + ':1': base_now}

    again = rebuild(docker_host, spec)

    assert not again.failed and again['changed'] is False, again.stdout
    assert only(again)['action'] == 'unchanged'
    assert only(again)['reason'].startswith('Base images unchanged, image 0.0 days old')
    assert only(again)['base_images'][0]['moved'] is False
    assert image(names['app'])['Id'] == built['Id'], 'nothing was built'

    newer = sandbox.publish(names['base'] + ':1', cmd=SLEEPER, labels={'release': 'second'})
    checked = rebuild(docker_host, spec, check=True, diff=True)

    assert not checked.failed and checked['changed'] is True, checked.stdout
    entry = only(checked)
    assert entry['action'] == 'rebuilt' and entry['new_image_id'] is None
    assert entry['reason'] == 'Would rebuild: registry has a newer image for base %s:1.' % names['base']
    assert entry['base_images'][0]['current'] == newer['digest']
    # Ansible prints the diff (and takes it out of the JSON): old -> new base digest
    diff_lines = checked.stdout.splitlines()
    assert any(line.startswith('-') and entry['base_images'][0]['previous'] in line for line in diff_lines), checked.stdout
    assert any(line.startswith('+') and newer['digest'] in line for line in diff_lines), checked.stdout
    assert image(names['app'])['Id'] == built['Id'], 'check mode builds nothing'
    assert image(names['base'] + ':1')['Id'] != newer['id'], 'check mode pulls nothing'

    real = rebuild(docker_host, spec)

    assert not real.failed and real['changed'] is True, real.stdout
    entry = only(real)
    assert entry['action'] == 'rebuilt' and entry['old_image_id'] == built['Id']
    assert entry['new_image_id'] == image(names['app'])['Id'] != built['Id'], 'the tag moved to the new image'
    assert image(names['base'] + ':1')['Id'] == newer['id'], 'the base was pulled fresh'
    assert json.loads(labels(names['app'])['patchops.docker.base-images'])[names['base'] + ':1']['digest'] == newer['digest']
    assert sandbox.registry_requests(names['app'].rsplit(':', 1)[0]) == [], 'the owned image is never pulled'

    last = rebuild(docker_host, spec)

    assert not last.failed and last['changed'] is False and only(last)['action'] == 'unchanged', last.stdout


def _age_image(ref, days):
    """Set the image's Created back by ``days`` days (docker save, rewrite, load): its labels stay as built."""
    created = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)).strftime(
        '%Y-%m-%dT%H:%M:%S.%fZ')
    raw = sandbox._run_docker(['save', ref], binary=True)
    sandbox._run_docker(['load', '-q'], input=sandbox._retime_save_tar(raw, created))
    return image(ref)


@pytest.mark.once
def test_an_image_older_than_max_age_days_is_rebuilt(docker_host, names, context):
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER)
    spec = [dict(name=names['app'], context=context('FROM %s:1\nRUN date > /built\n' % names['base']))]
    assert not rebuild(docker_host, spec).failed
    old = _age_image(names['app'], 40)
    assert 'patchops.docker.base-images' in old['Config']['Labels']

    checked = rebuild(docker_host, spec, check=True, max_age_days=30)
    young_enough = rebuild(docker_host, spec, when='older_than', max_age_days=50)
    real = rebuild(docker_host, spec, when='older_than', max_age_days=30)

    assert only(checked)['action'] == 'rebuilt' and checked['changed'] is True
    assert only(checked)['reason'] == 'Would rebuild: the image is 40.0 days old, older than max_age_days 30.'
    assert only(young_enough)['action'] == 'unchanged' and young_enough['changed'] is False
    assert only(young_enough)['reason'] == 'Image 40.0 days old, not older than max_age_days 50.'
    assert only(real)['action'] == 'rebuilt', real.stdout
    assert only(real)['old_image_id'] == old['Id']
    fresh = image(names['app'])
    assert fresh['Id'] == only(real)['new_image_id'] != old['Id']
    assert fresh['Created'][:10] == datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')


@pytest.mark.once
def test_a_failed_build_keeps_the_old_image_its_tag_and_its_containers(docker_host, names, context, containers, unique):
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER)
    ctx = context('FROM %s:1\nRUN echo one > /built\n' % names['base'])
    spec = [dict(name=names['app'], context=ctx)]
    assert not rebuild(docker_host, spec).failed
    old_id = image(names['app'])['Id']
    running = containers.run('rb-%s' % unique, names['app'], command=SLEEPER)
    container_id = json.loads(sandbox.docker('inspect', running))[0]['Id']
    ages = run_module('image_age_info', dict(docker_host=docker_host, containers=[running], check_registry=False))
    assert ages['containers'][0]['build_context'] == ctx, 'image_age_info names the build context of the image'
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER, labels={'release': 'second'})
    context('FROM %s:1\nRUN echo about to fail\nRUN exit 3\n' % names['base'])

    result = rebuild(docker_host, spec)

    assert result.failed
    entry = only(result)
    assert entry['action'] == 'failed' and entry['new_image_id'] is None
    assert entry['reason'].startswith('The build failed: The command \'/bin/sh -c exit 3\' returned a non-zero code: 3')
    assert entry['reason'].endswith('the old image and its tag are kept.')
    assert any('about to fail' in line for line in entry['build_log'])
    assert 0 < len(entry['build_log']) <= 20
    assert result['msg'].startswith('1 of 1 images were not rebuilt.\n%s: The build failed' % names['app'])
    assert 'Last lines of the build log' in result['msg']
    assert 'Traceback' not in result.stdout + result.stderr
    assert image(names['app'])['Id'] == old_id, 'the tag still names the old image'
    state = json.loads(sandbox.docker('inspect', running))[0]
    assert state['Id'] == container_id and state['State']['Running'] is True and state['Image'] == old_id
    assert sandbox.docker('ps', '-a', '-q', '--filter', 'status=exited', '--filter', 'ancestor=%s' % old_id) == '', \
        'no build container is left behind'


@pytest.mark.once
@pytest.mark.parametrize('case', ['no context', 'no Dockerfile', 'bad FROM', 'bad name'])
def test_bad_input_is_one_sentence_and_builds_nothing(docker_host, names, context, tmp_path, case):
    ctx = context('ARG BASE\nFROM ${BASE}\n')
    entry = dict(name=names['app'], context=ctx)
    expected = 'Dockerfile line 2: FROM ${BASE} names no image once its build arguments are applied'
    if case == 'no context':
        entry['context'] = str(tmp_path / 'missing')
        expected = 'The build context %s of image %s is not a directory on the host.' % (entry['context'], names['app'])
    elif case == 'no Dockerfile':
        entry['dockerfile'] = 'Dockerfile.prod'
        expected = 'The Dockerfile %s/Dockerfile.prod of image %s does not exist.' % (ctx, names['app'])
    elif case == 'bad name':
        entry['name'] = 'Shop/App:1'
        expected = 'The image name Shop/App:1 is not a valid tag to build'

    result = rebuild(docker_host, [entry])

    assert result.failed
    assert expected in result['msg'] and '\n' not in result['msg'], result['msg']
    assert 'Traceback' not in result.stdout + result.stderr
    assert image(names['app']) is None


@pytest.mark.once
def test_multi_stage_with_arg_from_lines(docker_host, names, context):
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER)
    sandbox.publish(names['base'] + ':2', cmd=SLEEPER, labels={'tag': '2'})
    sandbox.publish(names['other'] + ':1', cmd=SLEEPER)
    base_repo = names['base']
    ctx = context('''# escape=\\
ARG BASE=%s
ARG TAG=1
FROM ${BASE}:${TAG} AS builder
RUN echo built > /artifact
FROM builder AS tested
RUN test -f /artifact
FROM %s:1 \\
  AS runtime
COPY --from=tested /artifact /artifact
FROM builder AS debug
''' % (base_repo, names['other']))
    spec = [dict(name=names['app'], context=ctx, build_args={'TAG': '2'}, target='runtime')]

    first = rebuild(docker_host, spec)

    assert not first.failed, first.stdout
    bases = [b['reference'] for b in only(first)['base_images']]
    assert bases == [base_repo + ':2', names['other'] + ':1']
    assert set(json.loads(labels(names['app'])['patchops.docker.base-images'])) == set(bases)
    assert sandbox.docker('run', '--rm', names['app'], 'cat', '/artifact').strip() == 'built'

    sandbox.publish(names['base'] + ':1', cmd=SLEEPER, labels={'release': 'second'})
    not_used = rebuild(docker_host, spec)
    sandbox.publish(names['other'] + ':1', cmd=SLEEPER, labels={'release': 'second'})
    used = rebuild(docker_host, spec)

    assert only(not_used)['action'] == 'unchanged', 'tag 1 of the base is not what TAG=2 builds from'
    assert only(used)['action'] == 'rebuilt', used.stdout
    assert only(used)['reason'] == 'Rebuilt: registry has a newer image for base %s:1.' % names['other']


@pytest.mark.once
def test_an_image_built_from_another_image_of_the_list_follows_it(docker_host, names, context, tmp_path, sb, unique):
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER)
    own_base = '%s/itest/rb-ownbase-%s:1' % (sb['registry'], unique)
    base_ctx = tmp_path / 'base'
    base_ctx.mkdir()
    (base_ctx / 'Dockerfile').write_text('FROM %s:1\nRUN echo base > /base\n' % names['base'])
    spec = [dict(name=names['app'], context=context('FROM %s\nRUN cat /base\n' % own_base)),
            dict(name=own_base, context=str(base_ctx))]

    first = rebuild(docker_host, spec)
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER, labels={'release': 'second'})
    checked = rebuild(docker_host, spec, check=True)
    second = rebuild(docker_host, spec)

    assert not first.failed, first.stdout
    assert [e['name'] for e in first['images']] == [own_base, names['app']], 'the base is built first'
    assert [e['action'] for e in checked['images']] == ['rebuilt', 'rebuilt']
    assert checked['images'][1]['reason'] == 'Would rebuild: its base %s is rebuilt first.' % own_base
    assert [e['action'] for e in second['images']] == ['rebuilt', 'rebuilt'], second.stdout
    assert sandbox.registry_requests(own_base.rsplit(':', 1)[0]) == [], 'an image of the list is never pulled'


# --- through the role ----------------------------------------------------------------------------

def play(docker_host, tmp_path, unique, builds, check=False, report_dir=None, playbook='patch_containers'):
    """One run of a playbook of ours (patch_containers) on localhost, patching only this test's containers."""
    extra = dict(patch_containers_docker_host=docker_host, patch_containers_state_dir=str(tmp_path / 'state'),
                 patch_containers_include=['*-%s' % unique], patch_containers_hosts='localhost',
                 patch_containers_stable_seconds=1, patch_containers_builds=builds,
                 patch_containers_report_dir=report_dir or '', ansible_python_interpreter=target_python())
    cmd = ['ansible-playbook', '-i', 'localhost,', '-c', 'local', 'patchops.docker.' + playbook,
           '-e', json.dumps(extra)] + (['--check'] if check else [])
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)


def recap(proc):
    line = [text for text in proc.stdout.splitlines() if text.startswith('localhost') and 'ok=' in text][-1]
    return dict(part.split('=') for part in line.split()[2:])


def running_image(name):
    return json.loads(sandbox.docker('inspect', name))[0]['Image']


def test_one_role_run_rebuilds_owned_images_and_recreates_their_containers(
        docker_host, names, context, containers, unique, tmp_path, sb):
    pulled = '%s/itest/rb-pulled-%s:1' % (sb['registry'], unique)
    sandbox.publish(pulled, cmd=SLEEPER)
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER)
    builds = [dict(name=names['app'], context=context('FROM %s:1\nRUN echo owned > /owned\n' % names['base']))]
    assert not rebuild(docker_host, builds).failed
    on_pulled = containers.run('pulled-%s' % unique, pulled, command=SLEEPER)
    on_owned = containers.run('owned-%s' % unique, names['app'], command=SLEEPER)
    old_owned = running_image(on_owned)
    newer_pulled = sandbox.publish(pulled, cmd=SLEEPER, labels={'release': 'second'})
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER, labels={'release': 'second'})

    checked = play(docker_host, tmp_path, unique, builds, check=True, report_dir=str(tmp_path / 'report'))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert image(names['app'])['Id'] == old_owned and running_image(on_owned) == old_owned, 'check mode builds nothing'
    report = json.loads((tmp_path / 'report' / 'patch-report.json').read_text())
    rebuilds = report['hosts'][0]['rebuilds']
    assert [(r['name'], r['action']) for r in rebuilds] == [(names['app'], 'would_rebuild')]
    assert rebuilds[0]['reason'] == 'Would rebuild: registry has a newer image for base %s:1.' % names['base']

    first = play(docker_host, tmp_path, unique, builds)

    assert first.returncode == 0, first.stdout + first.stderr
    new_owned = image(names['app'])['Id']
    assert new_owned != old_owned, 'the owned image was rebuilt'
    assert running_image(on_owned) == new_owned, 'its container runs the rebuilt image'
    assert running_image(on_pulled) == newer_pulled['id'], 'the pulled image was updated as before'
    assert sandbox.registry_requests(names['app'].rsplit(':', 1)[0]) == [], 'the owned tag is never pulled'

    second = play(docker_host, tmp_path, unique, builds)

    assert second.returncode == 0, second.stdout + second.stderr
    assert recap(second)['changed'] == '0', second.stdout
    assert image(names['app'])['Id'] == new_owned

    back = play(docker_host, tmp_path, unique, builds, playbook='rollback_containers')

    # the one update run recorded both containers, so both go back
    assert back.returncode == 0, back.stdout + back.stderr
    assert running_image(on_owned) == old_owned and running_image(on_pulled) != newer_pulled['id']


def test_a_failed_rebuild_in_the_role_still_patches_the_rest_and_fails_the_host(
        docker_host, names, context, containers, unique, tmp_path, sb):
    pulled = '%s/itest/rb-pulled-%s:1' % (sb['registry'], unique)
    sandbox.publish(pulled, cmd=SLEEPER)
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER)
    builds = [dict(name=names['app'], context=context('FROM %s:1\n' % names['base']))]
    assert not rebuild(docker_host, builds).failed
    on_pulled = containers.run('pulled-%s' % unique, pulled, command=SLEEPER)
    on_owned = containers.run('owned-%s' % unique, names['app'], command=SLEEPER)
    old_owned = running_image(on_owned)
    newer_pulled = sandbox.publish(pulled, cmd=SLEEPER, labels={'release': 'second'})
    context('FROM %s:1\nRUN echo broken; exit 7\n' % names['base'])
    sandbox.publish(names['base'] + ':1', cmd=SLEEPER, labels={'release': 'second'})

    proc = play(docker_host, tmp_path, unique, builds, report_dir=str(tmp_path / 'report'))

    assert proc.returncode != 0 and recap(proc)['failed'] == '1', proc.stdout
    assert running_image(on_pulled) == newer_pulled['id'], 'the other containers were still patched'
    assert image(names['app'])['Id'] == old_owned and running_image(on_owned) == old_owned
    host = json.loads((tmp_path / 'report' / 'patch-report.json').read_text())['hosts'][0]
    assert host['status'] == 'failed'
    assert host['error'].startswith('Image %s was not rebuilt: The build failed: ' % names['app']), host['error']
    assert host['error'].endswith('the old image and its tag are kept.') and '\n' not in host['error']
    assert [(r['name'], r['action']) for r in host['rebuilds']] == [(names['app'], 'failed')]
    assert host['summary']['images_rebuild_failed'] == 1 and host['summary']['updated'] == 1
