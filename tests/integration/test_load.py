"""Load (issue 6 item 5): 300 containers on one host, and a fleet of SSH hosts with tens each.

The role runs end to end and its report accounts for every container: the ones with a
newer image are updated, every other one is listed with why it was left alone. The
containers are made through the Docker API from this process, several at a time (one
``docker run`` each would take minutes), without a network (the default bridge holds
no more than about 250 endpoints), and removed the same way. Each phase's wall time
is printed.
"""
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from conftest import SLEEPER, sandbox, target_python

pytestmark = pytest.mark.once

WORKERS = 8


class Clock:
    """Wall time per phase, printed at the end of the test even when pytest captures output."""

    def __init__(self, capsys, title):
        self.capsys = capsys
        self.title = title
        self.phases = []
        self.t0 = time.monotonic()

    def lap(self, phase):
        now = time.monotonic()
        self.phases.append((phase, now - self.t0))
        self.t0 = now

    def show(self):
        with self.capsys.disabled():
            print('\n%s: %s' % (self.title, ', '.join('%s %.1f s' % item for item in self.phases)))


def make_containers(api, specs):
    """Create and start containers (name, image) several at a time; returns {name: id}."""
    def make(spec):
        name, image = spec
        cid = api.create_container(image, name=name, host_config=api.create_host_config(network_mode='none'))['Id']
        api.start(cid)
        return name, cid
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(pool.map(make, specs))


def remove_containers(api, names):
    def remove(name):
        for candidate in (name, name + '.patchops-backup'):
            try:
                api.remove_container(candidate, force=True)
            except docker.errors.NotFound:
                pass
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(remove, names))


def running_images(api, names):
    """{name: (id, image id)} of the named containers that run; names that do not run are left out."""
    wanted = set(names)
    return dict(((c['Names'][0].lstrip('/')), (c['Id'], c['ImageID'])) for c in api.containers()
                if c['Names'][0].lstrip('/') in wanted)


def layout(registry, unique, containers, images, outdated):
    """Container names and images: the first ``outdated`` on image 0 (which gets a newer image), the rest spread."""
    repos = ['%s/itest/load%d-%s:1' % (registry, k, unique) for k in range(images)]
    specs = []
    for i in range(containers):
        image = repos[0] if i < outdated else repos[1 + i % (images - 1)]
        specs.append(('load-%03d-%s' % (i, unique), image))
    return repos, specs


def account_for_all(host, names, outdated_names, new_image_id):
    """Every container is in the host's report, the outdated ones updated, the rest unchanged with a reason."""
    listed = dict((c['name'], c) for c in host['containers'])
    missing, extra = sorted(set(names) - set(listed)), sorted(set(listed) - set(names))
    assert not missing and not extra, 'missing: %s; extra: %s' % (missing[:5], extra[:5])
    assert len(host['containers']) == len(names), 'each container once'
    for name, entry in listed.items():
        assert entry['reason'], entry
        if name in outdated_names:
            assert entry['update_available'] is True and entry['action'] == 'updated', entry
            assert entry['new_image_id'] == new_image_id
        else:
            assert entry['update_available'] is False and entry['action'] == 'unchanged', entry
            assert entry['reason'].startswith('running image matches the registry'), entry
    assert host['summary']['containers'] == len(names)
    assert host['summary']['updated'] == len(outdated_names)
    assert host['summary']['unchanged'] == len(names) - len(outdated_names)


def test_a_host_with_300_containers_is_patched_and_every_container_reported(sb, docker_host, unique, tmp_path, capsys):
    clock = Clock(capsys, 'load, one host with 300 containers')
    api = docker.APIClient(base_url=docker_host, version='auto', timeout=300)
    repos, specs = layout(sb['registry'], unique, containers=300, images=6, outdated=10)
    names = [name for name, _image in specs]
    outdated = set(names[:10])
    for repo in repos:
        sandbox.publish(repo, cmd=SLEEPER)
    clock.lap('images')
    try:
        make_containers(api, specs)
        clock.lap('creating 300 containers')
        newer = sandbox.publish(repos[0], cmd=SLEEPER, labels={'v': '2'})
        before = running_images(api, names)
        assert len(before) == 300

        report_dir = tmp_path / 'report'
        extra = dict(patch_containers_docker_host=docker_host, patch_containers_state_dir=str(tmp_path / 'state'),
                     patch_containers_include=['load-*-%s' % unique], patch_containers_hosts='localhost',
                     patch_containers_stable_seconds=0, patch_containers_report_dir=str(report_dir),
                     ansible_python_interpreter=target_python())
        proc = subprocess.run(['ansible-playbook', '-i', 'localhost,', '-c', 'local', 'patchops.docker.patch_containers',
                               '-e', json.dumps(extra)], capture_output=True, text=True, timeout=900, check=False,
                              env=dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0'))
        clock.lap('patch_containers playbook')

        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        report = json.loads((report_dir / 'patch-report.json').read_text())
        [host] = report['hosts']
        assert host['status'] == 'patched', host['error']
        after = running_images(api, names)
        assert len(after) == 300, 'every container still runs'
        account_for_all(host, names, outdated, newer['id'])
        for name in names:
            if name in outdated:
                assert after[name][1] == newer['id'] and after[name][0] != before[name][0]
            else:
                assert after[name] == before[name], 'left alone: %s' % name
        assert report['summary']['containers'] == 300 and report['summary']['updated'] == 10
    finally:
        remove_containers(api, names)
        clock.lap('removing them')
        api.close()
        clock.show()


FLEET_HOSTS = ['host1', 'host2', 'host3']


def test_a_fleet_with_tens_of_containers_per_host_is_patched_and_every_container_reported(sb, unique, tmp_path, capsys):
    clock = Clock(capsys, 'load, a fleet of %d SSH hosts with 30 containers each' % len(FLEET_HOSTS))
    fleet = sandbox.fleet_up(len(FLEET_HOSTS))
    clock.lap('fleet up')
    repos, specs = layout(sb['registry'], unique, containers=30, images=3, outdated=5)
    names = [name for name, _image in specs]
    for repo in repos:
        sandbox.publish(repo, cmd=SLEEPER)
    apis = dict((host, docker.APIClient(base_url=fleet['hosts'][host]['docker_host'], version='auto', timeout=300))
                for host in FLEET_HOSTS)
    try:
        def prepare(host):
            for repo in repos:
                apis[host].pull(repo)
            make_containers(apis[host], specs)
        with ThreadPoolExecutor(max_workers=len(FLEET_HOSTS)) as pool:
            list(pool.map(prepare, FLEET_HOSTS))
        clock.lap('creating %d containers' % (len(names) * len(FLEET_HOSTS)))
        newer = sandbox.publish(repos[0], cmd=SLEEPER, labels={'v': '2'})
        before = dict((host, running_images(apis[host], names)) for host in FLEET_HOSTS)

        inventory = sandbox.fleet_inventory(str(tmp_path / 'fleet.yml'), hosts=FLEET_HOSTS)
        report_dir = tmp_path / 'report'
        extra = dict(patch_containers_include=['load-*-%s' % unique], patch_containers_report_dir=str(report_dir),
                     patch_containers_hosts='docker_hosts', patch_containers_stable_seconds=0)
        proc = subprocess.run(['ansible-playbook', '-i', inventory, 'patchops.docker.patch_containers', '-e',
                               json.dumps(extra)], capture_output=True, text=True, timeout=900, check=False,
                              env=dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='False'))
        clock.lap('patch_containers playbook over SSH')

        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        report = json.loads((report_dir / 'patch-report.json').read_text())
        hosts = dict((h['name'], h) for h in report['hosts'])
        assert sorted(hosts) == FLEET_HOSTS
        for host in FLEET_HOSTS:
            assert hosts[host]['status'] == 'patched', hosts[host]['error']
            after = running_images(apis[host], names)
            assert len(after) == len(names), 'every container on %s still runs' % host
            account_for_all(hosts[host], names, set(names[:5]), newer['id'])
            for name in names[5:]:
                assert after[name] == before[host][name]
        assert report['summary']['containers'] == 30 * len(FLEET_HOSTS)
        assert report['summary']['updated'] == 5 * len(FLEET_HOSTS)
        assert report['summary']['hosts_patched'] == len(FLEET_HOSTS)
    finally:
        with ThreadPoolExecutor(max_workers=len(FLEET_HOSTS)) as pool:
            list(pool.map(lambda host: remove_containers(apis[host], names), FLEET_HOSTS))
        clock.lap('removing them')
        for client in apis.values():
            client.close()
        clock.show()
