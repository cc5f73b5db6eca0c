"""Integration fixtures: the real sandbox engine and registry, and real Ansible runs.

Modules are run through the ``ansible`` command on PATH (the controller venv
the Makefile puts first), against localhost, with the module side on
``PATCHOPS_TARGET_PYTHON`` (default: this interpreter).
"""
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tests' / 'sandbox'))

import sandbox  # noqa: E402  (tests/sandbox/sandbox, a package that is not installed)

_RESULT_START = re.compile(r'^\S+ \| (SUCCESS|CHANGED|FAILED!|UNREACHABLE!) => ', re.M)


class ModuleRun(dict):
    """A module's JSON result, with the raw output kept for assertions on what users see."""

    def __init__(self, data, status, stdout, stderr, returncode):
        super().__init__(data)
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode

    @property
    def failed(self):
        # Ansible's one-line output says FAILED! and leaves the 'failed' key out of the JSON.
        return self.status.startswith('FAILED') or bool(self.get('failed'))


def target_python():
    return os.environ.get('PATCHOPS_TARGET_PYTHON') or sys.executable


def run_module(module, args=None, check=False, diff=False, python=None, env=None, verbosity=0):
    """Run ``patchops.docker.<module>`` on localhost through the ``ansible`` CLI."""
    cmd = ['ansible', 'localhost', '-c', 'local', '-i', 'localhost,',
           '-e', 'ansible_python_interpreter=%s' % (python or target_python()),
           '-m', 'patchops.docker.%s' % module, '-a', json.dumps(args or {})]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if verbosity:
        cmd.append('-' + 'v' * verbosity)
    full_env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_DEPRECATION_WARNINGS='0',
                    ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600, check=False)
    match = _RESULT_START.search(proc.stdout)
    if not match:
        raise AssertionError('no module result in output:\n%s\n%s' % (proc.stdout, proc.stderr))
    data = json.JSONDecoder().raw_decode(proc.stdout[match.end():])[0]
    return ModuleRun(data, match.group(1), proc.stdout, proc.stderr, proc.returncode)


def run_playbook(playbook, extra_vars=None, check=False, env=None):
    cmd = ['ansible-playbook', '-i', 'localhost,', '-c', 'local', str(playbook),
           '-e', 'ansible_python_interpreter=%s' % target_python()]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    if check:
        cmd.append('--check')
    full_env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=900, check=False)


@pytest.fixture(scope='session')
def sb():
    """The sandbox's facts; brings it up when the Makefile has not already."""
    return sandbox.up()


@pytest.fixture(scope='session')
def docker_host(sb):
    return sb['docker_host']


@pytest.fixture
def unique():
    """A short unique suffix for names of this test's containers and repositories."""
    return uuid.uuid4().hex[:8]


class Containers:
    """Creates containers on the sandbox engine and removes them after the test."""

    def __init__(self):
        self.names = []

    def run(self, name, image, *docker_args, command=None, detach=True):
        args = ['run'] + (['-d'] if detach else []) + ['--name', name] + list(docker_args) + [image]
        args += list(command or [])
        sandbox.docker(*args)
        self.names.append(name)
        return name

    def create(self, name, image, *docker_args):
        sandbox.docker('create', '--name', name, *docker_args, image)
        self.names.append(name)
        return name

    def cleanup(self):
        if self.names:
            sandbox.docker('rm', '-f', '-v', *self.names, check=False)


@pytest.fixture
def containers(sb):
    made = Containers()
    yield made
    made.cleanup()


# A command that keeps a busybox container running and stops at once on SIGTERM.
SLEEPER = ['sh', '-c', "trap 'exit 0' TERM; sleep 86400 & wait"]
