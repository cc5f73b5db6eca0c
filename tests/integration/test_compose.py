"""container_update on containers of a Compose project, Compose v2 (2.26) and v1 (Debian's 1.29), on the sandbox engine.

Compose v2 (found out on Engine 26.1 with Compose 2.26.1, classic and containerd image
store, and on 20.10): ``docker compose up`` recreates a service's container when its label
``com.docker.compose.config-hash`` differs from the service's config hash, or its label
``com.docker.compose.image`` differs from the ID of the image the service's tag names on
the host now (``ImageInspect``'s ``Id``: the config digest with the classic store, the
manifest or index digest with the containerd store). The config hash does not cover the
image, so ``container_update`` keeps it, and it sets ``com.docker.compose.image`` to the new
image's ID: ``docker compose ps`` lists the updated containers, Up, and the next
``docker compose up -d`` finds them "Running" and leaves them (same container IDs, no
container event in the engine). Kept as it was, the label made Compose recreate them.

Compose v1 (found out on dockerd 20.10 with docker-compose 1.29.2):

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
  tag to the new image, so the hash no longer matches the (kept) label. That
  hash cannot be computed from the container honestly (it covers Compose's own
  view of the service), so the update leaves it. The containers it makes are on
  the same new image, keep their volumes and data (Compose carries anonymous
  volumes over itself), and from then on ``docker-compose up -d`` leaves them
  alone ("is up-to-date").
* Compose v1 cannot recreate any container at API 1.45 (Engine 26): it reads the
  image's ``ContainerConfig``, which 1.45 no longer returns, and fails with
  ``KeyError: 'ContainerConfig'``, its own recreate (``--force-recreate``)
  included. With ``COMPOSE_API_VERSION=1.44`` it works as above; the tests set
  it on Engine 26.
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
# The same project for Compose v2, which calls the top-level version obsolete.
COMPOSE_FILE_V2 = COMPOSE_FILE.split('\n', 1)[1]
NEW_SLEEPER = ['sh', '-c', "trap 'exit 0' TERM; sleep 86401 & wait"]
SERVICES = ('web', 'worker')


class Project:
    """A Compose project in a temp dir, on the sandbox engine; ``down -v`` and leftovers removed at the end.

    ``version`` 1 runs Debian's docker-compose 1.29, 2 runs Compose v2 through ``sandbox.compose``.
    """

    def __init__(self, docker_host, directory, name, ref, version=1):
        self.directory = directory
        self.name = name
        self.ref = ref
        self.version = version
        self.env = dict((k, v) for k, v in os.environ.items() if not k.startswith(('DOCKER_', 'COMPOSE_')))
        self.env.update(DOCKER_HOST=docker_host, DOCKER_CONFIG=str(directory / '.docker'))
        if version == 1 and compose_v1_needs_older_api():
            self.env['COMPOSE_API_VERSION'] = COMPOSE_V1_API
        self.volumes = set()
        self.images = set()
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, text):
        (self.directory / 'docker-compose.yml').write_text(text)

    def compose(self, *args, check=True):
        if self.version == 2:
            try:
                return sandbox.compose('-p', self.name, *args, version=2, project_dir=str(self.directory),
                                       check=check)
            except sandbox.SandboxError as exc:
                raise AssertionError('compose v2 %s failed:\n%s\n%s' % (' '.join(args), exc.stdout, exc.stderr))
        proc = subprocess.run(['docker-compose', '-p', self.name] + list(args), cwd=str(self.directory),
                              env=self.env, capture_output=True, text=True, timeout=300, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('docker-compose %s failed (%d):\n%s\n%s'
                                 % (' '.join(args), proc.returncode, proc.stdout, proc.stderr))
        return proc.stdout + proc.stderr

    def progress(self, *args):
        """What Compose v2 itself says it does (its progress lines go to stderr, which ``sandbox.compose``
        does not return): the same Compose v2 binary, on the same engine."""
        proc = subprocess.run([sandbox.info()['compose_v2'], '--ansi', 'never', '-p', self.name] + list(args),
                              cwd=str(self.directory), env=self.env, capture_output=True, text=True, timeout=300,
                              check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    def container(self, service):
        if self.version == 2:
            return '%s-%s-1' % (self.name, service)
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


# Compose v1 reads an image's ContainerConfig when it recreates a container, which API 1.45 (Engine 26) no
# longer returns: every recreate of v1 fails there with KeyError: 'ContainerConfig' (after renaming the old
# container), unless v1 speaks API 1.44, as its users on Engine 25+ have to set.
COMPOSE_V1_API = '1.44'


def compose_v1_needs_older_api():
    api_version = (sandbox.info().get('engine') or {}).get('api_version') or '1.41'
    return tuple(int(part) for part in api_version.split('.')) >= (1, 45)


def inspect(name):
    return json.loads(sandbox.docker('inspect', name))[0]


@pytest.fixture(scope='module')
def compose_cli():
    if not shutil.which('docker-compose'):
        pytest.fail('docker-compose is not installed: apt-get install docker-compose '
                    '(python3 tests/sandbox up installs it when it starts the sandbox)')


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


@pytest.fixture
def project_v2(sb, docker_host, api, tmp_path, unique):
    if sandbox.info().get('compose_v2') is None:
        # the sandbox fetches Compose v2 with Engine 26 for every engine kind: missing, the set-up is broken
        pytest.fail('the sandbox offers no Compose v2 (python3 tests/sandbox prepare fetches it with Engine 26; '
                    'engine %s)' % (sandbox.info().get('engine'),))
    ref = '%s/itest/compose2-%s:1' % (sb['registry'], unique)
    made = Project(docker_host, tmp_path / 'project2', 'patchops%s' % unique, ref, version=2)
    made.images.add(sandbox.publish(ref, cmd=SLEEPER, labels={'tier': 'v1'}, env={'MODE': 'v1'})['id'])
    made.write(COMPOSE_FILE_V2.format(ref=ref))
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


def up_with_data_then_publish_newer(project, api):
    """``up -d`` the project, write a file into each service's volume, publish a newer image for its tag.

    Returns the two container names, their inspects and the image's before the update, and the publish
    result of the newer image (removed at the end)."""
    up = project.compose('up', '-d')
    if project.version == 1:
        assert 'Creating %s' % project.container('web') in up, up
    assert running_services(project) == sorted(SERVICES)
    web, worker = project.container('web'), project.container('worker')
    sandbox.docker('exec', web, 'sh', '-c', 'echo named > /data/file')
    sandbox.docker('exec', worker, 'sh', '-c', 'echo anonymous > /scratch/file')
    old = dict((service, api.inspect_container(project.container(service))) for service in SERVICES)
    old_image = api.inspect_image(project.ref)
    project.remember_volumes(api)
    newer = sandbox.publish(project.ref, cmd=NEW_SLEEPER, labels={'tier': 'v2'}, env={'MODE': 'v2'})
    project.images.add(newer['id'])
    return web, worker, old, old_image, newer


def test_update_keeps_the_compose_project_working(project, docker_host, api, tmp_path):
    web, worker, old, old_image, newer = up_with_data_then_publish_newer(project, api)
    anonymous = [m['Name'] for m in old['worker']['Mounts'] if m['Destination'] == '/scratch']
    assert len(anonymous[0]) == 64, 'Docker made an anonymous volume for /scratch'

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


def container_events(project, since, until):
    """The engine's container events for the project's containers between two of its own timestamps."""
    out = sandbox.docker('events', '--since', since, '--until', until, '--filter', 'type=container',
                         '--filter', 'label=com.docker.compose.project=%s' % project.name,
                         '--format', '{{.Action}} {{.Actor.Attributes.name}}')
    return [line for line in out.splitlines() if line.strip()]


def engine_now():
    return sandbox.docker('info', '--format', '{{.SystemTime}}').strip()


def test_compose_v2_finds_the_updated_containers_up_to_date(project_v2, docker_host, api, tmp_path):
    project = project_v2
    web, worker, old, old_image, _newer = up_with_data_then_publish_newer(project, api)
    for service in SERVICES:
        # what Compose v2 recorded: the ID of the image the tag named (the manifest digest on the containerd store)
        assert old[service]['Config']['Labels']['com.docker.compose.image'] == old_image['Id'], service

    result = update(docker_host, tmp_path, [web, worker])

    assert not result.failed, result.stdout + result.stderr
    assert [(c['name'], c['action']) for c in result['containers']] == [(web, 'updated'), (worker, 'updated')]
    new_image = api.inspect_image(project.ref)  # what the tag names now: what Compose compares with
    assert new_image['Id'] != old_image['Id']
    new = dict((service, api.inspect_container(project.container(service))) for service in SERVICES)
    for service in SERVICES:
        before, after = old[service], new[service]
        assert after['Id'] != before['Id'] and after['Image'] == new_image['Id'], service
        assert after['Config']['Labels']['com.docker.compose.image'] == new_image['Id'], service
        assert after['Config']['Labels']['com.docker.compose.config-hash'] \
            == before['Config']['Labels']['com.docker.compose.config-hash'], service
        assert after['Config']['Labels']['tier'] == 'v2'
        assert diff_config(before, after, old_image, new_image) == [], service
        assert sorted(after['NetworkSettings']['Networks']) == sorted(before['NetworkSettings']['Networks'])
    assert {'worker', 'jobs'} <= set(new['worker']['NetworkSettings']['Networks']['%s_backend' % project.name]
                                     ['Aliases'])

    # Compose lists both, running, under their names.
    assert running_services(project) == sorted(SERVICES)
    listed = [json.loads(line) for line in project.compose('ps', '--format', 'json').splitlines() if line.strip()]
    if len(listed) == 1 and isinstance(listed[0], list):
        listed = listed[0]
    assert sorted((c['Name'], c['State']) for c in listed) == [(web, 'running'), (worker, 'running')]
    ids = project.ids()
    assert ids == dict((service, new[service]['Id']) for service in SERVICES)

    # Compose's own verdict: nothing to do.
    dry_run = project.progress('up', '-d', '--dry-run')
    for name in (web, worker):
        assert 'Container %s  Running' % name in dry_run, dry_run
    assert 'Recreate' not in dry_run, dry_run

    # The next `docker compose up -d` leaves both running: the same containers, no container event at all.
    since = engine_now()
    project.compose('up', '-d')
    assert project.ids() == ids
    assert container_events(project, since, engine_now()) == []
    assert running_services(project) == sorted(SERVICES)
    assert sandbox.docker('exec', web, 'cat', '/data/file') == 'named\n'
    assert sandbox.docker('exec', worker, 'cat', '/scratch/file') == 'anonymous\n'
    project.remember_volumes(api)


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
