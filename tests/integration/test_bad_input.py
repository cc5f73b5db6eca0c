"""Bad input against the real engine (issue 6 item 3): a clear one-sentence failure or a correct result.

Hypothesis draws both modules' arguments (wrong types, out-of-range numbers, unknown
choices, empty lists, odd names and globs, broken JMESPath, odd Docker URLs, TLS files
that do not exist), containers with odd names and labels (unicode, long values, ``=``
and newlines, the patchops labels with garbage values) and the forms an image
reference takes (tag, digest, tag and digest, image ID, short ID, long local tag).
Every run must end in a one-line failure message or a correct result, never in a
Python traceback, and a failed run must leave every container (ID, name, state) and
every image tag as it was, with ``changed`` false.

Running a module through the ``ansible`` CLI costs about a second, so the properties
run each module's ``main()`` in a long-lived worker process under the target Python
(the same interpreter and Ansible module code the CLI would use, with
``ANSIBLE_MODULE_ARGS`` set as AnsiballZ sets them), against the sandbox's engine and
registry; a few of the worst inputs also go through the real CLI.
"""
import json
import os
import re
import subprocess
import uuid

import ansible
import docker
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import REPO, SLEEPER, run_module, sandbox, target_python

pytestmark = pytest.mark.once

# The worker: one request (JSON) per line of stdin, one answer per line of stdout.
WORKER = r'''
import contextlib, importlib, io, json, os, sys, traceback
from ansible.module_utils import basic


def run_one(request):
    module = importlib.import_module('ansible_collections.patchops.docker.plugins.modules.' + request['module'])
    args = dict(request.get('args') or {})
    args['_ansible_check_mode'] = bool(request.get('check'))
    args['_ansible_diff'] = bool(request.get('diff'))
    basic._ANSIBLE_ARGS = json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode('utf-8')
    if hasattr(basic, '_ANSIBLE_PROFILE'):
        basic._ANSIBLE_PROFILE = 'legacy'
    out, err = io.StringIO(), io.StringIO()
    rc, trace = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            module.main()
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        trace = traceback.format_exc()
        rc = 1
    finally:
        basic._ANSIBLE_ARGS = None
    return dict(rc=rc, stdout=out.getvalue(), stderr=err.getvalue(), traceback=trace)


real_stdout = sys.stdout
for line in sys.stdin:
    if line.strip():
        real_stdout.write(json.dumps(run_one(json.loads(line))) + '\n')
        real_stdout.flush()
'''


class Outcome(dict):
    """A module's JSON result, with the worker's view of how it ended."""

    def __init__(self, answer):
        self.traceback = answer['traceback']
        self.raw = answer['stdout']
        self.rc = answer['rc']
        data = {}
        if answer['stdout'].strip():
            data = json.loads(answer['stdout'])
        super().__init__(data)

    @property
    def failed(self):
        return bool(self.get('failed')) or self.rc != 0


class Harness:
    """Runs patchops.docker modules' main() in one worker process under the target Python."""

    def __init__(self, tmp):
        lib = tmp / 'lib'
        lib.mkdir()
        # Only Ansible's own package (its module_utils run on the target) and the collection, as AnsiballZ ships them.
        (lib / 'ansible').symlink_to(os.path.dirname(ansible.__file__))
        worker = tmp / 'worker.py'
        worker.write_text(WORKER)
        env = dict(os.environ, PYTHONPATH='%s:%s' % (lib, REPO / '.build' / 'collections'), PYTHONHASHSEED='0')
        env.pop('DOCKER_HOST', None)
        self.proc = subprocess.Popen([target_python(), str(worker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=str(tmp))
        self.runs = 0

    def run(self, module, args, check=False, diff=False):
        self.proc.stdin.write(json.dumps(dict(module=module, args=args, check=check, diff=diff)) + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, 'the worker died'
        self.runs += 1
        return Outcome(json.loads(line))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope='module')
def harness(tmp_path_factory, sb):
    made = Harness(tmp_path_factory.mktemp('harness'))
    yield made
    made.close()


@pytest.fixture(scope='module')
def api(sb):
    client = docker.APIClient(base_url=sb['docker_host'], version='auto', timeout=120)
    yield client
    client.close()


def one_sentence(msg):
    assert isinstance(msg, str) and msg.strip(), msg
    assert '\n' not in msg, msg
    assert 'Traceback' not in msg and 'MODULE FAILURE' not in msg, msg
    assert len(msg) <= 1500, msg


def snapshot(api):
    """Every container (ID -> name, image, running) and every image tag (tag -> image ID) on the engine."""
    containers = dict((c['Id'], ((c.get('Names') or ['?'])[0].lstrip('/'), c.get('ImageID'), c.get('State')))
                      for c in api.containers(all=True))
    tags = {}
    for image in api.images():
        for tag in image.get('RepoTags') or []:
            tags[tag] = image['Id']
    return containers, tags


def check_outcome(outcome, before, after):
    """The property every run must have: no traceback; a failure is one sentence and changes nothing."""
    assert outcome.traceback is None, outcome.traceback
    assert 'Traceback' not in outcome.raw and 'MODULE FAILURE' not in outcome.raw, outcome.raw
    if outcome.failed:
        one_sentence(outcome.get('msg'))
        if not outcome.get('containers'):
            # refused before anything was looked at (or the engine was never reached): nothing changed
            assert outcome.get('changed') in (None, False), outcome
            assert after == before, 'a refused run changed the engine'
    else:
        assert outcome.get('changed') in (True, False)
    names_after = sorted(name for name, _image, _state in after[0].values())
    assert not [n for n in names_after if n.endswith('.patchops-backup')], 'no backup is left behind'
    assert len(names_after) == len(set(names_after))


@pytest.fixture(scope='module')
def world(sb, api):
    """Containers to point bad arguments at: one with a newer image in the registry, one stopped, one current."""
    unique = uuid.uuid4().hex[:8]
    repo = '%s/itest/bad-%s' % (sb['registry'], unique)
    current = '%s/itest/badcur-%s:1' % (sb['registry'], unique)
    old = sandbox.publish(repo + ':1', cmd=SLEEPER)
    sandbox.publish(current, cmd=SLEEPER)
    names = dict(outdated='bad-out-' + unique, stopped='bad-stop-' + unique, current='bad-cur-' + unique)
    sandbox.docker('run', '-d', '--name', names['outdated'], repo + ':1')
    sandbox.docker('create', '--name', names['stopped'], repo + ':1')
    sandbox.docker('run', '-d', '--name', names['current'], current)
    # keeps the old image in use whatever a run with cleanup does; never named by the properties
    sandbox.docker('create', '--name', 'bad-keep-' + unique, old['id'])
    new = sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    made = dict(unique=unique, repo=repo, ref=repo + ':1', old_id=old['id'], new=new, names=names,
                created=list(names.values()) + ['bad-keep-' + unique])
    yield made
    for name in made['created']:
        sandbox.docker('rm', '-f', name, check=False)
        sandbox.docker('rm', '-f', name + '.patchops-backup', check=False)


# --- strategies ------------------------------------------------------------------------------------

def anything():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12), st.floats(allow_nan=False),
                        st.text(max_size=12), st.sampled_from(['', 'yes', 'maybe', '-1', '1.5', 'auto']))
    return st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=4), scalars, max_size=2))


def ints(low=-5, high=40):
    return st.one_of(st.integers(low, high), st.sampled_from([-(2 ** 31), 2 ** 63, '7', 'seven', 1.5, None, True]))


def odd_names(world):
    return st.one_of(
        st.sampled_from(sorted(world['names'].values())),
        st.sampled_from(['', '/', '*', 'bad-*', '?', '[', 'a\nb', ' x', 'x' * 3000, 'caf\u00e9', 'nginx:1.25',
                         'sha256:' + 'f' * 64, 'f' * 64, 'a', world['names']['outdated'].upper(),
                         '/' + world['names']['current']]),
        st.text(alphabet=st.characters(blacklist_categories=('Cs',)), max_size=20))


def docker_hosts(real):
    # Never empty and never the machine's default socket: those would fall back to it.
    odd = ['tcp://127.0.0.1:1', 'tcp://127.0.0.1:99999', 'http://[::1', 'tcp://[::1]:2375', 'ftp://x', 'tcp://',
           'unix://', 'unix:///nonexistent/docker.sock', 'ssh://root@127.0.0.1:1', 'fd://', 'tcp://h:port',
           'npipe:////./pipe/docker', 'caf\u00e9', 'tcp://127.0.0.1:1/some/path']
    return st.one_of(st.just(real), st.just(real), st.just(real), st.sampled_from(odd))


QUERIES = ['[?update_available].name', '[?', '', 'length(@[0].name)', 'sort_by(@, &labels)', 'max_by(@, &name)',
           '[].labels', 'x' * 3000, '`', '@.foo.bar', 'to_number(name)', '[?image_age_days > `1`] | length(@)']


def with_some_bad(good, bad, required=None):
    """Arguments with mostly good values and zero to two options set to something bad.

    ``good`` and ``bad`` map option names to strategies; ``required`` options are always there.
    """
    base = st.fixed_dictionaries(dict(required or {}), optional=good)
    spoil = st.lists(st.sampled_from(sorted(bad)), max_size=2, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries(dict((key, bad[key]) for key in keys)))
    return st.tuples(base, spoil).map(lambda pair: dict(pair[0], **pair[1]))


def info_args(world, real, state_dir):
    names = sorted(world['names'].values())
    good = dict(
        containers=st.lists(st.sampled_from(names), max_size=3), include_stopped=st.booleans(),
        check_registry=st.booleans(), max_age_days=st.integers(0, 400), max_age_days_exposed=st.integers(0, 40),
        concurrency=st.integers(1, 16), include_unused_images=st.booleans(),
        query=st.sampled_from(['[?update_available].name', '[].labels', 'max_by(@, &name)', '@',
                               '[?image_age_days > `1`] | length(@)']),
        timeout=st.integers(1, 60), api_version=st.sampled_from(['auto', '1.41', '1.24']),
    )
    bad = dict(
        containers=st.one_of(st.lists(odd_names(world), min_size=1, max_size=3), anything()),
        include_stopped=anything(), check_registry=anything(), include_unused_images=anything(),
        max_age_days=ints(), max_age_days_exposed=ints(), concurrency=ints(-2, 20),
        query=st.one_of(st.sampled_from(QUERIES), st.text(max_size=15), anything()),
        timeout=ints(-2, 30), api_version=st.sampled_from(['1.2', 'abc', '', '99.0', 'v1.41']),
        docker_host=docker_hosts(real).filter(lambda host: host != real),
        tls=st.just(True), validate_certs=st.just(True),
        ca_path=st.sampled_from(['/nonexistent/ca.pem', '/etc/hostname']),
        client_cert=st.sampled_from(['/nonexistent/cert.pem', '/etc/hostname']),
        client_key=st.sampled_from(['/nonexistent/key.pem']), tls_hostname=st.text(max_size=10),
        state_dir=st.sampled_from(['/proc/nonexistent', '/etc/hostname', '']), bogus=anything(),
    )
    return with_some_bad(good, bad, dict(docker_host=st.just(real), state_dir=st.just(state_dir)))


def update_args(world, real, state_dir):
    names = sorted(world['names'].values())
    good = dict(
        pull=st.sampled_from(['always', 'missing', 'never']), force=st.booleans(),
        min_image_age_days=st.integers(0, 3), health_timeout=st.integers(0, 10), stable_seconds=st.integers(0, 1),
        rollback=st.booleans(), stop_timeout=st.integers(0, 3), cleanup=st.booleans(), keep_previous=st.booleans(),
        target=st.sampled_from(['newest', 'previous']), run_hooks=st.booleans(),
    )
    bad = dict(
        containers=st.one_of(st.lists(odd_names(world), min_size=1, max_size=3), st.just([]), anything()),
        pull=st.one_of(st.sampled_from(['sometimes', 'ALWAYS', '']), anything()), force=anything(),
        min_image_age_days=ints(), health_timeout=ints(-3, 20), stable_seconds=ints(-3, 1), rollback=anything(),
        stop_timeout=ints(-3, 5), target=st.one_of(st.sampled_from(['oldest', '']), anything()), bogus=anything(),
        state_dir=st.sampled_from(['/proc/nonexistent', '/etc/hostname', '']),
    )
    return with_some_bad(good, bad, dict(docker_host=st.just(real), state_dir=st.just(state_dir),
                                         containers=st.lists(st.sampled_from(names), min_size=1, max_size=3)))


FEW = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


# --- the properties ---------------------------------------------------------------------------------

def test_image_age_info_arguments_fail_in_one_sentence_or_report_correctly(harness, api, world, docker_host, tmp_path):
    state_dir = str(tmp_path / 'state')
    known = set(name for name, _image, _state in snapshot(api)[0].values())

    @FEW
    @given(args=info_args(world, docker_host, state_dir), check=st.booleans())
    def prop(args, check):
        before = snapshot(api)
        outcome = harness.run('image_age_info', args, check=check)
        after = snapshot(api)
        check_outcome(outcome, before, after)
        assert after == before, 'image_age_info changed the engine'
        if not outcome.failed:
            assert outcome['changed'] is False
            assert set(c['name'] for c in outcome['containers']) <= known
            for entry in outcome['containers']:
                assert entry['update_available'] in (True, False, None)
                one_sentence(entry['reason'])
    prop()


def test_container_update_arguments_fail_in_one_sentence_or_update_correctly(harness, api, world, docker_host, tmp_path):
    state_dir = str(tmp_path / 'state')

    @settings(FEW, max_examples=40)
    @given(args=update_args(world, docker_host, state_dir), check=st.booleans())
    def prop(args, check):
        before = snapshot(api)
        outcome = harness.run('container_update', args, check=check)
        after = snapshot(api)
        check_outcome(outcome, before, after)
        by_name_before = dict((name, (cid, state)) for cid, (name, _image, state) in before[0].items())
        by_name_after = dict((name, (cid, state)) for cid, (name, _image, state) in after[0].items())
        assert set(by_name_after) == set(by_name_before), 'no container lost or added'
        for name, (_cid, state) in by_name_before.items():
            assert by_name_after[name][1] == state, '%s keeps its run state' % name
        changed_ids = set(n for n in by_name_before if by_name_before[n][0] != by_name_after[n][0])
        if check or outcome.failed and not outcome.get('containers'):
            assert not changed_ids
        if not outcome.failed:
            updated = set(c['name'] for c in outcome['containers'] if c['action'] == 'updated')
            assert outcome['changed'] is (bool(updated) or bool(outcome['recovered'])) or check
            if not check:
                assert changed_ids == updated
        else:
            assert changed_ids <= set(c['name'] for c in outcome.get('containers') or [] if c['action'] == 'updated')
    prop()


# Connection options the Docker SDK answers with a plain ValueError (no DockerException).
SDK_VALUE_ERRORS = [dict(api_version='abc'), dict(docker_host='tcp://127.0.0.1:99999'), dict(docker_host='http://[::1'),
                    dict(timeout=0)]


@pytest.mark.parametrize('bad', SDK_VALUE_ERRORS, ids=lambda bad: '-'.join('%s=%s' % kv for kv in bad.items()))
@pytest.mark.parametrize('module', ['image_age_info', 'container_update'])
def test_connection_options_the_sdk_cannot_parse_are_one_sentence(harness, api, world, docker_host, tmp_path,
                                                                  module, bad):
    args = dict(docker_host=docker_host, state_dir=str(tmp_path / 'state'), containers=[world['names']['outdated']])
    args.update(bad)
    before = snapshot(api)
    outcome = harness.run(module, args)
    check_outcome(outcome, before, snapshot(api))
    assert outcome.failed
    assert 'not a valid URL' in outcome['msg'] or 'must be' in outcome['msg'], outcome['msg']


LABEL_TEXT = st.text(alphabet=st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'), max_size=40)
PASSING_HOOKS = ['true', '', '   ', 'echo caf\u00e9; echo =; exit 0', 'sleep 0', 'printf "\\x00\\xff"']
FAILING_HOOKS = ['exit 3', 'no-such-command --x', '"', 'cat /nonexistent']
HOOKS = PASSING_HOOKS + FAILING_HOOKS


def label_sets(world):
    names = sorted(world['names'].values())
    patchops = dict(
        enable=st.sampled_from(['true', 'false', 'maybe', '', 'TRUE', '1', 'yes\n']),
        **{'depends-on': st.one_of(st.sampled_from(['ghost', ',,', 'SELF', 'SELF,ghost', ' , ']),
                                   st.sampled_from(names), LABEL_TEXT)},
        **{'pre-update': st.sampled_from(HOOKS), 'post-update': st.sampled_from(HOOKS),
           'build-context': LABEL_TEXT})
    own = st.dictionaries(
        st.one_of(st.sampled_from(['a', 'with=equals', 'new\nline', 'caf\u00e9', 'k' * 200, 'com.example.x']),
                  LABEL_TEXT.filter(bool)),
        st.one_of(LABEL_TEXT, st.sampled_from(['a=b', 'x\ny\nz', '=', 'v' * 5000, ''])), max_size=4)
    chosen = st.dictionaries(st.sampled_from(sorted(patchops)), st.none(), max_size=4)
    return st.tuples(own, chosen).flatmap(lambda pair: st.fixed_dictionaries(
        dict((key, st.just(value)) for key, value in pair[0].items()),
        optional=dict(('patchops.docker.' + key, patchops[key]) for key in pair[1])))


NAME = st.from_regex(r'\A[a-zA-Z0-9][a-zA-Z0-9_.-]{0,60}\Z')


def test_containers_with_odd_names_and_labels_are_reported_and_updated_keeping_them(
        harness, api, world, docker_host, tmp_path):
    state_dir = str(tmp_path / 'state')
    unique = world['unique']

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(name=NAME, labels=label_sets(world), command=st.sampled_from([SLEEPER, None]))
    def prop(name, labels, command):
        name = '%s-%s' % (name, unique)
        labels = dict((k, v.replace('SELF', name)) for k, v in labels.items())
        api.tag(world['old_id'], world['ref'])  # the container starts on the old image again
        try:
            container = api.create_container(world['ref'], name=name, labels=labels, command=command,
                                             host_config=api.create_host_config(network_mode='none'))
        except docker.errors.APIError:
            assume(False)  # Docker refused it: nothing for the modules to see
        world['created'].append(name)
        try:
            api.start(container['Id'])
            checked = harness.run('image_age_info', dict(docker_host=docker_host, containers=[name],
                                                         state_dir=state_dir))
            assert checked.traceback is None, checked.traceback
            assert not checked.failed, checked
            [entry] = checked['containers']
            old_labels = api.inspect_image(world['old_id'])['Config']['Labels'] or {}
            assert entry['name'] == name and entry['labels'] == dict(old_labels, **labels)
            assert entry['update_available'] is True, entry
            assert entry['excluded'] is (labels.get('patchops.docker.enable', '').strip().lower() == 'false')

            before = snapshot(api)
            outcome = harness.run('container_update', dict(docker_host=docker_host, containers=[name],
                                                           state_dir=state_dir, stable_seconds=0, health_timeout=10))
            after = snapshot(api)
            check_outcome(outcome, before, after)
            [result] = [c for c in outcome['containers'] if c['name'] == name]
            now = api.inspect_container(name)
            if labels.get('patchops.docker.pre-update', 'true') in FAILING_HOOKS:
                assert result['action'] == 'skipped', result
                assert now['Id'] == container['Id']
                image_labels = api.inspect_image(world['old_id'])['Config']['Labels'] or {}
            else:
                assert result['action'] == 'updated', result
                assert now['Id'] != container['Id'] and now['Image'] == world['new']['id']
                image_labels = api.inspect_image(world['new']['id'])['Config']['Labels'] or {}
            one_sentence(result['message'])
            assert now['Config']['Labels'] == dict(image_labels, **labels), 'every label kept exactly'
            assert now['Name'] == '/' + name and now['State']['Running']
            others = dict((cid, v) for cid, v in after[0].items() if v[0] != name)
            assert others == dict((cid, v) for cid, v in before[0].items() if v[0] != name), 'nothing else changed'
        finally:
            api.remove_container(name, force=True)
    prop()


def test_every_form_of_an_image_reference_is_classified_and_handled(harness, api, world, docker_host, tmp_path):
    """Tag, digest, tag+digest, image ID (full, sha256:, short), a 128-character tag never pushed."""
    state_dir = str(tmp_path / 'state')
    unique = world['unique']
    api.tag(world['old_id'], world['ref'])
    old_digest = [d for d in api.inspect_image(world['old_id'])['RepoDigests'] if d.startswith(world['repo'] + '@')]
    assert old_digest, 'the old image was pushed'
    local_tag = 'T' * 128
    api.tag(world['old_id'], world['repo'], local_tag)
    digest = old_digest[0].split('@', 1)[1]
    forms = {
        'tag': (world['ref'], 'updated', True),
        'digest': ('%s@%s' % (world['repo'], digest), 'unchanged', False),
        'tag-digest': ('%s:1@%s' % (world['repo'], digest), 'unchanged', False),
        'id': (world['old_id'], 'unchanged', False),
        'bare-id': (world['old_id'].split(':', 1)[1], 'unchanged', False),
        'short-id': (world['old_id'].split(':', 1)[1][:12], 'unchanged', False),
        'long-local-tag': ('%s:%s' % (world['repo'], local_tag), 'failed', None),
    }
    names = {}
    try:
        for form, (reference, _action, _update) in forms.items():
            name = 'ref-%s-%s' % (form, unique)
            cid = api.create_container(reference, name=name, command=SLEEPER,
                                       host_config=api.create_host_config(network_mode='none'))['Id']
            world['created'].append(name)
            api.start(cid)
            names[form] = name
        checked = harness.run('image_age_info', dict(docker_host=docker_host, containers=list(names.values()),
                                                     state_dir=state_dir, include_unused_images=True))
        assert checked.traceback is None and not checked.failed, checked
        by_name = dict((c['name'], c) for c in checked['containers'])
        for form, (reference, _action, update) in forms.items():
            entry = by_name[names[form]]
            assert entry['image'] == reference
            if form == 'long-local-tag':
                assert entry['update_available'] is not True
            else:
                assert entry['update_available'] is update, (form, entry)
            one_sentence(entry['reason'])

        before = snapshot(api)
        outcome = harness.run('container_update', dict(docker_host=docker_host, containers=list(names.values()),
                                                       state_dir=state_dir, stable_seconds=0))
        after = snapshot(api)
        check_outcome(outcome, before, after)
        assert outcome.failed, 'the tag the registry does not have fails its container'
        results = dict((c['name'], c) for c in outcome['containers'])
        for form, (reference, action, _update) in forms.items():
            assert results[names[form]]['action'] == action, (form, results[names[form]])
            one_sentence(results[names[form]]['message'])
            now = api.inspect_container(names[form])
            assert now['Config']['Image'] == reference and now['State']['Running']
            assert (now['Id'] != before_id(before, names[form])) is (action == 'updated')
        assert 'not found' in results[names['long-local-tag']]['message'] \
            or 'manifest unknown' in results[names['long-local-tag']]['message'], results[names['long-local-tag']]
    finally:
        for name in names.values():
            api.remove_container(name, force=True)
        api.remove_image('%s:%s' % (world['repo'], local_tag), force=True)  # the tag only: bad-keep uses the image


def before_id(state, name):
    return [cid for cid, value in state[0].items() if value[0] == name][0]


@pytest.mark.parametrize('module, args, message', [
    ('image_age_info', dict(containers=['a\nb']), r"^Container 'a\\nb' not found on unix://"),
    ('image_age_info', dict(api_version='abc'), r"^api_version must be 'auto' or a version such as '1.41', not 'abc'\.$"),
    ('image_age_info', dict(query='[?'), r"^Invalid JMESPath expression in query '\[\?': .*position 2\.$"),
    ('container_update', dict(containers=['ghost\x1b[31m']), r"^Container 'ghost\\x1b\[31m' not found on unix://"),
    ('container_update', dict(containers=[], pull='sometimes'), r'^value of pull must be one of: always, missing, never'),
])
def test_the_worst_inputs_through_the_ansible_cli_are_one_sentence(docker_host, tmp_path, api, module, args, message):
    before = snapshot(api)
    result = run_module(module, dict(docker_host=docker_host, state_dir=str(tmp_path / 'state'), **args))
    assert result.failed
    assert 'MODULE FAILURE' not in result.stdout and 'Traceback' not in result.stdout + result.stderr
    assert re.search(message, result['msg']), result['msg']
    assert '\n' not in result['msg']
    assert snapshot(api) == before
