"""The patch playbook across three Docker hosts reached over real SSH (the sandbox fleet)."""
import json
import os
import subprocess

import pytest

from conftest import SLEEPER, sandbox

HOSTS = ['host1', 'host2', 'host3']


@pytest.fixture(scope='module')
def fleet(sb):
    return sandbox.fleet_up(len(HOSTS))


@pytest.fixture
def world(fleet, sb, unique):
    """Two outdated containers per host, each host on its own repository, cleaned up afterwards."""
    made = {}
    for host in HOSTS:
        repo = '%s/fleet/%s-%s' % (sb['registry'], host, unique)
        sandbox.publish(repo + ':1', cmd=SLEEPER)
        names = []
        for i in range(2):
            name = 'f%d-%s' % (i, unique)
            sandbox.fleet_docker(host, 'run', '-d', '--name', name, repo + ':1')
            names.append(name)
        made[host] = dict(repo=repo, names=names)
    yield made
    for host, info in made.items():
        sandbox.fleet_docker(host, 'rm', '-f', '-v', *info['names'], check=False)
        backups = [n + '.patchops-backup' for n in info['names']]
        sandbox.fleet_docker(host, 'rm', '-f', '-v', *backups, check=False)


def publish_newer(world, host, **options):
    options.setdefault('cmd', SLEEPER)
    return sandbox.publish(world[host]['repo'] + ':1', labels={'v': 'newer'}, **options)


def container_ids(world):
    return dict((host, [json.loads(sandbox.fleet_docker(host, 'inspect', n))[0]['Id'] for n in info['names']])
                for host, info in world.items())


def run_fleet(tmp_path, unique, playbook='patchops.docker.patch_containers', check=False, extra=None,
              extra_hosts=None, hosts=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    inventory = sandbox.fleet_inventory(str(tmp_path / 'fleet.yml'), hosts=hosts or HOSTS, extra_hosts=extra_hosts)
    report_dir = tmp_path / 'report'
    extra_vars = dict(patch_containers_include=['*-%s' % unique], patch_containers_report_dir=str(report_dir),
                      patch_containers_hosts='docker_hosts', patch_containers_stable_seconds=1)
    extra_vars.update(extra or {})
    cmd = ['ansible-playbook', '-i', inventory, playbook, '-e', json.dumps(extra_vars)]
    if check:
        cmd.append('--check')
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='False', ANSIBLE_RETRY_FILES_ENABLED='0')
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    report = None
    if (report_dir / 'patch-report.json').exists():
        report = json.loads((report_dir / 'patch-report.json').read_text())
    return proc, report


def hosts_of(report):
    return dict((h['name'], h) for h in report['hosts'])


def actions(host_report):
    return dict((c['name'], c['action']) for c in host_report['containers'])


def test_check_then_patch_then_nothing_left(fleet, world, tmp_path, unique):
    for host in HOSTS:
        publish_newer(world, host)
    before = container_ids(world)

    check, check_report = run_fleet(tmp_path, unique, check=True)

    assert check.returncode == 0, check.stdout + check.stderr
    assert container_ids(world) == before
    assert check_report['run']['check_mode'] is True
    assert check_report['summary']['would_update'] == 6
    for host in HOSTS:
        assert set(actions(hosts_of(check_report)[host]).values()) == {'would_update'}

    patch, report = run_fleet(tmp_path, unique)

    assert patch.returncode == 0, patch.stdout + patch.stderr
    after = container_ids(world)
    assert all(set(after[h]).isdisjoint(before[h]) for h in HOSTS)
    assert report['summary']['hosts_patched'] == 3 and report['summary']['updated'] == 6
    assert (tmp_path / 'report' / 'patch-report.html').exists() and (tmp_path / 'report' / 'patch-report.md').exists()

    again, again_report = run_fleet(tmp_path, unique)

    assert again.returncode == 0, again.stdout + again.stderr
    assert container_ids(world) == after
    for line in again.stdout.splitlines():
        if line.startswith('host') and 'ok=' in line:
            assert 'changed=0' in line, line
    assert again_report['summary']['updated'] == 0


def test_a_broken_image_on_one_host_stops_the_window_with_serial(fleet, world, tmp_path, unique):
    publish_newer(world, 'host1')
    publish_newer(world, 'host2', cmd=['sh', '-c', 'exit 3'])
    publish_newer(world, 'host3')
    before = container_ids(world)

    proc, report = run_fleet(tmp_path, unique,
                             extra=dict(patch_containers_serial=1, patch_containers_max_fail_percentage=0))

    assert proc.returncode != 0
    after = container_ids(world)
    assert set(after['host1']).isdisjoint(before['host1']), 'the first batch was patched'
    assert after['host2'] == before['host2'], 'rolled back: the same containers run again'
    assert after['host3'] == before['host3'], 'the play stopped before the third batch'
    hosts = hosts_of(report)
    assert hosts['host1']['status'] == 'patched'
    assert hosts['host2']['status'] == 'failed'
    assert set(actions(hosts['host2']).values()) == {'rolled_back'}
    assert hosts['host3']['status'] == 'skipped'


def test_a_bad_image_on_the_canary_stops_the_window(fleet, world, tmp_path, unique):
    # canary then waves: [1, "25%", "100%"]; the canary (host1) gets a bad image, nothing else is touched
    publish_newer(world, 'host1', cmd=['sh', '-c', 'exit 3'])
    publish_newer(world, 'host2')
    publish_newer(world, 'host3')
    before = container_ids(world)

    proc, report = run_fleet(tmp_path, unique, extra=dict(patch_containers_serial=[1, '25%', '100%'],
                                                          patch_containers_max_fail_percentage=0))

    assert proc.returncode != 0
    assert container_ids(world) == before, 'the canary rolled back and no other host was touched'
    hosts = hosts_of(report)
    assert hosts['host1']['status'] == 'failed'
    assert set(actions(hosts['host1']).values()) == {'rolled_back'}
    for host in ('host2', 'host3'):
        assert hosts[host]['status'] == 'skipped'
        assert hosts[host]['error'] == 'Not reached yet in this run (a later batch, or the play stopped before it).'
        assert hosts[host]['containers'] == []
    assert report['summary']['hosts_skipped'] == 2
    markdown = (tmp_path / 'report' / 'patch-report.md').read_text()
    assert '| host2 | skipped | Not reached yet in this run (a later batch, or the play stopped before it). |' in markdown


def test_max_fail_percentage_lets_the_others_go_on(fleet, world, tmp_path, unique):
    publish_newer(world, 'host1')
    publish_newer(world, 'host2', cmd=['sh', '-c', 'exit 3'])
    publish_newer(world, 'host3')
    before = container_ids(world)

    proc, report = run_fleet(tmp_path, unique, extra=dict(patch_containers_max_fail_percentage=50))

    assert proc.returncode != 0, 'a failed host still fails the run'
    after = container_ids(world)
    assert set(after['host1']).isdisjoint(before['host1'])
    assert after['host2'] == before['host2']
    assert set(after['host3']).isdisjoint(before['host3'])
    statuses = dict((name, h['status']) for name, h in hosts_of(report).items())
    assert statuses == {'host1': 'patched', 'host2': 'failed', 'host3': 'patched'}


def test_hosts_without_docker_sdk_or_reachability_are_reported_and_the_rest_patched(fleet, world, tmp_path, unique):
    for host in HOSTS:
        publish_newer(world, host)
    before = container_ids(world)
    nosdk = os.environ.get('PATCHOPS_NOSDK_PYTHON')
    assert nosdk, 'the Makefile passes PATCHOPS_NOSDK_PYTHON'
    extra_hosts = {
        'nodocker': dict(patch_containers_docker_host='unix:///nonexistent/docker.sock'),
        'nosdk': dict(ansible_python_interpreter=nosdk),
        'gone': dict(ansible_port=2299),
    }

    proc, report = run_fleet(tmp_path, unique, extra=dict(patch_containers_max_fail_percentage=100),
                             extra_hosts=extra_hosts)

    assert proc.returncode != 0
    after = container_ids(world)
    assert all(set(after[h]).isdisjoint(before[h]) for h in HOSTS), 'the reachable hosts were patched'
    hosts = hosts_of(report)
    assert hosts['nodocker']['status'] == 'failed'
    assert hosts['nodocker']['error'].startswith('Cannot connect to the Docker daemon at unix:///nonexistent/')
    assert hosts['nosdk']['status'] == 'failed'
    assert 'Docker SDK for Python' in hosts['nosdk']['error']
    assert hosts['gone']['status'] == 'unreachable'
    assert report['summary']['hosts_patched'] == 3
