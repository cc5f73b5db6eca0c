"""fleet_report_write's hosts option: each host's patch_containers_result read from hostvars as it is."""
from ansible_collections.patchops.docker.plugins.action.fleet_report_write import _host_results


class HostVars(object):
    """What the action needs of Ansible's HostVars: membership and raw_get (no templating)."""

    def __init__(self, data):
        self.data = data

    def __contains__(self, host):
        return host in self.data

    def raw_get(self, host):
        return self.data[host]


def test_every_host_is_reported_and_a_missing_result_says_why():
    result = {'host': 'web1', 'status': 'patched', 'age': {'containers': [{'name': 'shop', 'labels': {'x': '{{ y }}'}}]}}
    hostvars = HostVars({'web1': {'patch_containers_result': result}, 'web2': {}, 'web3': {'other': 1}})
    results = _host_results(['web1', 'web2', 'web3', 'gone'],
                            {'hostvars': hostvars, 'ansible_play_hosts': ['web1', 'web2']})
    # taken as it is: a label that looks like Jinja stays text, nothing is templated
    assert results['web1'] is result
    assert results['web2']['status'] == 'skipped' and 'later batch' in results['web2']['error']
    assert results['web3']['status'] == 'unreachable' and results['gone']['status'] == 'unreachable'
    assert list(results) == ['web1', 'web2', 'web3', 'gone']
