"""container_update's snapshot of volume data: taken before a swap, put back byte for byte on rollback.

The "database" here is what the issue describes: v1 writes ``schema=1`` into its volume on first start and
is healthy only on schema 1 data; v2 migrates the data on start (rewrites, adds and deletes files in both of
its volumes) and fails its health check. Every file's content, type, mode, owner, times, xattrs, link target
and hard-link group is compared before and after (``fingerprint``), read straight from the volumes' data on
the engine's host.
"""
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import threading
import time

import pytest

from conftest import run_module, sandbox, target_python

pytestmark = pytest.mark.once

FAST = dict(stable_seconds=1, health_timeout=6)
KEEP_RUNNING = "trap 'exit 0' TERM; sleep 86400 & wait"
V1_CMD = 'test -f /data/db || echo schema=1 > /data/db; ' + KEEP_RUNNING
V1_HEALTH = {'test': 'grep -qx schema=1 /data/db', 'interval': 1, 'timeout': 2, 'retries': 1}
# v2 migrates the data it finds, in both volumes, and then fails its health check.
V2_CMD = ('echo schema=2 > /data/db; echo migrated > /data/tree/new; rm -f /data/tree/f1; '
          'echo v2 >> /logs/app.log; ' + KEEP_RUNNING)
V2_BAD_HEALTH = {'test': 'exit 1', 'interval': 1, 'timeout': 2, 'retries': 1}
V2_GOOD_HEALTH = {'test': 'grep -qx schema=2 /data/db', 'interval': 1, 'timeout': 2, 'retries': 1}
PAUSE = 'PATCHOPS_DOCKER_TEST_PAUSE_AT'
RESUME = 'PATCHOPS_DOCKER_TEST_RESUME_FILE'


@pytest.fixture
def repo(sb, unique):
    return '%s/itest/snap-%s' % (sb['registry'], unique)


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / 'state')


@pytest.fixture
def volumes(sb):
    made = []
    yield made
    if made:
        sandbox.docker('volume', 'rm', '-f', *made, check=False)


def inspect(name):
    return json.loads(sandbox.docker('inspect', name))[0]


def mountpoint(volume):
    return json.loads(sandbox.docker('volume', 'inspect', volume))[0]['Mountpoint']


def volumes_of(name):
    """{destination: volume name} of a container."""
    return dict((m['Destination'], m['Name']) for m in inspect(name)['Mounts'] if m['Type'] == 'volume')


def update(docker_host, state_dir, names, check=False, env=None, **options):
    args = dict(FAST, docker_host=docker_host, containers=list(names), state_dir=state_dir)
    args.update(options)
    return run_module('container_update', args, check=check, env=env)


def entry_of(result, name):
    return dict((c['name'], c) for c in result['containers'])[name]


def wait_health(name, wanted, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = inspect(name)['State']
        if (state.get('Health') or {}).get('Status') == wanted:
            return
        time.sleep(0.3)
    raise AssertionError('%s never became %s: %s' % (name, wanted, inspect(name)['State']))


def populate(data_dir, logs_dir):
    """What a real data directory holds: owners, modes, links, xattrs, a FIFO, a sparse-free large file."""
    tree = os.path.join(data_dir, 'tree')
    os.makedirs(os.path.join(tree, 'empty'))
    for index in range(200):
        with open(os.path.join(tree, 'f%d' % index), 'w') as handle:
            handle.write('row %d\n' % index * (index % 7 + 1))
    with open(os.path.join(data_dir, 'big.bin'), 'wb') as handle:
        handle.write(os.urandom(3 * 1024 * 1024))
    secret = os.path.join(data_dir, 'secret')
    with open(secret, 'w') as handle:
        handle.write('owner only\n')
    os.chown(secret, 999, 999)
    os.chmod(secret, 0o640)
    os.chown(tree, 1234, 5678)
    os.chmod(tree, 0o2750)
    tool = os.path.join(data_dir, 'tool')
    with open(tool, 'w') as handle:
        handle.write('#!/bin/sh\n')
    os.chmod(tool, 0o4755)
    os.symlink('tree/f2', os.path.join(data_dir, 'link'))
    os.symlink('/nowhere/at/all', os.path.join(data_dir, 'dangling'))
    os.link(os.path.join(tree, 'f3'), os.path.join(data_dir, 'hard'))
    os.mkfifo(os.path.join(data_dir, 'pipe'))
    os.setxattr(os.path.join(tree, 'f4'), 'user.checksum', b'abc123')
    os.utime(os.path.join(tree, 'f5'), ns=(1500000000123456789, 1500000000987654321))
    with open(os.path.join(logs_dir, 'app.log'), 'w') as handle:
        handle.write('v1 started\n')


def fingerprint(top):
    """Everything about every entry under ``top``, the top directory itself included."""
    found = {}
    inodes = {}
    for root, dirs, files in os.walk(top):
        rels = [os.path.relpath(os.path.join(root, entry), top) for entry in dirs + files]
        for rel in (['.'] if root == top else []) + rels:
            path = os.path.join(top, rel)
            st = os.lstat(path)
            item = dict(type=stat.S_IFMT(st.st_mode), mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                        xattrs=sorted((k, os.getxattr(path, k, follow_symlinks=False))
                                      for k in os.listxattr(path, follow_symlinks=False)))
            if stat.S_ISLNK(st.st_mode):
                item['target'] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, 'rb') as handle:
                    item['sha256'] = hashlib.sha256(handle.read()).hexdigest()
                item['mtime_ns'] = st.st_mtime_ns
                inodes.setdefault(st.st_ino, []).append(rel)
            elif not stat.S_ISDIR(st.st_mode):
                item['mtime_ns'] = st.st_mtime_ns
            found[rel] = item
    found['hard links'] = sorted(sorted(group) for group in inodes.values() if len(group) > 1)
    return found


def data_fingerprint(name):
    return dict((dest, fingerprint(mountpoint(vol))) for dest, vol in sorted(volumes_of(name).items()))


def database(containers, volumes, repo, unique, *docker_args):
    """A running, healthy v1 "database" with a named volume at /data and an anonymous one at /logs."""
    sandbox.publish(repo + ':1', cmd=V1_CMD, healthcheck=V1_HEALTH, volumes=['/logs'],
                    labels={'org.opencontainers.image.version': '1.0.0'})
    volume = 'snapdata-' + unique
    volumes.append(volume)
    name = containers.run('db-' + unique, repo + ':1', '-v', volume + ':/data', *docker_args)
    wait_health(name, 'healthy')
    mounts = volumes_of(name)
    populate(mountpoint(mounts['/data']), mountpoint(mounts['/logs']))
    volumes.append(mounts['/logs'])
    return name


def snapshot_dirs(state_dir, name):
    directory = os.path.join(state_dir, 'snapshots', name)
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


@pytest.mark.engines
def test_rollback_puts_the_data_back_byte_for_byte_before_the_original_starts(
        docker_host, state_dir, containers, volumes, repo, unique):
    name = database(containers, volumes, repo, unique)
    original = inspect(name)
    before = data_fingerprint(name)
    sandbox.publish(repo + ':1', cmd=V2_CMD, healthcheck=V2_BAD_HEALTH, volumes=['/logs'])

    result = update(docker_host, state_dir, [name], snapshot='volumes')

    entry = entry_of(result, name)
    assert entry['action'] == 'rolled_back', entry
    assert entry['message'] == ('The new container is unhealthy (last check: exit code 1). The original container '
                                'is running again on the data of its snapshot.'), entry['message']
    assert inspect(name)['Id'] == original['Id']
    assert data_fingerprint(name) == before
    wait_health(name, 'healthy')
    snap = entry['snapshot']
    assert snap['bytes'] > 3 * 1024 * 1024 and snap['seconds'] >= 0
    assert os.path.dirname(snap['path']) == os.path.join(state_dir, 'snapshots', name)
    assert stat.S_IMODE(os.stat(snap['path']).st_mode) == 0o700
    assert os.listdir(os.path.join(state_dir, 'journal')) == []


def test_without_a_snapshot_the_original_starts_on_the_migrated_data(
        docker_host, state_dir, containers, volumes, repo, unique):
    # What docs/container_update.md warns of: the rollback is of the container, not of its data.
    name = database(containers, volumes, repo, unique)
    sandbox.publish(repo + ':1', cmd=V2_CMD, healthcheck=V2_BAD_HEALTH, volumes=['/logs'])

    result = update(docker_host, state_dir, [name])

    entry = entry_of(result, name)
    assert entry['action'] == 'rolled_back' and entry['snapshot'] is None
    assert entry['message'].endswith('The original container is running again.')
    with open(os.path.join(mountpoint(volumes_of(name)['/data']), 'db')) as handle:
        assert handle.read() == 'schema=2\n'
    wait_health(name, 'unhealthy')
    assert snapshot_dirs(state_dir, name) == []


def test_the_label_opts_in_and_rollback_containers_puts_the_old_data_back(
        docker_host, state_dir, containers, volumes, repo, unique):
    name = database(containers, volumes, repo, unique, '--label', 'patchops.docker.snapshot=volumes')
    before = data_fingerprint(name)
    sandbox.publish(repo + ':1', cmd=V2_CMD, healthcheck=V2_GOOD_HEALTH, volumes=['/logs'],
                    labels={'org.opencontainers.image.version': '2.0.0'})

    check = update(docker_host, state_dir, [name], check=True)
    would = entry_of(check, name)['message']
    assert would.startswith('Would be recreated on the newer image, after a snapshot of its volumes ('), would
    updated = update(docker_host, state_dir, [name])

    entry = entry_of(updated, name)
    assert entry['action'] == 'updated', entry
    assert (entry['version_before'], entry['version_after']) == ('1.0.0', '2.0.0')
    wait_health(name, 'healthy')
    assert data_fingerprint(name) != before  # v2 migrated it
    with open(os.path.join(state_dir, 'last-run.json')) as handle:
        assert json.load(handle)['containers'][0]['snapshot'] == entry['snapshot']['path']

    # The rollback playbook's step: back to the previous image with the data it had.
    refused = update(docker_host, state_dir, [name], restore_data=True)
    assert refused.failed and 'restore_data' in refused['msg'] and 'target: previous' in refused['msg']
    back = update(docker_host, state_dir, [name], target='previous', restore_data=True)

    assert entry_of(back, name)['action'] == 'updated', back
    assert data_fingerprint(name) == before
    wait_health(name, 'healthy')
    assert entry_of(back, name)['version_after'] == '1.0.0'


def test_a_volume_that_is_not_data_on_this_disk_is_refused_and_nothing_is_touched(
        docker_host, state_dir, containers, volumes, repo, unique):
    sandbox.publish(repo + ':1', cmd=['sleep', '86400'])
    volume = 'snaptmpfs-' + unique
    sandbox.docker('volume', 'create', '--driver', 'local', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs',
                   '--opt', 'o=size=1m', volume)
    volumes.append(volume)
    name = containers.run('tmpfsvol-' + unique, repo + ':1', '-v', volume + ':/scratch')
    started = inspect(name)['State']['StartedAt']
    sandbox.publish(repo + ':1', cmd=['sleep', '86401'])

    checked = update(docker_host, state_dir, [name], check=True, snapshot='volumes')
    result = update(docker_host, state_dir, [name], snapshot='volumes')

    sentence = ('Volume %s mounts tmpfs (type tmpfs); only data a local volume keeps on this host\'s disk can be '
                'snapshotted.' % volume)
    assert entry_of(checked, name)['message'] == 'Would not be updated: ' + sentence
    assert result.failed and entry_of(result, name)['action'] == 'failed'
    assert entry_of(result, name)['message'] == 'Nothing was changed: ' + sentence
    assert inspect(name)['State']['StartedAt'] == started and inspect(name)['State']['Running']


@pytest.fixture
def small_state_dir(tmp_path):
    """A state directory on a tmpfs of its own, 8 MiB, unmounted afterwards."""
    path = str(tmp_path / 'small')
    os.makedirs(path)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'patchops-snapshot-test', path], check=True)
    yield path
    subprocess.run(['umount', path], check=True)


def test_too_little_room_is_refused_before_the_container_stops(
        docker_host, small_state_dir, containers, volumes, repo, unique):
    name = database(containers, volumes, repo, unique)
    with open(os.path.join(mountpoint(volumes_of(name)['/data']), 'more.bin'), 'wb') as handle:
        handle.write(os.urandom(8 * 1024 * 1024))
    started = inspect(name)['State']['StartedAt']
    sandbox.publish(repo + ':1', cmd=V2_CMD, healthcheck=V2_GOOD_HEALTH, volumes=['/logs'])

    result = update(docker_host, small_state_dir, [name], snapshot='volumes')

    message = entry_of(result, name)['message']
    assert re.fullmatch(r'Nothing was changed: Not enough room for a snapshot of the volumes of %s: they hold '
                        r'11\.\d MiB and %s has 8\.0 MiB free\.' % (name, re.escape(small_state_dir)), message), message
    assert inspect(name)['State']['StartedAt'] == started


def run_in_background(docker_host, state_dir, name, env, **options):
    """Start container_update in a thread; returns (thread, holder of its result)."""
    holder = {}

    def target():
        try:
            holder['result'] = update(docker_host, state_dir, [name], env=env, **options)
        except AssertionError as exc:  # killed: no result to read
            holder['error'] = exc
    thread = threading.Thread(target=target)
    thread.start()
    return thread, holder


def journal_entry(state_dir):
    journal = os.path.join(state_dir, 'journal')
    for file_name in os.listdir(journal) if os.path.isdir(journal) else []:
        try:
            with open(os.path.join(journal, file_name)) as handle:
                return json.load(handle)
        except ValueError:
            continue
    return None


def first_volume_copying(state_dir):
    """The journal entry once the snapshot's first volume is being copied, else None."""
    entry = journal_entry(state_dir) or {}
    path = (entry.get('snapshot') or {}).get('path')
    if path and os.path.isdir(path) and len(os.listdir(path)) == 1:
        return entry
    return None


def wait_for(predicate, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError('never happened: %s' % what)


def fill(directory):
    """Write into ``directory`` until its filesystem is full."""
    fd = os.open(os.path.join(directory, 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b'\0' * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_disk_that_fills_during_the_snapshot_loses_nothing(
        docker_host, small_state_dir, containers, volumes, repo, unique, tmp_path):
    name = database(containers, volumes, repo, unique)
    original = inspect(name)
    before = data_fingerprint(name)
    sandbox.publish(repo + ':1', cmd=V2_CMD, healthcheck=V2_GOOD_HEALTH, volumes=['/logs'])
    resume = str(tmp_path / 'resume')

    thread, holder = run_in_background(docker_host, small_state_dir, name, {PAUSE: 'snapshot', RESUME: resume},
                                       snapshot='volumes')
    entry = wait_for(lambda: first_volume_copying(small_state_dir), 'the first volume copied')
    time.sleep(1)  # the first volume's cp has finished; the module waits for the resume file
    fill(small_state_dir)
    open(resume, 'w').close()
    thread.join(120)

    result = holder['result']
    message = entry_of(result, name)['message']
    assert result.failed and entry_of(result, name)['action'] == 'failed'
    assert message.startswith('The snapshot of volume '), message
    assert message.endswith(' failed: No space left on device. Nothing was updated; the original container is '
                            'running again.'), message
    assert not os.path.exists(entry['snapshot']['path'])  # the partial copy is gone
    assert inspect(name)['Id'] == original['Id'] and inspect(name)['State']['Running']
    assert data_fingerprint(name) == before
    assert os.listdir(os.path.join(small_state_dir, 'journal')) == []


def kill_module(state_dir, thread):
    entry = journal_entry(state_dir)
    os.kill(entry['pid'], signal.SIGKILL)
    thread.join(60)


def test_a_run_killed_mid_snapshot_is_put_right_by_the_next(
        docker_host, state_dir, containers, volumes, repo, unique):
    name = database(containers, volumes, repo, unique)
    original = inspect(name)
    before = data_fingerprint(name)
    sandbox.publish(repo + ':1', cmd=V2_CMD, healthcheck=V2_GOOD_HEALTH, volumes=['/logs'])

    thread = run_in_background(docker_host, state_dir, name, {PAUSE: 'snapshot'}, snapshot='volumes')[0]
    entry = wait_for(lambda: first_volume_copying(state_dir), 'the first volume copied')
    time.sleep(1)
    kill_module(state_dir, thread)
    assert entry['snapshot']['state'] == 'copying' and not inspect(name)['State']['Running']

    found = run_module('image_age_info', dict(docker_host=docker_host, containers=[name], check_registry=False,
                                              state_dir=state_dir, recover=True))

    assert [(r['name'], r['action']) for r in found['recovered']] == [(name, 'restored')], found['recovered']
    assert not os.path.exists(entry['snapshot']['path'])
    assert inspect(name)['Id'] == original['Id'] and inspect(name)['State']['Running']
    assert data_fingerprint(name) == before


def test_a_run_killed_mid_restore_is_put_right_by_the_next(
        docker_host, state_dir, containers, volumes, repo, unique):
    name = database(containers, volumes, repo, unique)
    original = inspect(name)
    before = data_fingerprint(name)
    sandbox.publish(repo + ':1', cmd=V2_CMD, healthcheck=V2_BAD_HEALTH, volumes=['/logs'])

    thread = run_in_background(docker_host, state_dir, name, {PAUSE: 'restoring'}, snapshot='volumes')[0]
    wait_for(lambda: (journal_entry(state_dir) or {}).get('restoring'), 'the restore under way', timeout=90)
    time.sleep(1)  # the first volume is back, the second still holds what v2 made of it
    kill_module(state_dir, thread)
    assert data_fingerprint(original['Id']) != before  # the container is stopped under its backup name

    found = run_module('image_age_info', dict(docker_host=docker_host, containers=[name], check_registry=False,
                                              state_dir=state_dir, recover=True))

    recovered = found['recovered']
    assert [(r['name'], r['action']) for r in recovered] == [(name, 'restored')], recovered
    assert recovered[0]['message'].endswith('the original container is back on the data of its snapshot.')
    assert inspect(name)['Id'] == original['Id'] and inspect(name)['State']['Running']
    assert data_fingerprint(name) == before
    wait_health(name, 'healthy')


def test_the_rollback_playbook_puts_the_last_runs_snapshot_back_when_asked(
        docker_host, state_dir, containers, volumes, repo, unique):
    name = database(containers, volumes, repo, unique)
    before = data_fingerprint(name)
    sandbox.publish(repo + ':1', cmd=V2_CMD, healthcheck=V2_GOOD_HEALTH, volumes=['/logs'])
    assert entry_of(update(docker_host, state_dir, [name], snapshot='volumes'), name)['action'] == 'updated'
    wait_health(name, 'healthy')
    migrated = data_fingerprint(name)
    assert migrated != before

    def rollback(*extra):
        cmd = ['ansible-playbook', '-i', 'localhost,', '-c', 'local', 'patchops.docker.rollback_containers',
               '-e', json.dumps(dict(patch_containers_docker_host=docker_host, patch_containers_state_dir=state_dir,
                                     ansible_python_interpreter=target_python()))] + list(extra)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                              env=dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0'))

    proc = rollback('-e', 'rollback_restore_data=true')

    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert data_fingerprint(name) == before
    wait_health(name, 'healthy')
