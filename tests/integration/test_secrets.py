"""A container whose environment holds a password: the value shows nowhere the collection writes.

Not in a module result, a diff, Ansible's output (``-vvv`` included), the fleet report
(json/md/html), or any file under the state dir; the journal there is root's alone (dir 0700,
files 0600), also when a swap rolls back.
"""
import json
import os
import stat
import subprocess
import uuid

import pytest

from conftest import SLEEPER, run_module, sandbox, target_python

PLAYBOOK = 'patchops.docker.patch_containers'


@pytest.fixture
def secret():
    return 'S3cr3t-%s' % uuid.uuid4().hex


@pytest.fixture
def state_dir(unique):
    """A state dir below a world-traversable parent, so a non-root user is kept out by its own modes."""
    parent = '/tmp/patchops-secrets-%s' % unique
    os.makedirs(parent)
    os.chmod(parent, 0o755)
    yield os.path.join(parent, 'state')
    subprocess.run(['rm', '-rf', parent], check=False)


@pytest.fixture
def outdated(sb, containers, unique, secret):
    """A running container with DB_PASSWORD=<secret> on an image whose tag has a newer push."""
    repo = '%s/itest/secret-%s' % (sb['registry'], unique)
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('db-%s' % unique, repo + ':1', '-e', 'DB_PASSWORD=%s' % secret)
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    return {'name': name, 'repo': repo}


def _assert_not_in(secret, *texts):
    for text in texts:
        assert secret not in text


def _assert_run_clean(run, secret):
    _assert_not_in(secret, json.dumps(dict(run)), run.stdout, run.stderr)


def _assert_state_dir_private(state_dir, secret):
    files = []
    for root, dirs, names in os.walk(state_dir):
        for d in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode) & 0o077 == 0, os.path.join(root, d)
        for n in names:
            path = os.path.join(root, n)
            files.append(path)
            assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, '%s is %o' % (path, os.stat(path).st_mode)
            with open(path, 'rb') as f:
                assert secret.encode() not in f.read(), path
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    assert files, 'the run left its journal in %s' % state_dir
    # a non-root user reads none of it (the same command reads a world-readable file: su itself works)
    assert _as_nobody('cat /etc/passwd').returncode == 0
    for path in files:
        denied = _as_nobody('cat %s' % path)
        assert denied.returncode != 0 and 'Permission denied' in denied.stderr, path
    assert _as_nobody('ls %s' % state_dir).returncode != 0
    return files


def _as_nobody(command):
    return subprocess.run(['su', 'nobody', '-s', '/bin/sh', '-c', command], capture_output=True, text=True,
                          check=False, timeout=30)


def _env_of(name):
    return json.loads(sandbox.docker('inspect', name))[0]['Config']['Env']


def test_image_age_info_keeps_the_value_out(docker_host, outdated, secret):
    for verbosity in (0, 3):
        result = run_module('image_age_info', {'docker_host': docker_host, 'containers': [outdated['name']],
                                               'include_unused_images': True}, verbosity=verbosity)

        assert not result.failed, result
        assert result['containers'][0]['update_available'] is True
        _assert_run_clean(result, secret)


def test_container_update_check_diff_keeps_the_value_out(docker_host, outdated, secret, state_dir):
    before = json.loads(sandbox.docker('inspect', outdated['name']))[0]['Id']

    result = run_module('container_update', {'docker_host': docker_host, 'containers': [outdated['name']],
                                             'state_dir': state_dir}, check=True, diff=True, verbosity=3)

    assert not result.failed, result
    assert result['containers'][0]['action'] == 'updated'
    assert 'diff' in result or '---' in result.stdout or 'before' in result.stdout, 'diff mode shows a diff'
    _assert_run_clean(result, secret)
    assert json.loads(sandbox.docker('inspect', outdated['name']))[0]['Id'] == before


def test_container_update_keeps_the_value_out_and_the_journal_private(docker_host, outdated, secret, state_dir):
    result = run_module('container_update', {'docker_host': docker_host, 'containers': [outdated['name']],
                                             'stable_seconds': 1, 'state_dir': state_dir},
                        diff=True, verbosity=3)

    assert not result.failed, result
    assert result['containers'][0]['action'] == 'updated', result
    assert 'DB_PASSWORD=%s' % secret in _env_of(outdated['name']), 'the recreated container keeps its env'
    _assert_run_clean(result, secret)
    _assert_state_dir_private(state_dir, secret)


def test_rollback_keeps_the_value_out(docker_host, sb, containers, unique, secret, state_dir):
    repo = '%s/itest/secret-rb-%s' % (sb['registry'], unique)
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('db-rb-%s' % unique, repo + ':1', '-e', 'DB_PASSWORD=%s' % secret)
    before = json.loads(sandbox.docker('inspect', name))[0]['Id']
    sandbox.publish(repo + ':1', cmd=['sh', '-c', 'exit 3'])

    result = run_module('container_update', {'docker_host': docker_host, 'containers': [name],
                                             'stable_seconds': 1, 'health_timeout': 20, 'state_dir': state_dir},
                        verbosity=3)

    assert result.failed, result
    entry = result['containers'][0]
    assert entry['action'] == 'rolled_back', entry
    assert 'exit' in entry['message'].lower() or 'code 3' in entry['message'], entry
    _assert_not_in(secret, entry['message'], result.get('msg', ''))
    _assert_run_clean(result, secret)
    restored = json.loads(sandbox.docker('inspect', name))[0]
    assert restored['Id'] == before and restored['State']['Running']
    assert 'DB_PASSWORD=%s' % secret in restored['Config']['Env']
    _assert_state_dir_private(state_dir, secret)


def test_role_report_and_output_keep_the_value_out(docker_host, outdated, secret, state_dir, tmp_path, unique):
    report_dir = tmp_path / 'report'
    extra_vars = dict(patch_containers_docker_host=docker_host, patch_containers_state_dir=state_dir,
                      patch_containers_include=['*-%s' % unique], patch_containers_hosts='localhost',
                      patch_containers_stable_seconds=1, patch_containers_report_dir=str(report_dir),
                      ansible_python_interpreter=target_python())
    cmd = ['ansible-playbook', '-i', 'localhost,', '-c', 'local', PLAYBOOK, '-e', json.dumps(extra_vars),
           '--diff', '-vvv']
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_CALLBACK_RESULT_FORMAT='json')

    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)

    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert outdated['name'] in proc.stdout
    _assert_not_in(secret, proc.stdout, proc.stderr)
    reports = sorted(p.name for p in report_dir.iterdir())
    assert {'patch-report.json', 'patch-report.md', 'patch-report.html'} <= set(reports), reports
    for path in report_dir.rglob('*'):
        if path.is_file():
            text = path.read_text(errors='replace')
            assert secret not in text, path
    report = (report_dir / 'patch-report.json').read_text()
    assert outdated['name'] in report
    assert 'DB_PASSWORD=%s' % secret in _env_of(outdated['name'])
    _assert_state_dir_private(state_dir, secret)
