"""A remote Docker engine over TCP with TLS client certificates (dockerd --tlsverify).

The engine is the sandbox's TLS engine (``sandbox.tls_engine_up()``): its own dockerd on
tcp://127.0.0.1:5117 with a CA, a server certificate for localhost/127.0.0.1 and a client
certificate made with openssl; a second CA that signed nothing stands for "the wrong CA".
"""
import pytest

from conftest import SLEEPER, run_module, sandbox


@pytest.fixture(scope='module')
def tls(sb):
    return sandbox.tls_engine_up()


@pytest.fixture
def tls_container(tls, unique):
    name = 'tls-%s' % unique
    sandbox.tls_engine_docker('run', '-d', '--network', 'none', '--name', name, sandbox.BASE_IMAGE, *SLEEPER)
    yield name
    sandbox.tls_engine_docker('rm', '-f', '-v', name, check=False)


def _tls_args(tls, **extra):
    args = dict(docker_host=tls['docker_host'], validate_certs=True, ca_path=tls['ca_path'],
                client_cert=tls['client_cert'], client_key=tls['client_key'], check_registry=False)
    args.update(extra)
    return args


def _names(result):
    return [c['name'] for c in result['containers']]


def _assert_clear_refusal(result, tls):
    assert result.failed, result
    msg = result['msg']
    assert msg.startswith('Cannot connect to the Docker daemon at %s:' % tls['docker_host']), msg
    assert 'certificate' in msg.lower(), msg
    assert msg.count('. ') == 0 and '\n' not in msg, 'one sentence: %r' % msg
    assert 'Traceback' not in result.stdout + result.stderr
    assert 'exception' not in result and 'module_stderr' not in result, result


def test_tls_options_connect(tls, tls_container):
    result = run_module('image_age_info', _tls_args(tls))

    assert not result.failed, result
    assert tls_container in _names(result)
    assert result['changed'] is False


def test_tls_from_docker_environment(tls, tls_container):
    env = {'DOCKER_HOST': tls['docker_host'], 'DOCKER_TLS_VERIFY': '1', 'DOCKER_CERT_PATH': tls['cert_path']}

    result = run_module('image_age_info', {'check_registry': False}, env=env)

    assert not result.failed, result
    assert tls_container in _names(result)


def test_without_client_certificate_is_refused(tls):
    result = run_module('image_age_info', _tls_args(tls, client_cert=None, client_key=None))

    assert result.failed, result
    assert result['msg'].startswith('Cannot connect to the Docker daemon at %s:' % tls['docker_host']), result
    assert 'Traceback' not in result.stdout + result.stderr


def test_wrong_ca_is_refused_with_one_clear_sentence(tls):
    result = run_module('image_age_info', _tls_args(tls, ca_path=tls['wrong_ca_path']))

    _assert_clear_refusal(result, tls)


def test_tls_hostname_not_in_certificate_is_refused(tls):
    result = run_module('image_age_info', _tls_args(tls, tls_hostname='docker.example.invalid'))

    _assert_clear_refusal(result, tls)


def test_tls_hostname_in_certificate_works(tls, tls_container):
    result = run_module('image_age_info', _tls_args(tls, tls_hostname='localhost'))

    assert not result.failed, result
    assert tls_container in _names(result)


def test_container_update_over_tls(tls, tls_container, tmp_path):
    # pull: never and the base image already local: a full connection and inspection, no change
    args = _tls_args(tls, containers=[tls_container], pull='never', state_dir=str(tmp_path / 'state'))
    del args['check_registry']
    result = run_module('container_update', args)

    assert not result.failed, result
    assert result['containers'][0]['action'] == 'unchanged', result
