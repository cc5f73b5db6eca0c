"""The docker CLI and Compose against the sandbox engine (or a fleet host's, or a side engine's): docker(),
compose().
"""

from __future__ import annotations

import os
import shutil
import subprocess

from .engine26 import _ensure_engine26
from .errors import SandboxError
from .paths import _paths
from .processes import _which
from .settings import DOCKER_CLI_ENV


def _docker_bin():
    forced = os.environ.get(DOCKER_CLI_ENV, '').strip()
    if forced:
        return forced
    found = shutil.which('docker') or _which('docker')
    if not found:
        raise SandboxError('no docker CLI on PATH (run "up" to install docker.io)')
    return found


def _docker_bin_or_none():
    try:
        return _docker_bin()
    except SandboxError:
        return None


def _client_env(p, extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ('DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_TLS',
                        'DOCKER_API_VERSION')}
    env['DOCKER_HOST'] = 'unix://' + p.sock
    env['DOCKER_BUILDKIT'] = '0'
    env['DOCKER_CONFIG'] = p.client_config
    env['DOCKER_CLI_HINTS'] = 'false'
    if extra:
        env.update(extra)
    return env


def _run_docker(args, check=True, input=None, env=None, timeout=None, binary=False, sock=None):
    """The docker CLI against the sandbox engine, or against the engine on ``sock`` (a fleet host)."""
    p = _paths()
    if not os.path.isdir(p.client_config):
        os.makedirs(p.client_config, exist_ok=True)
    sock = sock or p.sock
    cmd = [_docker_bin(), '-H', 'unix://' + sock] + [str(a) for a in args]
    if isinstance(input, str):
        input = input.encode()
    env = dict(env or {}, DOCKER_HOST='unix://' + sock)
    proc = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=_client_env(p, env), timeout=timeout, check=False)
    out = proc.stdout if binary else proc.stdout.decode('utf-8', 'replace')
    err = proc.stderr.decode('utf-8', 'replace')
    if check and proc.returncode != 0:
        shown = ' '.join(cmd[3:])
        raise SandboxError('docker %s failed (exit %d): %s' % (shown, proc.returncode, err.strip()),
                           cmd=cmd, returncode=proc.returncode,
                           stdout=out if not binary else '', stderr=err)
    return out


def docker(*args, check=True, input=None, env=None, timeout=None) -> str:
    """Run the docker CLI against the sandbox engine; return stdout.

    Raises SandboxError (message and ``.stderr`` carry the command's stderr) when it fails and
    ``check`` is true. ``input`` (str or bytes) goes to stdin, ``env`` adds environment variables.
    """
    return _run_docker(args, check=check, input=input, env=env, timeout=timeout)


def compose(*args, version=2, project_dir=None, check=True, env=None, timeout=600) -> str:
    """Run Compose against the sandbox engine (DOCKER_HOST set); return stdout.

    version=2: Compose v2 (2.26, the standalone binary of Debian 13's docker-compose, from the Engine 26 cache,
    fetched when missing, whatever engine runs); version=1: Debian 12's docker-compose 1.29. project_dir is
    the working directory (where docker-compose.yml is). Raises SandboxError when it fails and check is true.
    """
    p = _paths()
    if int(version) == 2:
        binary = os.path.join(_ensure_engine26(), 'bin', 'docker-compose')
    elif int(version) == 1:
        binary = _which('docker-compose')
        if not binary:
            raise SandboxError('no docker-compose (v1) on this machine: run "up" to install Debian\'s')
    else:
        raise ValueError('compose version is 1 or 2, not %r' % (version,))
    os.makedirs(p.client_config, exist_ok=True)
    cmd = [binary] + [str(a) for a in args]
    proc = subprocess.run(cmd, cwd=project_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=_client_env(p, dict(env or {}, COMPOSE_INTERACTIVE_NO_CLI='1')), timeout=timeout,
                          check=False)
    out, err = proc.stdout.decode('utf-8', 'replace'), proc.stderr.decode('utf-8', 'replace')
    if check and proc.returncode != 0:
        raise SandboxError('compose v%d %s failed (exit %d): %s'
                           % (int(version), ' '.join(cmd[1:]), proc.returncode, err.strip()),
                           cmd=cmd, returncode=proc.returncode, stdout=out, stderr=err)
    return out
