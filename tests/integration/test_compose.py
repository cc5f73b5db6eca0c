"""container_update on containers of a Compose project (Debian's docker-compose 1.29), against the sandbox.

What happens, found out on dockerd 20.10 with docker-compose 1.29.2:

* ``container_update`` recreates a Compose service's container like any other:
  same name (``<project>_<service>_1``), every ``com.docker.compose.*`` label
  (project, service, container-number, oneoff, config-hash, config files,
  working dir, version) kept as it was, the same project network with the
  service name (and any alias of its own) as network alias, so services still
  find each other by name; named and anonymous volumes are mounted again with
  their data. ``docker-compose ps`` still lists the services, Up.
* A later ``docker-compose up -d`` **recreates** the updated containers once
  (new container IDs, output "Recreating <project>_<service>_1"), even though
  the Compose file did not change: Compose 1.x puts the ID of the image its tag
  names on the host into the service's config hash, and the update moved that
  tag to the new image, so the hash no longer matches the (kept) label. The
  containers it makes are on the same new image, keep their volumes and data
  (Compose carries anonymous volumes over itself), and from then on
  ``docker-compose up -d`` leaves them alone ("is up-to-date").
* ``docker rm -v`` and ``docker-compose down -v`` remove a container's
  anonymous volumes only while Docker still counts them as anonymous. An
  updated container mounts its anonymous volumes again *by name* (the only way
  to keep their data), so Docker counts them as named from then on, and
  ``docker-compose down -v`` removes the project's named volumes but leaves
  these behind (``docker volume prune`` removes them). Compose's own recreate
  (``up -d --force-recreate``, or the recreate above) does exactly the same.
"""
import json
import os
import shutil
import subprocess

import docker
import pytest

from conftest import SLEEPER, run_module, sandbox
from ansible_collections.patchops.docker.plugins.module_utils.recreate import diff_config

# The module side in detail: run once, under the first controller (modules on the oldest target Python).
pytestmark = [pytest.mark.once, pytest.mark.engines]

COMPOSE_FILE = """\
version: "2.4"
services:
  web:
    image: {ref}
    environment:
      ROLE: front
    volumes:
      - data:/data
    networks: [backend]
  worker:
    image: {ref}
    volumes:
      - /scratch
    networks:
      backend:
        aliases: [jobs]
volumes:
  data: {{}}
networks:
  backend: {{}}
"""
NEW_SLEEPER = ['sh', '-c', "trap 'exit 0' TERM; sleep 86401 & wait"]
SERVICES = ('web', 'worker')


class Project:
    """A Compose project in a temp dir, on the sandbox engine; ``down -v`` and leftovers removed at the end."""

    def __init__(self, docker_host, directory, name, ref):
        self.directory = directory
        self.name = name
        self.ref = ref
        self.env = dict((k, v) for k, v in os.environ.items() if not k.startswith(('DOCKER_', 'COMPOSE_')))
        self.env.update(DOCKER_HOST=docker_host, DOCKER_CONFIG=str(directory / '.docker'))
        self.volumes = set()
        self.images = set()
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, text):
        (self.directory / 'docker-compose.yml').write_text(text)

    def compose(self, *args, check=True):
        proc = subprocess.run(['docker-compose', '-p', self.name] + list(args), cwd=str(self.directory),
                              env=self.env, capture_output=True, text=True, timeout=300, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('docker-compose %s failed (%d):\n%s\n%s'
                                 % (' '.join(args), proc.returncode, proc.stdout, proc.stderr))
        return proc.stdout + proc.stderr

    def container(self, service):
        return '%s_%s_1' % (self.name, service)

    def ids(self):
        return dict((service, inspect(self.container(service))['Id']) for service in SERVICES)

    def remember_volumes(self, api):
        for service in SERVICES:
            try:
                mounts = api.inspect_container(self.container(service))['Mounts']
            except docker.errors.NotFound:
                continue
            self.volumes.update(m['Name'] for m in mounts if m['Type'] == 'volume')

    def cleanup(self):
        self.compose('down', '-v', '--remove-orphans', check=False)
        if self.volumes:
            sandbox.docker('volume', 'rm', '-f', *sorted(self.volumes), check=False)
        if self.images:
            sandbox.docker('rmi', '-f', *sorted(self.images), check=False)


def inspect(name):
    return json.loads(sandbox.docker('inspect', name))[0]


@pytest.fixture(scope='module')
def compose_cli():
    if not shutil.which('docker-compose'):
        pytest.fail('docker-compose is not installed: apt-get install docker-compose '
                    '(tests/sandbox/sandbox.py up installs it when it starts the sandbox)')


@pytest.fixture
def api(docker_host):
    client = docker.APIClient(base_url=docker_host, version='auto', timeout=60)
    yield client
    client.close()


@pytest.fixture
def project(sb, docker_host, compose_cli, api, tmp_path, unique):
    ref = '%s/itest/compose-%s:1' % (sb['registry'], unique)
    made = Project(docker_host, tmp_path / 'project', 'patchops%s' % unique, ref)
    made.images.add(sandbox.publish(ref, cmd=SLEEPER, labels={'tier': 'v1'}, env={'MODE': 'v1'})['id'])
    made.write(COMPOSE_FILE.format(ref=ref))
    try:
        yield made
    finally:
        made.remember_volumes(api)
        made.cleanup()


def update(docker_host, tmp_path, names):
    return run_module('container_update', dict(docker_host=docker_host, containers=list(names),
                                               state_dir=str(tmp_path / 'state'), stable_seconds=1))


def running_services(project):
    return sorted(project.compose('ps', '--services', '--filter', 'status=running').split())


def resolves(client, target, ip):
    """``target`` resolves (and answers a ping) from inside ``client``, to ``ip``."""
    out = sandbox.docker('exec', client, 'ping', '-c1', '-W2', target)
    return '(%s)' % ip in out.splitlines()[0] and ' 0% packet loss' in out


def test_update_keeps_the_compose_project_working(project, docker_host, api, tmp_path):
    up = project.compose('up', '-d')
    assert 'Creating %s' % project.container('web') in up, up
    assert running_services(project) == sorted(SERVICES)
    web, worker = project.container('web'), project.container('worker')
    sandbox.docker('exec', web, 'sh', '-c', 'echo named > /data/file')
    sandbox.docker('exec', worker, 'sh', '-c', 'echo anonymous > /scratch/file')
    old = dict((service, api.inspect_container(project.container(service))) for service in SERVICES)
    old_image = api.inspect_image(project.ref)
    anonymous = [m['Name'] for m in old['worker']['Mounts'] if m['Destination'] == '/scratch']
    assert len(anonymous[0]) == 64, 'Docker made an anonymous volume for /scratch'
    project.remember_volumes(api)
    newer = sandbox.publish(project.ref, cmd=NEW_SLEEPER, labels={'tier': 'v2'}, env={'MODE': 'v2'})
    project.images.add(newer['id'])

    result = update(docker_host, tmp_path, [web, worker])

    assert not result.failed, result.stdout + result.stderr
    assert [(c['name'], c['action']) for c in result['containers']] == [(web, 'updated'), (worker, 'updated')]
    assert all(c['downtime_seconds'] > 0 for c in result['containers'])
    new_image = api.inspect_image(newer['id'])
    new = dict((service, api.inspect_container(project.container(service))) for service in SERVICES)
    for service in SERVICES:
        before, after = old[service], new[service]
        assert after['Id'] != before['Id'] and after['Image'] == newer['id'], service
        assert diff_config(before, after, old_image, new_image) == [], service
        compose_labels = dict((k, v) for k, v in before['Config']['Labels'].items()
                              if k.startswith('com.docker.compose.'))
        assert {'com.docker.compose.project', 'com.docker.compose.service', 'com.docker.compose.config-hash',
                'com.docker.compose.container-number', 'com.docker.compose.oneoff',
                'com.docker.compose.project.config_files', 'com.docker.compose.project.working_dir',
                'com.docker.compose.version'} <= set(compose_labels)
        assert dict((k, after['Config']['Labels'].get(k)) for k in compose_labels) == compose_labels, service
        assert after['Config']['Labels']['tier'] == 'v2'
    assert 'ROLE=front' in new['web']['Config']['Env'] and 'MODE=v2' in new['web']['Config']['Env']

    # Compose still sees both services, running.
    assert running_services(project) == sorted(SERVICES)
    listing = project.compose('ps')
    for service in SERVICES:
        line = [row for row in listing.splitlines() if row.startswith(project.container(service) + ' ')]
        assert line and ' Up ' in line[0] + ' ', listing
    # Both volumes kept their data; the anonymous one is the same volume.
    assert sandbox.docker('exec', web, 'cat', '/data/file') == 'named\n'
    assert sandbox.docker('exec', worker, 'cat', '/scratch/file') == 'anonymous\n'
    assert [m['Name'] for m in new['worker']['Mounts'] if m['Destination'] == '/scratch'] == anonymous
    # The services find each other by service name (and alias) on the project network.
    network = '%s_backend' % project.name
    ip = dict((s, new[s]['NetworkSettings']['Networks'][network]['IPAddress']) for s in SERVICES)
    assert set(['worker', 'jobs']) <= set(new['worker']['NetworkSettings']['Networks'][network]['Aliases'])
    assert resolves(web, 'worker', ip['worker']) and resolves(web, 'jobs', ip['worker'])
    assert resolves(worker, 'web', ip['web'])
    assert ip['web'] in sandbox.docker('exec', worker, 'nslookup', 'web')

    # What a later `docker-compose up -d` does: the service's config hash includes the ID of the image the
    # tag names on the host, which the update moved, so Compose recreates both containers, once.
    ids = project.ids()
    again = project.compose('up', '-d')
    for service in SERVICES:
        assert 'Recreating %s' % project.container(service) in again, again
    recreated = project.ids()
    assert all(recreated[s] != ids[s] for s in SERVICES), again
    for service in SERVICES:
        after = api.inspect_container(project.container(service))
        assert after['Image'] == newer['id'], service
        assert after['Config']['Labels']['com.docker.compose.config-hash'] \
            != old[service]['Config']['Labels']['com.docker.compose.config-hash']
    assert running_services(project) == sorted(SERVICES)
    assert sandbox.docker('exec', web, 'cat', '/data/file') == 'named\n'
    assert sandbox.docker('exec', worker, 'cat', '/scratch/file') == 'anonymous\n'
    project.remember_volumes(api)
    # ... and from then on it leaves them alone.
    third = project.compose('up', '-d')
    assert project.ids() == recreated, third
    assert '%s is up-to-date' % project.container('web') in third, third


def test_down_v_after_an_update_leaves_the_formerly_anonymous_volume(project, docker_host, api, tmp_path):
    """What ``docker-compose down -v`` removes after an update (and after Compose's own recreate)."""
    project.compose('up', '-d')
    worker = project.container('worker')
    anonymous = [m['Name'] for m in api.inspect_container(worker)['Mounts'] if m['Destination'] == '/scratch'][0]
    project.remember_volumes(api)
    project.images.add(sandbox.publish(project.ref, cmd=NEW_SLEEPER, labels={'tier': 'v2'})['id'])

    result = update(docker_host, tmp_path, [worker])
    assert not result.failed and result['summary']['updated'] == 1, result.stdout + result.stderr

    project.compose('down', '-v')
    volumes = sandbox.docker('volume', 'ls', '-q').split()
    assert '%s_data' % project.name not in volumes, 'down -v removes the named volume'
    assert anonymous in volumes, 'mounted by name since the update, Docker no longer removes it with the container'
    # it is unused now: `docker volume prune` would remove it; the fixture removes it by name
