"""The patch_containers role and the playbooks, on the sandbox engine (localhost)."""
import json
import os
import subprocess

import pytest

from conftest import SLEEPER, sandbox, target_python


@pytest.fixture
def repo(sb, unique):
    return '%s/itest/role-%s' % (sb['registry'], unique)


@pytest.fixture
def play(docker_host, tmp_path, unique):
    """Run a playbook (a path, or an FQCN) on localhost with the role's connection and state dir."""
    state_dir = str(tmp_path / 'state')

    def run(playbook, check=False, tags=None, extra=None, env=None, raw_extra=None):
        extra_vars = dict(patch_containers_docker_host=docker_host, patch_containers_state_dir=state_dir,
                          patch_containers_include=['*-%s' % unique], patch_containers_hosts='localhost',
                          patch_containers_stable_seconds=1, ansible_python_interpreter=target_python())
        extra_vars.update(extra or {})
        cmd = ['ansible-playbook', '-i', 'localhost,', '-c', 'local', playbook, '-e', json.dumps(extra_vars)]
        for item in raw_extra or []:
            cmd += ['-e', item]
        if check:
            cmd.append('--check')
        if tags:
            cmd += ['--tags', tags]
        full_env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0',
                        ANSIBLE_CALLBACK_RESULT_FORMAT='json')
        full_env.update(env or {})
        return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=900, check=False)
    run.state_dir = state_dir
    return run


def inspect(name):
    return json.loads(sandbox.docker('inspect', name))[0]


def recap(proc):
    """'changed=N' and 'failed=N' of localhost from the PLAY RECAP."""
    line = [text for text in proc.stdout.splitlines() if text.startswith('localhost') and 'ok=' in text][-1]
    return dict(part.split('=') for part in line.split()[2:])


def outdated(containers, repo, unique, count=2):
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    names = [containers.run('c%d-%s' % (i, unique), repo + ':1') for i in range(count)]
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    return names


def report_actions(report_dir):
    """{name: action} of localhost's containers in the fleet report written into REPORT_DIR."""
    (host,) = json.loads((report_dir / 'patch-report.json').read_text())['hosts']
    return dict((c['name'], c['action']) for c in host['containers'])


# the role, its report and its rollback on every engine kind (keep_previous under the containerd store)
@pytest.mark.engines
def test_patch_playbook_updates_then_changes_nothing(play, containers, repo, unique, tmp_path):
    names = outdated(containers, repo, unique)
    skipped = containers.run('optout-%s' % unique, repo + ':1', '--label', 'patchops.docker.enable=false')
    before = dict((n, inspect(n)['Id']) for n in names + [skipped])

    first = play('patchops.docker.patch_containers')

    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first)['changed'] != '0'
    assert all(inspect(n)['Id'] != before[n] for n in names)
    assert inspect(skipped)['Id'] == before[skipped], 'patchops.docker.enable=false is left alone'

    second = play('patchops.docker.patch_containers', extra=dict(patch_containers_report_dir=str(tmp_path / 'r2')))

    assert second.returncode == 0, second.stdout + second.stderr
    assert recap(second)['changed'] == '0'
    # nothing was selected, so container_update did not run; the report still says what the run did with each
    actions = report_actions(tmp_path / 'r2')
    assert dict((n, actions[n]) for n in names + [skipped]) == dict([(n, 'unchanged') for n in names]
                                                                    + [(skipped, 'excluded')]), actions


def test_check_mode_changes_nothing_and_says_what_it_would_do(play, containers, repo, unique, tmp_path):
    names = outdated(containers, repo, unique)
    before = dict((n, inspect(n)['Id']) for n in names)

    proc = play('patchops.docker.patch_containers', check=True,
                extra=dict(patch_containers_report_dir=str(tmp_path / 'report')))

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(inspect(n)['Id'] == before[n] for n in names)
    report = json.loads((tmp_path / 'report' / 'patch-report.json').read_text())
    assert report['run']['check_mode'] is True
    host = report['hosts'][0]
    actions = dict((c['name'], c['action']) for c in host['containers'])
    assert all(actions[n] == 'would_update' for n in names), actions
    assert report['summary']['would_update'] == len(names)


def test_report_playbook_and_check_tag_change_nothing(play, containers, repo, unique, tmp_path):
    names = outdated(containers, repo, unique)
    before = dict((n, inspect(n)['Id']) for n in names)

    report = play('patchops.docker.image_age_report', extra=dict(patch_containers_report_dir=str(tmp_path / 'a')))
    tagged = play('patchops.docker.patch_containers', tags='patch_containers_check')
    reported = play('patchops.docker.patch_containers', tags='patch_containers_report',
                    extra=dict(patch_containers_report_dir=str(tmp_path / 'b')))

    assert report.returncode == 0 and tagged.returncode == 0, report.stdout + tagged.stdout
    assert reported.returncode == 0, reported.stdout + reported.stderr
    assert 'Update the selected containers' not in tagged.stdout + reported.stdout
    assert all(inspect(n)['Id'] == before[n] for n in names)
    # no update was wanted: no container has an action, not even 'unchanged'
    for report_dir in (tmp_path / 'a', tmp_path / 'b'):
        actions = report_actions(report_dir)
        assert [actions[n] for n in names] == [None] * len(names), actions


def test_a_wrong_variable_type_is_refused_before_anything_runs(play, containers, repo, unique):
    names = outdated(containers, repo, unique, count=1)
    before = inspect(names[0])['Id']

    proc = play('patchops.docker.patch_containers', raw_extra=['patch_containers_max_age_days=ten'])

    assert proc.returncode != 0
    assert 'patch_containers_max_age_days' in proc.stdout
    assert 'Check image age' not in proc.stdout
    assert inspect(names[0])['Id'] == before


@pytest.mark.engines
def test_rollback_playbook_returns_to_the_previous_images(play, containers, repo, unique):
    names = outdated(containers, repo, unique)
    first_images = dict((n, inspect(n)['Image']) for n in names)
    assert play('patchops.docker.patch_containers').returncode == 0
    assert all(inspect(n)['Image'] != first_images[n] for n in names)

    proc = play('patchops.docker.rollback_containers')

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(inspect(n)['Image'] == first_images[n] for n in names)


def test_include_role_inside_an_existing_play(play, containers, repo, unique, tmp_path, docker_host):
    names = outdated(containers, repo, unique, count=1)
    playbook = tmp_path / 'os_patch.yml'
    playbook.write_text('''
- name: An existing OS patch play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Pretend to patch OS packages
      ansible.builtin.debug:
        msg: apt upgrade would run here
    - name: Patch the containers
      ansible.builtin.include_role:
        name: patchops.docker.patch_containers
    - name: Use the result
      ansible.builtin.assert:
        that:
          - patch_containers_result.status == 'patched'
          - patch_containers_result.patch.summary.updated == 1
''')
    before = inspect(names[0])['Id']

    proc = play(str(playbook))

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert inspect(names[0])['Id'] != before


def test_playbook_runs_under_ansible_runner_and_publishes_set_stats(
        play, containers, repo, unique, tmp_path, docker_host):
    outdated(containers, repo, unique, count=1)
    private = tmp_path / 'runner'
    (private / 'project').mkdir(parents=True)
    (private / 'inventory').mkdir()
    (private / 'env').mkdir()
    (private / 'project' / 'patch.yml').write_text(
        '- ansible.builtin.import_playbook: patchops.docker.patch_containers\n')
    (private / 'inventory' / 'hosts').write_text('localhost ansible_connection=local\n')
    (private / 'env' / 'extravars').write_text(json.dumps(dict(
        patch_containers_docker_host=docker_host, patch_containers_state_dir=play.state_dir,
        patch_containers_include=['*-%s' % unique], patch_containers_hosts='localhost',
        patch_containers_stable_seconds=1, ansible_python_interpreter=target_python())))
    runner = os.path.join(os.path.dirname(subprocess.check_output(['which', 'ansible-playbook'], text=True)),
                          'ansible-runner')

    proc = subprocess.run([runner, 'run', str(private), '-p', 'patch.yml', '--ident', 'job1'],
                          capture_output=True, text=True, timeout=900, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR='1'))

    assert proc.returncode == 0, proc.stdout + proc.stderr
    artifacts = private / 'artifacts' / 'job1'
    assert (artifacts / 'rc').read_text().strip() == '0'
    assert (artifacts / 'status').read_text().strip() == 'successful'
    stats = None
    for event_file in (artifacts / 'job_events').iterdir():
        event = json.loads(event_file.read_text())
        if event.get('event') == 'playbook_on_stats':
            stats = event['event_data']['artifact_data']
    assert stats['patch_containers']['localhost']['status'] == 'patched'
    assert stats['patch_containers']['localhost']['patch']['updated'] == 1
