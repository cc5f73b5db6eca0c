"""patchops.docker.image_age_info against the real sandbox engine and registry."""
import re
import time

import pytest

from conftest import SLEEPER, run_module, sandbox

# The module side in detail: run once, under the first controller (modules on the oldest target Python).
# The tests marked engines (image IDs, digests, dates and the image list, which differ between image stores)
# also run on Engine 20.10 and on Engine 26 with the containerd image store; argument checks, queries,
# filters and the way a container is selected do not differ between engines.
pytestmark = pytest.mark.once


def by_name(result):
    return {entry['name']: entry for entry in result['containers']}


@pytest.fixture
def repo(sb, unique):
    """A fresh repository in the sandbox registry for this test."""
    return '%s/itest/app-%s' % (sb['registry'], unique)


@pytest.mark.engines
def test_current_tag_is_not_due(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('cur-' + unique, repo + ':1')

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name]))

    assert not result.failed, result
    assert result['changed'] is False
    entry = by_name(result)[name]
    assert entry['update_available'] is False
    assert entry['reason'] == 'running image matches the registry for tag 1'
    assert entry['image'] == repo + ':1'
    assert entry['remote_digest'].startswith('sha256:')
    assert entry['state'] == 'running'
    assert entry['stale'] is False


@pytest.mark.engines
def test_newer_push_for_the_tag_is_reported(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':1.25', cmd=SLEEPER)
    name = containers.run('newer-' + unique, repo + ':1.25')
    newer = sandbox.publish(repo + ':1.25', cmd=SLEEPER, labels={'release': 'second'})

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name]))

    entry = by_name(result)[name]
    assert entry['update_available'] is True
    assert entry['reason'] == 'registry has a newer image for tag 1.25'
    assert entry['remote_digest'] == newer['digest']
    assert result['summary']['updates_available'] == 1


@pytest.mark.engines
def test_running_image_older_than_local_tag(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':2', cmd=SLEEPER)
    name = containers.run('local-' + unique, repo + ':2')
    # A newer image arrives locally under the same tag (pulled or built), the container is not recreated.
    sandbox.publish(repo + ':2', cmd=SLEEPER, labels={'release': 'second'})
    sandbox.docker('pull', repo + ':2')

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name]))

    entry = by_name(result)[name]
    assert entry['update_available'] is True
    assert entry['reason'] == 'running image is older than local tag'
    assert entry['image'] == repo + ':2', 'the reference the container was created from, not its image ID'


@pytest.mark.engines
def test_pinned_by_digest_is_never_due(docker_host, containers, repo, unique):
    first = sandbox.publish(repo + ':3', cmd=SLEEPER)
    pinned = '%s@%s' % (repo, first['digest'])
    name = containers.run('pinned-' + unique, pinned)
    sandbox.publish(repo + ':3', cmd=SLEEPER, labels={'release': 'second'})

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name]))

    entry = by_name(result)[name]
    assert entry['update_available'] is False
    assert entry['reason'] == 'pinned by digest'
    assert entry['image'] == pinned


@pytest.mark.engines
def test_image_built_locally(docker_host, containers, repo, unique):
    # Named under the sandbox registry but never pushed: under the containerd image store (where every
    # image has a repo digest) the look-up then goes to a registry here and finds no such tag.
    local = repo + '-local:dev'
    sandbox.publish(local, cmd=SLEEPER, push=False)
    name = containers.run('built-' + unique, local)

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name]))

    entry = by_name(result)[name]
    assert entry['update_available'] is False
    assert entry['reason'] == 'image built locally'
    assert entry['remote_digest'] is None
    assert result['summary']['errors'] == 0


@pytest.mark.engines
def test_image_created_200_days_ago_is_stale(docker_host, containers, repo, unique):
    aged = sandbox.aged(repo + ':old', 200, cmd=SLEEPER, push=True)
    name = containers.run('aged-' + unique, repo + ':old')

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name], max_age_days=30))

    entry = by_name(result)[name]
    assert entry['image_id'] == aged['id']
    assert entry['image_age_days'] == pytest.approx(200, abs=0.1)
    assert entry['stale'] is True
    assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', entry['image_created'])
    created = time.mktime(time.strptime(entry['image_created'], '%Y-%m-%dT%H:%M:%SZ')) - time.timezone
    assert abs(time.time() - created - 200 * 86400) < 3600
    assert result['summary']['stale'] == 1
    assert result['summary']['oldest_image_age_days'] == pytest.approx(200, abs=0.1)


def test_registry_down_marks_only_its_containers_unknown(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    remote = containers.run('remote-' + unique, repo + ':1')
    local_ref = repo + '-local:dev'
    sandbox.publish(local_ref, cmd=SLEEPER, push=False)
    local = containers.run('local-' + unique, local_ref)
    sandbox.registry_stop()
    try:
        result = run_module('image_age_info', dict(docker_host=docker_host, containers=[remote, local]))
    finally:
        sandbox.registry_start()

    assert not result.failed, result
    entries = by_name(result)
    assert entries[remote]['update_available'] is None
    assert entries[remote]['reason'].startswith('registry error: ')
    assert sandbox.info()['registry'] in entries[remote]['reason']
    if sandbox.info()['engine']['image_store'] == 'containerd':
        # every image has a repo digest there: only its registry can say it never had the tag
        assert entries[local]['update_available'] is None
        assert entries[local]['reason'].startswith('registry error: ')
        assert result['summary']['unknown'] == 2 and result['summary']['errors'] == 2
    else:
        assert entries[local]['update_available'] is False
        assert entries[local]['reason'] == 'image built locally'
        assert result['summary']['unknown'] == 1
        assert result['summary']['errors'] == 1


def test_stopped_containers_only_with_include_stopped(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    running = containers.run('run-' + unique, repo + ':1')
    stopped = containers.create('stopped-' + unique, repo + ':1')

    default = run_module('image_age_info', dict(docker_host=docker_host))
    with_stopped = run_module('image_age_info', dict(docker_host=docker_host, include_stopped=True))

    assert running in by_name(default)
    assert stopped not in by_name(default)
    assert by_name(with_stopped)[stopped]['state'] == 'created'
    assert by_name(with_stopped)[stopped]['update_available'] is False


def test_registry_is_asked_once_per_distinct_reference(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    sandbox.publish(repo + ':2', cmd=SLEEPER)
    names = [containers.run('one-%d-%s' % (i, unique), repo + ':1') for i in range(3)]
    names += [containers.run('two-%d-%s' % (i, unique), repo + ':2') for i in range(2)]
    path = repo.split('/', 1)[1]

    def run_and_count_manifest_requests(selected):
        before = len(sandbox.registry_requests(path))
        result = run_module('image_age_info', dict(docker_host=docker_host, containers=selected))
        after = sandbox.registry_requests(path)[before:]
        return result, dict((tag, len([r for r in after if r.endswith('/manifests/' + tag)])) for tag in '12')

    # What one look-up of one reference costs at the registry (the daemon may HEAD, then GET).
    single = run_and_count_manifest_requests(names[:1])[1]
    assert single['1'] >= 1

    result, counts = run_and_count_manifest_requests(names)

    assert counts == {'1': single['1'], '2': single['1']}
    images = {item['reference']: item for item in result['images']}
    assert sorted(images['%s:1' % repo]['containers']) == sorted(names[:3])
    assert sorted(images['%s:2' % repo]['containers']) == sorted(names[3:])


def test_query_selects_stale_containers(docker_host, containers, repo, unique):
    sandbox.aged(repo + ':old', 90, cmd=SLEEPER, push=True)
    sandbox.publish(repo + ':new', cmd=SLEEPER)
    old = containers.run('old-' + unique, repo + ':old')
    new = containers.run('new-' + unique, repo + ':new')

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[old, new],
                                               query='[?stale].name'))

    assert result['selected'] == [old]


def test_invalid_query_is_one_clear_sentence(docker_host):
    result = run_module('image_age_info', dict(docker_host=docker_host, query='[?stale'))

    assert result.failed
    assert result['msg'].startswith("Invalid JMESPath expression in query '[?stale': ")
    assert 'Traceback' not in result.stdout + result.stderr


def test_unknown_container_fails_before_anything(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('known-' + unique, repo + ':1')

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name, 'no-such-' + unique]))

    assert result.failed
    assert result['msg'] == "Container 'no-such-%s' not found on %s." % (unique, docker_host)
    assert 'containers' not in result
    assert 'Traceback' not in result.stdout + result.stderr


def test_unreachable_daemon_names_the_host(tmp_path):
    missing = 'unix://%s/docker.sock' % tmp_path

    result = run_module('image_age_info', dict(docker_host=missing))

    assert result.failed
    assert result['msg'].startswith('Cannot connect to the Docker daemon at %s: ' % missing)
    assert result['msg'].count('\n') == 0
    assert 'Traceback' not in result.stdout + result.stderr


def test_missing_sdk_on_target_is_reported(docker_host):
    import os
    python = os.environ.get('PATCHOPS_NOSDK_PYTHON')
    assert python, 'the Makefile passes PATCHOPS_NOSDK_PYTHON, a Python without the Docker SDK'

    result = run_module('image_age_info', dict(docker_host=docker_host), python=python)

    assert result.failed
    assert 'Failed to import the required Python library (docker (Docker SDK for Python) >= 7.0.0)' in result['msg']
    assert 'Traceback' not in result.stdout + result.stderr


@pytest.mark.parametrize('args, message', [
    (dict(concurrency=0), 'concurrency must be 1 or more, not 0.'),
    (dict(max_age_days=-1), 'max_age_days must be 0 or more, not -1.'),
])
def test_invalid_options_are_refused(docker_host, args, message):
    result = run_module('image_age_info', dict(docker_host=docker_host, **args))

    assert result.failed
    assert result['msg'] == message


def test_check_mode_reports_the_same(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('check-' + unique, repo + ':1')
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'release': 'second'})

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name]), check=True)

    assert result['changed'] is False
    assert by_name(result)[name]['update_available'] is True


def test_exposure_decides_which_age_limit_applies(docker_host, containers, repo, unique):
    sandbox.aged(repo + ':10d', 10, cmd=SLEEPER, push=True)
    image = repo + ':10d'
    loopback = containers.run('lo-' + unique, image, '-p', '127.0.0.1::8080')
    everywhere = containers.run('all-' + unique, image, '-p', '8080')
    host_net = containers.run('host-' + unique, image, '--network', 'host')
    internal = containers.run('int-' + unique, image)

    result = run_module('image_age_info', dict(docker_host=docker_host, max_age_days=30, max_age_days_exposed=7,
                                               containers=[loopback, everywhere, host_net, internal]))

    entries = by_name(result)
    assert [entries[n]['exposed'] for n in (loopback, everywhere, host_net, internal)] == [False, True, True, False]
    assert [entries[n]['stale'] for n in (loopback, everywhere, host_net, internal)] == [False, True, True, False]
    assert entries[everywhere]['max_age_days'] == 7


@pytest.mark.engines
def test_unused_images_are_reported_on_request(docker_host, containers, repo, unique):
    sandbox.aged(repo + ':unused', 45, cmd=SLEEPER)

    without = run_module('image_age_info', dict(docker_host=docker_host))
    result = run_module('image_age_info', dict(docker_host=docker_host, include_unused_images=True))

    assert not [i for i in without['images'] if not i['in_use']]
    unused = [i for i in result['images'] if i['reference'] == repo + ':unused']
    assert len(unused) == 1
    assert unused[0]['in_use'] is False
    assert unused[0]['image_age_days'] == pytest.approx(45, abs=0.1)
    assert unused[0]['stale'] is True


def test_labels_compose_and_exclusion_are_reported(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'patchops.docker.build-context': '/srv/build/app'})
    name = containers.run('lbl-' + unique, repo + ':1', '--label', 'patchops.docker.enable=false',
                          '--label', 'com.docker.compose.project=shop',
                          '--label', 'com.docker.compose.service=web')

    entry = by_name(run_module('image_age_info', dict(docker_host=docker_host, containers=[name])))[name]

    assert entry['excluded'] is True
    assert entry['compose_project'] == 'shop'
    assert entry['compose_service'] == 'web'
    assert entry['build_context'] == '/srv/build/app'
    assert entry['labels']['patchops.docker.enable'] == 'false'


def test_module_defaults_group_sets_the_connection(docker_host, containers, repo, unique, tmp_path):
    from conftest import run_playbook
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('grp-' + unique, repo + ':1')
    playbook = tmp_path / 'group.yml'
    playbook.write_text('''
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/patchops.docker.docker:
      docker_host: "%s"
  tasks:
    - patchops.docker.image_age_info:
        containers: ["%s"]
      register: ages
    - ansible.builtin.assert:
        that: ages.containers[0].name == "%s"
''' % (docker_host, name, name))

    proc = run_playbook(playbook, env={'DOCKER_HOST': 'unix:///nonexistent.sock'})

    assert proc.returncode == 0, proc.stdout + proc.stderr
