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
import pytest

from conftest import sandbox

pytest.register_assert_rewrite('preserve_world')

import preserve_world  # noqa: E402  (after its registration for assertion rewriting)
from preserve_world import KEYS, NEW_IMAGE, OLD_IMAGE  # noqa: E402
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

    w.images.add(sandbox.publish(ref, push=False, **NEW_IMAGE)['id'])
    w.new_image = api.inspect_image(ref)
    assert w.new_image['Id'] != w.old_image['Id']

    for key in KEYS:
        w.swap(key, w.old_image, w.new_image)


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
