"""patchops.docker.container_update end to end: nothing but the image changes.

The scenario set of ``test_recreate_preserves.py`` (containers that between
them use every setting a recreate must keep), but here the swap is done by the
module itself, run once through the ``ansible`` CLI on all of them: a new image
for the tag is *pushed* to the sandbox registry, the module pulls it, orders
the containers by their dependencies, stops, keeps a backup, creates, connects,
starts, health-gates and removes the backup. The tests then compare each old
inspect with its successor's with ``recreate.diff_config`` and look at the
result the module returned.

The world is built and updated once per module (one run of the module is the
thing under test); it names and removes its own things with one uuid suffix.
"""
import json
import random
import uuid

import docker
import pytest
from docker.types import Mount, Ulimit

from conftest import run_module, sandbox
from test_recreate_preserves import (  # the same images and commands as the SDK-level test
    CUSTOM_CMD,
    NEW_CMD,
    NEW_IMAGE,
    OLD_IMAGE,
    TRAP,
    _network_with_subnet,
)
from ansible_collections.patchops.docker.plugins.module_utils.recreate import diff_config
from ansible_collections.patchops.docker.plugins.module_utils.swap import BACKUP_SUFFIX

# The old image's healthcheck as in the SDK-level test; the new one probes every second so that the
# health gate of the five running containers (all of which have a healthcheck) passes in about a
# second each. Its test, interval and retries all differ from the old image's.
OLD = dict(OLD_IMAGE)
NEW = dict(NEW_IMAGE)
NEW['healthcheck'] = {'test': 'exit 0', 'interval': 1, 'retries': 2}

KEYS = ('db', 'app', 'ep', 'hostnet', 'isolated', 'side')
RUNNING = ('db', 'app', 'ep', 'hostnet', 'side')


class World:
    """The containers before and after the module's run, and what to remove afterwards."""

    def __init__(self, api, unique):
        self.api = api
        self.unique = unique
        self.names = []
        self.networks = []
        self.volumes = set()
        self.images = set()
        self.old = {}        # key -> inspect before the run
        self.new = {}        # key -> inspect after the run
        self.files = {}      # key -> {path: content} written before the run
        self.result = None   # the module's result

    def name(self, key):
        return '%s-%s' % (key, self.unique)

    def create(self, key, image, **kwargs):
        name = self.name(key)
        self.names += [name, name + BACKUP_SUFFIX]
        return self.api.create_container(image, name=name, **kwargs)['Id']

    def write(self, key, path, content):
        sandbox.docker('exec', '-u', '0', self.name(key), 'sh', '-c', 'printf %s "$0" > "$1"', content, path)
        self.files.setdefault(key, {})[path] = content

    @property
    def renamed(self):
        """{old container ID: new container ID}, what ``diff_config`` follows ``container:X`` modes with."""
        return dict((self.old[key]['Id'], self.new[key]['Id']) for key in self.new)

    def entry(self, key):
        return dict((c['name'], c) for c in self.result['containers'])[self.name(key)]

    def cleanup(self):
        if self.names:
            sandbox.docker('rm', '-f', *self.names, check=False)
        if self.volumes:
            sandbox.docker('volume', 'rm', '-f', *sorted(self.volumes), check=False)
        if self.networks:
            sandbox.docker('network', 'rm', *self.networks, check=False)
        if self.images:
            sandbox.docker('rmi', '-f', *sorted(self.images), check=False)


def build_containers(w, ref, bind_dir):
    """Every scenario, on the image ``ref`` names now: between them they use every setting to keep."""
    api = w.api
    front, back = 'front-' + w.unique, 'back-' + w.unique
    subnet = _network_with_subnet(api, front)
    w.networks.append(front)
    api.create_network(back, driver='bridge')
    w.networks.append(back)
    w.front, w.back = front, back
    w.static_ip = str(subnet.network_address + random.randint(10, 250))
    w.mac = '02:42:ac:1f:%02x:%02x' % (random.randint(0, 255), random.randint(1, 254))
    w.named = 'named-' + w.unique
    api.create_volume(w.named)
    w.volumes.add(w.named)
    (bind_dir / 'conf').write_text('from the host\n')
    w.bind_dir = str(bind_dir)

    # db: everything from the image (env, cmd, user, workdir, labels, healthcheck, its VOLUME), default bridge.
    api.start(w.create('db', ref))
    w.write('db', '/data/keep', 'db data')

    # app: the user set almost everything there is to set.
    app = w.create(
        'app', ref, command=CUSTOM_CMD, user='0:0', hostname='app-host', domainname='example.test',
        environment={'TOKEN': 's3cret', 'USER_VAR': 'mine'}, labels={'owner': 'me'},
        ports=[80, (53, 'udp'), 9000], volumes=['/scratch'], mac_address=w.mac,
        host_config=api.create_host_config(
            port_bindings={80: ('127.0.0.1', None), '53/udp': ('127.0.0.1', None)},
            restart_policy={'Name': 'unless-stopped'}, mem_limit='64m', nano_cpus=500000000,
            cap_add=['NET_ADMIN'], cap_drop=['MKNOD'],
            log_config={'Type': 'json-file', 'Config': {'max-size': '1m', 'max-file': '2'}},
            tmpfs={'/run': 'size=1m'}, ulimits=[Ulimit(name='nofile', soft=1024, hard=2048)],
            sysctls={'net.core.somaxconn': '512'}, dns=['192.0.2.53'], dns_search=['example.test'],
            dns_opt=['ndots:2'], extra_hosts={'gateway.test': '192.0.2.1'}, read_only=True, init=True,
            binds=['%s:/named' % w.named, '%s:/host:ro' % w.bind_dir],
            mounts=[Mount('/mounted', None, type='volume')], network_mode=front),
        networking_config=api.create_networking_config({front: api.create_endpoint_config(
            aliases=['app', 'web'], ipv4_address=w.static_ip)}))
    api.connect_container_to_network(app, back, aliases=['api'])
    api.start(app)
    for path in ('/data/keep', '/scratch/keep', '/mounted/keep', '/named/keep'):
        w.write('app', path, 'app data in ' + path)

    # ep: own entrypoint and workdir, the image's user, a legacy link to db on the default bridge.
    w.create('ep', ref, entrypoint=['sh', '-c'], command=[TRAP + 'sleep 86403 & wait'], working_dir='/tmp',
             host_config=api.create_host_config(links={w.name('db'): 'database'}))
    api.start(w.name('ep'))

    # hostnet: host networking, the image's command, a healthcheck of its own (interval from the image).
    w.create('hostnet', ref, environment={'ROLE': 'edge'},
             healthcheck={'Test': ['CMD-SHELL', 'test -d /'], 'Retries': 5},
             host_config=api.create_host_config(network_mode='host'))
    api.start(w.name('hostnet'))

    # isolated: no network, created but never started.
    w.create('isolated', ref, labels={'state': 'created'}, host_config=api.create_host_config(network_mode='none'))

    # side: in app's network namespace, with db's volumes (read-only).
    w.create('side', ref, host_config=api.create_host_config(
        network_mode='container:' + w.name('app'), volumes_from=[w.name('db') + ':ro']))
    api.start(w.name('side'))


@pytest.fixture(scope='module')
def world(sb, docker_host, tmp_path_factory):
    api = docker.APIClient(base_url=docker_host, version='auto', timeout=60)
    w = World(api, uuid.uuid4().hex[:8])
    try:
        ref = '%s/itest/update-preserves-%s:1' % (sb['registry'], w.unique)
        w.images.add(sandbox.publish(ref, **OLD)['id'])
        w.old_image = api.inspect_image(ref)
        build_containers(w, ref, tmp_path_factory.mktemp('bind'))
        for key in KEYS:
            w.old[key] = api.inspect_container(w.name(key))
            w.volumes.update(m['Name'] for m in w.old[key]['Mounts'] if m['Type'] == 'volume')

        # "A newer image is published": a real push; the engine's tag stays on the old image.
        pushed = sandbox.publish(ref, **NEW)
        w.images.add(pushed['id'])
        assert api.inspect_image(ref)['Id'] == w.old_image['Id']

        # The names in an order that is not the dependency order: the module finds that itself.
        names = [w.name(key) for key in ('side', 'isolated', 'ep', 'app', 'hostnet', 'db')]
        w.result = run_module('container_update', dict(
            docker_host=docker_host, containers=names, state_dir=str(tmp_path_factory.mktemp('state')),
            stable_seconds=1, health_timeout=30))
        w.new_image = api.inspect_image(pushed['id'])
        for key in KEYS:
            w.new[key] = api.inspect_container(w.name(key))
            w.volumes.update(m['Name'] for m in w.new[key]['Mounts'] if m['Type'] == 'volume')
        yield w
    finally:
        w.cleanup()
        api.close()


def test_the_module_updated_every_container(world):
    result = world.result
    assert not result.failed, result.stdout + result.stderr
    assert result['changed'] is True
    assert result['summary'] == dict(updated=len(KEYS), unchanged=0, deferred=0, rolled_back=0, failed=0, skipped=0)
    assert result['recovered'] == []
    for key in KEYS:
        entry = world.entry(key)
        assert entry['action'] == 'updated', entry
        assert entry['old_image_id'] == world.old_image['Id'] and entry['new_image_id'] == world.new_image['Id']
        assert entry['image'] == world.old[key]['Config']['Image']
        if key in RUNNING:
            assert 0 < entry['downtime_seconds'] < 30, entry
        else:
            # never started: nothing was down
            assert entry['downtime_seconds'] == 0, entry
    # dependencies first: db before ep (link) and side (volumes_from is no order), app before side
    order = [c['name'] for c in result['containers']]
    assert order.index(world.name('db')) < order.index(world.name('ep'))
    assert order.index(world.name('app')) < order.index(world.name('side'))
    # no backup is left, and env values never reach the output
    listed = sandbox.docker('ps', '-a', '--format', '{{.Names}}').split()
    assert [n for n in listed if n.endswith(world.unique + BACKUP_SUFFIX)] == []
    assert 's3cret' not in result.stdout + result.stderr


@pytest.mark.parametrize('key', KEYS)
def test_nothing_but_the_image_changes(world, key):
    old, new = world.old[key], world.new[key]
    assert diff_config(old, new, world.old_image, world.new_image, world.renamed) == []
    assert new['Id'] != old['Id']
    assert new['Image'] == world.new_image['Id'] != old['Image']
    assert new['Config']['Image'] == old['Config']['Image']
    assert new['Name'] == old['Name']
    assert new['State']['Running'] == old['State']['Running']
    assert new['State']['Status'] == old['State']['Status']


@pytest.mark.parametrize('key', KEYS)
def test_every_volume_is_back_with_its_data(world, key):
    old, new = world.old[key], world.new[key]
    before = dict((m['Destination'], (m['Type'], m.get('Name') or m['Source'], m['RW'])) for m in old['Mounts'])
    after = dict((m['Destination'], (m['Type'], m.get('Name') or m['Source'], m['RW'])) for m in new['Mounts'])
    for destination, mount in before.items():
        # anonymous volumes included: the same volume, by name, at the same place
        assert after.get(destination) == mount, destination
    # a path only the new image declares gets a fresh anonymous volume
    assert set(after) - set(before) == {'/cache'}
    if new['State']['Running']:
        for path, content in world.files.get(key, {}).items():
            assert sandbox.docker('exec', world.name(key), 'cat', path) == content
    if key == 'side':
        # db's anonymous volume, through volumes_from, read-only as before
        assert sandbox.docker('exec', world.name('side'), 'cat', '/data/keep') == 'db data'
    if key == 'app':
        assert sandbox.docker('exec', world.name('app'), 'cat', '/host/conf') == 'from the host\n'


def test_anonymous_volumes_survive_the_backup_removal(world):
    """The backup is removed without ``-v``; the anonymous volumes are the new containers' now."""
    listed = set(sandbox.docker('volume', 'ls', '-q').split())
    for key in KEYS:
        for mount in world.old[key]['Mounts']:
            if mount['Type'] == 'volume':
                assert mount['Name'] in listed, (key, mount['Destination'])
    anonymous = [m for m in world.new['app']['Mounts'] if m['Type'] == 'volume' and m['Name'] != world.named]
    assert sorted(m['Destination'] for m in anonymous) == ['/cache', '/data', '/mounted', '/scratch']


def test_what_the_user_set_is_kept(world):
    config = world.new['app']['Config']
    assert {'TOKEN=s3cret', 'USER_VAR=mine'} <= set(config['Env'])
    assert config['Cmd'] == CUSTOM_CMD and config['User'] == '0:0'
    assert config['Hostname'] == 'app-host' and config['Domainname'] == 'example.test'
    assert config['Labels']['owner'] == 'me'
    assert config['MacAddress'] == world.mac
    host_config = world.new['app']['HostConfig']
    old_host_config = world.old['app']['HostConfig']
    for key in ('RestartPolicy', 'Memory', 'NanoCpus', 'CapAdd', 'CapDrop', 'LogConfig', 'Tmpfs', 'Ulimits',
                'Sysctls', 'Dns', 'DnsSearch', 'DnsOptions', 'ExtraHosts', 'ReadonlyRootfs', 'Init', 'PortBindings'):
        assert host_config[key] == old_host_config[key], key
    assert host_config['ReadonlyRootfs'] is True and host_config['Init'] is True
    assert host_config['RestartPolicy']['Name'] == 'unless-stopped'

    ep = world.new['ep']['Config']
    assert ep['Entrypoint'] == ['sh', '-c'] and ep['Cmd'] == [TRAP + 'sleep 86403 & wait']
    assert ep['WorkingDir'] == '/tmp'
    # its own test and retries, the interval from the new image
    assert world.new['hostnet']['Config']['Healthcheck'] == {
        'Test': ['CMD-SHELL', 'test -d /'], 'Retries': 5, 'Interval': 1000000000}
    assert world.new['isolated']['Config']['Labels']['state'] == 'created'


def test_what_was_inherited_now_comes_from_the_new_image(world):
    image = world.new_image['Config']
    db = world.new['db']['Config']
    for field in ('Cmd', 'Entrypoint', 'User', 'WorkingDir', 'Healthcheck', 'StopSignal', 'ExposedPorts'):
        assert db[field] == image[field], field
    assert db['Cmd'] == NEW_CMD
    assert sorted(db['Env']) == sorted(image['Env'])
    assert db['Labels'] == image['Labels'] and db['Labels']['tier'] == 'v2'
    assert set(db['ExposedPorts']) == {'8080/tcp', '53/udp'}
    # the declared volume is the new image's; the old image's /data is mounted again by name (HostConfig.Binds)
    assert db['Volumes'] == image['Volumes'] == {'/cache': {}}
    data = [m['Name'] for m in world.old['db']['Mounts'] if m['Destination'] == '/data']
    assert world.new['db']['HostConfig']['Binds'] == ['%s:/data' % data[0]]

    app = world.new['app']['Config']
    assert 'MODE=v2' in app['Env'] and app['WorkingDir'] == '/srv2'
    assert app['Labels']['tier'] == 'v2' and app['StopSignal'] == 'SIGUSR1'
    assert app['Healthcheck'] == image['Healthcheck']
    # 80 is no longer exposed by the image, but app publishes it: still exposed and published
    assert set(app['ExposedPorts']) == {'80/tcp', '53/udp', '9000/tcp', '8080/tcp'}
    ports = world.new['app']['NetworkSettings']['Ports']
    assert ports['80/tcp'][0]['HostIp'] == '127.0.0.1' and ports['53/udp'][0]['HostIp'] == '127.0.0.1'

    ep = world.new['ep']['Config']
    assert ep['User'] == '1001' and 'MODE=v2' in ep['Env']
    hostnet = world.new['hostnet']['Config']
    assert hostnet['Cmd'] == NEW_CMD and 'ROLE=edge' in hostnet['Env'] and 'MODE=v2' in hostnet['Env']


def test_the_new_containers_passed_the_health_gate(world):
    for key in RUNNING:
        state = world.api.inspect_container(world.name(key))['State']
        assert state['Running'] is True, key
        assert state['Health']['Status'] == 'healthy', key


def test_every_network_endpoint_is_back(world):
    old = world.old['app']['NetworkSettings']['Networks']
    new = world.new['app']['NetworkSettings']['Networks']
    front, back = world.front, world.back
    assert sorted(new) == sorted(old) == sorted([front, back])
    assert new[front]['IPAddress'] == world.static_ip
    assert new[front]['IPAMConfig'] == {'IPv4Address': world.static_ip}
    assert new[front]['MacAddress'] == world.mac
    assert {'app', 'web'} <= set(new[front]['Aliases'])
    assert 'api' in new[back]['Aliases']
    assert world.old['app']['Id'][:12] not in new[front]['Aliases'] + new[back]['Aliases']
    # both aliases resolve from another container on the networks
    for net, alias in ((front, 'web'), (back, 'api')):
        out = sandbox.docker('run', '--rm', '--network', net, sandbox.BASE_IMAGE, 'nslookup', alias)
        assert new[net]['IPAddress'] in out
    # the default-bridge containers are back on the bridge
    for key in ('db', 'ep'):
        assert list(world.new[key]['NetworkSettings']['Networks']) == ['bridge'], key


def test_network_modes_host_none_and_container(world):
    assert world.new['hostnet']['HostConfig']['NetworkMode'] == 'host'
    assert world.new['isolated']['HostConfig']['NetworkMode'] == 'none'
    assert world.new['side']['HostConfig']['NetworkMode'] == 'container:' + world.new['app']['Id']
    assert world.new['side']['Config']['Hostname'] == 'app-host'
    assert sandbox.docker('exec', world.name('side'), 'hostname').strip() == 'app-host'
    # side really is in the new app's network namespace: it has app's static address
    assert world.static_ip in sandbox.docker('exec', world.name('side'), 'ip', '-4', 'addr')


def test_legacy_link_points_at_the_recreated_container(world):
    assert world.new['ep']['HostConfig']['Links'] == ['/%s:/%s/database' % (world.name('db'), world.name('ep'))]
    hosts = sandbox.docker('exec', world.name('ep'), 'cat', '/etc/hosts')
    db_ip = world.new['db']['NetworkSettings']['Networks']['bridge']['IPAddress']
    assert any(line.split()[:1] == [db_ip] and 'database' in line.split() for line in hosts.splitlines())


def test_run_state_is_kept(world):
    assert world.new['isolated']['State']['Status'] == 'created'
    for key in RUNNING:
        assert world.new[key]['State']['Running'] is True, key


def test_a_second_run_changes_nothing(world, docker_host, tmp_path):
    names = [world.name(key) for key in KEYS]
    second = run_module('container_update', dict(docker_host=docker_host, containers=names,
                                                 state_dir=str(tmp_path / 'state'), stable_seconds=1))
    assert not second.failed, second.stdout + second.stderr
    assert second['changed'] is False
    assert second['summary']['unchanged'] == len(KEYS)
    for key in KEYS:
        assert json.loads(sandbox.docker('inspect', world.name(key)))[0]['Id'] == world.new[key]['Id'], key
