"""recreate.plan_recreate/apply_plan against the real sandbox engine: nothing but the image changes.

One set of containers that between them use every setting a recreate must keep
is made on an old image, a new image is built for the same tag, and every
container goes through the swap (plan, stop, rename to ``<name>-old``, create,
connect, start) in dependency order. The tests then compare each old inspect
with its successor's. The world is built once per module: the swap of one
container depends on the swaps before it, as in a real run. That is why it
names and removes its own things (one uuid suffix for all of them) instead of
using the per-test ``unique``/``containers`` fixtures.
"""
import ipaddress
import random
import uuid

import docker
import pytest
from docker.types import Mount, Ulimit

from conftest import sandbox
from ansible_collections.patchops.docker.plugins.module_utils.recreate import (
    RecreateError,
    apply_plan,
    diff_config,
    plan_recreate,
)

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


class World:
    """Every container of the module, before and after the swap, and what to remove afterwards."""

    def __init__(self, api, unique):
        self.api = api
        self.unique = unique
        self.names = []
        self.networks = []
        self.volumes = set()
        self.images = set()
        self.old = {}        # key -> old inspect, taken before the swap
        self.new = {}        # key -> new inspect, after create (+ start)
        self.plans = {}
        self.renamed = {}
        self.files = {}      # key -> {path: content} written before the swap

    def name(self, key):
        return '%s-%s' % (key, self.unique)

    def create(self, key, image, **kwargs):
        name = self.name(key)
        self.names += [name, name + '-old']
        return self.api.create_container(image, name=name, **kwargs)['Id']

    def write(self, key, path, content):
        sandbox.docker('exec', '-u', '0', self.name(key), 'sh', '-c', 'printf %s "$0" > "$1"', content, path)
        self.files.setdefault(key, {})[path] = content

    def swap(self, key, old_image, new_image):
        """What container_update does, minus the health gate: plan, stop, keep as -old, create, start."""
        name = self.name(key)
        old = self.api.inspect_container(name)
        self.old[key] = old
        self.volumes.update(m['Name'] for m in old['Mounts'] if m['Type'] == 'volume')
        plan = plan_recreate(old, old_image, new_image, renamed_ids=self.renamed)
        self.plans[key] = plan
        if old['State']['Running']:
            self.api.stop(old['Id'], timeout=5)
        self.api.rename(old['Id'], name + '-old')
        new_id = apply_plan(self.api, plan)
        if plan.start:
            self.api.start(new_id)
        self.renamed[old['Id']] = new_id
        self.renamed[name + '-old'] = name
        self.new[key] = self.api.inspect_container(new_id)
        self.volumes.update(m['Name'] for m in self.new[key]['Mounts'] if m['Type'] == 'volume')

    def cleanup(self):
        if self.names:
            sandbox.docker('rm', '-f', *self.names, check=False)
        if self.volumes:
            sandbox.docker('volume', 'rm', '-f', *sorted(self.volumes), check=False)
        if self.networks:
            sandbox.docker('network', 'rm', *self.networks, check=False)
        if self.images:
            sandbox.docker('rmi', '-f', *sorted(self.images), check=False)


def _network_with_subnet(api, name):
    """A user-defined network with a subnet of its own (static addresses need one); retried on overlaps."""
    for subnet in random.sample(STATIC_SUBNETS, len(STATIC_SUBNETS)):
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
        try:
            api.create_network(name, driver='bridge', ipam=ipam)
            return ipaddress.ip_network(subnet)
        except docker.errors.APIError as exc:
            if 'overlap' not in str(exc).lower():
                raise
    pytest.skip('no free /24 in %s..%s for a static address' % (STATIC_SUBNETS[0], STATIC_SUBNETS[-1]))


@pytest.fixture(scope='module')
def world(sb, docker_host, tmp_path_factory):
    api = docker.APIClient(base_url=docker_host, version='auto', timeout=60)
    w = World(api, uuid.uuid4().hex[:8])
    try:
        _build(w, sb, tmp_path_factory.mktemp('bind'))
        yield w
    finally:
        w.cleanup()
        api.close()


def _build(w, sb, bind_dir):
    api = w.api
    ref = '%s/itest/recreate-%s:1' % (sb['registry'], w.unique)
    w.images.add(sandbox.publish(ref, push=False, **OLD_IMAGE)['id'])
    w.old_image = api.inspect_image(ref)

    front, back = 'front-' + w.unique, 'back-' + w.unique
    subnet = _network_with_subnet(api, front)
    w.networks.append(front)
    api.create_network(back, driver='bridge')
    w.networks.append(back)
    w.static_ip = str(subnet.network_address + random.randint(10, 250))
    w.mac = '02:42:ac:1f:%02x:%02x' % (random.randint(0, 255), random.randint(1, 254))
    named = 'named-' + w.unique
    api.create_volume(named)
    w.volumes.add(named)
    (bind_dir / 'conf').write_text('from the host\n')
    w.bind_dir = str(bind_dir)

    # db: everything from the image, on the default bridge; app and ep depend on it.
    db = w.create('db', ref)
    api.start(db)
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
            binds=['%s:/named' % named, '%s:/host:ro' % w.bind_dir],
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

    # hostnet: host networking, the image's command, a healthcheck of its own.
    w.create('hostnet', ref, environment={'ROLE': 'edge'},
             healthcheck={'Test': ['CMD-SHELL', 'test -d /'], 'Retries': 5},
             host_config=api.create_host_config(network_mode='host'))
    api.start(w.name('hostnet'))

    # isolated: no network, created but never started.
    w.create('isolated', ref, labels={'state': 'created'}, host_config=api.create_host_config(network_mode='none'))

    # side: in app's network namespace, with db's volumes.
    w.create('side', ref, host_config=api.create_host_config(
        network_mode='container:' + w.name('app'), volumes_from=[w.name('db') + ':ro']))
    api.start(w.name('side'))

    w.images.add(sandbox.publish(ref, push=False, **NEW_IMAGE)['id'])
    w.new_image = api.inspect_image(ref)
    assert w.new_image['Id'] != w.old_image['Id']

    for key in ('db', 'app', 'ep', 'hostnet', 'isolated', 'side'):
        w.swap(key, w.old_image, w.new_image)


KEYS = ('db', 'app', 'ep', 'hostnet', 'isolated', 'side')


@pytest.mark.parametrize('key', KEYS)
def test_nothing_but_the_image_changes(world, key):
    old, new = world.old[key], world.new[key]
    assert diff_config(old, new, world.old_image, world.new_image, world.renamed) == []
    assert new['Image'] == world.new_image['Id'] != old['Image']
    assert new['Config']['Image'] == old['Config']['Image']
    assert new['Name'] == old['Name']
    assert new['State']['Running'] == old['State']['Running']


@pytest.mark.parametrize('key', KEYS)
def test_every_volume_is_back_with_its_data(world, key):
    old, new = world.old[key], world.new[key]
    before = dict((m['Destination'], m.get('Name') or m['Source']) for m in old['Mounts'])
    after = dict((m['Destination'], m.get('Name') or m['Source']) for m in new['Mounts'])
    for destination, source in before.items():
        assert after.get(destination) == source, destination
    # a path only the new image declares gets a fresh anonymous volume
    assert set(after) - set(before) == {'/cache'}
    for path, content in world.files.get(key, {}).items():
        assert sandbox.docker('exec', world.name(key), 'cat', path) == content
    if key == 'side':
        # db's anonymous volume, through volumes_from, read-only as before
        assert sandbox.docker('exec', world.name('side'), 'cat', '/data/keep') == 'db data'


def test_anonymous_volumes_are_kept_by_name(world):
    plan = world.plans['app']
    anonymous = dict((v['destination'], v['name']) for v in plan.kept_volumes if v['anonymous'])
    assert sorted(anonymous) == ['/data', '/mounted', '/scratch']
    assert [v for v in plan.kept_volumes if not v['anonymous']] == [
        {'name': 'named-' + world.unique, 'destination': '/named', 'anonymous': False}]
    # the backup can go, even with -v: the volumes stay, the new container mounts them by name
    sandbox.docker('rm', '-v', world.name('app') + '-old')
    listed = sandbox.docker('volume', 'ls', '-q').split()
    assert set(anonymous.values()) <= set(listed)


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

    ep = world.new['ep']['Config']
    assert ep['Entrypoint'] == ['sh', '-c'] and ep['Cmd'] == [TRAP + 'sleep 86403 & wait']
    assert ep['WorkingDir'] == '/tmp'
    assert world.new['hostnet']['Config']['Healthcheck'] == {
        'Test': ['CMD-SHELL', 'test -d /'], 'Retries': 5, 'Interval': 20000000000}
    assert world.new['isolated']['Config']['Labels']['state'] == 'created'


def test_what_was_inherited_now_comes_from_the_new_image(world):
    image = world.new_image['Config']
    db = world.new['db']['Config']
    for field in ('Cmd', 'Entrypoint', 'User', 'WorkingDir', 'Healthcheck', 'StopSignal', 'ExposedPorts'):
        assert db[field] == image[field], field
    assert sorted(db['Env']) == sorted(image['Env'])
    assert db['Labels'] == image['Labels']
    # inherited env is reported by name only
    assert {'MODE', 'SHARED'} <= set(world.plans['db'].inherited['Env'])
    assert not any('=' in name for name in world.plans['db'].inherited['Env'])

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


def test_every_network_endpoint_is_back(world):
    old = world.old['app']['NetworkSettings']['Networks']
    new = world.new['app']['NetworkSettings']['Networks']
    front, back = 'front-' + world.unique, 'back-' + world.unique
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


def test_network_modes_host_none_and_container(world):
    assert world.new['hostnet']['HostConfig']['NetworkMode'] == 'host'
    assert world.new['isolated']['HostConfig']['NetworkMode'] == 'none'
    assert world.new['side']['HostConfig']['NetworkMode'] == 'container:' + world.new['app']['Id']
    assert world.new['side']['Config']['Hostname'] == 'app-host'
    assert sandbox.docker('exec', world.name('side'), 'hostname').strip() == 'app-host'


def test_legacy_link_points_at_the_recreated_container(world):
    assert world.new['ep']['HostConfig']['Links'] == ['/%s:/%s/database' % (world.name('db'), world.name('ep'))]
    hosts = sandbox.docker('exec', world.name('ep'), 'cat', '/etc/hosts')
    db_ip = world.new['db']['NetworkSettings']['Networks']['bridge']['IPAddress']
    assert any(line.split()[:1] == [db_ip] and 'database' in line.split() for line in hosts.splitlines())


def test_run_state_is_kept(world):
    assert world.plans['isolated'].start is False
    assert world.new['isolated']['State']['Status'] == 'created'
    for key in ('db', 'app', 'ep', 'hostnet', 'side'):
        assert world.plans[key].start is True
        assert world.api.inspect_container(world.name(key))['State']['Running'] is True


def test_diff_config_sees_what_a_careless_recreate_loses(world):
    """The empty diffs above mean something: a create that drops settings is caught on real inspect output."""
    plan = world.plans['ep']
    body = dict(plan.create_body, WorkingDir=None, Env=['EXTRA=1'])
    body['HostConfig'] = dict(body['HostConfig'], Links=None, Binds=None, RestartPolicy={'Name': 'always'})
    name = world.name('careless')
    world.names.append(name)
    careless = world.api.create_container_from_config(body, name)['Id']
    new = world.api.inspect_container(careless)
    world.volumes.update(m['Name'] for m in new['Mounts'] if m['Type'] == 'volume')
    fields = set(d[0] for d in diff_config(world.old['ep'], new, world.old_image, world.new_image, world.renamed))
    assert fields == {'Name', 'Config.WorkingDir', 'Config.Env.EXTRA', 'HostConfig.Links',
                      'HostConfig.RestartPolicy', 'Mounts./data'}


def test_apply_plan_refuses_an_image_the_tag_no_longer_names(world):
    """Between pull and create the tag moved back: no container is left behind, no volume lost."""
    plan = world.plans['isolated']._replace(name=world.name('moved'))
    world.names.append(plan.name)
    reference = plan.create_body['Image']
    sandbox.docker('tag', world.old_image['Id'], reference)
    try:
        with pytest.raises(RecreateError) as err:
            apply_plan(world.api, plan)
    finally:
        sandbox.docker('tag', world.new_image['Id'], reference)
    assert 'tag moved' in str(err.value) and plan.name in str(err.value)
    assert world.api.containers(all=True, filters={'name': plan.name}) == []
    kept = [v['name'] for v in plan.kept_volumes]
    assert set(kept) <= set(sandbox.docker('volume', 'ls', '-q').split())


def test_apply_plan_removes_the_container_when_a_network_is_gone(world):
    """A network removed since the plan: one sentence naming it, and the name is free again."""
    missing = 'gone-' + world.unique
    plan = world.plans['isolated']._replace(name=world.name('nonet'), extra_networks=[(missing, {})])
    world.names.append(plan.name)
    with pytest.raises(RecreateError) as err:
        apply_plan(world.api, plan)
    assert str(err.value).startswith("Network '%s' of container '%s' cannot be used: " % (missing, plan.name))
    assert str(err.value).endswith('create the network again, then rerun the update.')
    assert world.api.containers(all=True, filters={'name': plan.name}) == []
