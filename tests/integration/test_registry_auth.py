"""A registry that wants basic auth (the real registry with htpasswd), through the target's Docker credentials.

The sandbox's second registry (``sandbox.auth_registry_up()``, 127.0.0.1:5116) answers 401 to
everything without the user and password it made. The credentials reach the modules the way they
reach them on a real target: ``docker login`` wrote them to ``$DOCKER_CONFIG/config.json``, which
the Docker SDK reads. They must never show in a result or in Ansible's output.
"""
import base64
import json
import os
import re

import pytest

from conftest import SLEEPER, run_module, sandbox

# The module side in detail: run once, under the first controller (modules on the oldest target Python).
pytestmark = pytest.mark.once


@pytest.fixture(scope='module')
def auth_registry(sb):
    return sandbox.auth_registry_up()


@pytest.fixture
def logged_in(auth_registry, tmp_path):
    """A private DOCKER_CONFIG with a ``docker login`` to the auth registry in it."""
    config = tmp_path / 'docker-config'
    config.mkdir()
    sandbox.docker('login', '--username', auth_registry['user'], '--password-stdin', auth_registry['registry'],
                   input=auth_registry['password'], env={'DOCKER_CONFIG': str(config)})
    saved = json.loads((config / 'config.json').read_text())
    assert auth_registry['registry'] in saved.get('auths', {}), saved
    return str(config)


@pytest.fixture
def anonymous(tmp_path):
    config = tmp_path / 'no-credentials'
    config.mkdir()
    return str(config)


def _secrets(auth_registry):
    token = base64.b64encode(('%s:%s' % (auth_registry['user'], auth_registry['password'])).encode()).decode()
    return [auth_registry['password'], token]


def _assert_no_secret(run, auth_registry):
    seen = json.dumps(dict(run)) + run.stdout + run.stderr
    for secret in _secrets(auth_registry):
        assert secret not in seen


def _push(ref, docker_config):
    sandbox.docker('push', ref, env={'DOCKER_CONFIG': docker_config}, timeout=300)


@pytest.fixture
def outdated(auth_registry, logged_in, containers, unique):
    """A container on <auth registry>/itest/auth-<unique>:1 whose tag has a newer image in that registry."""
    ref = '%s/itest/auth-%s:1' % (auth_registry['registry'], unique)
    first = sandbox.publish(ref, cmd=SLEEPER, push=False)
    _push(ref, logged_in)
    name = containers.run('auth-%s' % unique, ref)
    newer = sandbox.publish(ref, cmd=SLEEPER, labels={'v': '2'}, push=False)
    _push(ref, logged_in)
    sandbox.docker('tag', first['id'], ref)  # as if the newer image had been pushed from elsewhere
    return {'ref': ref, 'name': name, 'old_id': first['id'], 'new_id': newer['id']}


def _entry(result, name):
    return [c for c in result['containers'] if c['name'] == name][0]


def test_push_without_credentials_is_refused(auth_registry, anonymous, unique):
    ref = '%s/itest/auth-anon-%s:1' % (auth_registry['registry'], unique)
    sandbox.publish(ref, cmd=SLEEPER, push=False)

    with pytest.raises(sandbox.SandboxError) as refused:
        _push(ref, anonymous)

    assert 'no basic auth credentials' in refused.value.stderr or 'unauthorized' in refused.value.stderr.lower()


def test_image_age_info_with_credentials_sees_newer_image(docker_host, auth_registry, logged_in, outdated):
    result = run_module('image_age_info', {'docker_host': docker_host, 'containers': [outdated['name']]},
                        env={'DOCKER_CONFIG': logged_in}, verbosity=3)

    assert not result.failed, result
    entry = _entry(result, outdated['name'])
    assert entry['update_available'] is True, entry
    _assert_no_secret(result, auth_registry)


def test_container_update_with_credentials_pulls_and_updates(docker_host, auth_registry, logged_in, outdated,
                                                             tmp_path):
    args = {'docker_host': docker_host, 'containers': [outdated['name']], 'stable_seconds': 1,
            'state_dir': str(tmp_path / 'state')}

    check = run_module('container_update', args, check=True, diff=True, env={'DOCKER_CONFIG': logged_in},
                       verbosity=3)
    result = run_module('container_update', args, env={'DOCKER_CONFIG': logged_in}, verbosity=3)

    assert not check.failed, check
    assert _entry(check, outdated['name'])['action'] == 'updated', check
    assert not result.failed, result
    assert result['changed'] is True
    assert _entry(result, outdated['name'])['action'] == 'updated', result
    running = json.loads(sandbox.docker('inspect', outdated['name']))[0]
    assert running['Image'] == outdated['new_id']
    for run in (check, result):
        _assert_no_secret(run, auth_registry)
    for path in (tmp_path / 'state').rglob('*'):
        if path.is_file():
            text = path.read_bytes().decode('utf-8', 'replace')
            for secret in _secrets(auth_registry):
                assert secret not in text, path


def test_without_credentials_the_container_is_unknown_and_the_module_succeeds(
        docker_host, auth_registry, anonymous, outdated):
    result = run_module('image_age_info', {'docker_host': docker_host, 'containers': [outdated['name']]},
                        env={'DOCKER_CONFIG': anonymous})

    assert not result.failed, result
    entry = _entry(result, outdated['name'])
    assert entry['update_available'] is None, entry
    assert entry['reason'].startswith('registry error: '), entry
    # Engine 20.10 answers a credential-less look-up with its own "no basic auth credentials" (HTTP 500)
    # rather than the registry's 401: either is the reason users read.
    assert re.search(r'\b401\b|unauthorized|no basic auth credentials', entry['reason'], re.I), entry
    assert result['summary']['unknown'] == 1, result['summary']
    _assert_no_secret(result, auth_registry)


def test_container_update_without_credentials_changes_nothing(docker_host, auth_registry, anonymous, outdated,
                                                              tmp_path):
    result = run_module('container_update', {'docker_host': docker_host, 'containers': [outdated['name']],
                                             'state_dir': str(tmp_path / 'state')},
                        env={'DOCKER_CONFIG': anonymous})

    running = json.loads(sandbox.docker('inspect', outdated['name']))[0]
    assert running['Image'] == outdated['old_id'], 'nothing changed without credentials'
    assert running['State']['Running'] is True
    assert _entry(result, outdated['name'])['action'] in ('failed', 'unchanged', 'skipped'), result
    assert 'Traceback' not in result.stdout + result.stderr
    _assert_no_secret(result, auth_registry)


@pytest.fixture
def credential_helper(auth_registry, tmp_path):
    """A DOCKER_CONFIG whose credentials for the auth registry come from a credential helper, as with Docker's
    ``credHelpers`` (docker-credential-<name> on PATH, asked with ``get`` and the registry on stdin), not from
    ``auths``. The helper records that it was asked."""
    config = tmp_path / 'helper-config'
    config.mkdir()
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    asked = tmp_path / 'asked'
    helper = bin_dir / 'docker-credential-patchopstest'
    helper.write_text('#!/bin/sh\n'
                      '[ "$1" = get ] || exit 1\n'
                      'read -r server\n'
                      'echo "$server" >> %s\n'
                      'printf \'{"ServerURL": "%%s", "Username": "%s", "Secret": "%s"}\\n\' "$server"\n'
                      % (asked, auth_registry['user'], auth_registry['password']))
    helper.chmod(0o755)
    (config / 'config.json').write_text(json.dumps({'credHelpers': {auth_registry['registry']: 'patchopstest'}}))
    return {'DOCKER_CONFIG': str(config), 'PATH': '%s:%s' % (bin_dir, os.environ['PATH']), 'asked': asked}


def test_credentials_from_a_credential_helper(docker_host, auth_registry, credential_helper, outdated):
    env = dict((k, v) for k, v in credential_helper.items() if k != 'asked')

    result = run_module('image_age_info', {'docker_host': docker_host, 'containers': [outdated['name']]},
                        env=env, verbosity=3)

    assert not result.failed, result
    entry = _entry(result, outdated['name'])
    assert entry['update_available'] is True, entry
    assert auth_registry['registry'] in credential_helper['asked'].read_text()
    _assert_no_secret(result, auth_registry)
