"""A second registry on 127.0.0.1:5116 that wants basic auth (htpasswd, bcrypt), for the security tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid

from .errors import SandboxError
from .files import _read, _tail, _write
from .lock import _locked
from .loopback import _opener, _port_open
from .paths import _paths
from .processes import _alive, _daemon_env, _pids_matching, _running, _spawn, _stop_pid, _which
from .settings import START_TIMEOUT


AUTH_REGISTRY_ADDR = '127.0.0.1:5116'
AUTH_REGISTRY_USER = 'patchops'


class _AuthRegistryPaths:
    """The second registry: htpasswd (bcrypt) basic auth, plain HTTP on AUTH_REGISTRY_ADDR."""

    def __init__(self, p):
        self.dir = os.path.join(p.state, 'auth-registry')
        self.root = os.path.join(self.dir, 'storage')
        self.config = os.path.join(self.dir, 'registry.yml')
        self.htpasswd = os.path.join(self.dir, 'htpasswd')
        self.secret = os.path.join(self.dir, 'password')
        self.pidfile = p.pidfile('auth-registry')
        self.log = p.log('auth-registry')


def _auth_registry_pid(p, a):
    text = _read(a.pidfile, '') or ''
    pid = int(text.strip()) if text.strip().isdigit() else 0
    if _alive(pid, a.config):
        return pid
    found = _pids_matching(a.config, 'docker-registry')
    return found[0] if found else 0


def _auth_registry_status(timeout=2):
    req = urllib.request.Request('http://%s/v2/' % AUTH_REGISTRY_ADDR, method='GET')
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, http.client.HTTPException):
        return None


def _bcrypt_line(user, password):
    """'user:$2y$...' as `htpasswd -Bbn` writes it (distribution accepts only bcrypt entries)."""
    if _which('htpasswd'):
        out = subprocess.run([_which('htpasswd'), '-Bbn', user, password], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, check=True).stdout.decode()
        return out.strip()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        import crypt  # glibc's libxcrypt does bcrypt ($2b$)
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
    if not hashed or not hashed.startswith('$2'):
        raise SandboxError('no bcrypt here: install apache2-utils (htpasswd)')
    return '%s:%s' % (user, hashed)


def auth_registry_info() -> dict:
    """The basic-auth registry: address, user, password and whether it runs."""
    p = _paths()
    a = _AuthRegistryPaths(p)
    return {'registry': AUTH_REGISTRY_ADDR, 'user': AUTH_REGISTRY_USER,
            'password': (_read(a.secret, '') or '').strip() or None, 'htpasswd': a.htpasswd,
            'log': a.log, 'running': bool(_auth_registry_pid(p, a)) and _auth_registry_status() == 401}


def auth_registry_up() -> dict:
    """Start a second registry (Debian's docker-registry) on AUTH_REGISTRY_ADDR that wants basic auth
    (htpasswd, bcrypt) for everything; the password is random, made once per state dir. Idempotent.
    Returns auth_registry_info(). Log in with the docker CLI and a private DOCKER_CONFIG."""
    from .lifecycle import up  # here, not at the top: lifecycle imports this module for down()
    up()
    p = _paths()
    a = _AuthRegistryPaths(p)
    with _locked(p):
        if _auth_registry_pid(p, a) and _auth_registry_status() == 401:
            return auth_registry_info()
        os.makedirs(a.root, exist_ok=True)
        os.chmod(a.dir, 0o700)
        password = (_read(a.secret, '') or '').strip()
        if not password:
            password = uuid.uuid4().hex
            _write(a.secret, password + '\n', mode=0o600)
        _write(a.htpasswd, _bcrypt_line(AUTH_REGISTRY_USER, password) + '\n', mode=0o600)
        _write(a.config, json.dumps({
            'version': 0.1,
            'log': {'level': 'info', 'formatter': 'text'},
            'storage': {'filesystem': {'rootdirectory': a.root}, 'delete': {'enabled': True},
                        'maintenance': {'uploadpurging': {'enabled': False}}},
            'auth': {'htpasswd': {'realm': 'patchops-sandbox', 'path': a.htpasswd}},
            'http': {'addr': AUTH_REGISTRY_ADDR, 'headers': {'X-Content-Type-Options': ['nosniff']}},
            'health': {'storagedriver': {'enabled': False}},
        }, indent=2) + '\n', mode=0o600)
        if _port_open(AUTH_REGISTRY_ADDR):
            raise SandboxError('%s is already taken by a process this sandbox did not start' % AUTH_REGISTRY_ADDR)
        pid = _spawn([_which('docker-registry'), 'serve', a.config], a.log, _daemon_env())
        _write(a.pidfile, '%d\n' % pid)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if _auth_registry_status() == 401:
                return auth_registry_info()
            if not _running(pid):
                break
            time.sleep(0.05)
        raise SandboxError('auth registry did not answer on %s; log %s:\n%s' % (AUTH_REGISTRY_ADDR, a.log,
                                                                                _tail(a.log)))


def auth_registry_down(purge=False) -> dict:
    """Stop the basic-auth registry; with purge also delete its storage, htpasswd and password."""
    p = _paths()
    a = _AuthRegistryPaths(p)
    stopped = []
    with _locked(p):
        pid = _auth_registry_pid(p, a)
        if pid:
            _stop_pid(pid, a.config, name='auth registry')
            stopped.append('auth-registry')
        with contextlib.suppress(OSError):
            os.unlink(a.pidfile)
        if purge:
            shutil.rmtree(a.dir, ignore_errors=True)
    return {'stopped': stopped, 'purged': bool(purge)}
