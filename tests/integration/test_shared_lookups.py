"""One registry look-up per reference across the fleet (patch_containers_share_lookups), counted in the sandbox
registry's own access log: four hosts over real SSH, each running the same ten tags; two hosts running different
tags, one of them in no share that its host answers."""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO, SLEEPER, run_module, sandbox
from test_fleet import hosts_of, run_fleet

HOSTS = ['host1', 'host2', 'host3', 'host4']
TAGS = 10
MOVED = (0, 3, 7)  # the tags that get a newer image


@pytest.fixture(scope='module')
def fleet(sb):
    return sandbox.fleet_up(len(HOSTS))


@pytest.fixture
def ten_tags(fleet, sb, unique):
    """Ten tags in one namespace of the registry, one container of each on every host."""
    space = 'shared-%s' % unique
    refs = ['%s/%s/app-%d:1' % (sb['registry'], space, i) for i in range(TAGS)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda ref: sandbox.publish(ref, cmd=SLEEPER), refs))

        def start(host):
            for i, ref in enumerate(refs):
                sandbox.fleet_docker(host, 'run', '-d', '--name', 'app%d-%s' % (i, unique), ref)
        list(pool.map(start, HOSTS))
    yield dict(space=space, refs=refs)
    for host in HOSTS:
        names = ['app%d-%s' % (i, unique) for i in range(TAGS)]
        sandbox.fleet_docker(host, 'rm', '-f', '-v', *(names + [n + '.patchops-backup' for n in names]), check=False)


def manifest_requests(space, since):
    """(HEADs, GETs) of manifests in the namespace since the log held ``since`` requests."""
    made = [r for r in sandbox.registry_requests()[since:] if r.split()[1].startswith('/v2/%s/' % space)
            and '/manifests/' in r]
    return sum(1 for r in made if r.startswith('HEAD ')), sum(1 for r in made if r.startswith('GET '))


def decisions(report):
    return dict(((host, c['name']), (c['update_available'], c['reason'], c['action']))
                for host, h in hosts_of(report).items() for c in h['containers'])


def checked(tmp_path, unique, space, share):
    since = len(sandbox.registry_requests())
    proc, report = run_fleet(tmp_path / ('share-%s' % share), unique, check=True,
                             extra=dict(patch_containers_share_lookups=share), hosts=HOSTS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return report, manifest_requests(space, since)


def test_four_hosts_on_ten_tags_make_ten_lookups_not_forty_with_the_same_decisions(
        fleet, ten_tags, tmp_path, unique):
    for i in MOVED:
        sandbox.publish(ten_tags['refs'][i], cmd=SLEEPER, labels={'v': 'newer'})

    alone, (alone_heads, alone_gets) = checked(tmp_path, unique, ten_tags['space'], False)
    shared, (shared_heads, shared_gets) = checked(tmp_path, unique, ten_tags['space'], True)

    # the registry's own log: one HEAD per tag per host, and one per tag with sharing (the update step, in check
    # mode too, asks nothing again: it takes the digests the check found)
    assert alone_heads == len(HOSTS) * TAGS
    assert shared_heads == TAGS
    # a moved tag is still looked at by each host that runs it (which platform's image moved), no more often
    assert shared_gets <= alone_gets
    assert alone['summary']['registry_lookups'] == len(HOSTS) * TAGS
    assert shared['summary']['registry_lookups'] == TAGS
    # exactly what each host decided alone
    assert decisions(shared) == decisions(alone)
    moved = set('app%d-%s' % (i, unique) for i in MOVED)
    for (host, name), (update, reason, action) in decisions(shared).items():
        assert update is (name in moved), (host, name, reason)
        assert action == ('would_update' if name in moved else 'unchanged'), (host, name, action)

    # and the update run: the moved tags pulled once per host that runs them, the rest left alone
    since = len(sandbox.registry_requests())
    proc, patched = run_fleet(tmp_path / 'patch', unique, extra=dict(patch_containers_share_lookups=True),
                              hosts=HOSTS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    heads, _gets = manifest_requests(ten_tags['space'], since)
    assert patched['summary']['updated'] == len(HOSTS) * len(MOVED)
    assert patched['summary']['unchanged'] == len(HOSTS) * (TAGS - len(MOVED))
    # 10 look-ups, then one pull per moved tag and host
    assert patched['summary']['registry_lookups'] == TAGS + len(HOSTS) * len(MOVED)
    assert heads <= TAGS + len(HOSTS) * len(MOVED)


def test_the_modules_take_a_digest_another_host_found(docker_host, sb, unique, tmp_path):
    """image_age_info and container_update with remote_digests ask the registry nothing for that tag."""
    space = 'shared-one-%s' % unique
    ref = '%s/%s/app:1' % (sb['registry'], space)
    sandbox.publish(ref, cmd=SLEEPER)
    name = 'one-%s' % unique
    sandbox.docker('run', '-d', '--name', name, ref)
    try:
        first = run_module('image_age_info', dict(docker_host=docker_host, containers=[name]))
        digest = first['lookups'][ref]
        assert first['registry_lookups'] == 1 and digest in first['containers'][0]['image_digests']

        since = len(sandbox.registry_requests())
        second = run_module('image_age_info', dict(docker_host=docker_host, containers=[name],
                                                   remote_digests={ref: digest}))
        update = run_module('container_update', dict(docker_host=docker_host, containers=[name],
                                                     remote_digests={ref: digest}, state_dir=str(tmp_path)))
        assert manifest_requests(space, since) == (0, 0)
        assert (second['registry_lookups'], second['lookups']) == (0, {})
        assert second['containers'][0]['update_available'] is False
        assert update['containers'][0]['action'] == 'unchanged' and update['registry_lookups'] == 0

        # bad input: one sentence, nothing asked
        since = len(sandbox.registry_requests())
        bad = run_module('container_update', dict(docker_host=docker_host, containers=[name],
                                                  remote_digests={ref: 'latest'}, state_dir=str(tmp_path)))
        assert bad.failed and bad['msg'] == ('remote_digests: the value for %s must be a sha256 digest (sha256: and '
                                             '64 hex digits).' % ref)
        assert manifest_requests(space, since) == (0, 0)
        assert json.loads(sandbox.docker('inspect', name))[0]['State']['Running']
    finally:
        sandbox.docker('rm', '-f', name, check=False)


def _tag_in_share(sb, space, stem, index, count):
    """A tag of the namespace whose share of ``count`` is ``index`` (the shares hash the fully qualified reference)."""
    from ansible_collections.patchops.docker.plugins.module_utils.image_ref import parse
    from ansible_collections.patchops.docker.plugins.module_utils.shared_lookups import share_index
    for n in range(100):
        ref = '%s/%s/%s-%d:1' % (sb['registry'], space, stem, n)
        if share_index(str(parse(ref)), count) == index:
            return ref
    raise AssertionError('no tag of %s in share %d of %d' % (space, index, count))


@pytest.fixture
def two_hosts_apart(fleet, sb, unique):
    """host1 and host2 both run tags A and B; only host1 runs C, whose share is host2's: nobody's share answers C."""
    space = 'apart-%s' % unique
    refs = dict(A=_tag_in_share(sb, space, 'a', 0, 2), B=_tag_in_share(sb, space, 'b', 1, 2),
                C=_tag_in_share(sb, space, 'c', 1, 2))
    for ref in refs.values():
        sandbox.publish(ref, cmd=SLEEPER)
    runs = dict(host1='ABC', host2='AB')
    for host, letters in runs.items():
        for letter in letters:
            sandbox.fleet_docker(host, 'run', '-d', '--name', '%s-%s' % (letter.lower(), unique), refs[letter])
    yield dict(space=space, refs=refs)
    for host, letters in runs.items():
        names = ['%s-%s' % (letter.lower(), unique) for letter in letters]
        sandbox.fleet_docker(host, 'rm', '-f', '-v', *(names + [n + '.patchops-backup' for n in names]), check=False)


def test_a_reference_no_share_answers_is_looked_up_once_by_a_host_that_runs_it(two_hosts_apart, tmp_path, unique):
    space, refs = two_hosts_apart['space'], two_hosts_apart['refs']
    sandbox.publish(refs['A'], cmd=SLEEPER, labels={'v': 'newer'})  # a tag that moved, on both hosts
    sandbox.publish(refs['C'], cmd=SLEEPER, labels={'v': 'newer'})  # and the one only host1 runs

    def check(share):
        since = len(sandbox.registry_requests())
        proc, report = run_fleet(tmp_path / ('share-%s' % share), unique, check=True,
                                 extra=dict(patch_containers_share_lookups=share), hosts=['host1', 'host2'])
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return report, manifest_requests(space, since)
    alone, (alone_heads, alone_gets) = check(False)
    shared, (shared_heads, shared_gets) = check(True)

    assert alone_heads == 5  # host1: A, B, C; host2: A, B
    assert shared_heads == 3  # each tag once: A and B by their shares' hosts, C by host1 in the second round
    assert shared['summary']['registry_lookups'] == 3
    assert shared_gets <= alone_gets
    assert decisions(shared) == decisions(alone)
    for (host, name), (update, _reason, action) in decisions(shared).items():
        assert update is (name[0] in 'ac'), (host, name)
        assert action == ('would_update' if name[0] in 'ac' else 'unchanged'), (host, name, action)


def test_a_later_play_of_one_host_decides_from_its_own_check_not_an_earlier_plays_shares(
        two_hosts_apart, tmp_path, unique):
    """Two plays in one run: the second (one host, so no sharing) must not take the first play's second check (with a
    query, that check is of every container, and C was up to date then)."""
    refs = two_hosts_apart['refs']
    tmp_path.mkdir(parents=True, exist_ok=True)
    inventory = sandbox.fleet_inventory(str(tmp_path / 'fleet.yml'), hosts=['host1', 'host2'])
    playbook = tmp_path / 'two-plays.yml'
    playbook.write_text('\n'.join([
        '- name: Both hosts, sharing',
        '  hosts: docker_hosts',
        '  gather_facts: false',
        '  roles: [{role: patchops.docker.patch_containers, patch_containers_update: false}]',
        '- name: Meanwhile C moves',
        '  hosts: localhost',
        '  gather_facts: false',
        '  tasks:',
        '    - name: Publish a newer C',
        '      ansible.builtin.command:',
        '        argv: %s' % json.dumps([sys.executable, str(REPO / 'tests' / 'sandbox'), 'publish', refs['C'],
                                        '--label', 'v=newer', '--cmd', json.dumps(SLEEPER)]),
        '      changed_when: true',
        '- name: One host',
        '  hosts: host1',
        '  gather_facts: false',
        '  roles: [{role: patchops.docker.patch_containers, patch_containers_update: false}]',
        '']))
    report_dir = tmp_path / 'report'
    extra = dict(patch_containers_include=['*-%s' % unique], patch_containers_report_dir=str(report_dir),
                 patch_containers_query='[*]')
    proc = subprocess.run(['ansible-playbook', '-i', inventory, str(playbook), '-e', json.dumps(extra)],
                          capture_output=True, text=True, timeout=900, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='False'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((report_dir / 'patch-report.json').read_text())  # the last play's
    assert [h['name'] for h in report['hosts']] == ['host1']
    c = next(c for c in report['hosts'][0]['containers'] if c['name'] == 'c-%s' % unique)
    assert (c['update_available'], c['reason']) == (True, 'registry has a newer image for tag 1')
