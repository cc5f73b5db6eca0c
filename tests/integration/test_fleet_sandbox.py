"""The sandbox fleet: several Docker hosts reached over real SSH, for the fleet tests of the playbooks.

Each host has its own engine (nothing run on one is seen on another), pulls from the shared sandbox
registry, and answers Ansible over SSH on 127.0.0.1 with the inventory fleet_inventory() writes.
"""
import json
import os
import subprocess

import pytest

from conftest import SLEEPER, sandbox

N = 3
HOSTS = ['host%d' % i for i in range(1, N + 1)]


@pytest.fixture(scope='module')
def fleet(sb):
    return sandbox.fleet_up(N)


@pytest.fixture
def inventory(fleet, tmp_path):
    return sandbox.fleet_inventory(tmp_path / 'fleet.yml', hosts=HOSTS)


def ansible(inventory, *args):
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='False', ANSIBLE_RETRY_FILES_ENABLED='0')
    return subprocess.run(['ansible', '-i', str(inventory), 'docker_hosts', '-o'] + list(args),
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def test_every_host_runs_its_own_engine_reached_over_ssh(fleet):
    assert [name for name in HOSTS if name in fleet['hosts']] == HOSTS
    engine_ids = set()
    for name in HOSTS:
        host = fleet['hosts'][name]
        assert host['running'] == {'containerd': True, 'engine': True, 'sshd': True}
        assert host['ssh_port'] == 2221 + HOSTS.index(name)
        # plain ssh, as the brief of the fleet tests has it: ssh -p PORT -i KEY root@127.0.0.1 docker ...
        proc = subprocess.run(
            ['ssh', '-p', str(host['ssh_port']), '-i', fleet['ssh_private_key'], '-o', 'BatchMode=yes',
             '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
             'root@127.0.0.1', 'docker', '-H', host['docker_host'], 'version', '--format', "'{{json .Server}}'"],
            capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)['ApiVersion'] == sandbox.info()['engine']['api_version'], \
            'each host runs the engine kind the sandbox runs'
        engine_ids.add(sandbox.fleet_ssh(name, 'docker', '-H', host['docker_host'], 'info', '--format',
                                         '{{.ID}}').strip())
    main_id = sandbox.docker('info', '--format', '{{.ID}}').strip()
    assert len(engine_ids) == N and main_id not in engine_ids


def test_a_container_on_host1_is_not_seen_on_host2(fleet, unique):
    name = 'fleet-iso-' + unique
    sandbox.fleet_docker('host1', 'run', '-d', '--name', name, sandbox.BASE_IMAGE, *SLEEPER)
    try:
        assert sandbox.fleet_docker('host1', 'inspect', '--format', '{{.State.Running}}', name).strip() == 'true'
        for other in ('host2', 'host3'):
            assert name not in sandbox.fleet_docker(other, 'ps', '-a', '--format', '{{.Names}}').split()
            seen = sandbox.fleet_ssh(other, 'docker', '-H', fleet['hosts'][other]['docker_host'], 'ps', '-a',
                                     '--format', '{{.Names}}')
            assert name not in seen.split()
        assert name not in sandbox.docker('ps', '-a', '--format', '{{.Names}}').split()
    finally:
        sandbox.fleet_docker('host1', 'rm', '-f', name, check=False)


def test_an_image_published_to_the_registry_pulls_on_every_host(fleet, unique):
    ref = '%s/itest/fleet-%s:1' % (sandbox.REGISTRY, unique)
    published = sandbox.publish(ref, cmd=['sleep', '1000'], labels={'release': '1'})
    try:
        for name in HOSTS:
            sandbox.fleet_docker(name, 'pull', '-q', ref)
            assert sandbox.fleet_docker(name, 'image', 'inspect', '--format', '{{.Id}}', ref).strip() == published['id']
            digests = json.loads(sandbox.fleet_docker(name, 'image', 'inspect', '--format', '{{json .RepoDigests}}',
                                                      ref))
            assert '%s/itest/fleet-%s@%s' % (sandbox.REGISTRY, unique, published['digest']) in digests
    finally:
        for name in HOSTS:
            sandbox.fleet_docker(name, 'rmi', ref, check=False)
        sandbox.docker('rmi', ref, check=False)


def test_ansible_reaches_every_host_over_ssh(inventory):
    proc = ansible(inventory, '-m', 'ansible.builtin.ping')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in HOSTS:
        assert '%s | SUCCESS' % name in proc.stdout and '"ping": "pong"' in proc.stdout, proc.stdout


def test_the_inventory_points_each_host_at_its_own_engine(fleet, inventory):
    # the host's own patch_containers_docker_host, used on the far side of the SSH connection
    proc = ansible(inventory, '-m', 'ansible.builtin.command',
                   '-a', "docker -H {{ patch_containers_docker_host }} info --format {{ '{{' }}.ID{{ '}}' }}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in HOSTS:
        engine_id = sandbox.fleet_docker(name, 'info', '--format', '{{.ID}}').strip()
        assert '%s | CHANGED | rc=0 | (stdout) %s' % (name, engine_id) in proc.stdout, proc.stdout
