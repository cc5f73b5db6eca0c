"""AWX job slicing: each slice runs the patch playbook and writes its own report; merge_reports makes one.

Both slices and the merge run under ansible-runner, as AWX runs them: each slice a private data dir of its own
with one inventory host (two "hosts" on the sandbox engine, told apart by include patterns).
"""
import json
import os
import subprocess

import pytest

from conftest import SLEEPER, sandbox, target_python

pytestmark = pytest.mark.once


def runner(private, playbook, extravars, hosts, ident):
    """ansible-runner run PRIVATE with PLAYBOOK (imported by FQCN), INVENTORY lines and EXTRAVARS."""
    for sub in ('project', 'inventory', 'env'):
        (private / sub).mkdir(parents=True, exist_ok=True)
    (private / 'project' / 'play.yml').write_text('- ansible.builtin.import_playbook: %s\n' % playbook)
    (private / 'inventory' / 'hosts').write_text(''.join('%s ansible_connection=local\n' % h for h in hosts))
    (private / 'env' / 'extravars').write_text(json.dumps(extravars))
    binary = os.path.join(os.path.dirname(subprocess.check_output(['which', 'ansible-playbook'], text=True)),
                          'ansible-runner')
    proc = subprocess.run([binary, 'run', str(private), '-p', 'play.yml', '--ident', ident], capture_output=True,
                          text=True, timeout=900, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (private / 'artifacts' / ident / 'status').read_text().strip() == 'successful'
    return proc


def test_two_slices_are_merged_into_one_fleet_report(sb, containers, unique, tmp_path):
    repo = '%s/itest/merge-%s' % (sb['registry'], unique)
    sandbox.publish(repo + ':1', cmd=SLEEPER)
    for name in ('a1', 'a2', 'b1'):
        containers.run('%s-%s' % (name, unique), repo + ':1')
    sandbox.publish(repo + ':1', cmd=SLEEPER, labels={'v': '2'})
    reports = tmp_path / 'reports'
    common = dict(patch_containers_docker_host=sb['docker_host'], patch_containers_stable_seconds=1,
                  ansible_python_interpreter=target_python())
    for slice_name, host, pattern in (('slice1', 'docker-a', 'a*-%s' % unique), ('slice2', 'docker-b', 'b*-%s' % unique)):
        runner(tmp_path / slice_name, 'patchops.docker.patch_containers',
               dict(common, patch_containers_include=[pattern], patch_containers_hosts=host,
                    patch_containers_state_dir=str(tmp_path / ('state-' + host)),
                    patch_containers_report_dir=str(reports / slice_name)), [host], slice_name)

    proc = runner(tmp_path / 'merge', 'patchops.docker.merge_reports',
                  dict(merge_reports_inputs=str(reports), merge_reports_dir=str(tmp_path / 'window'),
                       ansible_python_interpreter=target_python()), ['localhost'], 'merge')

    merged = json.loads((tmp_path / 'window' / 'patch-report.json').read_text())
    assert [h['name'] for h in merged['hosts']] == ['docker-a', 'docker-b']
    updated = dict((h['name'], sorted(c['name'] for c in h['containers'] if c['action'] == 'updated'))
                   for h in merged['hosts'])
    assert updated == {'docker-a': ['a1-%s' % unique, 'a2-%s' % unique], 'docker-b': ['b1-%s' % unique]}
    assert (merged['summary']['hosts_patched'], merged['summary']['updated'], merged['run']['merged_reports']) == \
        (2, 3, 2)
    markdown = (tmp_path / 'window' / 'patch-report.md').read_text()
    assert '## docker-a — patched' in markdown and '## docker-b — patched' in markdown
    assert '<h2>Hosts not patched</h2>' in (tmp_path / 'window' / 'patch-report.html').read_text()
    assert '2 reports, 2 hosts (0 failed)' in proc.stdout

    # Merging again writes the same hosts: the merged report in the output directory is never an input.
    runner(tmp_path / 'merge', 'patchops.docker.merge_reports',
           dict(merge_reports_inputs=[str(reports / 'slice1'), str(reports / 'slice2' / 'patch-report.json')],
                merge_reports_dir=str(tmp_path / 'window'), ansible_python_interpreter=target_python()),
           ['localhost'], 'merge-again')
    again = json.loads((tmp_path / 'window' / 'patch-report.json').read_text())
    assert again['hosts'] == merged['hosts']


def test_merge_reports_without_inputs_says_what_to_set(tmp_path):
    proc = subprocess.run(['ansible-playbook', '-i', 'localhost,', 'patchops.docker.merge_reports'],
                          capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0'))
    assert proc.returncode != 0
    assert 'Set merge_reports_inputs (a directory, a patch-report.json file, or a list of them) and merge_reports_dir' \
        in proc.stdout
