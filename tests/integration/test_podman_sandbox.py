"""The sandbox's Podman engine (``sandbox.podman_up()``) through the Docker SDK, as the modules will talk to it.

Debian 12's Podman 4.3 serving the Docker-compatible API on a private socket: version, a pull from the sandbox
registry, a container with a named volume and a health check that turns healthy (the sandbox's health-check
helper stands in for systemd's timers), stop and remove, and two containers on a user network that reach each
other by name. Podman runs only in network and mount namespaces of its own (tests/tooling/integration's runs);
elsewhere these tests are skipped with podman_up()'s reason.
"""
import time
import uuid

import pytest

from conftest import SLEEPER, sandbox

docker = pytest.importorskip('docker')

pytestmark = pytest.mark.podman


@pytest.fixture(scope='module')
def podman_engine(sb):
    try:
        return sandbox.podman_up()
    except sandbox.SandboxError as exc:
        if 'namespace' in str(exc):
            pytest.skip(str(exc))
        raise


@pytest.fixture
def api(podman_engine):
    client = docker.APIClient(base_url=podman_engine['docker_host'], version='auto', timeout=120)
    yield client
    client.close()


@pytest.fixture
def names(api):
    """Containers, volumes and networks this test made, removed afterwards."""
    made = {'containers': [], 'volumes': [], 'networks': []}
    yield made
    for name in made['containers']:
        try:
            api.remove_container(name, force=True, v=True)
        except docker.errors.NotFound:
            pass
    for name in made['networks']:
        try:
            api.remove_network(name)
        except docker.errors.NotFound:
            pass
    for name in made['volumes']:
        try:
            api.remove_volume(name, force=True)
        except docker.errors.NotFound:
            pass


def _unique(prefix):
    return '%s-%s' % (prefix, uuid.uuid4().hex[:8])


def _wait_health(api, name, want='healthy', timeout=60):
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = ((api.inspect_container(name)['State'].get('Health') or {}).get('Status'))
        if status == want:
            return status
        time.sleep(0.25)
    raise AssertionError('%s: health %r after %ds, not %r' % (name, status, timeout, want))


def test_version_is_podman_with_the_docker_api(api, podman_engine):
    version = api.version()

    assert version['Version'] == podman_engine['version']
    assert version['Version'].startswith('4.'), version
    assert any(c.get('Name') == 'Podman Engine' for c in version.get('Components') or []), version
    assert float(version['ApiVersion']) >= 1.41, version
    assert podman_engine['running'] is True


def test_pull_the_base_image_from_the_sandbox_registry(api):
    repo, tag = sandbox.BASE_IMAGE.rsplit(':', 1)

    api.pull(repo, tag=tag)

    image = api.inspect_image(sandbox.BASE_IMAGE)
    assert sandbox.BASE_IMAGE in image['RepoTags'], image['RepoTags']
    assert any(d.startswith(repo + '@sha256:') for d in image['RepoDigests']), image['RepoDigests']


def test_container_with_named_volume_and_healthcheck_turns_healthy(api, names):
    name, volume = _unique('pm-hc'), _unique('pm-vol')
    api.create_volume(volume)
    names['volumes'].append(volume)
    healthcheck = {'test': ['CMD-SHELL', 'test -f /data/ready'], 'interval': 1000000000, 'timeout': 3000000000,
                   'retries': 3, 'start_period': 0}
    container = api.create_container(
        sandbox.BASE_IMAGE, command=['sh', '-c', "touch /data/ready; trap 'exit 0' TERM; sleep 86400 & wait"],
        name=name, healthcheck=healthcheck, volumes=['/data'],
        host_config=api.create_host_config(binds={volume: {'bind': '/data', 'mode': 'rw'}}))
    names['containers'].append(name)

    api.start(container['Id'])

    assert _wait_health(api, name) == 'healthy'
    info = api.inspect_container(name)
    assert info['State']['Running'] is True
    assert any(m.get('Name') == volume and m.get('Destination') == '/data' for m in info['Mounts']), info['Mounts']

    api.stop(name, timeout=5)
    assert api.inspect_container(name)['State']['Running'] is False
    api.remove_container(name, v=True)
    names['containers'].remove(name)
    with pytest.raises(docker.errors.NotFound):
        api.inspect_container(name)
    assert volume in [v['Name'] for v in api.volumes()['Volumes'] or []]


def test_failing_healthcheck_turns_unhealthy(api, names):
    name = _unique('pm-sick')
    healthcheck = {'test': ['CMD-SHELL', 'false'], 'interval': 1000000000, 'timeout': 3000000000, 'retries': 2}
    container = api.create_container(sandbox.BASE_IMAGE, command=SLEEPER, name=name, healthcheck=healthcheck)
    names['containers'].append(name)

    api.start(container['Id'])

    assert _wait_health(api, name, want='unhealthy') == 'unhealthy'


def test_two_containers_on_a_user_network_reach_each_other_by_name(api, names):
    network, server, client = _unique('pm-net'), _unique('pm-server'), _unique('pm-client')
    api.create_network(network, driver='bridge')
    names['networks'].append(network)
    for name in (server, client):
        container = api.create_container(
            sandbox.BASE_IMAGE, command=SLEEPER, name=name,
            networking_config=api.create_networking_config({network: api.create_endpoint_config()}))
        names['containers'].append(name)
        api.start(container['Id'])

    subnet = api.inspect_network(network)['IPAM']['Config'][0]['Subnet']
    exec_id = api.exec_create(client, ['ping', '-c', '1', '-W', '5', server])
    output = api.exec_start(exec_id).decode('utf-8', 'replace')

    assert api.exec_inspect(exec_id)['ExitCode'] == 0, output
    assert '1 packets received' in output, output
    assert subnet.startswith('172.31.19'), subnet  # from the sandbox's pool 172.31.192.0/21
