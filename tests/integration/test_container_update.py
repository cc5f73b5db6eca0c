"""patchops.docker.container_update against the real sandbox engine and registry."""
import json
import os
import signal
import stat
import subprocess
import time

import pytest

from conftest import SLEEPER, run_module, sandbox, target_python

# The module side in detail: run once, under the first controller (modules on the oldest target Python).
# The tests marked engines (image IDs and digests, pulls, rollback, cleanup, crash recovery) also run on
# Engine 20.10 and on Engine 26 with the containerd image store; argument checks, hooks, locks and the
# scheduler do not differ between engines.
pytestmark = pytest.mark.once

FAST = dict(stable_seconds=1, health_timeout=20)


@pytest.fixture
def repo(sb, unique):
    return '%s/itest/upd-%s' % (sb['registry'], unique)


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / 'state')


def inspect(name):
    return json.loads(sandbox.docker('inspect', name))[0]


def update(docker_host, state_dir, names, check=False, diff=False, **options):
    args = dict(FAST, docker_host=docker_host, containers=list(names), state_dir=state_dir)
    args.update(options)
    return run_module('container_update', args, check=check, diff=diff)


def by_name(result):
    return dict((entry['name'], entry) for entry in result['containers'])


def names_like(prefix):
    return sorted(n for n in sandbox.docker('ps', '-a', '--format', '{{.Names}}').split() if n.startswith(prefix))


@pytest.mark.engines
def test_update_keeps_the_container_and_takes_what_the_new_image_brings(
        docker_host, state_dir, containers, repo, unique):
    oci = 'org.opencontainers.image.'
    sandbox.publish(repo + ':1', cmd=SLEEPER, env={'MODE': 'old', 'KEEP': 'image'},
                    labels={'tier': 'old', oci + 'version': '1.25.3', oci + 'revision': '4f2a9c1'}, volumes=['/data'])
    name = containers.run('keep-' + unique, repo + ':1', '-e', 'KEEP=user', '-e', 'SECRET_TOKEN=hunter2',
                          '--label', 'owner=ops', '-p', '127.0.0.1::8080', '--restart', 'unless-stopped')
    sandbox.docker('exec', name, 'sh', '-c', 'echo precious > /data/file')
    before = inspect(name)
    newer = sandbox.publish(repo + ':1', cmd=SLEEPER, env={'MODE': 'new', 'KEEP': 'image'},
                            labels={'tier': 'new', oci + 'version': '1.25.4', oci + 'revision': '9b0e3d7',
                                    oci + 'source': 'https://example.invalid/shop/web'}, volumes=['/data'])

    result = update(docker_host, state_dir, [name], diff=True)

    assert not result.failed, result
    assert result['changed'] is True
    entry = by_name(result)[name]
    assert entry['action'] == 'updated'
    assert entry['new_image_id'] == newer['id'] and entry['old_image_id'] == before['Image']
    assert 0 < entry['downtime_seconds'] < 10
    # what moved, in the images' own words
    assert (entry['version_before'], entry['version_after']) == ('1.25.3', '1.25.4')
    assert (entry['revision_before'], entry['revision_after']) == ('4f2a9c1', '9b0e3d7')
    assert entry['source_after'] == 'https://example.invalid/shop/web' and 'source_before' not in entry
    after = inspect(name)
    assert after['Id'] != before['Id'] and after['State']['Running']
    env = dict(e.split('=', 1) for e in after['Config']['Env'])
    assert env['KEEP'] == 'user' and env['SECRET_TOKEN'] == 'hunter2' and env['MODE'] == 'new'
    assert after['Config']['Labels']['owner'] == 'ops' and after['Config']['Labels']['tier'] == 'new'
    assert after['HostConfig']['RestartPolicy'] == before['HostConfig']['RestartPolicy']
    assert after['HostConfig']['PortBindings'] == before['HostConfig']['PortBindings']
    assert sandbox.docker('exec', name, 'cat', '/data/file').strip() == 'precious'
    assert names_like('keep-' + unique) == [name], 'the backup is gone'
    assert 'hunter2' not in result.stdout + result.stderr
    # Ansible prints the diff (and takes it out of the JSON): old image -> new image.
    diff_lines = result.stdout.splitlines()
    assert any(line.startswith('-') and before['Image'] in line for line in diff_lines), result.stdout
    assert any(line.startswith('+') and newer['id'] in line for line in diff_lines), result.stdout


@pytest.mark.engines
def test_second_run_is_unchanged(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('idem-' + unique, repo + ':1')
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    assert update(docker_host, state_dir, [name])['summary']['updated'] == 1
    container_id = inspect(name)['Id']

    second = update(docker_host, state_dir, [name])

    assert second['changed'] is False
    assert by_name(second)[name]['action'] == 'unchanged'
    assert inspect(name)['Id'] == container_id


@pytest.mark.engines
def test_check_mode_pulls_nothing_and_changes_nothing(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('check-' + unique, repo + ':1')
    newer = sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    before = inspect(name)
    local_before = json.loads(sandbox.docker('image', 'inspect', repo + ':1'))[0]['Id']

    result = update(docker_host, state_dir, [name], check=True, diff=True)

    assert not result.failed, result
    assert result['changed'] is True
    assert by_name(result)[name]['action'] == 'updated'
    assert 'check mode' in by_name(result)[name]['message']
    assert inspect(name)['Id'] == before['Id']
    assert json.loads(sandbox.docker('image', 'inspect', repo + ':1'))[0]['Id'] == local_before != newer['id']
    assert not os.path.exists(state_dir), 'check mode writes no journal'
    diff_lines = result.stdout.splitlines()
    assert any(line.startswith('-') and before['Image'] in line for line in diff_lines), result.stdout
    assert any(line.startswith('+') and newer['digest'] in line for line in diff_lines), result.stdout


@pytest.mark.parametrize('kind, image_options, message', [
    ('unhealthy', dict(healthcheck={'test': 'exit 1', 'interval': 1, 'timeout': 1, 'retries': 1}),
     'The new container is unhealthy'),
    ('exits', dict(cmd=['sh', '-c', 'exit 3']), 'The new container exited with code 3'),
    ('slow', dict(healthcheck={'test': 'true', 'interval': 60, 'start_period': 60}),
     'The new container was not healthy within 3 s'),
])
@pytest.mark.engines
def test_bad_new_image_rolls_back_to_the_same_container(
        docker_host, state_dir, containers, repo, unique, kind, image_options, message):
    sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'])
    name = containers.run('bad-%s-%s' % (kind, unique), repo + ':1')
    sandbox.docker('exec', name, 'sh', '-c', 'echo precious > /data/file')
    original = inspect(name)
    options = dict(cmd=SLEEPER)
    options.update(image_options)
    sandbox.publish(repo + ':1', labels={'v': 'broken'}, **options)

    result = update(docker_host, state_dir, [name], health_timeout=3)

    assert result.failed
    assert result['msg'] == '1 of 1 containers were not updated: %s.' % name
    entry = by_name(result)[name]
    assert entry['action'] == 'rolled_back'
    assert entry['message'].startswith(message), entry['message']
    assert entry['message'].endswith('The original container is running again.')
    restored = inspect(name)
    assert restored['Id'] == original['Id'] and restored['State']['Running']
    assert sandbox.docker('exec', name, 'cat', '/data/file').strip() == 'precious'
    assert names_like('bad-%s-%s' % (kind, unique)) == [name]
    assert result['summary']['rolled_back'] == 1
    assert os.listdir(os.path.join(state_dir, 'journal')) == []


@pytest.mark.engines
def test_without_rollback_the_failed_container_and_the_backup_are_left(
        docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('norb-' + unique, repo + ':1')
    containers.names.append(name + '.patchops-backup')
    original = inspect(name)
    sandbox.publish(repo + ':1', cmd=['sh', '-c', 'exit 3'])

    result = update(docker_host, state_dir, [name], rollback=False)

    assert result.failed
    entry = by_name(result)[name]
    assert entry['action'] == 'failed'
    assert name + '.patchops-backup' in entry['message']
    assert inspect(name + '.patchops-backup')['Id'] == original['Id']
    assert inspect(name)['Id'] != original['Id']


@pytest.mark.engines
def test_dependents_are_recreated_after_what_they_depend_on_and_work(
        docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    net = 'net-' + unique
    sandbox.docker('network', 'create', net)
    try:
        db = containers.run('db-' + unique, repo + ':1', '--network', net)
        sidecar = containers.run('side-' + unique, repo + ':1', '--network', 'container:' + db)
        app = containers.run('app-' + unique, repo + ':1', '--network', net,
                             '--label', 'patchops.docker.depends-on=' + db)
        sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})

        # Asked in the "wrong" order, and without the sidecar: it must follow db anyway.
        result = update(docker_host, state_dir, [app, db])

        assert not result.failed, result
        order = [entry['name'] for entry in result['containers']]
        assert order.index(db) < order.index(app)
        assert order.index(db) < order.index(sidecar)
        assert by_name(result)[sidecar]['action'] == 'updated'
        new_db = inspect(db)
        side = inspect(sidecar)
        assert side['HostConfig']['NetworkMode'] == 'container:' + new_db['Id']
        assert side['State']['Running']
        # The sidecar shares db's network namespace again.
        assert sandbox.docker('exec', sidecar, 'hostname').strip() == sandbox.docker('exec', db, 'hostname').strip()
    finally:
        containers.cleanup()
        containers.names = []
        sandbox.docker('network', 'rm', net, check=False)


def swap_events(since, until):
    """{(container name, action): [engine time]} of the container events between two times."""
    out = sandbox.docker('events', '--since', '%.6f' % since, '--until', '%.6f' % until,
                         '--filter', 'type=container', '--format', '{{json .}}')
    found = {}
    for line in out.splitlines():
        event = json.loads(line)
        name = event['Actor']['Attributes'].get('name')
        found.setdefault((name, event['Action']), []).append(event['timeNano'] / 1e9)
    return found


def test_max_parallel_swaps_independent_containers_side_by_side_and_keeps_order_where_it_matters(
        docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    alone_a = containers.run('pa-' + unique, repo + ':1')
    alone_b = containers.run('pb-' + unique, repo + ':1')
    db = containers.run('pdb-' + unique, repo + ':1')
    side = containers.run('pside-' + unique, repo + ':1', '--network', 'container:' + db)
    compose = ('--label', 'com.docker.compose.project=p' + unique, '--label', 'com.docker.compose.service=web')
    web1 = containers.run('pweb1-' + unique, repo + ':1', *compose)
    web2 = containers.run('pweb2-' + unique, repo + ':1', *compose)
    new_id = sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})['id']
    since = time.time()

    result = update(docker_host, state_dir, [alone_a, alone_b, db, web1, web2], stable_seconds=2, max_parallel=3)

    until = time.time() + 1
    assert not result.failed, result
    assert {n: e['action'] for n, e in by_name(result).items()} == dict.fromkeys(
        [alone_a, alone_b, db, side, web1, web2], 'updated')
    for name in (alone_a, alone_b, db, side, web1, web2):
        assert inspect(name)['Image'] == new_id and inspect(name)['State']['Running']
    assert inspect(side)['HostConfig']['NetworkMode'] == 'container:' + inspect(db)['Id']
    events = swap_events(since, until)

    def stopped(name):
        return events[(name, 'kill')][0]

    def done(name):  # the backup's removal: the end of that container's swap, after its gate
        return events[(name + '.patchops-backup', 'destroy')][0]

    # Independent containers were swapped side by side: the later one stopped before the earlier one's swap ended.
    first, second = sorted((alone_a, alone_b), key=stopped)
    assert stopped(second) < done(first)
    # What depends on something, and the replicas of one Compose service, one after another.
    assert done(db) < stopped(side)
    first, second = sorted((web1, web2), key=stopped)
    assert done(first) < stopped(second)


def test_hooks_run_and_a_failing_pre_update_hook_skips(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    ok = containers.run('hook-ok-' + unique, repo + ':1',
                        '--label', 'patchops.docker.pre-update=echo draining',
                        '--label', 'patchops.docker.post-update=echo warmed up; hostname')
    veto = containers.run('hook-veto-' + unique, repo + ':1',
                          '--label', 'patchops.docker.pre-update=echo busy; exit 4')
    veto_id = inspect(veto)['Id']
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})

    result = update(docker_host, state_dir, [ok, veto])

    entries = by_name(result)
    assert entries[ok]['action'] == 'updated'
    assert entries[ok]['pre_update'] == {'command': 'echo draining', 'exit_code': 0, 'output': 'draining'}
    assert entries[ok]['post_update']['output'].startswith('warmed up')
    assert entries[veto]['action'] == 'skipped'
    assert entries[veto]['pre_update']['exit_code'] == 4 and entries[veto]['pre_update']['output'] == 'busy'
    assert inspect(veto)['Id'] == veto_id
    assert not result.failed, 'a veto is not a failure'


def test_a_hanging_pre_update_hook_skips_its_container_and_the_run_goes_on(
        docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    hangs = containers.run('hook-hang-' + unique, repo + ':1', '--label', 'patchops.docker.pre-update=sleep 300')
    other = containers.run('hook-next-' + unique, repo + ':1')
    hangs_id = inspect(hangs)['Id']
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})

    result = update(docker_host, state_dir, [hangs, other], health_timeout=3)

    entries = by_name(result)
    assert entries[hangs]['action'] == 'skipped'
    assert entries[hangs]['message'] == ('The pre-update hook did not finish within 3 s (it may still run in the '
                                         'container); nothing was changed.')
    assert entries[hangs]['pre_update']['exit_code'] is None
    assert inspect(hangs)['Id'] == hangs_id and inspect(hangs)['State']['Running']
    assert entries[other]['action'] == 'updated'
    assert not result.failed, result


@pytest.mark.engines
def test_pull_policies(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('pull-' + unique, repo + ':1')
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})

    never = update(docker_host, state_dir, [name], pull='never')
    missing = update(docker_host, state_dir, [name], pull='missing')
    assert by_name(never)[name]['action'] == 'unchanged'
    assert by_name(missing)[name]['action'] == 'unchanged', 'the tag is on the host, so missing does not pull'

    sandbox.docker('pull', repo + ':1')  # the tag moves on the host (as after a local build)
    never_again = update(docker_host, state_dir, [name], pull='never')
    assert by_name(never_again)[name]['action'] == 'updated'


def test_min_image_age_defers_fresh_images_and_accepts_older_ones(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    sandbox.publish(repo + ':2', cmd=SLEEPER)
    fresh = containers.run('fresh-' + unique, repo + ':1')
    seasoned = containers.run('seasoned-' + unique, repo + ':2')
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': 'today'})
    sandbox.aged(repo + ':2', 10, cmd=SLEEPER, labels={'v': 'ten days'}, push=True)
    fresh_id = inspect(fresh)['Id']

    result = update(docker_host, state_dir, [fresh, seasoned], min_image_age_days=5)

    entries = by_name(result)
    assert entries[fresh]['action'] == 'deferred'
    assert 'min_image_age_days is 5' in entries[fresh]['message']
    assert inspect(fresh)['Id'] == fresh_id
    assert entries[seasoned]['action'] == 'updated'


@pytest.mark.engines
def test_cleanup_removes_a_superseded_image_only_when_unused(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    sandbox.publish(repo + ':2', cmd=SLEEPER)
    alone = containers.run('alone-' + unique, repo + ':1')
    shared_a = containers.run('shared-a-' + unique, repo + ':2')
    containers.run('shared-b-' + unique, repo + ':2')
    alone_old = inspect(alone)['Image']
    shared_old = inspect(shared_a)['Image']
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    sandbox.publish(repo + ':2', cmd=SLEEPER, labels={'v': '2'})

    update(docker_host, state_dir, [alone, shared_a], cleanup=True)

    images = sandbox.docker('images', '-q', '--no-trunc').split()
    assert alone_old not in images
    assert shared_old in images, 'shared-b still runs it'


def test_unknown_container_fails_before_anything_is_touched(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('known-' + unique, repo + ':1')
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    container_id = inspect(name)['Id']

    result = update(docker_host, state_dir, [name, 'ghost-' + unique])

    assert result.failed
    assert result['msg'] == "Container 'ghost-%s' not found on %s." % (unique, docker_host)
    assert inspect(name)['Id'] == container_id


def start_and_kill_at(point, docker_host, state_dir, name):
    """Start a container_update run that pauses at ``point`` of the swap, and SIGKILL it there."""
    args = dict(FAST, docker_host=docker_host, containers=[name], state_dir=state_dir)
    cmd = ['ansible', 'localhost', '-c', 'local', '-i', 'localhost,', '-e',
           'ansible_python_interpreter=%s' % target_python(), '-m', 'patchops.docker.container_update',
           '-a', json.dumps(args)]
    env = dict(os.environ, PATCHOPS_DOCKER_TEST_PAUSE_AT=point)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    journal = os.path.join(state_dir, 'journal')
    wanted_stage = {'stopped': 'stopping', 'renamed': 'renamed', 'created': 'created', 'started': 'created'}[point]

    def reached():
        files = os.listdir(journal) if os.path.isdir(journal) else []
        if not files:
            return None
        try:
            with open(os.path.join(journal, files[0])) as handle:
                entry = json.load(handle)
        except ValueError:
            return None
        if entry['stage'] != wanted_stage:
            return None
        if point == 'stopped' and inspect(name)['State']['Running']:
            return None
        if point == 'started' and not inspect(name)['State']['Running']:
            return None
        return entry

    deadline = time.time() + 60
    entry = reached()
    while entry is None:
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError('the run never reached %s' % point)
        time.sleep(0.2)
        entry = reached()
    time.sleep(0.3)
    # The module's own process (ansible-core 2.19+ runs it outside the CLI's process group).
    os.kill(entry['pid'], signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.engines
@pytest.mark.parametrize('point', ['stopped', 'renamed', 'created', 'started'])
def test_a_run_killed_mid_swap_is_put_right_by_the_next(docker_host, state_dir, containers, repo, unique, point):
    sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'])
    name = containers.run('crash-%s-%s' % (point, unique), repo + ':1', '-e', 'DB_PASSWORD=swordfish')
    containers.names.append(name + '.patchops-backup')
    sandbox.docker('exec', name, 'sh', '-c', 'echo precious > /data/file')
    sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'], labels={'v': '2'})

    start_and_kill_at(point, docker_host, state_dir, name)

    # What a non-root user could read of the journal: nothing, and it holds no environment values.
    journal = os.path.join(state_dir, 'journal')
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o700
    for file_name in os.listdir(journal):
        path = os.path.join(journal, file_name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as handle:
            assert 'swordfish' not in handle.read()

    result = update(docker_host, state_dir, [name])

    assert not result.failed, result
    assert [r['name'] for r in result['recovered']] == [name]
    assert result['recovered'][0]['action'] == 'restored'
    assert by_name(result)[name]['action'] == 'updated'
    assert names_like('crash-%s-%s' % (point, unique)) == [name]
    assert inspect(name)['State']['Running']
    assert sandbox.docker('exec', name, 'cat', '/data/file').strip() == 'precious'


@pytest.mark.engines
def test_a_run_killed_with_several_swaps_in_flight_is_put_right_by_the_next(
        docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'])
    names = [containers.run('crashp%d-%s' % (n, unique), repo + ':1') for n in range(2)]
    for name in names:
        containers.names.append(name + '.patchops-backup')
        sandbox.docker('exec', name, 'sh', '-c', 'echo %s > /data/file' % name)
    sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'], labels={'v': '2'})
    args = dict(FAST, docker_host=docker_host, containers=names, state_dir=state_dir, max_parallel=2)
    cmd = ['ansible', 'localhost', '-c', 'local', '-i', 'localhost,', '-e',
           'ansible_python_interpreter=%s' % target_python(), '-m', 'patchops.docker.container_update',
           '-a', json.dumps(args)]
    proc = subprocess.Popen(cmd, env=dict(os.environ, PATCHOPS_DOCKER_TEST_PAUSE_AT='renamed'),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = os.path.join(state_dir, 'journal')

    def entries():
        found = []
        for file_name in (os.listdir(journal) if os.path.isdir(journal) else []):
            try:
                with open(os.path.join(journal, file_name)) as handle:
                    found.append(json.load(handle))
            except ValueError:
                continue
        return found

    deadline = time.time() + 60
    while sorted(e['stage'] for e in entries()) != ['renamed', 'renamed']:
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError('the two swaps never both reached renamed: %s' % entries())
        time.sleep(0.2)
    os.kill(entries()[0]['pid'], signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # Both originals are stopped under their backup names: neither name is taken.
    assert [names_like(name) for name in names] == [[name + '.patchops-backup'] for name in names]

    result = update(docker_host, state_dir, names)

    assert not result.failed, result
    assert sorted((r['name'], r['action']) for r in result['recovered']) == [(n, 'restored') for n in sorted(names)]
    assert [by_name(result)[n]['action'] for n in names] == ['updated', 'updated']
    for name in names:
        assert names_like(name) == [name]
        assert inspect(name)['State']['Running']
        assert sandbox.docker('exec', name, 'cat', '/data/file').strip() == name


@pytest.mark.engines
def test_a_swap_killed_after_its_gate_is_completed_by_the_next_run(docker_host, state_dir, containers, repo, unique):
    # What a kill between the passed health gate and the backup's removal leaves: the new container
    # running under the name, the old one stopped as the backup, the journal entry at stage 'healthy'.
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = 'done-' + unique
    old_id = containers.create(name + '.patchops-backup', repo + ':1')
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    sandbox.docker('pull', repo + ':1')
    new = containers.run(name, repo + ':1')
    new_id = inspect(new)['Id']
    journal = os.path.join(state_dir, 'journal')
    os.makedirs(journal, mode=0o700)
    entry = dict(old_id=inspect(old_id)['Id'], name=name, backup=name + '.patchops-backup', was_running=True,
                 stage='healthy', new_id=new_id, started=time.time(), pid=999999)
    with open(os.path.join(journal, '%s.json' % entry['old_id']), 'w') as handle:
        json.dump(entry, handle)

    result = update(docker_host, state_dir, [name])

    assert not result.failed, result
    assert [(r['name'], r['action']) for r in result['recovered']] == [(name, 'completed')]
    # the backup is gone and the new container, already on the newest image, was kept as it is
    assert names_like(name) == [name]
    assert inspect(name)['Id'] == new_id and inspect(name)['State']['Running']
    assert by_name(result)[name]['action'] == 'unchanged'
    assert os.listdir(journal) == []


def everything_about(prefix):
    """Every container whose name starts with ``prefix``: ID, name, state, as the engine lists them."""
    return sorted(sandbox.docker('ps', '-a', '--no-trunc', '--filter', 'name=' + prefix,
                                 '--format', '{{.ID}} {{.Names}} {{.State}}').splitlines())


@pytest.mark.engines
def test_image_age_info_reports_a_killed_swap_and_puts_it_right_only_when_asked(
        docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('crash-info-' + unique, repo + ':1')
    containers.names.append(name + '.patchops-backup')
    original_id = inspect(name)['Id']
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    start_and_kill_at('created', docker_host, state_dir, name)
    journal = sorted(os.listdir(os.path.join(state_dir, 'journal')))
    left = everything_about('crash-info-' + unique)
    assert len(left) == 2, left  # the new container under the name, the original under the backup name
    interrupted = [dict(name=name, stage='created', backup=name + '.patchops-backup')]

    # Read-only by default, and in check mode whatever recover says: listed, nothing touched.
    for check, args in ((False, {}), (True, dict(recover=True))):
        listed = run_module('image_age_info', dict(docker_host=docker_host, containers=[name], state_dir=state_dir,
                                                   **args), check=check)
        assert not listed.failed, listed
        assert listed['changed'] is False
        assert (listed['recovered'], listed['interrupted']) == ([], interrupted)
        assert everything_about('crash-info-' + unique) == left
        assert sorted(os.listdir(os.path.join(state_dir, 'journal'))) == journal

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name], state_dir=state_dir,
                                               recover=True))

    assert not result.failed, result
    assert result['interrupted'] == []
    assert [(r['name'], r['action']) for r in result['recovered']] == [(name, 'restored')]
    assert result['changed'] is True
    assert names_like('crash-info-' + unique) == [name]
    assert inspect(name)['Id'] == original_id and inspect(name)['State']['Running']
    assert result['containers'][0]['update_available'] is True


def test_two_runs_at_once_do_not_interleave(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    names = [containers.run('twin-%d-%s' % (i, unique), repo + ':1') for i in range(2)]
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    args = dict(docker_host=docker_host, containers=names, state_dir=state_dir, stable_seconds=2)
    cmd = ['ansible', 'localhost', '-c', 'local', '-i', 'localhost,', '-e',
           'ansible_python_interpreter=%s' % target_python(), '-m', 'patchops.docker.container_update',
           '-a', json.dumps(args)]
    env = dict(os.environ, ANSIBLE_NOCOLOR='1')
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]

    actions = sorted(out.count('"action": "updated"') for out in outputs)
    assert actions == [0, 2], outputs
    assert sum(out.count('"action": "unchanged"') for out in outputs) == 2
    for name in names:
        assert names_like(name) == [name]
        assert inspect(name)['State']['Running']


@pytest.mark.engines
def test_target_previous_returns_to_the_image_before_the_last_run(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'])
    name = containers.run('prev-' + unique, repo + ':1')
    sandbox.docker('exec', name, 'sh', '-c', 'echo precious > /data/file')
    first_image = inspect(name)['Image']
    sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'], labels={'v': '2'})
    updated = update(docker_host, state_dir, [name], cleanup=True, keep_previous=True)
    assert by_name(updated)[name]['action'] == 'updated'
    nothing_new = update(docker_host, state_dir, [name], cleanup=True, keep_previous=True)
    assert by_name(nothing_new)[name]['action'] == 'unchanged'
    assert first_image in sandbox.docker('images', '-q', '--no-trunc').split(), 'kept for a rollback'

    back = update(docker_host, state_dir, [name], target='previous')

    entry = by_name(back)[name]
    assert entry['action'] == 'updated' and entry['new_image_id'] == first_image
    assert inspect(name)['Image'] == first_image
    assert inspect(name)['Config']['Image'] == repo + ':1', 'the container still follows its tag'
    assert json.loads(sandbox.docker('image', 'inspect', repo + ':1'))[0]['Id'] == first_image
    assert sandbox.docker('exec', name, 'cat', '/data/file').strip() == 'precious'
    again = update(docker_host, state_dir, [name], target='previous')
    assert by_name(again)[name]['action'] == 'unchanged', 'a rollback is not recorded as a run to roll back'


@pytest.mark.engines
def test_keep_previous_images_are_removed_by_the_next_cleanup_run(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('keepprev-' + unique, repo + ':1')
    first_image = inspect(name)['Image']
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    update(docker_host, state_dir, [name], cleanup=True, keep_previous=True)
    second_image = inspect(name)['Image']
    assert first_image in sandbox.docker('images', '-q', '--no-trunc').split()
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '3'})

    update(docker_host, state_dir, [name], cleanup=True, keep_previous=True)

    images = sandbox.docker('images', '-q', '--no-trunc').split()
    assert first_image not in images, 'superseded two runs ago: removed'
    assert second_image in images, 'superseded by this run: kept until the next'


@pytest.mark.engines
def test_a_pull_that_fails_changes_nothing(docker_host, state_dir, containers, repo, unique):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    name = containers.run('nopull-' + unique, repo + ':1', '-e', 'API_KEY=opensesame')
    container_id = inspect(name)['Id']
    sandbox.registry_stop()
    try:
        result = update(docker_host, state_dir, [name])
    finally:
        sandbox.registry_start()

    assert result.failed
    entry = by_name(result)[name]
    assert entry['action'] == 'failed'
    assert entry['message'].startswith('Nothing was changed: pull failed: ')
    assert sandbox.info()['registry'] in entry['message']
    assert inspect(name)['Id'] == container_id and inspect(name)['State']['Running']
    assert 'opensesame' not in result.stdout + result.stderr
    assert 'Traceback' not in result.stdout + result.stderr


def test_an_unreachable_daemon_is_one_sentence(state_dir, tmp_path):
    missing = 'unix://%s/docker.sock' % tmp_path

    result = update(missing, state_dir, ['web'])

    assert result.failed
    assert result['msg'].startswith('Cannot connect to the Docker daemon at %s: ' % missing)
    assert 'Traceback' not in result.stdout + result.stderr
    assert not os.path.exists(state_dir), 'nothing was written'
