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
