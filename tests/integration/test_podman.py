"""The modules and the role on a Podman host (sandbox.podman_up(): Debian 12's Podman 4.3 through its
Docker-compatible API), and the same fault and preservation scenarios on the sandbox's Docker engine.

Every scenario that is not about Podman alone runs on both engines (``engine`` is ``docker`` or ``podman``),
with the containers made through the Docker API on each, so that passed/failed can be read per engine. Podman
alone: the image its own CLI built (``localhost/...``), containers that systemd runs (label
``PODMAN_SYSTEMD_UNIT``) and containers in a pod. The role: its report on a Podman host, and one run of the
patch_containers playbook over a Docker host and a Podman host, in one fleet report.
"""
import io
import json
import os
import subprocess
import tarfile
import uuid

import docker
import pytest

from conftest import SLEEPER, run_module, sandbox, target_python
from test_container_update import start_and_kill_at
from ansible_collections.patchops.docker.plugins.module_utils import engine as engine_facts
from ansible_collections.patchops.docker.plugins.module_utils.recreate import diff_config

pytestmark = [pytest.mark.podman, pytest.mark.once]

FAST = dict(stable_seconds=1, health_timeout=30)
ENGINES = ['docker', 'podman']
# Free of Podman's default network (172.31.200.0/24), its pool's first /24s and every Docker range of the sandbox.
STATIC_SUBNET = '172.31.198.0/24'


class Engine:
    """One engine of the sandbox as the tests use it: its socket, an API client, and what to remove afterwards."""

    def __init__(self, kind, docker_host):
        self.kind = kind
        self.docker_host = docker_host
        self.api = docker.APIClient(base_url=docker_host, version='auto', timeout=120)
        self.made = {'containers': [], 'networks': [], 'volumes': [], 'images': []}

    def cli(self, *args, check=True):
        return (sandbox.podman if self.kind == 'podman' else sandbox.docker)(*args, check=check)

    def run(self, name, image, command=None, start=True, networks=None, **kwargs):
        """Create (through the Docker API, the same request on both engines) and start a container."""
        host_config = self.api.create_host_config(**kwargs.pop('host_config', {}))
        networking = None
        if networks:
            networking = self.api.create_networking_config(
                dict((net, self.api.create_endpoint_config(**endpoint)) for net, endpoint in networks.items()))
        self.made['containers'] += [name, name + '.patchops-backup']
        self.api.create_container(image, command=command or SLEEPER, name=name, host_config=host_config,
                                  networking_config=networking, **kwargs)
        if start:
            self.api.start(name)
        return name

    def inspect(self, name):
        return self.api.inspect_container(name)

    def exec(self, name, *command):
        exec_id = self.api.exec_create(name, list(command), user='0')
        output = self.api.exec_start(exec_id).decode('utf-8', 'replace')
        assert self.api.exec_inspect(exec_id)['ExitCode'] == 0, output
        return output

    def read(self, name, path):
        """A file of the container, through the archive API: Podman's exec can lose its output under load
        (containers/podman#9096), the archive cannot."""
        stream, _stat = self.api.get_archive(name, path)
        with tarfile.open(fileobj=io.BytesIO(b''.join(stream))) as archive:
            return archive.extractfile(os.path.basename(path)).read().decode('utf-8')

    def pull(self, ref):
        repo, tag = ref.rsplit(':', 1)
        self.api.pull(repo, tag=tag)

    def build(self, tag, dockerfile):
        """A local build of ``tag`` through the Docker API (never pushed)."""
        for _line in self.api.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, decode=True):
            pass
        self.made['images'].append(tag)
        return self.api.inspect_image(tag)['Id']

    def image(self, reference):
        """An image's inspect as container_update reads it (on Podman completed from libpod's own inspect)."""
        inspect = self.api.inspect_image(reference)
        return engine_facts.podman_image(self.api, inspect['Id'], inspect) if self.kind == 'podman' else inspect

    def defaults(self, image):
        """What Podman fills in by itself (the probe container_update makes too); None on Docker."""
        if self.kind != 'podman':
            return None
        return engine_facts.podman_defaults(self.api, image, uuid.uuid4().hex[:12])

    def cleanup(self):
        for name in self.made['containers']:
            try:
                self.api.remove_container(name, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                self.cli('rm', '-f', '-v', name, check=False)
        for net in self.made['networks']:
            self.cli('network', 'rm', net, check=False)
        for volume in self.made['volumes']:
            self.cli('volume', 'rm', '-f', volume, check=False)
        for image in self.made['images']:
            self.cli('rmi', '-f', image, check=False)
        self.api.close()


@pytest.fixture(scope='module')
def podman_host(sb):
    try:
        return sandbox.podman_up()['docker_host']
    except sandbox.SandboxError as exc:
        if 'namespace' in str(exc):
            pytest.skip(str(exc))
        raise


@pytest.fixture(params=ENGINES)
def engine(request, sb):
    docker_host = request.getfixturevalue('podman_host') if request.param == 'podman' else sb['docker_host']
    made = Engine(request.param, docker_host)
    yield made
    made.cleanup()


@pytest.fixture
def podman(podman_host):
    made = Engine('podman', podman_host)
    yield made
    made.cleanup()


@pytest.fixture
def repo(sb, unique):
    return '%s/itest/pm-%s' % (sb['registry'], unique)


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / 'state')


def age_info(engine, names, **options):
    args = dict(docker_host=engine.docker_host, containers=list(names))
    args.update(options)
    result = run_module('image_age_info', args)
    assert not result.failed, result
    return result, dict((c['name'], c) for c in result['containers'])


def update(engine, state_dir, names, **options):
    args = dict(FAST, docker_host=engine.docker_host, containers=list(names), state_dir=state_dir)
    args.update(options)
    result = run_module('container_update', args)
    return result, dict((c['name'], c) for c in result['containers'])


def published(engine, repo, **image):
    """A first image for repo:1 in the registry, pulled onto the engine."""
    sandbox.publish(repo + ':1', **image)
    engine.pull(repo + ':1')
    return repo + ':1'


# --------------------------------------------------------------------------- check (image_age_info)

def test_check_sees_a_newer_image_in_the_registry(engine, repo, unique):
    ref = published(engine, repo, cmd=SLEEPER)
    name = engine.run('age-%s' % unique, ref)
    sandbox.publish(ref, cmd=SLEEPER, labels={'v': '2'})

    result, entries = age_info(engine, [name])

    assert result['engine']['image_store'] == ('podman' if engine.kind == 'podman' else 'classic')
    assert entries[name]['update_available'] is True, entries[name]
    assert entries[name]['reason'] == 'registry has a newer image for tag 1'
    assert entries[name]['systemd_unit'] is None


def test_check_says_image_built_locally(engine, sb, unique):
    tag = 'pm-local-%s:1' % unique
    engine.build(tag, 'FROM %s\nRUN echo %s > /built\n' % (sandbox.BASE_IMAGE if engine.kind == 'docker'
                                                           else sandbox.podman_info()['base_image'], unique))
    name = engine.run('local-%s' % unique, tag)

    result, entries = age_info(engine, [name])

    assert entries[name]['reason'] == 'image built locally', entries[name]
    assert entries[name]['update_available'] is False
    assert result['summary']['errors'] == 0


def test_check_says_image_built_locally_for_a_podman_cli_build(podman, tmp_path, unique):
    (tmp_path / 'Containerfile').write_text('FROM %s\nRUN echo %s > /built\n'
                                            % (sandbox.podman_info()['base_image'], unique))
    tag = 'localhost/pm-cli-%s:1' % unique
    podman.cli('build', '-q', '-t', tag, str(tmp_path))
    podman.made['images'].append(tag)
    name = podman.run('cli-%s' % unique, tag)

    _result, entries = age_info(podman, [name])

    assert entries[name]['reason'] == 'image built locally', entries[name]
    assert entries[name]['error'] is None


# --------------------------------------------------------------------------- update, field by field

def _build_rich(engine, ref, unique):
    """A container with most of what a recreate must keep, made through the Docker API."""
    net = 'pmnet-%s' % unique
    engine.api.create_network(net, driver='bridge', ipam=docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=STATIC_SUBNET)]))
    engine.made['networks'].append(net)
    volume = 'pmvol-%s' % unique
    engine.api.create_volume(volume)
    engine.made['volumes'].append(volume)
    name = engine.run(
        'rich-%s' % unique, ref, environment={'APP_MODE': 'blue', 'SECRET_TOKEN': 'tok-%s' % unique},
        labels={'owner': 'ops', 'patchops.test': unique}, ports=[8080], user='0', working_dir='/tmp',
        volumes=['/data', '/anon'],
        healthcheck={'test': ['CMD-SHELL', 'test -d /data'], 'interval': 1000000000, 'timeout': 3000000000,
                     'retries': 3},
        networks={net: dict(aliases=['rich-alias'], ipv4_address='172.31.198.77')},
        host_config=dict(
            binds={volume: {'bind': '/data', 'mode': 'rw'}}, port_bindings={8080: ('127.0.0.1', None)},
            restart_policy={'Name': 'on-failure', 'MaximumRetryCount': 3}, cap_add=['NET_ADMIN'],
            tmpfs={'/run/scratch': 'size=1m'}, network_mode=net,
            ulimits=[docker.types.Ulimit(name='nofile', soft=2048, hard=4096),
                     docker.types.Ulimit(name='nproc', soft=512, hard=1024)]))
    engine.made['volumes'].append(next(m['Name'] for m in engine.inspect(name)['Mounts']
                                       if m['Destination'] == '/anon'))
    engine.exec(name, 'sh', '-c', 'echo named > /data/file && echo anonymous > /anon/file')
    return name, net


def _ulimits(inspect):
    return sorted(((u['Name'].upper().replace('RLIMIT_', ''), u['Soft'], u['Hard'])
                   for u in inspect['HostConfig'].get('Ulimits') or []))


def _user_fields(inspect, net):
    """What the user set, as both engines report it (Podman's env additions left out)."""
    config, host = inspect['Config'], inspect['HostConfig']
    endpoint = inspect['NetworkSettings']['Networks'][net]
    return dict(
        env=sorted(e for e in config['Env'] if e.split('=', 1)[0] in ('APP_MODE', 'SECRET_TOKEN')),
        labels=dict((k, v) for k, v in (config.get('Labels') or {}).items() if k in ('owner', 'patchops.test')),
        ports=host['PortBindings'], user=config['User'], workdir=config['WorkingDir'],
        restart=host['RestartPolicy'], caps=host['CapAdd'], tmpfs=sorted(host.get('Tmpfs') or {}),
        ulimits=[u for u in _ulimits(inspect) if u[0] in ('NOFILE', 'NPROC')],
        healthcheck=(config['Healthcheck']['Test'], config['Healthcheck']['Interval']),
        mounts=sorted((m['Destination'], m['Name']) for m in inspect['Mounts'] if m['Type'] == 'volume'),
        aliases=sorted(a for a in endpoint['Aliases'] or [] if a == 'rich-alias'),
        address=endpoint['IPAddress'], networks=sorted(inspect['NetworkSettings']['Networks']),
    )


def test_update_keeps_every_user_setting_field_by_field(engine, repo, unique, state_dir):
    ref = published(engine, repo, cmd=SLEEPER, env={'IMAGE_ENV': 'v1'}, labels={'tier': 'v1'})
    name, net = _build_rich(engine, ref, unique)
    before = engine.inspect(name)
    old_image = engine.image(before['Image'])
    sandbox.publish(ref, cmd=SLEEPER, env={'IMAGE_ENV': 'v2'}, labels={'tier': 'v2'})

    result, entries = update(engine, state_dir, [name])

    assert not result.failed, result
    assert entries[name]['action'] == 'updated', entries[name]
    after = engine.inspect(name)
    new_image = engine.image(after['Image'])
    assert after['Image'] != before['Image']
    assert after['State']['Running']
    assert _user_fields(after, net) == _user_fields(before, net)
    assert _user_fields(after, net)['address'] == '172.31.198.77'
    assert 'IMAGE_ENV=v2' in after['Config']['Env'] and after['Config']['Labels']['tier'] == 'v2'
    assert diff_config(before, after, old_image, new_image, defaults=engine.defaults(new_image['Id'])) == []
    assert engine.read(name, '/data/file').strip() == 'named'
    assert engine.read(name, '/anon/file').strip() == 'anonymous'
    if engine.kind == 'podman':  # Podman's own values come back as Podman's, not pinned as the user's
        assert 'HOSTNAME=%s' % before['Config']['Hostname'] not in after['Config']['Env']
        assert after['Config']['Hostname'] == after['Id'][:12]

    second, entries = update(engine, state_dir, [name])
    assert entries[name]['action'] == 'unchanged', second


def test_update_keeps_podman_default_ulimits_as_defaults(engine, repo, unique, state_dir):
    ref = published(engine, repo, cmd=SLEEPER)
    name = engine.run('plain-%s' % unique, ref)
    before = engine.inspect(name)
    sandbox.publish(ref, cmd=SLEEPER, labels={'v': '2'})

    result, entries = update(engine, state_dir, [name])

    assert entries[name]['action'] == 'updated', result
    after = engine.inspect(name)
    assert _ulimits(after) == _ulimits(before)
    assert after['HostConfig']['RestartPolicy'] == before['HostConfig']['RestartPolicy']


# --------------------------------------------------------------------------- faults

def test_failing_health_gate_rolls_back_onto_the_same_container(engine, repo, unique, state_dir):
    ref = published(engine, repo, cmd=SLEEPER, healthcheck={'test': 'true', 'interval': 1, 'retries': 2})
    name = engine.run('sick-%s' % unique, ref)
    before = engine.inspect(name)
    sandbox.publish(ref, cmd=SLEEPER, healthcheck={'test': 'false', 'interval': 1, 'retries': 2})

    result, entries = update(engine, state_dir, [name], health_timeout=20)

    assert result.failed
    assert entries[name]['action'] == 'rolled_back', entries[name]
    after = engine.inspect(name)
    assert after['Id'] == before['Id']
    assert after['State']['Running']
    assert after['Image'] == before['Image']
    names = [c['Names'][0].lstrip('/') for c in engine.api.containers(all=True, filters={'name': name})]
    assert names == [name], 'no backup or failed new container left'


@pytest.mark.parametrize('point', ['renamed', 'created'])
def test_a_run_killed_mid_swap_is_put_right_by_the_next(engine, repo, unique, state_dir, point, monkeypatch):
    ref = published(engine, repo, cmd=SLEEPER, volumes=['/data'])
    name = engine.run('crash-%s-%s' % (point, unique), ref)
    engine.made['volumes'].append(engine.inspect(name)['Mounts'][0]['Name'])
    engine.exec(name, 'sh', '-c', 'echo precious > /data/file')
    sandbox.publish(ref, cmd=SLEEPER, volumes=['/data'], labels={'v': '2'})
    # start_and_kill_at reads the container's state through test_container_update.inspect
    monkeypatch.setattr('test_container_update.inspect', engine.inspect)

    start_and_kill_at(point, engine.docker_host, state_dir, name)
    result, entries = update(engine, state_dir, [name])

    assert not result.failed, result
    assert [r['name'] for r in result['recovered']] == [name]
    assert result['recovered'][0]['action'] == 'restored'
    assert entries[name]['action'] == 'updated'
    names = sorted(c['Names'][0].lstrip('/') for c in engine.api.containers(all=True, filters={'name': name}))
    assert names == [name]
    assert engine.inspect(name)['State']['Running']
    assert engine.read(name, '/data/file').strip() == 'precious'


def test_a_locally_built_image_is_never_pulled(engine, unique, state_dir):
    base = sandbox.BASE_IMAGE if engine.kind == 'docker' else sandbox.podman_info()['base_image']
    tag = 'pm-built-%s:1' % unique
    engine.build(tag, 'FROM %s\nRUN echo one > /v\n' % base)
    name = engine.run('built-%s' % unique, tag)
    old_id = engine.inspect(name)['Image']

    unchanged, entries = update(engine, state_dir, [name])
    assert entries[name]['action'] == 'unchanged', unchanged

    new_id = engine.build(tag, 'FROM %s\nRUN echo two > /v\n' % base)
    result, entries = update(engine, state_dir, [name])

    assert not result.failed, result
    assert entries[name]['action'] == 'updated', entries[name]
    assert entries[name]['old_image_id'] == old_id and entries[name]['new_image_id'] == new_id
    assert engine.read(name, '/v').strip() == 'two'


def test_image_rebuild_builds_then_leaves_the_image_alone(engine, tmp_path, unique):
    (tmp_path / 'Dockerfile').write_text('FROM %s\nRUN echo %s > /built\n' % (sandbox.BASE_IMAGE, unique))
    tag = 'pm-rebuild-%s:1' % unique
    engine.made['images'].append(tag)
    args = dict(docker_host=engine.docker_host, images=[dict(name=tag, context=str(tmp_path))])

    first = run_module('image_rebuild', args)
    second = run_module('image_rebuild', args)

    assert not first.failed and first['images'][0]['action'] == 'rebuilt', first
    assert engine.api.inspect_image(tag)['Config']['Labels'].get('patchops.docker.build-context') == str(tmp_path)
    assert second['images'][0]['action'] == 'unchanged', second
    assert not second['changed']


# --------------------------------------------------------------------------- Podman alone

def test_a_container_systemd_runs_is_reported_and_left_alone(podman, repo, unique, state_dir):
    ref = published(podman, repo, cmd=SLEEPER)
    unit = 'container-unit-%s.service' % unique
    name = podman.run('unit-%s' % unique, ref, labels={'PODMAN_SYSTEMD_UNIT': unit})
    before = podman.inspect(name)['Id']
    sandbox.publish(ref, cmd=SLEEPER, labels={'v': '2'})

    _result, checked = age_info(podman, [name])
    result, entries = update(podman, state_dir, [name])

    assert checked[name]['systemd_unit'] == unit
    assert checked[name]['update_available'] is True
    assert not result.failed, result
    assert entries[name]['action'] == 'skipped'
    assert entries[name]['message'].startswith('Managed by systemd unit %s; left alone' % unit)
    assert podman.inspect(name)['Id'] == before


def test_a_container_in_a_pod_is_refused_in_one_sentence(podman, repo, unique, state_dir):
    ref = published(podman, repo, cmd=SLEEPER)
    pod = 'pmpod-%s' % unique
    podman.cli('pod', 'create', '--infra=false', '--name', pod)  # no pause image here (catatonit)
    name = 'inpod-%s' % unique
    podman.cli('run', '-d', '--pod', pod, '--name', name, ref, *SLEEPER)
    podman.made['containers'].append(name)
    before = podman.inspect(name)['Id']
    sandbox.publish(ref, cmd=SLEEPER, labels={'v': '2'})
    try:
        result, entries = update(podman, state_dir, [name])
    finally:
        after = podman.inspect(name)['Id']
        podman.cli('pod', 'rm', '-f', pod, check=False)

    assert entries[name]['action'] == 'skipped', entries[name]
    assert entries[name]['message'] == (
        "Not recreated: it belongs to Podman pod '%s', and Podman's Docker-compatible API cannot create a "
        "container inside a pod; update the pod with podman instead." % pod)
    assert after == before
    assert not result.failed


# --------------------------------------------------------------------------- the role

def _playbook(inventory, extra, tmp_path):
    cmd = ['ansible-playbook', '-i', str(inventory), 'patchops.docker.patch_containers', '-e', json.dumps(extra)]
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)


def test_the_role_reports_a_podman_host(podman, repo, unique, tmp_path):
    ref = published(podman, repo, cmd=SLEEPER)
    name = podman.run('role-%s' % unique, ref)
    unit = podman.run('roleunit-%s' % unique, ref, labels={'PODMAN_SYSTEMD_UNIT': 'container-x.service'})
    sandbox.publish(ref, cmd=SLEEPER, labels={'v': '2'})
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(json.dumps({'all': {'hosts': {'pmhost': {
        'ansible_connection': 'local', 'ansible_python_interpreter': target_python(),
        'patch_containers_docker_host': podman.docker_host}}}}))
    reports = tmp_path / 'reports'

    proc = _playbook(inventory, dict(patch_containers_include=['*-%s' % unique], patch_containers_stable_seconds=1,
                                     patch_containers_state_dir=str(tmp_path / 'state'),
                                     patch_containers_report_dir=str(reports)), tmp_path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    (host,) = json.loads((reports / 'patch-report.json').read_text())['hosts']
    actions = dict((c['name'], c['action']) for c in host['containers'])
    assert actions[name] == 'updated', host
    assert actions[unit] == 'skipped', host
    assert host['engine']['image_store'] == 'podman', host['engine']


def test_one_run_patches_a_docker_host_and_a_podman_host(sb, podman, repo, unique, tmp_path):
    docker_side = Engine('docker', sb['docker_host'])
    try:
        ref = published(podman, repo, cmd=SLEEPER)
        docker_side.pull(ref)
        on_podman = podman.run('mixed-p-%s' % unique, ref)
        on_docker = docker_side.run('mixed-d-%s' % unique, ref)
        sandbox.publish(ref, cmd=SLEEPER, labels={'v': '2'})
        hosts = dict((host, {'ansible_connection': 'local', 'ansible_python_interpreter': target_python(),
                             'patch_containers_docker_host': docker_host,
                             'patch_containers_state_dir': str(tmp_path / host)})
                     for host, docker_host in (('dockerhost', docker_side.docker_host),
                                               ('podmanhost', podman.docker_host)))
        inventory = tmp_path / 'hosts.yml'
        inventory.write_text(json.dumps({'all': {'hosts': hosts}}))
        reports = tmp_path / 'reports'

        proc = _playbook(inventory, dict(patch_containers_include=['*-%s' % unique],
                                         patch_containers_stable_seconds=1,
                                         patch_containers_report_dir=str(reports)), tmp_path)

        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads((reports / 'patch-report.json').read_text())
        by_host = dict((h['name'], h) for h in report['hosts'])
        assert sorted(by_host) == ['dockerhost', 'podmanhost']
        assert by_host['podmanhost']['engine']['image_store'] == 'podman'
        assert by_host['dockerhost']['engine']['image_store'] == 'classic'
        for host, name in (('podmanhost', on_podman), ('dockerhost', on_docker)):
            ours = [(c['name'], c['action']) for c in by_host[host]['containers'] if unique in c['name']]
            assert ours == [(name, 'updated')], by_host[host]
        assert (reports / 'patch-report.html').exists()
    finally:
        docker_side.cleanup()
