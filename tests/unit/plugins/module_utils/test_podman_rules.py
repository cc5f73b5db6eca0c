"""Podman hosts: what Podman fills in by itself, which images it built, the systemd unit command. Literal inspects
as Podman 4.3's Docker-compatible API returns them (trimmed)."""
from ansible_collections.patchops.docker.plugins.module_utils.engine import EngineDefaults, PODMAN_HEALTHCHECK_DEFAULTS
from ansible_collections.patchops.docker.plugins.module_utils.image_age import (
    built_here,
    mark_podman_builds,
    podman_build,
    record_of_inspect,
    systemd_unit,
)
from ansible_collections.patchops.docker.plugins.module_utils.recreate import diff_config, plan_recreate
from ansible_collections.patchops.docker.plugins.module_utils.systemd import systemctl_command

CID = 'd5c7011dff36' + '4' * 52
ANON = 'e' * 64
PODMAN_ULIMITS = [{'Name': 'RLIMIT_NOFILE', 'Soft': 1024, 'Hard': 1024},
                  {'Name': 'RLIMIT_NPROC', 'Soft': 1024, 'Hard': 1024}]
DEFAULTS = EngineDefaults(
    config={'Env': ['PATH=/bin', 'TERM=xterm', 'container=podman'], 'StopSignal': '15', 'StopTimeout': 0},
    host_config={'IpcMode': 'shareable', 'PidMode': 'private', 'UTSMode': 'private', 'Runtime': 'oci',
                 'NetworkMode': 'bridge', 'Ulimits': PODMAN_ULIMITS, 'ShmSize': 65536000, 'Binds': [],
                 'RestartPolicy': {'Name': '', 'MaximumRetryCount': 0}, 'CapAdd': []},
    healthcheck=dict(PODMAN_HEALTHCHECK_DEFAULTS))
IMAGE = {'Id': 'sha256:' + '9' * 64,
         'Config': {'Env': ['PATH=/bin'], 'Cmd': ['serve'],
                    'Healthcheck': {'Test': ['CMD-SHELL', 'true'], 'Interval': 10 ** 9}}}


def container(ulimits=None, env=None, healthcheck=None, running=True):
    return {
        'Id': CID, 'Name': '/web', 'Image': IMAGE['Id'],
        'State': {'Running': running},
        'Config': {'Hostname': CID[:12], 'Image': 'registry.example/web:1', 'Cmd': ['serve'],
                   'Env': ['PATH=/bin', 'TERM=xterm', 'container=podman', 'HOSTNAME=' + CID[:12]] + (env or []),
                   'StopSignal': '15', 'StopTimeout': 0,
                   'Healthcheck': healthcheck or {'Test': ['CMD-SHELL', 'true'], 'Interval': 10 ** 9,
                                                  'Timeout': 30 * 10 ** 9, 'Retries': 3}},
        'HostConfig': {'IpcMode': 'shareable', 'PidMode': 'private', 'UTSMode': 'private', 'Runtime': 'oci',
                       'NetworkMode': 'bridge', 'Ulimits': ulimits or PODMAN_ULIMITS, 'ShmSize': 65536000,
                       'Binds': [ANON + ':/anon:rw,rprivate,nosuid,nodev,rbind'], 'CapAdd': ['NET_ADMIN'],
                       'RestartPolicy': {'Name': 'always', 'MaximumRetryCount': 0}},
        'Mounts': [{'Type': 'volume', 'Name': ANON, 'Destination': '/anon', 'RW': True}],
        'NetworkSettings': {'Networks': {
            'podman': {'Aliases': [CID[:12]], 'IPAMConfig': None, 'IPAddress': '172.31.200.4',
                       'MacAddress': 'd6:34:b6:ee:46:2a', 'NetworkID': 'podman'},
            'backend': {'Aliases': ['api', CID[:12]], 'IPAMConfig': None, 'IPAddress': '172.31.192.77',
                        'MacAddress': '92:d0:c6:0a:29:33', 'NetworkID': 'backend'}}},
    }


def test_podman_defaults_are_left_for_podman_to_fill_in():
    body = plan_recreate(container(), IMAGE, IMAGE, defaults=DEFAULTS).create_body

    host_config = body['HostConfig']
    for key in ('IpcMode', 'PidMode', 'UTSMode', 'Runtime', 'ShmSize', 'Ulimits', 'NetworkMode'):
        assert key not in host_config, key
    assert host_config['CapAdd'] == ['NET_ADMIN']
    assert host_config['RestartPolicy'] == {'Name': 'always', 'MaximumRetryCount': 0}
    assert 'Env' not in body  # PATH from the image, TERM/container/HOSTNAME from Podman
    assert 'StopSignal' not in body and 'StopTimeout' not in body
    assert 'Healthcheck' not in body  # interval from the image, timeout and retries Podman's defaults


def test_ulimits_the_user_set_are_sent_whole_under_the_names_create_takes():
    ulimits = [{'Name': 'RLIMIT_NOFILE', 'Soft': 2048, 'Hard': 4096}, {'Name': 'RLIMIT_NPROC', 'Soft': 1024,
                                                                       'Hard': 1024}]
    body = plan_recreate(container(ulimits=ulimits, env=['MODE=blue']), IMAGE, IMAGE, defaults=DEFAULTS).create_body

    assert body['HostConfig']['Ulimits'] == [{'Name': 'nofile', 'Soft': 2048, 'Hard': 4096},
                                             {'Name': 'nproc', 'Soft': 1024, 'Hard': 1024}]
    assert body['Env'] == ['MODE=blue']


def test_podman_keeps_the_addresses_every_endpoint_holds_all_at_create():
    body = plan_recreate(container(), IMAGE, IMAGE, defaults=DEFAULTS)

    endpoints = body.create_body['NetworkingConfig']['EndpointsConfig']
    assert body.extra_networks == []
    assert endpoints['backend'] == {'Aliases': ['api'], 'IPAMConfig': {'IPv4Address': '172.31.192.77'},
                                    'MacAddress': '92:d0:c6:0a:29:33'}
    assert endpoints['podman']['IPAMConfig'] == {'IPv4Address': '172.31.200.4'}


def test_anonymous_volumes_podman_lists_as_binds_are_kept_by_name():
    plan = plan_recreate(container(), IMAGE, IMAGE, defaults=DEFAULTS)

    assert plan.create_body['HostConfig']['Binds'] == [ANON + ':/anon:rw,rprivate,nosuid,nodev,rbind']
    assert plan.kept_volumes == [{'name': ANON, 'destination': '/anon', 'anonymous': True}]


def test_diff_config_with_the_same_defaults_sees_nothing_lost():
    old = container()
    new = container()
    new['Id'] = 'f' * 64
    new['Config']['Hostname'] = new['Id'][:12]
    new['Config']['Env'][-1] = 'HOSTNAME=' + new['Id'][:12]
    for endpoint in new['NetworkSettings']['Networks'].values():
        endpoint['Aliases'] = [a for a in endpoint['Aliases'] if a != CID[:12]] + [new['Id'][:12]]

    assert diff_config(old, new, IMAGE, IMAGE, defaults=DEFAULTS) == []
    lost = dict(new, HostConfig=dict(new['HostConfig'], CapAdd=[]))
    assert [d[0] for d in diff_config(old, lost, IMAGE, IMAGE, defaults=DEFAULTS)] == ['HostConfig.CapAdd']


def test_podman_builds_are_built_here():
    pulled = dict(repo_tags=['registry.example/web:1'], repo_digests=['registry.example/web@sha256:' + 'a' * 64])
    built = dict(pulled, parent='sha256:' + 'b' * 64)
    cli = dict(repo_tags=['localhost/web:1'], repo_digests=['localhost/web@sha256:' + 'c' * 64])

    assert not podman_build(pulled) and podman_build(built) and podman_build(cli)
    images = mark_podman_builds({'p': dict(pulled), 'b': dict(built), 'c': dict(cli)})
    assert [built_here(images[key]) for key in 'pbc'] == [False, True, True]
    inspect = {'RepoTags': ['docker.io/library/web:1'], 'RepoDigests': ['docker.io/library/web@sha256:' + 'd' * 64],
               'Parent': 'e' * 64, 'Config': {}}
    assert built_here(record_of_inspect(inspect, podman=True))
    assert not built_here(record_of_inspect(inspect, podman=False))


def test_systemd_unit_and_its_restart_command():
    assert systemd_unit({'PODMAN_SYSTEMD_UNIT': 'container-web.service'}) == 'container-web.service'
    assert systemd_unit({}) is None
    assert systemctl_command('web.service', 'unix:///run/podman/podman.sock') == [
        'systemctl', 'restart', '--', 'web.service']
    assert systemctl_command('web.service', 'unix:///run/user/1000/podman/podman.sock') == [
        'systemctl', '--user', 'restart', '--', 'web.service']
