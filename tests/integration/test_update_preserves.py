"""patchops.docker.container_update end to end: nothing but the image changes.

The scenario set of ``test_recreate_preserves.py`` (``preserve_world.py``: containers
that between them use every setting a recreate must keep), but here the swap is done by the
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

import pytest

from conftest import run_module, sandbox

pytest.register_assert_rewrite('preserve_world')

import preserve_world  # noqa: E402  (after its registration for assertion rewriting)
from preserve_world import KEYS, NEW_CMD, NEW_IMAGE, OLD_IMAGE  # noqa: E402  the same images as the SDK-level test
from ansible_collections.patchops.docker.plugins.module_utils.swap import BACKUP_SUFFIX  # noqa: E402

# The module side in detail: run once, under the first controller (modules on the oldest target Python).
pytestmark = [pytest.mark.once, pytest.mark.engines]

# The old image's healthcheck as in the SDK-level test; the new one probes every second so that the
# health gate of the five running containers (all of which have a healthcheck) passes in about a
# second each. Its test, interval and retries all differ from the old image's.
OLD = dict(OLD_IMAGE)
NEW = dict(NEW_IMAGE)
NEW['healthcheck'] = {'test': 'exit 0', 'interval': 1, 'retries': 2}

RUNNING = ('db', 'app', 'ep', 'hostnet', 'side')


class World(preserve_world.World):
    """The containers before and after the module's run, and what to remove afterwards."""

    backup_suffix = BACKUP_SUFFIX

    def __init__(self, api, unique):
        super().__init__(api, unique)
        self.result = None   # the module's result

    @property
    def renamed(self):
        """{old container ID: new container ID}, what ``diff_config`` follows ``container:X`` modes with."""
        return dict((self.old[key]['Id'], self.new[key]['Id']) for key in self.new)

    def entry(self, key):
        return dict((c['name'], c) for c in self.result['containers'])[self.name(key)]


@pytest.fixture(scope='module')
def world(sb, docker_host, tmp_path_factory):
    with preserve_world.made(World, docker_host) as w:
        api = w.api
        ref = '%s/itest/update-preserves-%s:1' % (sb['registry'], w.unique)
        w.images.add(sandbox.publish(ref, **OLD)['id'])
        w.old_image = api.inspect_image(ref)
        preserve_world.build_containers(w, ref, tmp_path_factory.mktemp('bind'))
        for key in KEYS:
            w.old[key] = api.inspect_container(w.name(key))
            w.keep_volumes(w.old[key])

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
            w.keep_volumes(w.new[key])
        yield w


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
    preserve_world.check_only_the_image_changed(world, key)
    old, new = world.old[key], world.new[key]
    assert new['Id'] != old['Id']
    assert new['State']['Status'] == old['State']['Status']


@pytest.mark.parametrize('key', KEYS)
def test_every_volume_is_back_with_its_data(world, key):
    # anonymous volumes included: the same volume, by name, at the same place
    preserve_world.check_volumes_are_back(world, key, lambda m: (m['Type'], m.get('Name') or m['Source'], m['RW']),
                                          files_only_when_running=True)
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
    preserve_world.check_what_the_user_set_is_kept(world, healthcheck_interval_ns=1000000000)
    assert world.new['app']['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'


def test_what_was_inherited_now_comes_from_the_new_image(world):
    preserve_world.check_db_inherits_from_the_new_image(world)
    image = world.new_image['Config']
    db = world.new['db']['Config']
    assert db['Cmd'] == NEW_CMD
    assert db['Labels']['tier'] == 'v2'
    assert set(db['ExposedPorts']) == {'8080/tcp', '53/udp'}
    # the declared volume is the new image's; the old image's /data is mounted again by name (HostConfig.Binds)
    assert db['Volumes'] == image['Volumes'] == {'/cache': {}}
    data = [m['Name'] for m in world.old['db']['Mounts'] if m['Destination'] == '/data']
    assert world.new['db']['HostConfig']['Binds'] == ['%s:/data' % data[0]]

    preserve_world.check_the_others_inherit_from_the_new_image(world)
    assert world.new['app']['Config']['Healthcheck'] == image['Healthcheck']
    assert 'MODE=v2' in world.new['hostnet']['Config']['Env']


def test_the_new_containers_passed_the_health_gate(world):
    for key in RUNNING:
        state = world.api.inspect_container(world.name(key))['State']
        assert state['Running'] is True, key
        assert state['Health']['Status'] == 'healthy', key


def test_every_network_endpoint_is_back(world):
    preserve_world.check_every_network_endpoint_is_back(world)
    # the default-bridge containers are back on the bridge
    for key in ('db', 'ep'):
        assert list(world.new[key]['NetworkSettings']['Networks']) == ['bridge'], key


def test_network_modes_host_none_and_container(world):
    preserve_world.check_network_modes_host_none_and_container(world)
    # side really is in the new app's network namespace: it has app's static address
    assert world.static_ip in sandbox.docker('exec', world.name('side'), 'ip', '-4', 'addr')


def test_legacy_link_points_at_the_recreated_container(world):
    preserve_world.check_legacy_link_points_at_the_recreated_container(world)


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
