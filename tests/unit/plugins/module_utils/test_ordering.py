"""Dependency order and who must follow a recreate."""
import pytest

from ansible_collections.patchops.docker.plugins.module_utils import ordering
from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError


def container(name, network_mode='bridge', links=None, depends_on=None):
    labels = {'patchops.docker.depends-on': depends_on} if depends_on else {}
    return {'Id': name + '-id', 'Name': '/' + name,
            'HostConfig': {'NetworkMode': network_mode, 'Links': links},
            'Config': {'Labels': labels}}


NAMES = {'db-id': 'db', 'app-id': 'app', 'side-id': 'side', 'web-id': 'web'}


def names(inspects):
    return [i['Name'].lstrip('/') for i in inspects]


def test_dependencies_by_namespace_links_and_label():
    assert ordering.dependencies(container('side', network_mode='container:db-id'), NAMES) == {'db': True}
    assert ordering.dependencies(container('web', links=['/db:/web/database']), NAMES) == {'db': True}
    assert ordering.dependencies(container('app', depends_on=' db, cache ,'), NAMES) == {'db': False, 'cache': False}


def test_dependencies_come_first_and_ties_keep_the_given_order():
    given = [container('app', depends_on='db'), container('web'), container('side', network_mode='container:db-id'),
             container('db')]
    assert names(ordering.dependency_order(given, NAMES)) == ['db', 'app', 'web', 'side']


def test_dependencies_outside_the_set_do_not_constrain():
    assert names(ordering.dependency_order([container('app', depends_on='elsewhere')], NAMES)) == ['app']


def test_a_cycle_is_refused_with_its_members():
    with pytest.raises(PatchopsError) as err:
        ordering.dependency_order([container('a', depends_on='b'), container('b', depends_on='a')], {})
    assert str(err.value).startswith('Containers a, b depend on each other')


def test_only_hard_dependents_follow_a_recreate():
    everyone = [container('side', network_mode='container:db-id'), container('web', links=['/db:/web/db']),
                container('app', depends_on='db'), container('db')]
    assert names(ordering.hard_dependents(everyone, NAMES, {'db'})) == ['side', 'web']


def replica(name, project, service):
    inspect = container(name)
    inspect['Config']['Labels'] = {'com.docker.compose.project': project, 'com.docker.compose.service': service}
    return inspect


def groups_of(inspects, names_by_id=None):
    return [names(group) for group in ordering.independent_groups(inspects, names_by_id or NAMES)]


def test_unrelated_containers_are_groups_of_one_in_the_given_order():
    assert groups_of([container('web'), container('db'), container('app')]) == [['web'], ['db'], ['app']]


def test_dependencies_of_any_kind_share_a_group_in_dependency_order():
    inspects = ordering.dependency_order([
        container('side', network_mode='container:db-id'), container('web', links=['/app:/web/app']),
        container('db'), container('app', depends_on='db'), container('lone')], NAMES)
    assert groups_of(inspects) == [['db', 'side', 'app', 'web'], ['lone']]


def test_replicas_of_one_compose_service_are_swapped_one_after_another():
    inspects = [replica('shop-web-1', 'shop', 'web'), replica('shop-db-1', 'shop', 'db'),
                replica('shop-web-2', 'shop', 'web'), replica('blog-web-1', 'blog', 'web')]
    assert groups_of(inspects) == [['shop-web-1', 'shop-web-2'], ['shop-db-1'], ['blog-web-1']]


def test_a_dependency_outside_the_list_joins_nothing():
    assert groups_of([container('side', network_mode='container:db-id'), container('web')]) == [['side'], ['web']]
