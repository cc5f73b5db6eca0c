"""The world of the two preserve tests, and the checks they both make on it.

test_recreate_preserves.py swaps each container with recreate.plan_recreate/apply_plan;
test_update_preserves.py has the container_update module do it. Both build the same
containers on an old image (between them they use every setting a recreate must keep),
get a new image for the same tag, and compare each old inspect with its successor's.
Everything here is named with one uuid suffix and removed again by ``World.cleanup``.
"""
import contextlib
import ipaddress
import random
import uuid

import docker
import pytest
from docker.types import Mount, Ulimit

from conftest import sandbox
from ansible_collections.patchops.docker.plugins.module_utils.recreate import diff_config

# Like conftest.SLEEPER, but also stops at once on the images' stop signals.
TRAP = "trap 'exit 0' TERM INT USR1; "
OLD_CMD = ['sh', '-c', TRAP + 'sleep 86400 & wait']
NEW_CMD = ['sh', '-c', TRAP + 'sleep 86401 & wait']
CUSTOM_CMD = ['sh', '-c', TRAP + 'sleep 86402 & wait']

OLD_IMAGE = dict(env={'MODE': 'v1', 'SHARED': 'same'}, cmd=OLD_CMD, labels={'tier': 'v1', 'vendor': 'acme'},
                 healthcheck={'test': 'true', 'interval': 30}, expose=[80, '53/udp'], volumes=['/data'],
                 user='1000', workdir='/srv', stopsignal='SIGINT')
NEW_IMAGE = dict(env={'MODE': 'v2', 'SHARED': 'same'}, cmd=NEW_CMD, labels={'tier': 'v2', 'vendor': 'acme'},
                 healthcheck={'test': 'exit 0', 'interval': 20, 'retries': 2}, expose=[8080, '53/udp'],
                 volumes=['/cache'], user='1001', workdir='/srv2', stopsignal='SIGUSR1')

# Free of the sandbox's address pool (172.31.224.0/20) and bridge (172.31.250.0/24).
STATIC_SUBNETS = ['172.31.%d.0/24' % n for n in range(240, 250)]

KEYS = ('db', 'app', 'ep', 'hostnet', 'isolated', 'side')


class World:
    """The containers before and after the swap, and what to remove afterwards."""

    backup_suffix = None  # what the swap renames the old container to: <name><backup_suffix>

    def __init__(self, api, unique):
        self.api = api
        self.unique = unique
        self.names = []
        self.networks = []
        self.volumes = set()
        self.images = set()
        self.old = {}        # key -> old inspect, taken before the swap
        self.new = {}        # key -> new inspect, after it
        self.files = {}      # key -> {path: content} written before the swap

    def name(self, key):
        return '%s-%s' % (key, self.unique)

    def create(self, key, image, **kwargs):
        name = self.name(key)
        self.names += [name, name + self.backup_suffix]
        return self.api.create_container(image, name=name, **kwargs)['Id']

    def write(self, key, path, content):
        sandbox.docker('exec', '-u', '0', self.name(key), 'sh', '-c', 'printf %s "$0" > "$1"', content, path)
        self.files.setdefault(key, {})[path] = content

    def keep_volumes(self, inspect):
        """Remove the volumes of this container inspect at the end too."""
        self.volumes.update(m['Name'] for m in inspect['Mounts'] if m['Type'] == 'volume')

    def cleanup(self):
        if self.names:
            sandbox.docker('rm', '-f', *self.names, check=False)
        if self.volumes:
            sandbox.docker('volume', 'rm', '-f', *sorted(self.volumes), check=False)
        if self.networks:
            sandbox.docker('network', 'rm', *self.networks, check=False)
        if self.images:
            sandbox.docker('rmi', '-f', *sorted(self.images), check=False)


@contextlib.contextmanager
def made(world_class, docker_host):
    """A new, empty world of WORLD_CLASS on its own API client; everything in it is removed afterwards."""
    api = docker.APIClient(base_url=docker_host, version='auto', timeout=60)
    w = world_class(api, uuid.uuid4().hex[:8])
    try:
        yield w
    finally:
        w.cleanup()
        api.close()


def network_with_subnet(api, name):
    """A user-defined network with a subnet of its own (static addresses need one); retried on overlaps."""
    for subnet in random.sample(STATIC_SUBNETS, len(STATIC_SUBNETS)):
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
        try:
            api.create_network(name, driver='bridge', ipam=ipam)
            return ipaddress.ip_network(subnet)
        except docker.errors.APIError as exc:
            if 'overlap' not in str(exc).lower():
                raise
    pytest.fail('no free /24 in %s..%s for a static address: the sandbox engine has networks left over; '
                'remove them (python3 tests/sandbox reset)' % (STATIC_SUBNETS[0], STATIC_SUBNETS[-1]))


def build_containers(w, ref, bind_dir):
    """Every scenario, on the image ``ref`` names now: between them they use every setting to keep."""
    api = w.api
    front, back = 'front-' + w.unique, 'back-' + w.unique
    subnet = network_with_subnet(api, front)
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

    # db: everything from the image (env, cmd, user, workdir, labels, healthcheck, its VOLUME), default bridge;
    # app and ep depend on it.
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


# --------------------------------------------------------------------------- checks both tests make

def check_only_the_image_changed(world, key):
    old, new = world.old[key], world.new[key]
    assert diff_config(old, new, world.old_image, world.new_image, world.renamed) == []
    assert new['Image'] == world.new_image['Id'] != old['Image']
    assert new['Config']['Image'] == old['Config']['Image']
    assert new['Name'] == old['Name']
    assert new['State']['Running'] == old['State']['Running']


def check_volumes_are_back(world, key, describe, files_only_when_running=False):
    """Every mount of the old container is at the same place in the new one, the same as ``describe(mount)``
    tells; the files written before are there (only in running containers, when so told)."""
    old, new = world.old[key], world.new[key]
    before = dict((m['Destination'], describe(m)) for m in old['Mounts'])
    after = dict((m['Destination'], describe(m)) for m in new['Mounts'])
    for destination, mount in before.items():
        assert after.get(destination) == mount, destination
    # a path only the new image declares gets a fresh anonymous volume
    assert set(after) - set(before) == {'/cache'}
    if new['State']['Running'] or not files_only_when_running:
        for path, content in world.files.get(key, {}).items():
            assert sandbox.docker('exec', world.name(key), 'cat', path) == content
    if key == 'side':
        # db's anonymous volume, through volumes_from, read-only as before
        assert sandbox.docker('exec', world.name('side'), 'cat', '/data/keep') == 'db data'


def check_what_the_user_set_is_kept(world, healthcheck_interval_ns):
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

    ep = world.new['ep']['Config']
    assert ep['Entrypoint'] == ['sh', '-c'] and ep['Cmd'] == [TRAP + 'sleep 86403 & wait']
    assert ep['WorkingDir'] == '/tmp'
    # its own test and retries, the interval from the new image
    assert world.new['hostnet']['Config']['Healthcheck'] == {
        'Test': ['CMD-SHELL', 'test -d /'], 'Retries': 5, 'Interval': healthcheck_interval_ns}
    assert world.new['isolated']['Config']['Labels']['state'] == 'created'


def check_db_inherits_from_the_new_image(world):
    image = world.new_image['Config']
    db = world.new['db']['Config']
    for field in ('Cmd', 'Entrypoint', 'User', 'WorkingDir', 'Healthcheck', 'StopSignal', 'ExposedPorts'):
        assert db[field] == image[field], field
    assert sorted(db['Env']) == sorted(image['Env'])
    assert db['Labels'] == image['Labels']


def check_the_others_inherit_from_the_new_image(world):
    app = world.new['app']['Config']
    assert 'MODE=v2' in app['Env'] and app['WorkingDir'] == '/srv2'
    assert app['Labels']['tier'] == 'v2' and app['StopSignal'] == 'SIGUSR1'
    # 80 is no longer exposed by the image, but app publishes it: still exposed and published
    assert set(app['ExposedPorts']) == {'80/tcp', '53/udp', '9000/tcp', '8080/tcp'}
    ports = world.new['app']['NetworkSettings']['Ports']
    assert ports['80/tcp'][0]['HostIp'] == '127.0.0.1' and ports['53/udp'][0]['HostIp'] == '127.0.0.1'

    ep = world.new['ep']['Config']
    assert ep['User'] == '1001' and 'MODE=v2' in ep['Env']
    hostnet = world.new['hostnet']['Config']
    assert hostnet['Cmd'] == NEW_CMD and 'ROLE=edge' in hostnet['Env']


def check_every_network_endpoint_is_back(world):
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


def check_network_modes_host_none_and_container(world):
    assert world.new['hostnet']['HostConfig']['NetworkMode'] == 'host'
    assert world.new['isolated']['HostConfig']['NetworkMode'] == 'none'
    assert world.new['side']['HostConfig']['NetworkMode'] == 'container:' + world.new['app']['Id']
    assert world.new['side']['Config']['Hostname'] == 'app-host'
    assert sandbox.docker('exec', world.name('side'), 'hostname').strip() == 'app-host'


def check_legacy_link_points_at_the_recreated_container(world):
    assert world.new['ep']['HostConfig']['Links'] == ['/%s:/%s/database' % (world.name('db'), world.name('ep'))]
    hosts = sandbox.docker('exec', world.name('ep'), 'cat', '/etc/hosts')
    db_ip = world.new['db']['NetworkSettings']['Networks']['bridge']['IPAddress']
    assert any(line.split()[:1] == [db_ip] and 'database' in line.split() for line in hosts.splitlines())
