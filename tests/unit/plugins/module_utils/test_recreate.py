"""What a recreate keeps, what the new image provides: one rule at a time, on literal inspect output."""
import copy

import pytest

from ansible_collections.patchops.docker.plugins.module_utils import recreate
from ansible_collections.patchops.docker.plugins.module_utils.recreate import diff_config, plan_recreate

OLD_ID = 'a1b2c3d4e5f6' + '0' * 52
NEW_ID = 'f6e5d4c3b2a1' + '1' * 52
DB_OLD_ID = 'db0000000000' + '2' * 52
DB_NEW_ID = 'db1111111111' + '3' * 52
ANON = 'e' * 64
ANON_MOUNT = 'c' * 64
REF = 'registry.example/app:1.25'


def image(image_id='sha256:' + '9' * 64, **config):
    return {'Id': image_id, 'Config': config}


OLD_IMAGE = image(
    'sha256:' + '9' * 64,
    Env=['PATH=/bin', 'MODE=prod'], Cmd=['serve'], Entrypoint=None, User='app', WorkingDir='/srv',
    Labels={'vendor': 'acme', 'release': '1'}, ExposedPorts={'80/tcp': {}},
    Healthcheck={'Test': ['CMD-SHELL', 'true'], 'Interval': 5000000000}, Volumes={'/data': {}},
    StopSignal='SIGQUIT')
NEW_IMAGE = image('sha256:' + '8' * 64, Env=['PATH=/bin', 'MODE=production'], Cmd=['serve', '--v2'])


def container(config=None, host_config=None, networks=None, mounts=None, name='/web', cid=OLD_ID, running=True):
    """A container inspect as Docker 20.10 returns it, with the old image's defaults merged in."""
    base = {
        'Hostname': cid[:12], 'Domainname': '', 'User': 'app', 'AttachStdin': False, 'AttachStdout': False,
        'AttachStderr': False, 'ExposedPorts': {'80/tcp': {}}, 'Tty': False, 'OpenStdin': False,
        'StdinOnce': False, 'Env': ['PATH=/bin', 'MODE=prod'], 'Cmd': ['serve'],
        'Healthcheck': {'Test': ['CMD-SHELL', 'true'], 'Interval': 5000000000}, 'Image': REF,
        'Volumes': {'/data': {}}, 'WorkingDir': '/srv', 'Entrypoint': None, 'OnBuild': None,
        'Labels': {'vendor': 'acme', 'release': '1'}, 'StopSignal': 'SIGQUIT',
    }
    base.update(config or {})
    hc = {'Binds': None, 'NetworkMode': 'default', 'PortBindings': {}, 'RestartPolicy': {'Name': 'always'},
          'Links': None, 'VolumesFrom': None, 'Memory': 67108864, 'CapAdd': ['CAP_NET_ADMIN'],
          'IpcMode': 'private', 'PidMode': '', 'Init': True}
    hc.update(host_config or {})
    if networks is None:
        networks = {'bridge': {'IPAMConfig': None, 'Links': None, 'Aliases': None, 'NetworkID': 'b' * 64,
                               'IPAddress': '172.17.0.2', 'MacAddress': '02:42:ac:11:00:02', 'DriverOpts': None}}
    if mounts is None:
        mounts = [{'Type': 'volume', 'Name': ANON, 'Source': '/var/lib/docker/volumes/%s/_data' % ANON,
                   'Destination': '/data', 'Driver': 'local', 'Mode': '', 'RW': True}]
    return {'Id': cid, 'Name': name, 'State': {'Running': running, 'Status': 'running' if running else 'exited'},
            'Image': OLD_IMAGE['Id'], 'Config': base, 'HostConfig': hc, 'Mounts': mounts,
            'NetworkSettings': {'Networks': networks}}


def endpoint(aliases=None, ipam=None, links=None, network_id='n' * 64, mac='02:42:ac:1f:e0:05'):
    return {'IPAMConfig': ipam, 'Links': links, 'Aliases': aliases, 'NetworkID': network_id,
            'EndpointID': 'x' * 64, 'Gateway': '172.31.224.1', 'IPAddress': '172.31.224.5', 'IPPrefixLen': 24,
            'MacAddress': mac, 'DriverOpts': None}


def body_of(old, **kwargs):
    return plan_recreate(old, OLD_IMAGE, NEW_IMAGE, **kwargs).create_body


# --------------------------------------------------------------------------- Config rules

def test_everything_inherited_is_left_to_the_new_image():
    plan = plan_recreate(container(), OLD_IMAGE, NEW_IMAGE)
    body = plan.create_body
    for field in ('Env', 'Cmd', 'Entrypoint', 'User', 'WorkingDir', 'Labels', 'Healthcheck', 'ExposedPorts',
                  'Volumes', 'StopSignal', 'Hostname', 'Domainname', 'OnBuild'):
        assert field not in body, field
    assert body['Image'] == REF
    assert plan.inherited == {
        'Env': ['PATH', 'MODE'], 'Cmd': ['serve'], 'User': 'app', 'WorkingDir': '/srv',
        'Labels': {'vendor': 'acme', 'release': '1'}, 'ExposedPorts': ['80/tcp'], 'Volumes': ['/data'],
        'Healthcheck': {'Test': ['CMD-SHELL', 'true'], 'Interval': 5000000000}, 'StopSignal': 'SIGQUIT'}
    assert plan.name == 'web' and plan.start is True and plan.image_id == NEW_IMAGE['Id']


def test_user_set_config_is_kept():
    old = container(config={
        'Env': ['PATH=/bin', 'MODE=staging', 'TOKEN=s3cret'], 'User': '1000:1000', 'WorkingDir': '/app',
        'Labels': {'vendor': 'acme', 'release': 'mine', 'team': 'ops'}, 'StopSignal': 'SIGTERM',
        'StopTimeout': 30, 'Tty': True, 'OpenStdin': True, 'Domainname': 'example.org'})
    body = body_of(old)
    assert body['Env'] == ['MODE=staging', 'TOKEN=s3cret']
    assert body['User'] == '1000:1000' and body['WorkingDir'] == '/app' and body['StopSignal'] == 'SIGTERM'
    assert body['Labels'] == {'release': 'mine', 'team': 'ops'}
    assert body['StopTimeout'] == 30 and body['Tty'] is True and body['OpenStdin'] is True
    assert body['Domainname'] == 'example.org'


def test_inherited_env_is_reported_by_name_only():
    plan = plan_recreate(container(config={'Env': ['PATH=/bin', 'MODE=prod', 'TOKEN=s3cret']}), OLD_IMAGE,
                         NEW_IMAGE)
    assert plan.inherited['Env'] == ['PATH', 'MODE']
    assert 's3cret' not in repr(plan.inherited)


def test_cmd_set_by_the_user_is_kept_with_the_inherited_entrypoint():
    old_image = image(Entrypoint=['/entry'], Cmd=['serve'])
    old = container(config={'Entrypoint': ['/entry'], 'Cmd': ['worker', '-v']})
    plan = plan_recreate(old, old_image, NEW_IMAGE)
    assert plan.create_body['Cmd'] == ['worker', '-v']
    assert 'Entrypoint' not in plan.create_body
    assert plan.inherited['Entrypoint'] == ['/entry']


def test_inherited_entrypoint_and_cmd_both_come_from_the_new_image():
    old_image = image(Entrypoint=['/entry'], Cmd=['serve'])
    plan = plan_recreate(container(config={'Entrypoint': ['/entry'], 'Cmd': ['serve']}), old_image, NEW_IMAGE)
    assert 'Entrypoint' not in plan.create_body and 'Cmd' not in plan.create_body
    assert plan.inherited['Entrypoint'] == ['/entry'] and plan.inherited['Cmd'] == ['serve']


def test_user_entrypoint_keeps_cmd_even_when_it_equals_the_image_cmd():
    # a user-set entrypoint resets the image's cmd, so an equal cmd was typed by the user
    plan = plan_recreate(container(config={'Entrypoint': ['/bin/sh', '-c'], 'Cmd': ['serve']}), OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['Entrypoint'] == ['/bin/sh', '-c'] and plan.create_body['Cmd'] == ['serve']
    assert 'Cmd' not in plan.inherited and 'Entrypoint' not in plan.inherited


def test_entrypoint_equal_to_the_image_with_its_cmd_reset_is_the_users():
    # `--entrypoint /entry` on an image with ENTRYPOINT /entry and CMD serve: Docker dropped the cmd
    old_image = image(Entrypoint=['/entry'], Cmd=['serve'])
    plan = plan_recreate(container(config={'Entrypoint': ['/entry'], 'Cmd': None}), old_image, NEW_IMAGE)
    assert plan.create_body['Entrypoint'] == ['/entry']
    assert 'Cmd' not in plan.create_body  # and Docker takes no cmd from the new image either
    assert 'Entrypoint' not in plan.inherited


def test_healthcheck_fields_are_inherited_one_by_one():
    old = container(config={'Healthcheck': {'Test': ['CMD-SHELL', 'true'], 'Interval': 5000000000,
                                            'Retries': 7}})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['Healthcheck'] == {'Retries': 7}
    assert plan.inherited['Healthcheck'] == {'Test': ['CMD-SHELL', 'true'], 'Interval': 5000000000}


def test_disabled_healthcheck_is_kept():
    body = body_of(container(config={'Healthcheck': {'Test': ['NONE']}}))
    assert body['Healthcheck'] == {'Test': ['NONE']}


def test_exposed_ports_user_set_and_published_ones_are_kept():
    old = container(config={'ExposedPorts': {'80/tcp': {}, '9000/tcp': {}, '53/udp': {}}},
                    host_config={'PortBindings': {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '8080'}]}})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    # 80/tcp is the image's, but published: Docker 20.10 publishes only exposed ports
    assert plan.create_body['ExposedPorts'] == {'80/tcp': {}, '9000/tcp': {}, '53/udp': {}}
    assert 'ExposedPorts' not in plan.inherited
    assert plan.create_body['HostConfig']['PortBindings'] == old['HostConfig']['PortBindings']


def test_hostname_default_short_id_is_not_explicit_but_a_set_one_is():
    assert 'Hostname' not in body_of(container())
    assert body_of(container(config={'Hostname': 'web01'}))['Hostname'] == 'web01'


def test_host_network_keeps_its_hostname_and_has_no_endpoints():
    old = container(config={'Hostname': 'docker-host-1'}, host_config={'NetworkMode': 'host'},
                    networks={'host': endpoint(network_id='h' * 64, mac='')})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['Hostname'] == 'docker-host-1'
    assert plan.create_body['HostConfig']['NetworkMode'] == 'host'
    assert 'NetworkingConfig' not in plan.create_body and plan.extra_networks == []


def test_none_network_has_no_endpoints():
    old = container(host_config={'NetworkMode': 'none'}, networks={'none': endpoint(network_id='0' * 64, mac='')})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    assert 'NetworkingConfig' not in plan.create_body and plan.extra_networks == []


def test_container_network_mode_follows_the_recreated_container():
    old = container(config={'Hostname': 'db-host', 'ExposedPorts': {'80/tcp': {}}},
                    host_config={'NetworkMode': 'container:' + DB_OLD_ID, 'IpcMode': 'container:' + DB_OLD_ID,
                                 'PidMode': 'container:' + DB_OLD_ID[:12]},
                    networks={})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE, renamed_ids={DB_OLD_ID: DB_NEW_ID})
    host_config = plan.create_body['HostConfig']
    assert host_config['NetworkMode'] == 'container:' + DB_NEW_ID
    assert host_config['IpcMode'] == 'container:' + DB_NEW_ID
    assert host_config['PidMode'] == 'container:' + DB_NEW_ID
    # Docker refuses a hostname and exposed ports of its own in this mode
    assert 'Hostname' not in plan.create_body and 'ExposedPorts' not in plan.create_body
    assert 'NetworkingConfig' not in plan.create_body and plan.extra_networks == []


def test_container_mode_of_a_container_not_recreated_is_unchanged():
    old = container(host_config={'NetworkMode': 'container:' + DB_OLD_ID}, networks={})
    assert body_of(old, renamed_ids={'f' * 64: NEW_ID})['HostConfig']['NetworkMode'] == 'container:' + DB_OLD_ID


def test_volumes_from_follows_a_recreated_container_by_id_and_keeps_its_mode():
    old = container(host_config={'VolumesFrom': [DB_OLD_ID + ':ro', 'cache', 'logs:rw']})
    body = body_of(old, renamed_ids={DB_OLD_ID: DB_NEW_ID})
    assert body['HostConfig']['VolumesFrom'] == [DB_NEW_ID + ':ro', 'cache', 'logs:rw']


# --------------------------------------------------------------------------- links

def test_legacy_links_are_rewritten_to_name_alias():
    old = container(host_config={'Links': ['/db:/web/database', '/cache:/web/cache']})
    assert body_of(old)['HostConfig']['Links'] == ['db:database', 'cache:cache']


def test_legacy_link_to_a_recreated_container_follows_its_backup_name_back():
    # after the swap Docker reports the link under the child's backup name
    old = container(host_config={'Links': ['/db-old:/web/database']})
    body = body_of(old, renamed_ids={DB_OLD_ID: DB_NEW_ID, 'db-old': 'db'})
    assert body['HostConfig']['Links'] == ['db:database']


def test_endpoint_links_on_user_networks_are_kept():
    old = container(host_config={'NetworkMode': 'appnet'},
                    networks={'appnet': endpoint(aliases=['web', OLD_ID[:12]], links=['db:database'])})
    endpoints = body_of(old)['NetworkingConfig']['EndpointsConfig']
    assert endpoints == {'appnet': {'Aliases': ['web'], 'Links': ['db:database']}}


# --------------------------------------------------------------------------- volumes

def test_anonymous_volume_of_the_image_is_mounted_again_by_name():
    plan = plan_recreate(container(), OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['HostConfig']['Binds'] == [ANON + ':/data']
    assert 'Volumes' not in plan.create_body  # the path itself is the image's
    assert plan.kept_volumes == [{'name': ANON, 'destination': '/data', 'anonymous': True}]


def test_anonymous_volume_from_dash_v_path_keeps_path_and_volume():
    old = container(config={'Volumes': {'/data': {}, '/cache': {}}},
                    mounts=container()['Mounts'] + [
                        {'Type': 'volume', 'Name': 'f' * 64, 'Destination': '/cache', 'RW': False}])
    body = body_of(old)
    assert body['Volumes'] == {'/cache': {}}
    assert sorted(body['HostConfig']['Binds']) == sorted([ANON + ':/data', 'f' * 64 + ':/cache:ro'])


def test_mount_without_source_gets_its_anonymous_volume_name():
    old = container(host_config={'Mounts': [{'Type': 'volume', 'Target': '/scratch'},
                                            {'Type': 'bind', 'Source': '/srv/x', 'Target': '/x'}]},
                    mounts=container()['Mounts'] + [
                        {'Type': 'volume', 'Name': ANON_MOUNT, 'Destination': '/scratch', 'RW': True},
                        {'Type': 'bind', 'Source': '/srv/x', 'Destination': '/x', 'RW': True}])
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['HostConfig']['Mounts'] == [
        {'Type': 'volume', 'Target': '/scratch', 'Source': ANON_MOUNT},
        {'Type': 'bind', 'Source': '/srv/x', 'Target': '/x'}]
    assert {'name': ANON_MOUNT, 'destination': '/scratch', 'anonymous': True} in plan.kept_volumes


def test_named_volume_and_binds_are_copied_and_not_mounted_twice():
    old = container(host_config={'Binds': ['appdata:/data', '/etc/app:/etc/app:ro']},
                    mounts=[{'Type': 'volume', 'Name': 'appdata', 'Destination': '/data', 'RW': True},
                            {'Type': 'bind', 'Source': '/etc/app', 'Destination': '/etc/app', 'RW': False}])
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['HostConfig']['Binds'] == ['appdata:/data', '/etc/app:/etc/app:ro']
    assert plan.kept_volumes == [{'name': 'appdata', 'destination': '/data', 'anonymous': False}]


# --------------------------------------------------------------------------- networks

def test_multiple_networks_split_into_create_and_extra():
    old = container(
        config={'Hostname': 'web01', 'MacAddress': '02:42:ac:1f:e0:99'},
        host_config={'NetworkMode': 'front'},
        networks={'front': endpoint(aliases=['web', 'www', OLD_ID[:12], 'web01'],
                                    ipam={'IPv4Address': '172.31.224.99', 'IPv6Address': '', 'LinkLocalIPs': []}),
                  'back': endpoint(aliases=['api', OLD_ID[:12], 'web01']),
                  'bridge': endpoint(network_id='b' * 64)})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    # the short ID goes (Docker adds the new one), the hostname stays (Docker adds it only when missing)
    assert plan.create_body['NetworkingConfig'] == {'EndpointsConfig': {
        'front': {'Aliases': ['web', 'www', 'web01'], 'IPAMConfig': {'IPv4Address': '172.31.224.99'}}}}
    assert plan.create_body['MacAddress'] == '02:42:ac:1f:e0:99'
    assert plan.extra_networks == [('back', {'Aliases': ['api', 'web01']}), ('bridge', {})]


def test_default_bridge_gets_no_aliases():
    plan = plan_recreate(container(), OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['NetworkingConfig'] == {'EndpointsConfig': {'bridge': {}}}
    assert plan.extra_networks == []


def test_connect_arguments_carry_addresses_links_and_driver_options():
    endpoint_config = {'Aliases': ['api'], 'Links': ['db:database'], 'DriverOpts': {'k': 'v'},
                       'IPAMConfig': {'IPv4Address': '10.0.0.5', 'IPv6Address': 'fd00::5'}}
    arguments = recreate._connect_arguments(endpoint_config)
    assert arguments == dict(aliases=['api'], links=[('db', 'database')], ipv4_address='10.0.0.5',
                             ipv6_address='fd00::5', link_local_ips=None, driver_opt={'k': 'v'})


# Literal inspect output of the two API versions for the same kind of container: NetworkMode "default"
# (20.10 keeps the word, 26 stores "bridge") with one endpoint, on a user-defined network only.

def endpoint_141(aliases=None, ipam=None, mac='02:42:ac:1d:b0:02', ip='172.29.176.2'):
    """An endpoint as API 1.41 (Docker 20.10) shows it: the short ID among the aliases, no DNSNames."""
    return {'IPAMConfig': ipam, 'Links': None, 'Aliases': aliases, 'NetworkID': 'c' * 64, 'EndpointID': 'a' * 64,
            'Gateway': '172.29.176.1', 'IPAddress': ip, 'IPPrefixLen': 24, 'IPv6Gateway': '',
            'GlobalIPv6Address': '', 'GlobalIPv6PrefixLen': 0, 'MacAddress': mac, 'DriverOpts': None}


def endpoint_145(aliases=None, ipam=None, mac='02:42:ac:1d:a0:02', ip='172.29.160.2', dns_names=None,
                 links=None, driver_opts=None):
    """An endpoint as API 1.45 (Docker 26) shows it: aliases as given, the MAC address in use, DNSNames."""
    return {'IPAMConfig': ipam, 'Links': links, 'Aliases': aliases, 'MacAddress': mac, 'NetworkID': 'd' * 64,
            'EndpointID': 'b' * 64, 'Gateway': '172.29.160.1', 'IPAddress': ip, 'IPPrefixLen': 24,
            'IPv6Gateway': '', 'GlobalIPv6Address': '', 'GlobalIPv6PrefixLen': 0, 'DriverOpts': driver_opts,
            'DNSNames': dns_names if dns_names is not None else ['web', OLD_ID[:12]]}


def test_api_141_network_mode_default_on_a_user_network_only_stays_off_the_bridge():
    old = container(host_config={'NetworkMode': 'default'},
                    networks={'mynet': endpoint_141(aliases=['x1', OLD_ID[:12]])})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['HostConfig']['NetworkMode'] == 'default'
    assert plan.create_body['NetworkingConfig'] == {'EndpointsConfig': {'mynet': {'Aliases': ['x1']}}}
    assert plan.extra_networks == []
    assert recreate._plan_networks(plan) == ['mynet']


def test_api_145_network_mode_bridge_on_a_user_network_only_stays_off_the_bridge():
    old = container(host_config={'NetworkMode': 'bridge'},
                    networks={'mynet': endpoint_145(aliases=['x1'], dns_names=['web', 'x1', OLD_ID[:12]])})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['NetworkingConfig'] == {'EndpointsConfig': {'mynet': {'Aliases': ['x1']}}}
    assert plan.extra_networks == []


def test_api_141_one_network_at_create_the_others_connected_and_the_mac_in_config():
    old = container(
        config={'Hostname': 'web01', 'MacAddress': '02:00:00:00:00:09'},
        host_config={'NetworkMode': 'front'},
        networks={'front': endpoint_141(aliases=['web', OLD_ID[:12], 'web01'], mac='02:00:00:00:00:09',
                                        ipam={'IPv4Address': '10.213.7.9', 'IPv6Address': 'fd00:7::9'}),
                  'back': endpoint_141(aliases=['api', OLD_ID[:12], 'web01'], ip='172.29.177.2')})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    assert plan.create_body['MacAddress'] == '02:00:00:00:00:09'
    assert plan.create_body['NetworkingConfig'] == {'EndpointsConfig': {'front': {
        'Aliases': ['web', 'web01'], 'IPAMConfig': {'IPv4Address': '10.213.7.9', 'IPv6Address': 'fd00:7::9'}}}}
    assert plan.extra_networks == [('back', {'Aliases': ['api', 'web01']})]


def test_api_145_every_network_at_create_each_with_its_own_mac():
    old = container(
        config={'MacAddress': '02:00:00:00:00:09'},  # deprecated on 1.44+: neither read nor sent
        host_config={'NetworkMode': 'front'},
        networks={
            'front': endpoint_145(aliases=['web'], mac='02:00:00:00:00:09', ip='10.213.7.9',
                                  ipam={'IPv4Address': '10.213.7.9', 'IPv6Address': 'fd00:7::9'}),
            'back': endpoint_145(aliases=['api'], mac='02:00:00:00:00:0a', ip='172.29.163.2',
                                 links=['db:database'], driver_opts={'com.example.opt': '1'}),
            'bridge': endpoint_145(mac='02:42:ac:1d:14:02', ip='172.29.20.2')})
    plan = plan_recreate(old, OLD_IMAGE, NEW_IMAGE)
    assert 'MacAddress' not in plan.create_body
    assert plan.create_body['NetworkingConfig'] == {'EndpointsConfig': {
        'front': {'Aliases': ['web'], 'IPAMConfig': {'IPv4Address': '10.213.7.9', 'IPv6Address': 'fd00:7::9'},
                  'MacAddress': '02:00:00:00:00:09'},
        'back': {'Aliases': ['api'], 'Links': ['db:database'], 'DriverOpts': {'com.example.opt': '1'},
                 'MacAddress': '02:00:00:00:00:0a'},
        # the address Docker made from 172.29.20.2 is not pinned
        'bridge': {}}}
    assert plan.extra_networks == []
    assert recreate._plan_networks(plan) == ['front', 'back']


def test_api_145_created_container_shows_the_mac_asked_for_a_stopped_one_none():
    created = container(running=False, host_config={'NetworkMode': 'front'},
                        networks={'front': endpoint_145(mac='02:00:00:00:00:01', ip='', dns_names=None)})
    created['NetworkSettings']['Networks']['front']['DNSNames'] = None
    assert body_of(created)['NetworkingConfig']['EndpointsConfig']['front'] == {'MacAddress': '02:00:00:00:00:01'}
    stopped = container(running=False, config={'MacAddress': '02:00:00:00:00:01'},
                        host_config={'NetworkMode': 'front'}, networks={'front': endpoint_145(mac='', ip='')})
    body = body_of(stopped)
    assert body['NetworkingConfig']['EndpointsConfig']['front'] == {} and 'MacAddress' not in body


def test_generated_mac_is_docker_s_own_from_the_ipv4_address():
    assert recreate._generated_mac('172.29.160.2') == '02:42:ac:1d:a0:02'
    assert recreate._generated_mac('') is None and recreate._generated_mac('fd00::1') is None


def test_diff_sees_an_extra_bridge_endpoint():
    """What the recreate did before: NetworkMode default with a user network only came back on bridge as well."""
    old = container(host_config={'NetworkMode': 'default'}, networks={'mynet': endpoint_141(aliases=['x1'])})
    new = recreated(old, NEW_IMAGE)
    new['NetworkSettings']['Networks'] = {'mynet': endpoint_141(aliases=['x1', NEW_ID[:12]]),
                                          'bridge': endpoint_141(ip='172.29.21.2')}
    assert diff_config(old, new, OLD_IMAGE, NEW_IMAGE) == [('Networks.bridge', None, {})]


def test_diff_takes_network_mode_default_as_bridge():
    """Docker 26 stores 'default' as 'bridge': a container made before an engine upgrade is no different."""
    old = container(host_config={'NetworkMode': 'default'})
    new = recreated(old, NEW_IMAGE, **{'HostConfig.NetworkMode': 'bridge'})
    assert diff_config(old, new, OLD_IMAGE, NEW_IMAGE) == []


# --------------------------------------------------------------------------- Compose v2's image label

COMPOSE_LABELS = {'com.docker.compose.project': 'shop', 'com.docker.compose.service': 'web',
                  'com.docker.compose.config-hash': 'f' * 64, 'com.docker.compose.container-number': '1',
                  'com.docker.compose.oneoff': 'False', 'com.docker.compose.version': '2.26.1'}


def test_compose_v2_container_gets_the_new_image_id_as_its_image_label():
    labels = dict(COMPOSE_LABELS, **{'com.docker.compose.image': OLD_IMAGE['Id']})
    old = container(config={'Labels': dict(labels, vendor='acme', release='1')})
    body = body_of(old)
    assert body['Labels'] == dict(labels, **{'com.docker.compose.image': NEW_IMAGE['Id']})


def test_containerd_store_image_id_is_the_manifest_digest_and_is_taken_as_it_is():
    index = image('sha256:' + '5' * 64, Env=['PATH=/bin'])  # the containerd store's ID: the index digest
    old = container(config={'Labels': dict(COMPOSE_LABELS, **{'com.docker.compose.image': OLD_IMAGE['Id']})})
    body = plan_recreate(old, OLD_IMAGE, index).create_body
    assert body['Labels']['com.docker.compose.image'] == 'sha256:' + '5' * 64


def test_compose_v1_container_gets_no_image_label():
    old = container(config={'Labels': dict(COMPOSE_LABELS, **{'com.docker.compose.version': '1.29.2'})})
    assert 'com.docker.compose.image' not in body_of(old)['Labels']
    plain = container(config={'Labels': {'com.docker.compose.image': 'sha256:' + '1' * 64}})
    assert body_of(plain)['Labels']['com.docker.compose.image'] == 'sha256:' + '1' * 64


def test_diff_wants_the_new_image_id_in_the_compose_image_label():
    old = container(config={'Labels': dict(COMPOSE_LABELS, **{'com.docker.compose.image': OLD_IMAGE['Id']})})
    new = recreated(old, NEW_IMAGE)
    assert new['Config']['Labels']['com.docker.compose.image'] == NEW_IMAGE['Id']
    assert diff_config(old, new, OLD_IMAGE, NEW_IMAGE) == []
    kept_as_it_was = copy.deepcopy(new)
    kept_as_it_was['Config']['Labels']['com.docker.compose.image'] = OLD_IMAGE['Id']
    [(field, before, after)] = diff_config(old, kept_as_it_was, OLD_IMAGE, NEW_IMAGE)
    assert field == 'Config.Labels'
    assert (before['com.docker.compose.image'], after['com.docker.compose.image']) == (NEW_IMAGE['Id'],
                                                                                       OLD_IMAGE['Id'])


# --------------------------------------------------------------------------- the rest of the plan

def test_host_config_is_copied_whole():
    old = container(host_config={'Ulimits': [{'Name': 'nofile', 'Soft': 100, 'Hard': 200}],
                                 'Sysctls': {'net.core.somaxconn': '1024'}, 'Tmpfs': {'/run': 'size=1m'},
                                 'LogConfig': {'Type': 'json-file', 'Config': {'max-size': '1m'}},
                                 'SomeFutureField': {'kept': True}})
    host_config = body_of(old)['HostConfig']
    for key, value in old['HostConfig'].items():
        if key not in ('Binds', 'Links', 'VolumesFrom'):
            assert host_config[key] == value, key


def test_stopped_container_is_not_started():
    assert plan_recreate(container(running=False), OLD_IMAGE, NEW_IMAGE).start is False


def test_created_from_an_image_id_uses_the_new_image_id():
    old = container(config={'Image': OLD_IMAGE['Id']})
    assert body_of(old)['Image'] == NEW_IMAGE['Id']
    old = container(config={'Image': OLD_IMAGE['Id'][7:19]})
    assert body_of(old)['Image'] == NEW_IMAGE['Id']


def test_plan_does_not_change_its_input():
    old = container(host_config={'Links': ['/db:/web/db'],
                                 'Mounts': [{'Type': 'volume', 'Target': '/scratch'}]})
    before = copy.deepcopy(old)
    plan_recreate(old, OLD_IMAGE, NEW_IMAGE, renamed_ids={DB_OLD_ID: DB_NEW_ID})
    assert old == before


# --------------------------------------------------------------------------- diff_config

def recreated(old, new_image, new_id=NEW_ID, **changes):
    """What Docker would return for the plan's container: the new image's defaults merged in."""
    new = copy.deepcopy(old)
    new['Id'] = new_id
    plan = plan_recreate(old, OLD_IMAGE, new_image)
    config = dict((k, v) for k, v in plan.create_body.items() if k not in ('HostConfig', 'NetworkingConfig'))
    image_config = new_image['Config']
    config['Env'] = list(image_config.get('Env') or []) + list(config.get('Env') or [])
    config.setdefault('Cmd', image_config.get('Cmd'))
    config.setdefault('Hostname', new_id[:12])
    new['Config'] = config
    new['HostConfig'] = plan.create_body['HostConfig']
    for path, value in changes.items():
        section, key = path.split('.')
        new[section][key] = value
    return new


def test_diff_of_a_faithful_recreate_is_empty():
    old = container(config={'Env': ['PATH=/bin', 'MODE=prod', 'TOKEN=x'], 'Hostname': 'web01'})
    assert diff_config(old, recreated(old, NEW_IMAGE), OLD_IMAGE, NEW_IMAGE) == []


def test_diff_reports_a_lost_env_entry_without_its_value():
    old = container(config={'Env': ['PATH=/bin', 'MODE=prod', 'TOKEN=s3cret']})
    new = recreated(old, NEW_IMAGE, **{'Config.Env': ['PATH=/bin', 'MODE=production']})
    differences = diff_config(old, new, OLD_IMAGE, NEW_IMAGE)
    assert differences == [('Config.Env.TOKEN', '<hidden>', None)]
    assert 's3cret' not in repr(differences)


def test_diff_reports_a_lost_host_config_field_and_mount():
    old = container(host_config={'Memory': 67108864})
    new = recreated(old, NEW_IMAGE, **{'HostConfig.Memory': 0})
    new['Mounts'] = []
    differences = diff_config(old, new, OLD_IMAGE, NEW_IMAGE)
    assert ('HostConfig.Memory', 67108864, 0) in differences
    assert ('Mounts./data', ('volume', ANON, True), None) in differences


def test_diff_accepts_a_volume_only_the_new_image_declares():
    new_image = image('sha256:' + '7' * 64, Volumes={'/data': {}, '/cache': {}})
    old = container()
    new = recreated(old, new_image)
    new['Mounts'] = old['Mounts'] + [{'Type': 'volume', 'Name': 'd' * 64, 'Destination': '/cache', 'RW': True}]
    assert diff_config(old, new, OLD_IMAGE, new_image) == []


@pytest.mark.parametrize('aliases', [['web'], ['web', 'extra']])
def test_diff_compares_aliases_without_the_automatic_ones(aliases):
    old = container(host_config={'NetworkMode': 'front'},
                    networks={'front': endpoint(aliases=['web', OLD_ID[:12]])})
    new = recreated(old, NEW_IMAGE)
    new['NetworkSettings']['Networks']['front']['Aliases'] = aliases + [NEW_ID[:12]]
    differences = diff_config(old, new, OLD_IMAGE, NEW_IMAGE)
    assert differences == ([] if aliases == ['web'] else [('Networks.front.Aliases', ['web'], ['extra', 'web'])])


def test_docker_error_text_never_shows_env_values():
    body = {'Env': ['TOKEN=s3cret-value', 'X=1']}
    text = recreate._without_env_values('invalid: TOKEN=s3cret-value in X=1', body)
    assert 's3cret-value' not in text and text == 'invalid: TOKEN=<hidden> in X=1'


def test_networks_looked_up_before_create_are_the_user_defined_ones():
    old = container(host_config={'NetworkMode': 'front'},
                    networks={'front': endpoint(), 'back': endpoint(), 'bridge': endpoint(network_id='b' * 64)})
    assert recreate._plan_networks(plan_recreate(old, OLD_IMAGE, NEW_IMAGE)) == ['front', 'back']
    for mode in ('default', 'host', 'none', 'container:' + DB_OLD_ID):
        old = container(host_config={'NetworkMode': mode}, networks={})
        assert recreate._plan_networks(plan_recreate(old, OLD_IMAGE, NEW_IMAGE)) == []
