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

import docker
import pytest

from conftest import sandbox

pytest.register_assert_rewrite('preserve_world')

import preserve_world  # noqa: E402  (after its registration for assertion rewriting)
from preserve_world import KEYS, NEW_IMAGE, OLD_CMD, OLD_IMAGE, STATIC_SUBNETS  # noqa: E402
from ansible_collections.patchops.docker.plugins.module_utils.recreate import (  # noqa: E402
    RecreateError,
    apply_plan,
    diff_config,
    plan_recreate,
)

# The module side in detail: run once, under the first controller (modules on the oldest target Python).
pytestmark = [pytest.mark.once, pytest.mark.engines]


class World(preserve_world.World):
    """Every container of the module, before and after the swap, and what to remove afterwards."""

    backup_suffix = '-old'

    def __init__(self, api, unique):
        super().__init__(api, unique)
        self.plans = {}
        self.renamed = {}

    def swap(self, key, old_image, new_image):
        """What container_update does, minus the health gate: plan, stop, keep as -old, create, start."""
        name = self.name(key)
        old = self.api.inspect_container(name)
        self.old[key] = old
        self.keep_volumes(old)
        plan = plan_recreate(old, old_image, new_image, renamed_ids=self.renamed)
        self.plans[key] = plan
        if old['State']['Running']:
            self.api.stop(old['Id'], timeout=5)
        self.api.rename(old['Id'], name + self.backup_suffix)
        new_id = apply_plan(self.api, plan)
        if plan.start:
            self.api.start(new_id)
        self.renamed[old['Id']] = new_id
        self.renamed[name + self.backup_suffix] = name
        self.new[key] = self.api.inspect_container(new_id)
        self.keep_volumes(self.new[key])


@pytest.fixture(scope='module')
def world(sb, docker_host, tmp_path_factory):
    with preserve_world.made(World, docker_host) as w:
        _build(w, sb, tmp_path_factory.mktemp('bind'))
        yield w


def _build(w, sb, bind_dir):
    api = w.api
    ref = '%s/itest/recreate-%s:1' % (sb['registry'], w.unique)
    w.images.add(sandbox.publish(ref, push=False, **OLD_IMAGE)['id'])
    w.old_image = api.inspect_image(ref)
    preserve_world.build_containers(w, ref, bind_dir)

    _build_network_cases(w, ref)

    w.images.add(sandbox.publish(ref, push=False, **NEW_IMAGE)['id'])
    w.new_image = api.inspect_image(ref)
    assert w.new_image['Id'] != w.old_image['Id']

    for key in KEYS + NETWORK_KEYS:
        w.swap(key, w.old_image, w.new_image)


# --------------------------------------------------------------------------- networks as the API makes them

NETWORK_KEYS = ('solo', 'multi')


def _api_144(api):
    return docker.utils.version_gte(api.api_version, '1.44')


def _dual_stack_network(w, name):
    """A bridge network with an IPv4 subnet free of the sandbox's pools and a ULA IPv6 subnet of its own."""
    for subnet in random.sample(STATIC_SUBNETS, len(STATIC_SUBNETS)):
        subnet6 = 'fd%02x:%04x:%04x::/64' % (random.randint(0, 255), random.randint(0, 0xffff),
                                             random.randint(0, 0xffff))
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet),
                                                     docker.types.IPAMPool(subnet=subnet6)])
        try:
            w.api.create_network(name, driver='bridge', enable_ipv6=True, ipam=ipam)
        except docker.errors.APIError as exc:
            if 'overlap' not in str(exc).lower():
                raise
            continue
        w.networks.append(name)
        return ipaddress.ip_network(subnet), ipaddress.ip_network(subnet6)
    pytest.fail('no free /24 in %s..%s: the sandbox engine has networks left over'
                % (STATIC_SUBNETS[0], STATIC_SUBNETS[-1]))


def _build_network_cases(w, ref):
    """Two containers made through the API's create request exactly as a client sends it.

    solo: ``HostConfig.NetworkMode: "default"`` with one endpoint, on a user-defined network only (20.10
    keeps the mode "default", 26 stores "bridge"); the container is on that network alone.
    multi: two user-defined networks, each with aliases, a static IPv4 address (and IPv6 on the
    dual-stack one), its own MAC address and driver options: on API 1.44+ all given at create, each
    endpoint with its MAC address; below 1.44 the primary at create (the MAC address container-wide)
    and the other connected before the start, the only way those versions have.
    """
    api = w.api
    w.solo_net = 'solo-' + w.unique
    api.create_network(w.solo_net, driver='bridge')
    w.networks.append(w.solo_net)
    w.names += [w.name('solo'), w.name('solo') + w.backup_suffix]
    api.create_container_from_config({
        'Image': ref, 'Cmd': OLD_CMD, 'HostConfig': {'NetworkMode': 'default'},
        'NetworkingConfig': {'EndpointsConfig': {w.solo_net: {'Aliases': ['solo-alias']}}}}, w.name('solo'))
    api.start(w.name('solo'))

    w.dual_net, w.plain_net = 'dual-' + w.unique, 'plain-' + w.unique
    subnet, subnet6 = _dual_stack_network(w, w.dual_net)
    plain_subnet = preserve_world.network_with_subnet(api, w.plain_net)
    w.networks.append(w.plain_net)
    w.multi_ips = {w.dual_net: (str(subnet.network_address + random.randint(10, 250)),
                                str(subnet6.network_address + random.randint(10, 250))),
                   w.plain_net: (str(plain_subnet.network_address + random.randint(10, 250)), None)}
    byte = random.randint(1, 254)
    w.multi_macs = {w.dual_net: '02:42:ac:1e:%02x:01' % byte, w.plain_net: '02:42:ac:1e:%02x:02' % byte}
    w.multi_opts = {'com.example.patchops': 'kept'}
    endpoints = {
        w.dual_net: {'Aliases': ['dual-a', 'dual-b'], 'DriverOpts': w.multi_opts,
                     'IPAMConfig': {'IPv4Address': w.multi_ips[w.dual_net][0],
                                    'IPv6Address': w.multi_ips[w.dual_net][1]}},
        w.plain_net: {'Aliases': ['plain-a'], 'IPAMConfig': {'IPv4Address': w.multi_ips[w.plain_net][0]}},
    }
    body = {'Image': ref, 'Cmd': OLD_CMD, 'HostConfig': {'NetworkMode': w.dual_net}}
    w.names += [w.name('multi'), w.name('multi') + w.backup_suffix]
    if _api_144(api):
        for network, endpoint in endpoints.items():
            endpoint['MacAddress'] = w.multi_macs[network]
        body['NetworkingConfig'] = {'EndpointsConfig': endpoints}
        api.create_container_from_config(body, w.name('multi'))
    else:
        body['MacAddress'] = w.multi_macs[w.dual_net]
        body['NetworkingConfig'] = {'EndpointsConfig': {w.dual_net: endpoints[w.dual_net]}}
        created = api.create_container_from_config(body, w.name('multi'))['Id']
        plain = endpoints[w.plain_net]
        api.connect_container_to_network(created, w.plain_net, aliases=plain['Aliases'],
                                         ipv4_address=plain['IPAMConfig']['IPv4Address'])
    api.start(w.name('multi'))


@pytest.mark.parametrize('key', KEYS)
def test_nothing_but_the_image_changes(world, key):
    preserve_world.check_only_the_image_changed(world, key)


@pytest.mark.parametrize('key', KEYS)
def test_every_volume_is_back_with_its_data(world, key):
    preserve_world.check_volumes_are_back(world, key, lambda m: m.get('Name') or m['Source'])


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
    preserve_world.check_what_the_user_set_is_kept(world, healthcheck_interval_ns=20000000000)


def test_what_was_inherited_now_comes_from_the_new_image(world):
    preserve_world.check_db_inherits_from_the_new_image(world)
    # inherited env is reported by name only
    assert {'MODE', 'SHARED'} <= set(world.plans['db'].inherited['Env'])
    assert not any('=' in name for name in world.plans['db'].inherited['Env'])
    preserve_world.check_the_others_inherit_from_the_new_image(world)


def test_every_network_endpoint_is_back(world):
    preserve_world.check_every_network_endpoint_is_back(world)


def test_network_modes_host_none_and_container(world):
    preserve_world.check_network_modes_host_none_and_container(world)


def test_legacy_link_points_at_the_recreated_container(world):
    preserve_world.check_legacy_link_points_at_the_recreated_container(world)


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
    world.keep_volumes(new)
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


# --------------------------------------------------------------------------- networks, as the API made them

@pytest.mark.parametrize('key', NETWORK_KEYS)
def test_network_cases_change_nothing_but_the_image(world, key):
    preserve_world.check_only_the_image_changed(world, key)
    old, new = world.old[key], world.new[key]
    assert sorted(new['NetworkSettings']['Networks']) == sorted(old['NetworkSettings']['Networks'])


def test_network_mode_default_on_a_user_network_only_stays_off_the_bridge(world):
    """Before: the recreate put the container on bridge at create and connected its network after."""
    old, new = world.old['solo'], world.new['solo']
    assert sorted(old['NetworkSettings']['Networks']) == [world.solo_net], 'how Docker made it'
    assert sorted(new['NetworkSettings']['Networks']) == [world.solo_net]
    assert new['HostConfig']['NetworkMode'] == old['HostConfig']['NetworkMode']
    assert world.plans['solo'].extra_networks == []
    assert 'solo-alias' in new['NetworkSettings']['Networks'][world.solo_net]['Aliases']
    out = sandbox.docker('run', '--rm', '--network', world.solo_net, sandbox.BASE_IMAGE, 'nslookup', 'solo-alias')
    assert new['NetworkSettings']['Networks'][world.solo_net]['IPAddress'] in out


def test_several_networks_keep_addresses_aliases_mac_and_driver_options(world):
    old, new = world.old['multi']['NetworkSettings']['Networks'], world.new['multi']['NetworkSettings']['Networks']
    plan = world.plans['multi']
    if _api_144(world.api):
        # one request: every network at create, none connected afterwards, no container-wide MAC address
        at_create = sorted(plan.create_body['NetworkingConfig']['EndpointsConfig'])
        assert at_create == sorted([world.dual_net, world.plain_net])
        assert plan.extra_networks == [] and 'MacAddress' not in plan.create_body
        macs = world.multi_macs
    else:
        assert [network for network, _endpoint in plan.extra_networks] == [world.plain_net]
        assert plan.create_body['MacAddress'] == world.multi_macs[world.dual_net]
        macs = {world.dual_net: world.multi_macs[world.dual_net]}
    for network, (ipv4, ipv6) in world.multi_ips.items():
        assert new[network]['IPAddress'] == old[network]['IPAddress'] == ipv4, network
        assert new[network]['IPAMConfig'] == old[network]['IPAMConfig'], network
        if ipv6:
            assert new[network]['GlobalIPv6Address'] == old[network]['GlobalIPv6Address'] == ipv6
        if network in macs:
            assert new[network]['MacAddress'] == old[network]['MacAddress'] == macs[network], network
        else:
            assert new[network]['MacAddress'] == old[network]['MacAddress'], 'made from the same static IPv4'
    assert new[world.dual_net]['DriverOpts'] == old[world.dual_net]['DriverOpts'] == world.multi_opts
    assert {'dual-a', 'dual-b'} <= set(new[world.dual_net]['Aliases'])
    assert 'plain-a' in new[world.plain_net]['Aliases']
    for network, alias in ((world.dual_net, 'dual-b'), (world.plain_net, 'plain-a')):
        out = sandbox.docker('run', '--rm', '--network', network, sandbox.BASE_IMAGE, 'nslookup', alias)
        assert new[network]['IPAddress'] in out, (network, out)
