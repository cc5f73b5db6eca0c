"""The Docker engine stopped and started again between two steps of a swap (issue 6, item 2).

Each run of container_update is paused at one step of its swap (the test pause env of swap.py), the
sandbox's dockerd is stopped by its pid and started again with the same arguments, and the run is let
go on. Without live-restore, the engine stops every container on its way down and starts again only
those whose restart policy says so, so both a plain container and a ``--restart unless-stopped`` one
are tried at every step. Many runs wait at their pause points at the same time, so that one engine
restart serves them all.
"""
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import _RESULT_START, SLEEPER, ModuleRun, run_module, sandbox, target_python

pytestmark = pytest.mark.once

FAST = dict(stable_seconds=1, health_timeout=20)
POINTS = ('stopped', 'renamed', 'created', 'started')
STAGE_AT = {'stopped': 'stopping', 'renamed': 'renamed', 'created': 'created', 'started': 'created'}


@pytest.fixture
def repo(sb, unique):
    return '%s/itest/eng-%s' % (sb['registry'], unique)


def inspect(name):
    return json.loads(sandbox.docker('inspect', name))[0]


def names_like(prefix):
    return sorted(n for n in sandbox.docker('ps', '-a', '--format', '{{.Names}}').split() if n.startswith(prefix))


class PausedRun:
    """A container_update run of one container that waits at ``point`` until the resume file exists."""

    def __init__(self, docker_host, name, point, workdir):
        self.name, self.point = name, point
        self.state_dir = os.path.join(workdir, 'state-' + name)
        self.resume = os.path.join(workdir, 'resume')
        args = dict(FAST, docker_host=docker_host, containers=[name], state_dir=self.state_dir)
        cmd = ['ansible', 'localhost', '-c', 'local', '-i', 'localhost,', '-e',
               'ansible_python_interpreter=%s' % target_python(), '-m', 'patchops.docker.container_update',
               '-a', json.dumps(args)]
        env = dict(os.environ, ANSIBLE_NOCOLOR='1', PATCHOPS_DOCKER_TEST_PAUSE_AT=point,
                   PATCHOPS_DOCKER_TEST_RESUME_FILE=self.resume)
        self.began = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)

    def entry(self):
        journal = os.path.join(self.state_dir, 'journal')
        for file_name in os.listdir(journal) if os.path.isdir(journal) else []:
            if not file_name.endswith('.json'):
                continue  # the journal writes NAME.json.tmp and renames it: that is not an entry yet
            try:
                with open(os.path.join(journal, file_name)) as handle:
                    return json.load(handle)
            except (ValueError, FileNotFoundError):
                return None
        return None

    def reached(self):
        entry = self.entry()
        if entry is None or entry['stage'] != STAGE_AT[self.point]:
            return False
        if self.point == 'stopped':
            return not inspect(entry['old_id'])['State']['Running']
        if self.point == 'started':
            return inspect(entry['new_id'])['State']['Running']
        return True

    def result(self, timeout=120):
        stdout, stderr = self.proc.communicate(timeout=timeout)
        self.seconds = time.monotonic() - self.began
        match = _RESULT_START.search(stdout)
        assert match, 'no module result for %s:\n%s\n%s' % (self.name, stdout, stderr)
        data = json.JSONDecoder().raw_decode(stdout[match.end():])[0]
        return ModuleRun(data, match.group(1), stdout, stderr, self.proc.returncode)


def pause_all(runs, timeout=90):
    deadline = time.monotonic() + timeout
    waiting = list(runs)
    while waiting:
        waiting = [run for run in waiting if not run.reached()]
        if waiting and time.monotonic() > deadline:
            for run in runs:
                run.proc.kill()
            raise AssertionError('never paused: %s' % ', '.join('%s at %s' % (r.name, r.point) for r in waiting))
        time.sleep(0.2)
    time.sleep(0.3)


def outdated_containers(containers, repo, prefix, combos):
    """One container per (point, policy), each with data in a volume, all one image behind the registry."""
    sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'])
    names = {}
    for point, policy in combos:
        name = '%s-%s-%s' % (prefix, point, policy)
        extra = ['--restart', 'unless-stopped'] if policy == 'always' else []
        containers.run(name, repo + ':1', *extra)
        containers.names.append(name + '.patchops-backup')
        sandbox.docker('exec', name, 'sh', '-c', 'echo precious-%s > /data/file' % point)
        names[(point, policy)] = name
    newer = sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'], labels={'v': '2'})
    return names, newer


def settle(name, image, data):
    """After the dust: one container under the name, running ``image``, its volume data there."""
    assert names_like(name) == [name], 'no backup left and no second container'
    current = inspect(name)
    assert current['State']['Running'], name
    assert current['Image'] == image, name
    assert sandbox.docker('exec', name, 'cat', '/data/file').strip() == data


def update(docker_host, name, state_dir):
    return run_module('container_update', dict(FAST, docker_host=docker_host, containers=[name], state_dir=state_dir))


COMBOS = [(point, policy) for point in POINTS for policy in ('plain', 'always')]


def test_engine_restarted_while_a_swap_waits(docker_host, containers, repo, unique, tmp_path):
    """The run goes on against the restarted engine and finishes the swap; only a new container that the
    engine stopped and did not start again (no restart policy) fails its gate and is rolled back."""
    names, newer = outdated_containers(containers, repo, 'rst-' + unique, COMBOS)
    originals = dict((name, inspect(name)['Id']) for name in names.values())
    runs = dict((combo, PausedRun(docker_host, names[combo], combo[0], str(tmp_path))) for combo in COMBOS)
    pause_all(runs.values())

    sandbox.engine_restart()
    open(str(tmp_path / 'resume'), 'w').close()
    results = dict((combo, run.result()) for combo, run in runs.items())

    for (point, policy), result in results.items():
        name = names[(point, policy)]
        assert 'Traceback' not in result.stdout + result.stderr, name
        entry = result['containers'][0]
        if point == 'started' and policy == 'plain':
            # the engine stopped the new container on its way down and, without a restart policy, left it so
            assert result.failed and entry['action'] == 'rolled_back', entry
            assert entry['message'] == ('The new container exited with code 0. The original container is running '
                                        'again.'), entry
            settle(name, inspect(originals[name])['Image'], 'precious-' + point)
            assert inspect(name)['Id'] == originals[name]
            result = update(docker_host, name, runs[(point, policy)].state_dir)
            entry = result['containers'][0]
        elif point == 'started':
            # started again by the engine before the gate began: it runs, on the new image
            assert entry['action'] in ('updated', 'rolled_back'), entry
            if entry['action'] == 'rolled_back':
                result = update(docker_host, name, runs[(point, policy)].state_dir)
                entry = result['containers'][0]
        assert not result.failed and entry['action'] == 'updated', (point, policy, entry)
        settle(name, newer['id'], 'precious-' + point)
        policy_now = inspect(name)['HostConfig']['RestartPolicy']['Name']
        assert policy_now == ('unless-stopped' if policy == 'always' else 'no')


def test_engine_down_when_a_swap_goes_on(docker_host, containers, repo, unique, tmp_path):
    """The run finds no engine: it fails saying so and keeps the swap in its journal; once the engine is
    back, image_age_info or the next container_update puts the original back, and the update after
    that goes through."""
    names, newer = outdated_containers(containers, repo, 'dwn-' + unique, COMBOS)
    originals = dict((name, inspect(name)['Id']) for name in names.values())
    runs = dict((combo, PausedRun(docker_host, names[combo], combo[0], str(tmp_path))) for combo in COMBOS)
    pause_all(runs.values())

    sandbox.engine_stop()
    try:
        open(str(tmp_path / 'resume'), 'w').close()
        results = dict((combo, run.result()) for combo, run in runs.items())
    finally:
        sandbox.engine_start()

    for combo, result in results.items():
        name = names[combo]
        assert 'Traceback' not in result.stdout + result.stderr, name
        assert result.failed
        entry = result['containers'][0]
        assert entry['action'] == 'failed', entry
        assert 'the Docker daemon did not answer' in entry['message'], entry['message']
        assert entry['message'].endswith('the journal keeps the swap for the next run to restore.'), entry['message']
        assert 'is gone' not in entry['message'], 'an engine out of reach is not a lost container'
        assert runs[combo].entry() is not None, 'the journal kept the swap'
        assert originals[name] in sandbox.docker('ps', '-aq', '--no-trunc').split(), 'the original still exists'

    def put_right_and_update(combo):
        point, policy = combo
        name, run = names[combo], runs[combo]
        checked = None
        if policy == 'plain':
            # the check's recovery (recover: true, as the role's update runs ask) puts the original back
            checked = run_module('image_age_info', dict(docker_host=docker_host, containers=[name],
                                                        state_dir=run.state_dir, recover=True))
            assert not checked.failed, checked
            assert [(r['name'], r['action']) for r in checked['recovered']] == [(name, 'restored')]
            settle(name, inspect(originals[name])['Image'], 'precious-' + point)
            assert inspect(name)['Id'] == originals[name]
        return checked, update(docker_host, name, run.state_dir)

    with ThreadPoolExecutor(max_workers=4) as pool:
        after = dict(zip(COMBOS, pool.map(put_right_and_update, COMBOS)))
    for (point, policy), (checked, result) in after.items():
        name = names[(point, policy)]
        if checked is not None:
            assert checked['containers'][0]['update_available'] is True
        assert not result.failed, result
        if policy == 'always':
            assert [(r['name'], r['action']) for r in result['recovered']] == [(name, 'restored')]
        assert result['containers'][0]['action'] == 'updated'
        settle(name, newer['id'], 'precious-' + point)
