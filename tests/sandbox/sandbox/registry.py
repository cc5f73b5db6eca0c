"""The registry on 127.0.0.1:5115 (Debian's docker-registry, distribution 2.8, plain HTTP, no auth, deletes
enabled): its config, start, wait, stop; registry_stop() and registry_start() for the fault tests.
"""

from __future__ import annotations

import json
import os
import time

from .errors import SandboxError
from .files import _tail, _write
from .lock import _locked
from .loopback import _port_open, _registry_request
from .paths import _paths
from .processes import _daemon_env, _pid_of, _running, _spawn, _stop_one, _which
from .settings import REGISTRY_ADDR, START_TIMEOUT


def _registry_pid(p):
    return _pid_of(p, 'registry', p.reg_config, 'docker-registry')


def _registry_up(p, timeout=2):
    return bool(_registry_pid(p)) and _registry_request('GET', '/v2/', timeout=timeout)[0] == 200


def _registry_config(p):
    # JSON is YAML
    return json.dumps({
        'version': 0.1,
        'log': {'level': 'info', 'formatter': 'text'},
        'storage': {
            'filesystem': {'rootdirectory': p.reg_root},
            'delete': {'enabled': True},
            'maintenance': {'uploadpurging': {'enabled': False}},
        },
        'http': {'addr': REGISTRY_ADDR, 'headers': {'X-Content-Type-Options': ['nosniff']}},
        'health': {'storagedriver': {'enabled': False}},
    }, indent=2) + '\n'


def _start_registry(p):
    pid = _registry_pid(p)
    if pid:
        return pid
    if _port_open(REGISTRY_ADDR):
        raise SandboxError('%s is already taken by a process this sandbox did not start' % REGISTRY_ADDR)
    os.makedirs(p.reg_root, exist_ok=True)
    _write(p.reg_config, _registry_config(p))
    pid = _spawn([_which('docker-registry'), 'serve', p.reg_config], p.log('registry'), _daemon_env())
    _write(p.pidfile('registry'), '%d\n' % pid)
    return pid


def _wait_registry(p, pid):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _registry_request('GET', '/v2/', timeout=2)[0] == 200:
            return
        if not _running(pid):
            break
        time.sleep(0.05)
    raise SandboxError('registry did not answer on %s; log %s:\n%s' % (REGISTRY_ADDR, p.log('registry'),
                                                                       _tail(p.log('registry'))))


def registry_stop() -> None:
    """Stop only the registry (its storage stays): the registry is "down"."""
    p = _paths()
    _stop_one(p, _registry_pid, p.reg_config, 'registry')


def registry_start() -> None:
    """Start the registry again (after registry_stop) and wait until it answers."""
    p = _paths()
    with _locked(p):
        if not os.path.isdir(p.state):
            raise SandboxError('the sandbox is not set up; run up() first')
        _wait_registry(p, _start_registry(p))
