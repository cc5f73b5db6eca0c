"""Selecting containers by name or ID, and reading Docker's timestamps."""
import pytest

from ansible_collections.patchops.docker.plugins.module_utils import inventory
from ansible_collections.patchops.docker.plugins.module_utils.errors import ContainerNotFound

SUMMARIES = [
    {'Id': 'abc123' + '0' * 58, 'Names': ['/web']},
    {'Id': 'abd456' + '0' * 58, 'Names': ['/db']},
]
HOST = 'unix:///var/run/docker.sock'


def test_select_by_name_full_id_and_unique_prefix_keeps_order_without_duplicates():
    picked = inventory.select_containers(SUMMARIES, ['db', 'abc123', '/web', SUMMARIES[1]['Id']], HOST)
    assert [s['Names'][0] for s in picked] == ['/db', '/web']


def test_unknown_name_is_one_sentence():
    with pytest.raises(ContainerNotFound) as err:
        inventory.select_containers(SUMMARIES, ['web', 'cache'], HOST)
    assert str(err.value) == "Container 'cache' not found on unix:///var/run/docker.sock."


def test_ambiguous_prefix_is_refused():
    with pytest.raises(ContainerNotFound) as err:
        inventory.select_containers(SUMMARIES, ['ab'], HOST)
    assert "matches 2 containers" in str(err.value)


@pytest.mark.parametrize('text, epoch', [
    ('2026-05-12T10:00:00Z', 1778580000.0),
    ('2026-05-12T10:00:00.123456789Z', 1778580000.123456789),
    ('2026-05-12T12:00:00+02:00', 1778580000.0),
    (1778580000, 1778580000.0),
    ('', 0.0),
])
def test_iso_to_epoch(text, epoch):
    assert inventory.iso_to_epoch(text) == pytest.approx(epoch)


def test_record_prefers_the_reference_from_inspect():
    summary = {'Id': 'f' * 64, 'Names': ['/web'], 'Image': 'sha256:' + 'a' * 64, 'ImageID': 'sha256:' + 'a' * 64,
               'State': 'exited', 'HostConfig': {'NetworkMode': 'bridge'}}
    inspect = {'Config': {'Image': 'nginx:1.25'}, 'HostConfig': {'PortBindings': {'80/tcp': [{'HostIp': ''}]}}}
    rec = inventory.container_record(summary, inspect)
    assert rec['reference'] == 'nginx:1.25'
    assert rec['state'] == 'exited'
    assert rec['port_bindings'] == {'80/tcp': [{'HostIp': ''}]}
    assert rec['network_mode'] == 'bridge'


def test_the_own_name_is_found_among_the_link_names_the_engine_sorts_first():
    # 'aaa' links to 'mmm' as 'db': the engine lists mmm as ['/aaa/db', '/mmm']
    linked = dict(Id='m' * 64, Names=['/aaa/db', '/mmm'])
    assert inventory.primary_name(linked) == 'mmm'
    assert inventory.container_record(linked)['name'] == 'mmm'
    assert inventory.primary_name(dict(Id='a' * 64, Names=['/aaa'])) == 'aaa'
    assert inventory.primary_name(dict(Id='b' * 64, Names=[])) == 'b' * 12
