"""One registry look-up per reference across the fleet (patch_containers_share_lookups), counted in the sandbox
registry's own access log: four hosts over real SSH, each running the same ten tags."""
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SLEEPER, run_module, sandbox
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
