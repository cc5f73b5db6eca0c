"""What AWX and a maintenance window need besides the role: the EE metadata and the example play."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ansible_builder_creates_the_execution_environment_context(tmp_path):
    builder = REPO / '.venv' / 'tools' / 'bin' / 'ansible-builder'
    assert builder.exists(), 'make venv installs ansible-builder into .venv/tools'

    # where podman is installed, ansible-builder would write a Containerfile unless told the file name
    proc = subprocess.run([str(builder), 'create', '-f', 'meta/execution-environment.yml', '--context',
                           str(tmp_path / 'context'), '--output-filename', 'Dockerfile'],
                          cwd=str(REPO), capture_output=True, text=True, timeout=300, check=False)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    build_file = (tmp_path / 'context' / 'Dockerfile').read_text()
    assert 'ansible-galaxy' in build_file
    requirements = (tmp_path / 'context' / '_build' / 'requirements.txt').read_text()
    assert 'docker>=7.0' in requirements


def test_the_maintenance_window_example_passes_syntax_check():
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    proc = subprocess.run([ansible_playbook, '--syntax-check', '-i', 'localhost,',
                           'docs/examples/maintenance_window.yml'], cwd=str(REPO), capture_output=True, text=True,
                          timeout=300, check=False)

    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_empty_inventory_patches_nothing_and_says_so(tmp_path):
    inventory = tmp_path / 'empty.yml'
    inventory.write_text('all:\n  hosts: {}\n')
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')

    proc = subprocess.run([ansible_playbook, '-i', str(inventory), 'patchops.docker.patch_containers'],
                          capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR='1'))

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'no hosts matched' in (proc.stdout + proc.stderr).lower()
