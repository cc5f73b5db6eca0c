"""The patchops.docker test sandbox: a private Docker engine and a registry on loopback.

Both a CLI (``python3 tests/sandbox/sandbox.py up``) and a module the tests import
(``sys.path.insert(0, 'tests/sandbox'); import sandbox``). Standard library only,
Python 3.9+, needs root (it starts dockerd).

What runs (all started by ``up``, all stopped by ``down``, by their pid files):

* ``containerd`` with its own config, socket and state (never the system one),
* ``dockerd`` on a private unix socket, its own bridge ``br-patchops0`` and
  address pool, its own data-root, exec-root and cgroup parent, ``--iptables=false``
  (it changes no firewall rule and no sysctl of the machine),
* ``docker-registry`` (distribution 2.8) on ``127.0.0.1:5115``.

Beside it, ``fleet_up(n)`` starts a fleet of Docker hosts reached over real SSH: ``hostN`` has its own
containerd + dockerd (bridge ``br-patchopsN``, its own address pool), the base image pulled from the
registry, and an ``sshd`` on ``127.0.0.1:(2220 + N)`` for root with a key pair the sandbox generates.
``fleet_down()`` (and ``down()``) stop it.

Nothing ever talks to the machine's default ``/var/run/docker.sock``.

State lives in ``<repo>/.sandbox`` (or ``$PATCHOPS_SANDBOX_DIR``); sockets and the
exec-root live in ``/run/patchops-sb-<8 hex>/`` because unix socket paths are
limited to 108 bytes. ``down --purge`` removes both.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import http.client
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

REGISTRY_ADDR = '127.0.0.1:5115'
REGISTRY = REGISTRY_ADDR
BASE_LOCAL = 'sandbox/busybox:base'
BASE_IMAGE = REGISTRY + '/' + BASE_LOCAL
BRIDGE = 'br-patchops0'
BRIDGE_CIDR = '172.31.250.1/24'
# user-defined networks of the sandbox engine come from here (does not overlap the bridge)
ADDRESS_POOL_BASE = '172.31.224.0/20'
ADDRESS_POOL = 'base=%s,size=24' % ADDRESS_POOL_BASE
BUILD_LABEL = 'sandbox.build'

START_TIMEOUT = 60
STOP_TIMEOUT = 20
PACKAGES = ('docker.io', 'docker-registry', 'busybox-static', 'docker-compose')
SYS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
MANIFEST_ACCEPT = ', '.join([
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.oci.image.index.v1+json',
])

# The engine kinds the sandbox runs (env PATCHOPS_SANDBOX_ENGINE, `up --engine`): Debian 12's dockerd 20.10,
# or Engine 26.1 from Debian 13's packages (unpacked into a machine-wide cache, never installed) with the
# classic image store or with the containerd image store.
ENGINE_ENV = 'PATCHOPS_SANDBOX_ENGINE'
ENGINES = ('20.10', '26', '26-containerd')
DEFAULT_ENGINE = '26'
# one cache per machine, shared by every sandbox (state dir, namespace) and later runs
ENGINE_CACHE = os.environ.get('PATCHOPS_SANDBOX_ENGINE_CACHE') or '/var/cache/patchops-sandbox'
ENGINE26 = {'dir': 'engine-26.1', 'suite': 'trixie', 'packages': ('docker.io', 'docker-compose', 'containerd')}
# the docker CLI the sandbox runs (default: `docker` on PATH)
DOCKER_CLI_ENV = 'PATCHOPS_SANDBOX_DOCKER'

__all__ = ['up', 'down', 'info', 'prepare', 'docker', 'compose', 'publish', 'publish_index', 'registry_tag', 'registry_manifest',
           'aged', 'registry_stop', 'registry_start',
           'reset', 'registry_requests', 'registry_digest', 'SandboxError',
           'REGISTRY', 'BASE_IMAGE', 'ENGINES', 'DEFAULT_ENGINE']


class SandboxError(RuntimeError):
    """A sandbox step failed; for a failed command, ``stderr``/``stdout``/``returncode`` are set."""

    def __init__(self, message, cmd=None, returncode=None, stdout='', stderr=''):
        super().__init__(message)
        self.cmd = cmd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


# --------------------------------------------------------------------------- paths

class _EngineFiles:
    """Where one engine (containerd + dockerd) keeps its files: its state under STATE, its sockets under RUN.

    The attributes the engine helpers use, for the sandbox's engine (_Paths) and a fleet host's (_HostPaths).
    """

    def __init__(self, state, run, kind=None):
        self.state = state
        self.run = run
        self.sock = os.path.join(self.run, 'docker.sock')
        self.exec_root = os.path.join(self.run, 'exec')
        self.ctd_state = os.path.join(self.run, 'containerd')
        self.ctd_sock = os.path.join(self.run, 'containerd.sock')
        self.engine_record = os.path.join(self.state, 'engine.json')
        self.use_kind(kind or _recorded_kind(self.engine_record) or _wanted_kind())
        self.ctd_config = os.path.join(self.state, 'containerd.toml')
        self.daemon_json = os.path.join(self.state, 'daemon.json')
        self.key = os.path.join(self.state, 'key.json')
        self.logs = os.path.join(self.state, 'logs')
        self.pids = os.path.join(self.state, 'pids')
        self.bridge_marker = os.path.join(self.state, 'bridge-created')
        self.driver_file = os.path.join(self.state, 'storage-driver')

    def use_kind(self, kind):
        """The engine kind this engine runs: each has its own data-root and containerd root (the classic and the
        containerd image stores are not compatible, and 20.10 cannot read what 26 migrated); 20.10 keeps the
        old names."""
        self.kind = _check_kind(kind)
        suffix = '' if kind == '20.10' else '-' + kind
        self.data_root = os.path.join(self.state, 'data' + suffix)
        self.ctd_root = os.path.join(self.state, 'containerd' + suffix)

    def log(self, name):
        return os.path.join(self.logs, name + '.log')

    def pidfile(self, name):
        return os.path.join(self.pids, name + '.pid')


def _check_kind(kind):
    if kind not in ENGINES:
        raise ValueError('unknown engine kind %r (%s: one of %s)' % (kind, ENGINE_ENV, ', '.join(ENGINES)))
    return kind


def _engine_info_record(path):
    try:
        return json.loads(_read(path, '') or '{}') or {}
    except ValueError:
        return {}


def _recorded_kind(path):
    kind = _engine_info_record(path).get('kind')
    return kind if kind in ENGINES else None


def _wanted_kind(engine=None, recorded=None):
    """The engine kind to run: the argument, else $PATCHOPS_SANDBOX_ENGINE, else the one that runs, else 26."""
    return _check_kind(engine or os.environ.get(ENGINE_ENV, '').strip() or recorded or DEFAULT_ENGINE)


class _Paths(_EngineFiles):
    def __init__(self):
        state = os.path.abspath(os.environ.get('PATCHOPS_SANDBOX_DIR') or os.path.join(REPO, '.sandbox'))
        self.tag = hashlib.sha1(state.encode()).hexdigest()[:8]
        run_parent = '/run' if os.path.isdir('/run') and os.access('/run', os.W_OK) else '/tmp'
        super().__init__(state, os.path.join(run_parent, 'patchops-sb-' + self.tag))
        self.lock = self.run + '.lock'
        self.reg_root = os.path.join(self.state, 'registry')
        self.reg_config = os.path.join(self.state, 'registry.yml')
        self.client_config = os.path.join(self.state, 'docker-config')
        self.tmp = os.path.join(self.state, 'tmp')
        self.cgroup_parent = 'patchops-sb-' + self.tag
        self.bridge = BRIDGE
        self.bridge_cidr = BRIDGE_CIDR
        self.pool_base = ADDRESS_POOL_BASE
        self.pool = ADDRESS_POOL
        self.fleet = os.path.join(self.state, 'fleet')
        self.fleet_lock = self.run + '.fleet.lock'
        # Ansible's ssh ControlPersist sockets for the fleet: its default ~/.ansible/cp is shared by every
        # checkout and network namespace, where 127.0.0.1:2221 may be another fleet's host
        self.fleet_cp = os.path.join(self.run, 'cp')


def _paths():
    return _Paths()


# --------------------------------------------------------------------------- small helpers

def _say(msg):
    sys.stderr.write('sandbox: %s\n' % msg)
    sys.stderr.flush()


def _which(name):
    path = os.environ.get('PATH', '') + ':' + SYS_PATH
    return shutil.which(name, path=path)


def _docker_bin():
    forced = os.environ.get(DOCKER_CLI_ENV, '').strip()
    if forced:
        return forced
    found = shutil.which('docker') or _which('docker')
    if not found:
        raise SandboxError('no docker CLI on PATH (run "up" to install docker.io)')
    return found


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = '%s.%d.tmp' % (path, os.getpid())
    with open(tmp, 'w') as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _tail(path, lines=40):
    text = _read(path, '') or ''
    return '\n'.join(text.splitlines()[-lines:])


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return [a.decode('utf-8', 'replace') for a in f.read().split(b'\0') if a]
    except OSError:
        return None


def _running(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except (OSError, TypeError):
        return False
    return not stat[stat.rfind(')') + 2:].startswith(('Z', 'X'))


def _alive(pid, needle):
    """True when pid runs (not a zombie) and its command line contains needle."""
    if not pid or not _running(pid):
        return False
    for _attempt in range(20):
        argv = _cmdline(pid)
        if argv:
            return needle in ' '.join(argv)
        # empty while the process is in execve(): look again
        time.sleep(0.01)
        if not _running(pid):
            return False
    return False


def _pids_matching(needle, exe=None):
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        pid = int(entry)
        argv = _cmdline(pid)
        if not argv or pid == os.getpid():
            continue
        if exe and os.path.basename(argv[0]) != exe:
            continue
        if needle in ' '.join(argv) and _alive(pid, needle):
            found.append(pid)
    return found


def _pid_of(p, name, needle, exe):
    """The live pid of one of our daemons: its pid file first, else a scan for our unique paths."""
    text = _read(p.pidfile(name), '') or ''
    pid = int(text.strip()) if text.strip().isdigit() else 0
    if _alive(pid, needle):
        return pid
    found = _pids_matching(needle, exe)
    return found[0] if found else 0


def _stop_pid(pid, needle, timeout=STOP_TIMEOUT, name='process'):
    if not _alive(pid, needle):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, needle):
            return
        time.sleep(0.05)
    _say('%s (pid %d) did not stop in %ds, sending SIGKILL' % (name, pid, timeout))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid, needle):
        time.sleep(0.05)


def _spawn(argv, log, env=None):
    """Start argv detached (own session, parent is init) with output appended to log; return its pid."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    proc = subprocess.run(
        ['/bin/sh', '-c', '"$@" </dev/null >>"$0" 2>&1 & echo $!', log] + list(argv),
        stdout=subprocess.PIPE, env=env, start_new_session=True, check=True)
    return int(proc.stdout.decode().strip())


def _daemon_env(kind=None):
    """The environment of a daemon; for Engine 26 its binaries (and Debian 12's runc) first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ('http_proxy', 'https_proxy', 'all_proxy', 'no_proxy')
           and not k.startswith('DOCKER_')}
    env['PATH'] = env.get('PATH', '') + ':' + SYS_PATH
    if kind and kind != '20.10':
        env['PATH'] = os.path.join(_engine26_dir(), 'bin') + ':' + env['PATH']
    env['NO_PROXY'] = env['no_proxy'] = '127.0.0.1,localhost'
    return env


_local = threading.local()


@contextlib.contextmanager
def _locked(p, path=None):
    """One sandbox operation at a time per state dir (reentrant within a thread, per lock file)."""
    path = path or p.lock
    depths = getattr(_local, 'depths', None)
    if depths is None:
        depths = _local.depths = {}
    if depths.get(path):
        depths[path] += 1
        try:
            yield
        finally:
            depths[path] -= 1
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        depths[path] = 1
        try:
            yield
        finally:
            depths[path] = 0
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- HTTP (loopback only)

class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__('localhost', timeout=timeout)
        self._unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._unix_path)
        self.sock = sock


def _engine_get(p, path, timeout=5):
    """GET on the sandbox engine's API socket: (status, body) or (None, '') when unreachable."""
    conn = _UnixHTTPConnection(p.sock, timeout=timeout)
    try:
        conn.request('GET', path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode('utf-8', 'replace')
    except (OSError, http.client.HTTPException):
        return None, ''
    finally:
        conn.close()


# no proxies: every request of the sandbox goes to 127.0.0.1
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _registry_request(method, path, headers=None, timeout=5):
    req = urllib.request.Request('http://%s%s' % (REGISTRY_ADDR, path), method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers or {}), b''
    except (OSError, http.client.HTTPException):
        return None, {}, b''


def _port_open(addr, timeout=0.5):
    host, port = addr.rsplit(':', 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- state queries

def _engine_pid(p):
    return _pid_of(p, 'dockerd', p.sock, 'dockerd')


def _containerd_pid(p):
    return _pid_of(p, 'containerd', p.ctd_config, 'containerd')


def _registry_pid(p):
    return _pid_of(p, 'registry', p.reg_config, 'docker-registry')


def _engine_up(p, timeout=2):
    return bool(_engine_pid(p)) and _engine_get(p, '/_ping', timeout)[0] == 200


def _registry_up(p, timeout=2):
    return bool(_registry_pid(p)) and _registry_request('GET', '/v2/', timeout=timeout)[0] == 200


def info() -> dict:
    """Where the sandbox is, which engine kind it runs, and whether its engine and registry run."""
    p = _paths()
    record = _engine_info_record(p.engine_record)
    return {
        'docker_host': 'unix://' + p.sock,
        'registry': REGISTRY,
        'base_image': BASE_IMAGE,
        'state_dir': p.state,
        'run_dir': p.run,
        'bridge': BRIDGE,
        'storage_driver': (_read(p.driver_file, '') or '').strip() or None,
        'engine': {k: record.get(k) for k in ('kind', 'version', 'api_version', 'image_store')}
        if record.get('kind') else None,
        'compose_v2': _compose_v2_path(),
        'compose_v1': _which('docker-compose'),
        'docker_cli': _docker_bin_or_none(),
        'running': {'engine': _engine_up(p), 'registry': _registry_up(p)},
    }


def _compose_v2_path():
    path = os.path.join(_engine26_dir(), 'bin', 'docker-compose')
    return os.path.realpath(path) if _engine26_ready() and os.path.exists(path) else None


def _docker_bin_or_none():
    try:
        return _docker_bin()
    except SandboxError:
        return None


# --------------------------------------------------------------------------- docker CLI

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


# --------------------------------------------------------------------------- packages

def _is_static_elf(path):
    try:
        with open(path, 'rb') as f:
            hdr = f.read(64)
            if hdr[:4] != b'\x7fELF':
                return False
            e = '<' if hdr[5] == 1 else '>'
            if hdr[4] == 2:
                phoff = struct.unpack(e + 'Q', hdr[32:40])[0]
                phentsize, phnum = struct.unpack(e + 'HH', hdr[54:58])
            else:
                phoff = struct.unpack(e + 'I', hdr[28:32])[0]
                phentsize, phnum = struct.unpack(e + 'HH', hdr[42:46])
            f.seek(phoff)
            for _index in range(phnum):
                if struct.unpack(e + 'I', f.read(phentsize)[:4])[0] == 3:  # PT_INTERP
                    return False
            return True
    except (OSError, struct.error):
        return False


def _missing_packages():
    need = []
    if not all(_which(b) for b in ('dockerd', 'containerd', 'containerd-shim-runc-v2', 'runc')) \
            or not (shutil.which('docker') or _which('docker')):
        need.append('docker.io')
    if not _which('docker-registry'):
        need.append('docker-registry')
    if not _is_static_elf('/bin/busybox'):
        need.append('busybox-static')
    if not _which('docker-compose'):
        need.append('docker-compose')
    if not _which('ip'):
        need.append('iproute2')
    return need


def _ensure_packages():
    _apt_install(_missing_packages(), _missing_packages)


def _apt_install(need, still_missing):
    if not need:
        return
    _say('installing missing Debian packages: %s' % ' '.join(need))
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive', PATH=os.environ.get('PATH', '') + ':' + SYS_PATH)
    # keep apt from starting the packages' own services (the machine's default dockerd, a registry on :5000)
    policy = '/usr/sbin/policy-rc.d'
    added_policy = not os.path.exists(policy)
    if added_policy:
        _write(policy, '#!/bin/sh\n# added by patchops sandbox during apt-get install\nexit 101\n', 0o755)
    try:
        for cmd in (['apt-get', 'update'], ['apt-get', 'install', '-y'] + need):
            proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
            if proc.returncode != 0:
                raise SandboxError('%s failed:\n%s' % (' '.join(cmd), proc.stdout.decode('utf-8', 'replace')[-4000:]))
    finally:
        if added_policy:
            with contextlib.suppress(OSError):
                os.unlink(policy)
    still = still_missing()
    if still:
        raise SandboxError('still missing after apt-get install: %s' % ' '.join(still))


# --------------------------------------------------------------------------- Engine 26 (Debian 13's packages)

def _engine26_dir():
    return os.path.join(ENGINE_CACHE, ENGINE26['dir'])


def _engine26_ready():
    return os.path.exists(os.path.join(_engine26_dir(), 'complete'))


def _archive_uri():
    """The Debian archive this machine's apt uses (its main suite's URIs, not the security archive's)."""
    codename = ''
    for line in (_read('/etc/os-release', '') or '').splitlines():
        if line.startswith('VERSION_CODENAME='):
            codename = line.split('=', 1)[1].strip().strip('"')
    found = []  # (rank, uri): 0 = lists this release's own suite, 1 = another suite, not security
    parts = sorted(os.path.join('/etc/apt/sources.list.d', f) for f in os.listdir('/etc/apt/sources.list.d')) \
        if os.path.isdir('/etc/apt/sources.list.d') else []
    for path in parts:
        if not path.endswith('.sources'):
            continue
        for stanza in re.split(r'\n\s*\n', _read(path, '') or ''):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith('#') or ':' not in line or line[:1].isspace():
                    continue
                key, value = line.split(':', 1)
                fields[key.strip().lower()] = value.split()
            if 'deb' not in fields.get('types', []) or fields.get('enabled', ['yes'])[0].lower() == 'no':
                continue
            suites = fields.get('suites', [])
            for uri in fields.get('uris', []):
                if 'security' not in uri and not any(s.endswith('-security') for s in suites):
                    found.append((0 if codename in suites else 1, uri))
    lists = ['/etc/apt/sources.list'] + [p for p in parts if p.endswith('.list')]
    for path in lists:
        for line in (_read(path, '') or '').splitlines():
            words = re.sub(r'\[[^\]]*\]', ' ', line.split('#', 1)[0]).split()
            if len(words) >= 3 and words[0] == 'deb' and 'security' not in words[1] \
                    and not words[2].endswith('-security'):
                found.append((0 if words[2] == codename else 1, words[1]))
    uris = [uri for _rank, uri in sorted(found, key=lambda f: f[0]) if uri.startswith(('http://', 'https://'))]
    if not uris:
        raise SandboxError('no Debian archive in this machine\'s apt configuration (/etc/apt/sources.list, '
                           '/etc/apt/sources.list.d): cannot fetch Engine 26')
    return uris[0].rstrip('/')


def _engine26_file(root, name):
    for sub in ('usr/sbin', 'usr/bin', 'usr/libexec/docker', 'usr/libexec/docker/cli-plugins'):
        path = os.path.join(root, sub, name)
        if os.path.isfile(path):
            return path
    return None


def _ensure_engine26():
    """Engine 26.1, containerd 1.7 and Compose v2 from Debian 13's packages, fetched with apt's own client into
    a private folder and unpacked (never installed) into one machine-wide cache dir, once: the sandboxes of
    every checkout and namespace share it. Its bin/ holds what dockerd and containerd need first on PATH,
    with Debian 12's runc (Debian 13's needs glibc 2.38). Returns the cache dir."""
    target = _engine26_dir()
    if _engine26_ready():
        return target
    os.makedirs(ENGINE_CACHE, exist_ok=True)
    with _locked(None, target + '.lock'):
        if _engine26_ready():
            return target
        if os.geteuid() != 0:
            raise SandboxError('fetching Engine 26 needs root (apt-get)')
        runc = _which('runc')
        if not runc:
            raise SandboxError('no runc on this machine (Debian 12\'s docker.io brings it)')
        started = time.monotonic()
        work = target + '.partial'
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        apt_dir, debs, root, bindir = (os.path.join(work, d) for d in ('apt', 'debs', 'root', 'bin'))
        for d in (os.path.join(apt_dir, 'lists', 'partial'), os.path.join(apt_dir, 'cache', 'archives', 'partial'),
                  debs, root, bindir):
            os.makedirs(d)
        uri = _archive_uri()
        sources = os.path.join(apt_dir, 'sources.list')
        _write(sources, 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n'
               % (uri, ENGINE26['suite']))
        opts = ['-q', '-o', 'Dir::Etc::sourcelist=' + sources, '-o', 'Dir::Etc::sourceparts=/dev/null',
                '-o', 'Dir::State::Lists=' + os.path.join(apt_dir, 'lists'),
                '-o', 'Dir::Cache=' + os.path.join(apt_dir, 'cache'), '-o', 'APT::Sandbox::User=root']
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive', PATH=os.environ.get('PATH', '') + ':' + SYS_PATH)
        _say('fetching Engine 26 from Debian %s (%s) into %s' % (ENGINE26['suite'], uri, target))
        for argv in (['apt-get'] + opts + ['update'], ['apt-get'] + opts + ['download'] + list(ENGINE26['packages'])):
            proc = subprocess.run(argv, cwd=debs, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=600, check=False)
            if proc.returncode != 0:
                raise SandboxError('%s failed:\n%s' % (' '.join(argv), proc.stdout.decode('utf-8', 'replace')[-4000:]))
        for deb in sorted(os.listdir(debs)):
            _check_run(['dpkg-deb', '-x', os.path.join(debs, deb), root], timeout=300)
        links = {'runc': runc}
        for name in ('dockerd', 'docker-proxy', 'containerd', 'containerd-shim-runc-v2', 'ctr', 'docker-init',
                     'docker-compose'):
            found = _engine26_file(root, name)
            if name == 'docker-compose':
                found = os.path.join(root, 'usr/libexec/docker/cli-plugins/docker-compose')
            if not (found and os.path.isfile(found)):
                if name == 'docker-init' and (_which('docker-init') or _which('tini')):
                    links[name] = _which('docker-init') or _which('tini')
                    continue
                raise SandboxError('%s is not in the Debian %s packages %s' % (name, ENGINE26['suite'],
                                                                               ' '.join(ENGINE26['packages'])))
            links[name] = os.path.relpath(found, bindir)
        for name, dest in links.items():
            os.symlink(dest, os.path.join(bindir, name))
        versions = {}
        for name, argv in (('dockerd', ['dockerd', '--version']), ('containerd', ['containerd', '--version']),
                           ('compose', ['docker-compose', 'version', '--short'])):
            argv[0] = os.path.join(bindir, argv[0])
            versions[name] = _check_run(argv).strip()
        versions['debs'] = sorted(os.listdir(debs))
        shutil.rmtree(apt_dir, ignore_errors=True)
        shutil.rmtree(debs, ignore_errors=True)
        _write(os.path.join(work, 'versions.json'), json.dumps(versions, indent=2) + '\n')
        os.rename(work, target)
        _write(os.path.join(target, 'complete'), 'fetched %s in %.1fs\n'
               % (time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), time.monotonic() - started))
        _say('Engine 26 ready in %.1fs: %s' % (time.monotonic() - started, versions['dockerd']))
        return target


def _engine_bin(kind, name):
    """dockerd / containerd of an engine kind: Debian 12's (on PATH) for 20.10, the cache's for 26."""
    if kind == '20.10':
        return _which(name)
    return os.path.join(_ensure_engine26(), 'bin', name)


def _daemon_config(e):
    """daemon.json of an engine: where its ID key is (default /etc/docker/key.json: 20.10 keeps its ID there, 26
    accepts the setting and reads the file only to carry an old ID over to data-root/engine-id, so a private
    path keeps the machine's own key out of every kind), and the containerd image store for 26-containerd."""
    config = {'deprecated-key-path': e.key}
    if e.kind == '26-containerd':
        config['features'] = {'containerd-snapshotter': True}
    return config


def _write_engine_record(e, **values):
    record = dict(_engine_info_record(e.engine_record), **values)
    _write(e.engine_record, json.dumps(record, sort_keys=True) + '\n')
    return record


def _record_running_engine(e):
    """After dockerd answers: what runs, asked from the engine itself."""
    _status, body = _engine_get(e, '/version')
    _status2, body2 = _engine_get(e, '/info')
    version = json.loads(body or '{}')
    details = json.loads(body2 or '{}')
    store = 'classic'
    for key, value in details.get('DriverStatus') or []:
        if key == 'driver-type' and 'snapshotter' in value:
            store = 'containerd'
    full = version.get('Version') or ''
    # '26.1.5+dfsg1' (Debian's build of it) is Engine 26.1.5
    return _write_engine_record(e, kind=e.kind, version=full.split('+', 1)[0] or None, version_full=full or None,
                                api_version=version.get('ApiVersion'), image_store=store,
                                containerd=next((c.get('Version') for c in version.get('Components') or []
                                                 if c.get('Name') == 'containerd'), None))


# --------------------------------------------------------------------------- network

def _ip(*args, check=True):
    proc = subprocess.run([_which('ip') or 'ip'] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if check and proc.returncode != 0:
        raise SandboxError('ip %s failed: %s' % (' '.join(args), proc.stderr.decode().strip()))
    return proc


def _link_exists(name):
    return os.path.exists('/sys/class/net/' + name)


def _netns(pid):
    try:
        return os.readlink('/proc/%s/ns/net' % pid)
    except OSError:
        return None


def _bridge_users(bridge):
    """dockerd processes in this network namespace that run on bridge (others have their own link)."""
    mine = _netns('self')
    return [pid for pid in _pids_matching('--bridge ' + bridge, 'dockerd') if _netns(pid) == mine]


def _ensure_bridge(p):
    if _link_exists(p.bridge):
        if not os.path.exists(p.bridge_marker):
            others = [pid for pid in _bridge_users(p.bridge) if not _alive(pid, p.sock)]
            if others:
                raise SandboxError('bridge %s is used by another dockerd (pid %s): another sandbox runs on this '
                                   'machine; stop it first' % (p.bridge, others[0]))
            _write(p.bridge_marker, 'adopted\n')
    else:
        _ip('link', 'add', 'name', p.bridge, 'type', 'bridge')
        _write(p.bridge_marker, 'created\n')
    addrs = _ip('-o', '-4', 'addr', 'show', 'dev', p.bridge).stdout.decode()
    if p.bridge_cidr not in addrs:
        _ip('addr', 'add', p.bridge_cidr, 'dev', p.bridge)
    _ip('link', 'set', p.bridge, 'up')


def _in_pool(addr, pool_base=ADDRESS_POOL_BASE):
    import ipaddress
    try:
        return ipaddress.ip_address(addr) in ipaddress.ip_network(pool_base)
    except ValueError:
        return False


def _remove_bridges(p):
    if not os.path.exists(p.bridge_marker):
        return  # this state dir never ran the engine (or already cleaned up): touch no link
    if _bridge_users(p.bridge):
        _say('another dockerd still uses %s; leaving the bridges alone' % p.bridge)
        return
    if _link_exists(p.bridge):
        _ip('link', 'del', p.bridge, check=False)
    with contextlib.suppress(OSError):
        os.unlink(p.bridge_marker)
    # bridges of the engine's user-defined networks: their addresses come from its private pool
    out = _ip('-o', '-4', 'addr', 'show', 'type', 'bridge', check=False).stdout.decode()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1].startswith('br-') and parts[1] != p.bridge:
            if _in_pool(parts[3].split('/')[0], p.pool_base):
                _ip('link', 'del', parts[1], check=False)


# --------------------------------------------------------------------------- start / stop pieces

def _containerd_config(p):
    return '\n'.join([
        'version = 2',
        'root = %s' % json.dumps(p.ctd_root),
        'state = %s' % json.dumps(p.ctd_state),
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",',
        '  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",',
        '  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]',
        '[grpc]',
        '  address = %s' % json.dumps(p.ctd_sock),
        '[ttrpc]',
        '  address = ""',
        '[debug]',
        '  address = ""',
        '[metrics]',
        '  address = ""',
        '[plugins."io.containerd.internal.v1.opt"]',
        '  path = %s' % json.dumps(os.path.join(p.ctd_root, 'opt')),
        '',
    ])


def _start_containerd(p):
    pid = _containerd_pid(p)
    if pid:
        return pid
    _write(p.ctd_config, _containerd_config(p))
    for d in (p.ctd_root, p.ctd_state):
        os.makedirs(d, exist_ok=True)
    with contextlib.suppress(OSError):
        os.unlink(p.ctd_sock)
    # the shims it starts, and the runc they start, are found on its PATH
    pid = _spawn([_engine_bin(p.kind, 'containerd'), '--config', p.ctd_config], p.log('containerd'),
                 _daemon_env(p.kind))
    _write(p.pidfile('containerd'), '%d\n' % pid)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not _running(pid):
            break
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.connect(p.ctd_sock)
            return pid
        time.sleep(0.05)
    raise SandboxError('containerd did not start; log %s:\n%s' % (p.log('containerd'), _tail(p.log('containerd'))))


# with the containerd image store, --storage-driver names a containerd snapshotter
_SNAPSHOTTERS = {'overlay2': 'overlayfs', 'vfs': 'native'}


def _dockerd_argv(p, driver):
    if p.kind == '26-containerd':
        driver = _SNAPSHOTTERS.get(driver, driver)
    return [_engine_bin(p.kind, 'dockerd'),
            '--host', 'unix://' + p.sock,
            '--data-root', p.data_root,
            '--exec-root', p.exec_root,
            '--pidfile', p.pidfile('dockerd'),
            '--config-file', p.daemon_json,
            '--containerd', p.ctd_sock,
            '--bridge', p.bridge,
            '--default-address-pool', p.pool,
            '--storage-driver', driver,
            '--iptables=false', '--ip-forward=false', '--ip-masq=false',
            '--cgroup-parent', '/' + p.cgroup_parent,
            '--log-level', 'warn']


def _start_dockerd(p, driver=None):
    """Start dockerd (no wait); return (pid, driver)."""
    for d in (p.data_root, p.exec_root):
        os.makedirs(d, exist_ok=True)
    _write(p.daemon_json, json.dumps(_daemon_config(p)) + '\n')
    _write_engine_record(p, kind=p.kind)
    driver = (driver or os.environ.get('PATCHOPS_SANDBOX_STORAGE_DRIVER') or _read(p.driver_file, '')
              or 'overlay2').strip()
    with contextlib.suppress(OSError):
        os.unlink(p.sock)
    pid = _spawn(_dockerd_argv(p, driver), p.log('dockerd'), _daemon_env(p.kind))
    return pid, driver


def _wait_dockerd(p, pid, driver, log_offset=0):
    """Wait for the engine; falls back from overlay2 to vfs once. Returns the driver in use."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _engine_get(p, '/_ping', 2)[0] == 200:
            _write(p.driver_file, driver + '\n')
            _record_running_engine(p)
            return driver
        if not _running(pid):
            new_log = (_read(p.log('dockerd'), '') or '')[log_offset:]
            if (driver == 'overlay2' and not os.path.exists(p.driver_file)
                    and 'PATCHOPS_SANDBOX_STORAGE_DRIVER' not in os.environ
                    and re.search(r'overlay|storage driver|graphdriver', new_log, re.I)):
                _say('dockerd failed with overlay2, retrying with vfs; log tail:\n' + _tail(p.log('dockerd'), 10))
                pid, driver = _start_dockerd(p, 'vfs')
                deadline = time.monotonic() + START_TIMEOUT
                continue
            break
        time.sleep(0.05)
    tail = _tail(p.log('dockerd'))
    _say('dockerd did not answer; log tail:\n' + tail)
    raise SandboxError('dockerd did not answer on %s within %ds; log %s:\n%s'
                       % (p.sock, START_TIMEOUT, p.log('dockerd'), tail))


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


def _rootfs_tar():
    """A root filesystem of busybox-static: /bin/busybox plus one symlink per applet."""
    applets = subprocess.run(['/bin/busybox', '--list'], stdout=subprocess.PIPE, check=True).stdout.decode().split()
    buf = io.BytesIO()
    now = int(time.time())

    def add(name, kind=tarfile.DIRTYPE, mode=0o755, data=None, link=None):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = kind, mode, now, 0, 0, 'root', 'root'
        if link:
            ti.linkname = link
        if data is not None:
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        else:
            tar.addfile(ti)

    with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as tar:
        for d in ('bin', 'etc', 'root', 'var'):
            add(d)
        add('tmp', mode=0o1777)
        with open('/bin/busybox', 'rb') as f:
            add('bin/busybox', tarfile.REGTYPE, 0o755, f.read())
        for applet in sorted(set(applets)):
            if applet != 'busybox' and '/' not in applet:
                add('bin/' + applet, tarfile.SYMTYPE, 0o777, link='busybox')
        add('etc/passwd', tarfile.REGTYPE, 0o644,
            b'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n')
        add('etc/group', tarfile.REGTYPE, 0o644, b'root:x:0:\nnobody:x:65534:\n')
    return buf.getvalue()


def _ensure_base(p):
    if _engine_get(p, '/images/%s/json' % BASE_IMAGE)[0] != 200:
        if _engine_get(p, '/images/%s/json' % BASE_LOCAL)[0] != 200:
            _say('creating %s from /bin/busybox' % BASE_LOCAL)
            _run_docker(['import', '-c', 'CMD ["/bin/sh"]', '-', BASE_LOCAL], input=_rootfs_tar())
        _run_docker(['tag', BASE_LOCAL, BASE_IMAGE])
    if registry_digest(BASE_IMAGE) is None:
        _run_docker(['push', BASE_IMAGE])


# --------------------------------------------------------------------------- up / down

def up(engine=None) -> dict:
    """Start the sandbox (idempotent; fast when it already runs). Returns info().

    engine: '20.10', '26' or '26-containerd'; default $PATCHOPS_SANDBOX_ENGINE, else the kind that runs, else
    '26'. When another kind runs, its engines (the main one, the fleet, the TLS and small-disk engines) are
    stopped and the new kind starts on its own data-root; the registry keeps running.
    """
    p = _paths()
    recorded = _recorded_kind(p.engine_record)
    kind = _wanted_kind(engine, recorded)
    os.makedirs(os.path.dirname(p.run), exist_ok=True)
    with _locked(p):
        if (recorded == kind and _engine_up(p) and _containerd_pid(p) and _registry_up(p)
                and _engine_get(p, '/images/%s/json' % BASE_IMAGE)[0] == 200
                and registry_digest(BASE_IMAGE) is not None):
            return info()
        if os.geteuid() != 0:
            raise SandboxError('the sandbox needs root (it starts dockerd)')
        _ensure_packages()
        if kind != '20.10':
            _ensure_engine26()
        for d in (p.state, p.logs, p.pids, p.tmp, p.client_config):
            os.makedirs(d, exist_ok=True)
        os.makedirs(p.run, mode=0o711, exist_ok=True)
        if recorded and recorded != kind:
            _switch_engine(p, recorded, kind)
        p.use_kind(kind)

        reg_pid = _start_registry(p)
        if _engine_pid(p) and not (_containerd_pid(p) and _engine_up(p)):
            # alive but not answering, or its containerd is gone: restart it
            _stop_pid(_engine_pid(p), p.sock, name='dockerd')
        if not _engine_up(p):
            _start_containerd(p)
            _ensure_bridge(p)
            log_offset = os.path.getsize(p.log('dockerd')) if os.path.exists(p.log('dockerd')) else 0
            pid, driver = _start_dockerd(p)
            _wait_dockerd(p, pid, driver, log_offset)
        _wait_registry(p, reg_pid)
        _ensure_base(p)
        return info()


def _switch_engine(p, old, new):
    """Stop every engine of kind old (fleet, TLS, small disk, the main one); the registry stays."""
    running = [name for name, pid in (('dockerd', _engine_pid(p)), ('containerd', _containerd_pid(p))) if pid]
    _say('switching the engine from %s to %s%s' % (old, new, ' (stopping %s)' % ', '.join(running) if running else ''))
    fleet_down()
    tls_engine_down()
    small_engine_down()
    _stop_engine(p)
    with contextlib.suppress(OSError):
        os.unlink(p.pidfile('dockerd'))
    with contextlib.suppress(OSError):
        os.unlink(p.pidfile('containerd'))


def prepare() -> dict:
    """Install and fetch what up(), fleet_up() and every engine kind need (Debian packages, the Engine 26 cache),
    start nothing: a run in a network namespace of its own cannot reach the Debian archive."""
    if os.geteuid() != 0:
        raise SandboxError('the sandbox needs root (apt-get)')
    _ensure_packages()
    _apt_install(_missing_fleet_packages(), _missing_fleet_packages)
    return {'engine_cache': _ensure_engine26(), 'compose_v2': _compose_v2_path(), 'compose_v1': _which('docker-compose')}


def _kill_leftovers(p):
    """containerd shims and container processes of this engine that outlived it."""
    for pid in _pids_matching(p.ctd_sock, 'containerd-shim-runc-v2'):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for cg in _cgroup_dirs(p):
        for dirpath, _dirs, files in os.walk(cg):
            if 'cgroup.procs' in files:
                for line in (_read(os.path.join(dirpath, 'cgroup.procs'), '') or '').split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(line), signal.SIGKILL)
    time.sleep(0.1)
    for cg in _cgroup_dirs(p):
        for dirpath in sorted((w[0] for w in os.walk(cg)), key=len, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def _cgroup_dirs(p):
    mounts = set()
    for line in (_read('/proc/self/mountinfo', '') or '').splitlines():
        parts = line.split(' - ')
        if len(parts) == 2 and parts[1].split()[0] in ('cgroup', 'cgroup2'):
            mounts.add(parts[0].split()[4])
    return [os.path.join(m, p.cgroup_parent) for m in sorted(mounts)
            if os.path.isdir(os.path.join(m, p.cgroup_parent))]


def _unmount_under(prefixes):
    targets = []
    for line in (_read('/proc/self/mountinfo', '') or '').splitlines():
        mnt = line.split()[4]
        mnt = re.sub(r'\\(\d{3})', lambda m: chr(int(m.group(1), 8)), mnt)
        if any(mnt == pre or mnt.startswith(pre + '/') for pre in prefixes):
            targets.append(mnt)
    for mnt in sorted(set(targets), key=len, reverse=True):
        subprocess.run([_which('umount') or 'umount', '-l', mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)


def _stop_engine(e, sock=None, who=''):
    """Stop one engine: its containers (2 s each at most), dockerd, containerd, leftovers, mounts.

    ``e`` holds the engine's paths, ``sock`` its socket for the docker CLI (None: the main engine),
    ``who`` names it in messages and in the returned list ('', 'tls-engine', 'host1', ...).
    """
    stopped = []
    prefix = who + '/' if who else ''
    pid = _engine_pid(e)
    if pid:
        if _engine_get(e, '/_ping', 2)[0] == 200:
            # busybox as PID 1 ignores SIGTERM: do not let dockerd wait 10 s per container
            running = _run_docker(['ps', '-q'], check=False, sock=sock).split()
            if running:
                _run_docker(['stop', '-t', '2'] + running, check=False, timeout=60, sock=sock)
        _stop_pid(pid, e.sock, name=(who + ' dockerd').strip())
        stopped.append(prefix + 'dockerd')
    pid = _containerd_pid(e)
    if pid:
        _stop_pid(pid, e.ctd_config, name=(who + ' containerd').strip())
        stopped.append(prefix + 'containerd')
    _kill_leftovers(e)
    _unmount_under([e.data_root, e.exec_root, e.run, e.ctd_root, e.state])
    return stopped


def down(purge=False) -> dict:
    """Stop what up() started; with purge also delete the state dir and the runtime dir."""
    p = _paths()
    if not os.path.isdir(p.state) and not os.path.isdir(p.run):
        for lock in (p.fleet_lock, p.lock):
            with contextlib.suppress(OSError):
                os.unlink(lock)
        return {'stopped': [], 'purged': bool(purge), 'fleet': {'stopped': [], 'purged': bool(purge)}}
    stopped = []
    with _locked(p):
        # the fleet first: its hosts pull from the registry and live under the state and runtime dirs
        fleet = fleet_down(purge=purge)
        extras = (tls_engine_down(purge=purge)['stopped'] + small_engine_down(purge=purge)['stopped']
                  + auth_registry_down(purge=purge)['stopped'])
        pid = _registry_pid(p)
        if pid:
            _stop_pid(pid, p.reg_config, name='registry')
            stopped.append('registry')
        stopped += extras
        stopped += _stop_engine(p)
        if _which('ip'):
            _remove_bridges(p)
        for name in ('registry', 'dockerd', 'containerd'):
            with contextlib.suppress(OSError):
                os.unlink(p.pidfile(name))
        if purge:
            for d in (p.state, p.run):
                if os.path.lexists(d):
                    shutil.rmtree(d, ignore_errors=True)
                    if os.path.lexists(d):
                        raise SandboxError('could not remove %s' % d)
            # shims keep their sockets in /run/containerd/s and dockerd makes /run/docker/plugins:
            # remove those dirs only when they are empty (another engine may use them)
            for d in ('/run/containerd/s', '/run/containerd', '/run/docker/plugins', '/run/docker'):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
            for lock in (p.fleet_lock, p.lock):
                with contextlib.suppress(OSError):
                    os.unlink(lock)
    return {'stopped': stopped, 'purged': bool(purge), 'fleet': fleet}


def _stop_one(p, pid_of, needle, name):
    """Stop one daemon of the sandbox by its pid (under the sandbox lock); its files stay."""
    with _locked(p):
        pid = pid_of(p)
        if pid:
            _stop_pid(pid, needle, name=name)
        with contextlib.suppress(OSError):
            os.unlink(p.pidfile(name))


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


def engine_stop() -> None:
    """Stop only the main dockerd, by its pid, the way a service manager does (SIGTERM; SIGKILL after
    STOP_TIMEOUT): the engine is "down". containerd, the registry and every file stay. Without
    live-restore, dockerd stops its running containers on the way out; on the next start it starts
    again those whose restart policy says so (always, unless-stopped, on-failure) and that were not
    stopped by hand."""
    p = _paths()
    _stop_one(p, _engine_pid, p.sock, 'dockerd')


def engine_start() -> None:
    """Start the main dockerd again (after engine_stop) with the same arguments, and wait until it answers."""
    p = _paths()
    with _locked(p):
        if not os.path.isdir(p.state):
            raise SandboxError('the sandbox is not set up; run up() first')
        if _engine_up(p):
            return
        _start_containerd(p)
        _ensure_bridge(p)
        log_offset = os.path.getsize(p.log('dockerd')) if os.path.exists(p.log('dockerd')) else 0
        pid, driver = _start_dockerd(p)
        _wait_dockerd(p, pid, driver, log_offset)


def engine_restart() -> None:
    """engine_stop() then engine_start(): the main engine restarted under whatever talks to it."""
    engine_stop()
    engine_start()


# --------------------------------------------------------------------------- registry helpers

def _split_ref(ref):
    """'127.0.0.1:5115/a/b:tag' -> ('127.0.0.1:5115/a/b', 'tag'); digests keep '@'."""
    if '@' in ref:
        repo, digest = ref.split('@', 1)
        return repo, digest
    slash = ref.rfind('/')
    colon = ref.rfind(':')
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, 'latest'


def registry_digest(ref) -> str | None:
    """The digest the registry serves for ref (a tag under 127.0.0.1:5115), or None."""
    repo, tag = _split_ref(ref)
    if repo.startswith(REGISTRY + '/'):
        repo = repo[len(REGISTRY) + 1:]
    status, headers, _body = _registry_request('HEAD', '/v2/%s/manifests/%s' % (repo, tag),
                                               headers={'Accept': MANIFEST_ACCEPT})
    if status != 200:
        return None
    return {k.lower(): v for k, v in headers.items()}.get('docker-content-digest')


_ACCESS = re.compile(r'"([A-Z]+) (/v2/[^ "?]*)[^ "]* HTTP/[\d.]+"')


def registry_requests(name=None) -> list:
    """Requests the registry has served, oldest first, as 'METHOD /v2/...' strings.

    With name (a repository path such as 'itest/app-1234', no registry host), only the requests
    for that repository. Read from the registry's access log; take len() before and slice after to
    count what one step asked.
    """
    p = _paths()
    out = []
    prefix = None
    if name:
        name = name[len(REGISTRY) + 1:] if name.startswith(REGISTRY + '/') else name
        prefix = '/v2/%s/' % name.strip('/')
    for line in (_read(p.log('registry'), '') or '').splitlines():
        m = _ACCESS.search(line)
        if m and (prefix is None or m.group(2).startswith(prefix)):
            out.append('%s %s' % (m.group(1), m.group(2)))
    return out


# --------------------------------------------------------------------------- images

def _q(text):
    """A Dockerfile double-quoted word (no variable expansion)."""
    text = str(text)
    if '\n' in text or '\r' in text:
        raise ValueError('a newline cannot go into a Dockerfile instruction: %r' % text)
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"').replace('$', '\\$')


def _single_line(text):
    text = str(text)
    if '\n' in text or '\r' in text:
        raise ValueError('a newline cannot go into a Dockerfile instruction: %r' % text)
    return text


def _exec_or_shell(value):
    if isinstance(value, (list, tuple)):
        return json.dumps([str(v) for v in value])
    return _single_line(value)


def _duration(value):
    if isinstance(value, str):
        return value
    ns = int(round(float(value) * 1e9))
    if ns % 1000000000 == 0:
        return '%ds' % (ns // 1000000000)
    if ns % 1000000 == 0:
        return '%dms' % (ns // 1000000)
    return '%dus' % (ns // 1000)


def _healthcheck_line(hc):
    if hc is None:
        return None
    if isinstance(hc, str):
        if hc.strip().upper() == 'NONE':
            return 'HEALTHCHECK NONE'
        hc = {'test': hc}
    test = hc.get('test')
    if isinstance(test, (list, tuple)):
        test = [str(t) for t in test]
        if not test or test[0] == 'NONE':
            return 'HEALTHCHECK NONE'
        if test[0] == 'CMD-SHELL':
            cmd = 'CMD ' + _single_line(' '.join(test[1:]))
        elif test[0] == 'CMD':
            cmd = 'CMD ' + json.dumps(test[1:])
        else:
            cmd = 'CMD ' + json.dumps(test)
    elif isinstance(test, str):
        shell = test[len('CMD-SHELL '):] if test.startswith('CMD-SHELL ') else test
        cmd = 'CMD ' + _single_line(shell)
    else:
        raise ValueError('healthcheck needs a test: %r' % (hc,))
    opts = []
    for key, flag in (('interval', 'interval'), ('timeout', 'timeout'), ('start_period', 'start-period')):
        if hc.get(key) is not None:
            opts.append('--%s=%s' % (flag, _duration(hc[key])))
    if hc.get('retries') is not None:
        opts.append('--retries=%d' % int(hc['retries']))
    return ' '.join(['HEALTHCHECK'] + opts + [cmd])


def _dockerfile(ctx, base, labels, env, cmd, entrypoint, healthcheck, expose, volumes, user, workdir,
                stopsignal, files):
    """Write Dockerfile (and the files to COPY) into ctx; return labels that need --label."""
    lines = ['FROM ' + (base or BASE_IMAGE)]
    flag_labels = {}
    if env:
        lines.append('ENV ' + ' '.join('%s=%s' % (_q(k), _q(v)) for k, v in env.items()))
    if files:
        by_dir = {}
        for path, content in files.items():
            if not str(path).startswith('/') or str(path).endswith('/'):
                raise ValueError('files keys are absolute file paths in the image: %r' % path)
            by_dir.setdefault(os.path.dirname(path), []).append((os.path.basename(path), content))
        for i, (dest, items) in enumerate(sorted(by_dir.items())):
            srcs = []
            for base_name, content in items:
                mode = 0o644
                if isinstance(content, tuple):
                    content, mode = content
                local = os.path.join(ctx, 'f%d' % i, base_name)
                os.makedirs(os.path.dirname(local), exist_ok=True)
                with open(local, 'wb') as f:
                    f.write(content.encode() if isinstance(content, str) else content)
                os.chmod(local, mode)
                srcs.append('f%d/%s' % (i, base_name))
            lines.append('COPY ' + json.dumps(srcs + [dest.rstrip('/') + '/']))
    if labels:
        inline = {}
        for k, v in labels.items():
            if any(c in str(k) + str(v) for c in '\r\n'):
                flag_labels[str(k)] = str(v)
            else:
                inline[k] = v
        if inline:
            lines.append('LABEL ' + ' '.join('%s=%s' % (_q(k), _q(v)) for k, v in inline.items()))
    if expose:
        lines.append('EXPOSE ' + ' '.join(_single_line(e) for e in expose))
    if volumes:
        lines.append('VOLUME ' + json.dumps([str(v) for v in volumes]))
    if workdir:
        lines.append('WORKDIR ' + _single_line(workdir))
    if user is not None:
        lines.append('USER ' + _single_line(user))
    if stopsignal:
        lines.append('STOPSIGNAL ' + _single_line(stopsignal))
    hc = _healthcheck_line(healthcheck)
    if hc:
        lines.append(hc)
    if entrypoint is not None:
        lines.append('ENTRYPOINT ' + _exec_or_shell(entrypoint))
    if cmd is not None:
        lines.append('CMD ' + _exec_or_shell(cmd))
    with open(os.path.join(ctx, 'Dockerfile'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return flag_labels


def _image_id(ref, sock=None):
    return _run_docker(['image', 'inspect', '--format', '{{.Id}}', ref], sock=sock).strip()


def _check_pushable(ref):
    if not _split_ref(ref)[0].startswith(REGISTRY + '/') or '@' in ref:
        raise ValueError('only tags under %s/ can be pushed to the sandbox registry: %r' % (REGISTRY, ref))


def _push(ref):
    _check_pushable(ref)
    repo = _split_ref(ref)[0]
    out = _run_docker(['push', ref])
    m = re.search(r'digest: (sha256:[0-9a-f]{64})', out)
    if m:
        return m.group(1)
    digests = json.loads(_run_docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]) or '[]')
    for entry in digests or []:
        if entry.startswith(repo + '@'):
            return entry.split('@', 1)[1]
    return None


def _build(ref, labels=None, env=None, cmd=None, entrypoint=None, healthcheck=None, expose=None,
           volumes=None, user=None, workdir=None, stopsignal=None, base=None, files=None):
    p = _paths()
    os.makedirs(p.tmp, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=p.tmp) as tmp:
        ctx = os.path.join(tmp, 'ctx')
        os.makedirs(ctx)
        flag_labels = _dockerfile(ctx, base, labels, env, cmd, entrypoint, healthcheck, expose, volumes,
                                  user, workdir, stopsignal, files)
        flag_labels[BUILD_LABEL] = uuid.uuid4().hex
        iid = os.path.join(tmp, 'iid')
        args = ['build', '-q', '--force-rm', '--iidfile', iid, '-t', ref]
        for k, v in sorted(flag_labels.items()):
            args += ['--label', '%s=%s' % (k, v)]
        _run_docker(args + [ctx])
        image_id = (_read(iid, '') or '').strip()
    return image_id or _image_id(ref)


def publish(ref, *, labels=None, env=None, cmd=None, entrypoint=None, healthcheck=None, expose=None,
            volumes=None, user=None, workdir=None, stopsignal=None, base=None, files=None, push=True) -> dict:
    """Build a new image (always a new image ID) for ref and push it: "a newer image is published".

    labels/env: dicts; cmd/entrypoint: list (exec form) or str (shell form); healthcheck: dict
    {test: 'CMD-SHELL string' | list, interval, timeout, retries, start_period} (durations in
    seconds or Go strings like '5s') or 'NONE'; expose: list like [80, '53/udp']; volumes: list of
    paths; files: {'/path/in/image': text | bytes | (content, mode)}; base: FROM image (default
    BASE_IMAGE). Returns {'id': image id, 'digest': registry digest or None when push=False, 'ref'}.

    With push, the engine's own tag ends as if the image had been pushed from another machine: a
    tag that existed before points again at the image it had (`docker pull ref` brings the new
    one), a tag that did not exist is left on the new image (as if pulled). Without push the
    image is a local build and the tag moves to it.
    """
    if push:
        _check_pushable(ref)
    previous = _local_image_id(ref) if push else None
    try:
        image_id = _build(ref, labels, env, cmd, entrypoint, healthcheck, expose, volumes, user, workdir,
                          stopsignal, base, files)
        digest = _push(ref) if push else None
    finally:
        _restore_tag(ref, previous)
    return {'id': image_id, 'digest': digest, 'ref': ref}


def _local_image_id(ref):
    status, body = _engine_get(_paths(), '/images/%s/json' % ref)
    return json.loads(body).get('Id') if status == 200 else None


def _restore_tag(ref, previous):
    if previous and _local_image_id(ref) != previous:
        _run_docker(['tag', previous, ref])


def _rfc3339(dt):
    return dt.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _retime_save_tar(raw, created):
    """Rewrite config 'created' (and history) in a `docker save` tar; legacy and OCI layouts."""
    src = tarfile.open(fileobj=io.BytesIO(raw), mode='r:')
    members = []
    data = {}
    for ti in src.getmembers():
        members.append(ti)
        if ti.isfile():
            data[ti.name] = src.extractfile(ti).read()
    manifest = json.loads(data['manifest.json'])
    renames = {}  # old path -> new path
    digest_map = {}  # old digest -> (new digest, new size)

    def blob_path(digest):
        return 'blobs/%s' % digest.replace(':', '/')

    for entry in manifest:
        old_path = entry['Config']
        config = json.loads(data[old_path])
        config['created'] = created
        for h in config.get('history') or []:
            h['created'] = created
        body = json.dumps(config, separators=(',', ':')).encode()
        new_hex = hashlib.sha256(body).hexdigest()
        if old_path.startswith('blobs/'):
            new_path = 'blobs/sha256/' + new_hex
            digest_map['sha256:' + old_path.rsplit('/', 1)[1]] = ('sha256:' + new_hex, len(body))
        else:
            new_path = new_hex + '.json'
        data[new_path] = body
        renames[old_path] = new_path
        entry['Config'] = new_path

    # OCI layout: manifests/indexes pointing at a changed blob change too, up to index.json
    changed = True
    while changed and digest_map:
        changed = False
        for name in list(data):
            if (not name.startswith('blobs/') or name in renames or name in renames.values()
                    or len(data[name]) > 1 << 20):
                continue
            try:
                doc = json.loads(data[name])
            except ValueError:
                continue
            if not isinstance(doc, dict) or not _swap_descriptors(doc, digest_map):
                continue
            body = json.dumps(doc, separators=(',', ':')).encode()
            new_digest = 'sha256:' + hashlib.sha256(body).hexdigest()
            old_digest = name[len('blobs/'):].replace('/', ':', 1)
            digest_map[old_digest] = (new_digest, len(body))
            data[blob_path(new_digest)] = body
            renames[name] = blob_path(new_digest)
            changed = True
    if 'index.json' in data and digest_map:
        index = json.loads(data['index.json'])
        if _swap_descriptors(index, digest_map):
            data['index.json'] = json.dumps(index, separators=(',', ':')).encode()
    data['manifest.json'] = json.dumps(manifest, separators=(',', ':')).encode()

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT) as dst:
        for ti in members:
            if ti.name in renames:
                continue
            if ti.isfile():
                ti.size = len(data[ti.name])
                dst.addfile(ti, io.BytesIO(data[ti.name]))
            else:
                dst.addfile(ti)
        for old, new in renames.items():
            ti = tarfile.TarInfo(new)
            ti.size, ti.mode, ti.mtime = len(data[new]), 0o644, int(time.time())
            dst.addfile(ti, io.BytesIO(data[new]))
    return out.getvalue()


def _swap_descriptors(doc, digest_map):
    changed = False
    if isinstance(doc, dict):
        if doc.get('digest') in digest_map:
            doc['digest'], size = digest_map[doc['digest']]
            if 'size' in doc:
                doc['size'] = size
            changed = True
        for v in doc.values():
            if isinstance(v, (dict, list)):
                changed = _swap_descriptors(v, digest_map) or changed
    elif isinstance(doc, list):
        for v in doc:
            changed = _swap_descriptors(v, digest_map) or changed
    return changed


def aged(ref, days, *, push=False, labels=None, env=None, cmd=None, entrypoint=None, healthcheck=None,
         expose=None, volumes=None, user=None, workdir=None, stopsignal=None, base=None, files=None) -> dict:
    """Like publish(), but the image's Created is `days` days ago (push only when push=True).

    The engine's tag is treated as in publish(): with push, a tag that existed before is put back.
    """
    if push:
        _check_pushable(ref)
    previous = _local_image_id(ref) if push else None
    try:
        return _aged(ref, days, push, labels, env, cmd, entrypoint, healthcheck, expose, volumes, user, workdir,
                     stopsignal, base, files)
    finally:
        _restore_tag(ref, previous)


def _aged(ref, days, push, labels, env, cmd, entrypoint, healthcheck, expose, volumes, user, workdir,
          stopsignal, base, files):
    built = publish(ref, labels=labels, env=env, cmd=cmd, entrypoint=entrypoint, healthcheck=healthcheck,
                    expose=expose, volumes=volumes, user=user, workdir=workdir, stopsignal=stopsignal,
                    base=base, files=files, push=False)
    created = _rfc3339(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=float(days)))
    raw = _run_docker(['save', ref], binary=True)
    _run_docker(['load', '-q'], input=_retime_save_tar(raw, created))
    image_id = _image_id(ref)
    if image_id != built['id']:
        _run_docker(['rmi', built['id']], check=False)
    digest = _push(ref) if push else None
    return {'id': image_id, 'digest': digest, 'ref': ref, 'created': created}


# --------------------------------------------------------------------------- multi-platform indexes

MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MT_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MT_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
MT_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
INDEX_TYPES = {'oci': MT_OCI_INDEX, 'docker': MT_DOCKER_LIST, MT_OCI_INDEX: MT_OCI_INDEX, MT_DOCKER_LIST: MT_DOCKER_LIST}
ATTESTATION_PLATFORM = 'unknown/unknown'
# the variant a platform gets when none is given (as `docker buildx` and the registries name them)
_DEFAULT_VARIANTS = {'arm64': 'v8', 'arm': 'v7'}


def _registry_call(method, path, data=None, headers=None, expect=(200,)):
    """One request to the sandbox registry's HTTP API (stdlib only); (status, headers with lower-case names, body)."""
    url = path if path.startswith('http') else 'http://%s%s' % (REGISTRY_ADDR, path)
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=60) as resp:
            status, hdrs, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, body = exc.code, exc.headers, exc.read()
    hdrs = {k.lower(): v for k, v in (hdrs or {}).items()}
    if status not in expect:
        raise SandboxError('registry: %s %s answered %s: %s'
                           % (method, path.split('?')[0], status, body.decode('utf-8', 'replace')[:500]))
    return status, hdrs, body


def _repo_name(ref):
    repo, tag = _split_ref(ref)
    if not repo.startswith(REGISTRY + '/'):
        raise ValueError('not a reference in the sandbox registry %s: %r' % (REGISTRY, ref))
    return repo[len(REGISTRY) + 1:], tag


def _sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def _canonical(doc):
    return json.dumps(doc, separators=(',', ':'), sort_keys=False).encode()


def registry_manifest(ref) -> dict | None:
    """What the registry serves for a tag or digest of the sandbox registry: {'digest', 'media_type', 'size',
    'raw' (the exact bytes), 'manifest' (parsed)}, or None when it has none."""
    name, tag = _repo_name(ref)
    status, hdrs, body = _registry_call('GET', '/v2/%s/manifests/%s' % (name, tag),
                                        headers={'Accept': MANIFEST_ACCEPT}, expect=(200, 404))
    if status == 404:
        return None
    doc = json.loads(body)
    return {'digest': hdrs.get('docker-content-digest') or _sha256(body),
            'media_type': doc.get('mediaType') or hdrs.get('content-type'), 'size': len(body), 'raw': body,
            'manifest': doc}


def _blob(name, digest):
    return _registry_call('GET', '/v2/%s/blobs/%s' % (name, digest))[2]


def _blob_mount(name, digest, source):
    """Make a blob of repository source part of name (a cross-repository mount: no data moves)."""
    if _registry_call('HEAD', '/v2/%s/blobs/%s' % (name, digest), expect=(200, 404))[0] == 200:
        return
    status, hdrs, _body = _registry_call(
        'POST', '/v2/%s/blobs/uploads/?mount=%s&from=%s' % (name, digest, source), data=b'', expect=(201, 202))
    if status == 202:  # not mounted (the registry wants the data): upload it
        _blob_upload(name, _blob(source, digest), location=hdrs.get('location'))


def _blob_upload(name, data, location=None):
    digest = _sha256(data)
    if _registry_call('HEAD', '/v2/%s/blobs/%s' % (name, digest), expect=(200, 404))[0] == 200:
        return digest
    if not location:
        location = _registry_call('POST', '/v2/%s/blobs/uploads/' % name, data=b'', expect=(202,))[1]['location']
    if location.startswith('/'):
        location = 'http://%s%s' % (REGISTRY_ADDR, location)
    _registry_call('PUT', '%s%sdigest=%s' % (location, '&' if '?' in location else '?', digest), data=data,
                   headers={'Content-Type': 'application/octet-stream'}, expect=(201,))
    return digest


def _manifest_put(name, reference, raw, media_type):
    _s, hdrs, _b = _registry_call('PUT', '/v2/%s/manifests/%s' % (name, reference), data=raw,
                                  headers={'Content-Type': media_type}, expect=(201,))
    return hdrs.get('docker-content-digest') or _sha256(raw)


def _parse_platform(platform):
    parts = str(platform).split('/')
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError('a platform is os/architecture[/variant], not %r' % (platform,))
    plat = {'architecture': parts[1], 'os': parts[0]}
    variant = parts[2] if len(parts) == 3 else _DEFAULT_VARIANTS.get(parts[1])
    if variant:
        plat['variant'] = variant
    return plat


def _platform_key(plat):
    return '/'.join([plat.get('os', ''), plat.get('architecture', '')] + ([plat['variant']] if plat.get('variant') else []))


def _same_platform(a, b):
    """a, b: platform dicts; a variant missing on one side matches (linux/arm64 is linux/arm64/v8)."""
    return (a.get('os') == b.get('os') and a.get('architecture') == b.get('architecture')
            and (not a.get('variant') or not b.get('variant') or a['variant'] == b['variant']))


def _native_platform():
    _status, body = _engine_get(_paths(), '/version')
    version = json.loads(body or '{}')
    return {'os': version.get('Os') or 'linux', 'architecture': version.get('Arch') or 'amd64'}


def _descriptor_info(name, desc):
    """{'digest', 'size', 'media_type', 'config', 'platform'} of a platform manifest in repository name."""
    raw = _registry_call('GET', '/v2/%s/manifests/%s' % (name, desc['digest']),
                         headers={'Accept': MANIFEST_ACCEPT})[2]
    manifest = json.loads(raw)
    config = manifest.get('config') or {}
    plat = desc.get('platform')
    if not plat and config.get('digest'):
        cfg = json.loads(_blob(name, config['digest']))
        plat = {k: cfg[k] for k in ('os', 'architecture', 'variant') if cfg.get(k)}
    return {'digest': desc['digest'], 'size': len(raw), 'media_type': manifest.get('mediaType') or desc.get('mediaType'),
            'config': config.get('digest'), 'platform': plat or {}}


def _current_platform_manifests(name, tag):
    """The platform manifests the tag serves now: [(platform dict, info)] from an index, or the one manifest."""
    status, hdrs, raw = _registry_call('GET', '/v2/%s/manifests/%s' % (name, tag), headers={'Accept': MANIFEST_ACCEPT},
                                       expect=(200, 404))
    if status == 404:
        return []
    doc = json.loads(raw)
    if doc.get('manifests') is not None:
        out = []
        for desc in doc['manifests']:
            annotations = desc.get('annotations') or {}
            if annotations.get('vnd.docker.reference.type') == 'attestation-manifest':
                continue
            info = _descriptor_info(name, desc)
            out.append((desc.get('platform') or info['platform'], info))
        return out
    info = _descriptor_info(name, {'digest': hdrs.get('docker-content-digest') or _sha256(raw),
                                   'mediaType': doc.get('mediaType')})
    return [(info['platform'], info)]


def _foreign_image(name, plat, family, labels=None, env=None, cmd=None, entrypoint=None, **_ignored):
    """An image for a platform this host cannot run, pushed through the registry API: the base image's layers
    (mounted, no data moves) under a config of that platform. family: 'oci' or 'docker' (the media types)."""
    base_name, base_tag = _repo_name(BASE_IMAGE)
    base = [info for _p, info in _current_platform_manifests(base_name, base_tag)]
    if not base:
        raise SandboxError('the base image %s is not in the registry (run up())' % BASE_IMAGE)
    base_manifest = json.loads(_registry_call('GET', '/v2/%s/manifests/%s' % (base_name, base[0]['digest']),
                                              headers={'Accept': MANIFEST_ACCEPT})[2])
    base_config = json.loads(_blob(base_name, base_manifest['config']['digest']))
    now = _rfc3339(datetime.datetime.now(datetime.timezone.utc))
    container = dict(base_config.get('config') or {})
    container['Labels'] = dict(container.get('Labels') or {}, **{str(k): str(v) for k, v in (labels or {}).items()})
    container['Labels'][BUILD_LABEL] = uuid.uuid4().hex
    if env:
        container['Env'] = list(container.get('Env') or []) + ['%s=%s' % (k, v) for k, v in env.items()]
    if cmd is not None:
        container['Cmd'] = list(cmd) if isinstance(cmd, (list, tuple)) else ['/bin/sh', '-c', cmd]
    if entrypoint is not None:
        container['Entrypoint'] = (list(entrypoint) if isinstance(entrypoint, (list, tuple))
                                   else ['/bin/sh', '-c', entrypoint])
    config = {'architecture': plat['architecture'], 'os': plat['os']}
    if plat.get('variant'):
        config['variant'] = plat['variant']
    config.update({'created': now, 'config': container, 'rootfs': base_config['rootfs'],
                   'history': list(base_config.get('history') or []) + [
                       {'created': now, 'created_by': 'sandbox.publish_index %s' % _platform_key(plat),
                        'empty_layer': True}]})
    config_raw = _canonical(config)
    config_digest = _blob_upload(name, config_raw)
    layers = []
    for layer in base_manifest['layers']:
        _blob_mount(name, layer['digest'], base_name)
        gzip = layer.get('mediaType', '').endswith('gzip')
        if family == 'oci':
            mt = 'application/vnd.oci.image.layer.v1.tar' + ('+gzip' if gzip else '')
        else:
            mt = 'application/vnd.docker.image.rootfs.diff.tar' + ('.gzip' if gzip else '')
        layers.append({'mediaType': mt, 'size': layer['size'], 'digest': layer['digest']})
    manifest = {'schemaVersion': 2,
                'mediaType': MT_OCI_MANIFEST if family == 'oci' else MT_DOCKER_MANIFEST,
                'config': {'mediaType': MT_OCI_CONFIG if family == 'oci' else MT_DOCKER_CONFIG,
                           'size': len(config_raw), 'digest': config_digest},
                'layers': layers}
    raw = _canonical(manifest)
    digest = _manifest_put(name, _sha256(raw), raw, manifest['mediaType'])
    return {'digest': digest, 'size': len(raw), 'media_type': manifest['mediaType'], 'config': config_digest,
            'platform': {k: config[k] for k in ('os', 'architecture', 'variant') if config.get(k)}}


def _native_image(name, plat, options):
    """An image this host runs, built by the sandbox engine as publish() builds (FROM the base image), pushed to
    a scratch repository, then made part of repository name by digest (the manifest's bytes as the engine
    pushed them); the scratch repository is deleted again. Returns its info and the local image ID."""
    scratch = '%s/sandbox/scratch-%s' % (REGISTRY, uuid.uuid4().hex[:12])
    scratch_ref = scratch + ':' + plat['architecture']
    scratch_name = _repo_name(scratch_ref)[0]
    try:
        image_id = _build(scratch_ref, **options)
        _push(scratch_ref)
        pushed = _current_platform_manifests(scratch_name, plat['architecture'])
        info = next((i for p, i in pushed if _same_platform(p, plat)), None) or pushed[0][1]
        manifest_raw = _registry_call('GET', '/v2/%s/manifests/%s' % (scratch_name, info['digest']),
                                      headers={'Accept': MANIFEST_ACCEPT})[2]
        manifest = json.loads(manifest_raw)
        for blob in [manifest['config']] + list(manifest.get('layers') or []):
            _blob_mount(name, blob['digest'], scratch_name)
        _manifest_put(name, info['digest'], manifest_raw, manifest.get('mediaType') or MT_DOCKER_MANIFEST)
    finally:
        _run_docker(['rmi', scratch_ref], check=False)
        shutil.rmtree(os.path.join(_paths().reg_root, 'docker', 'registry', 'v2', 'repositories', scratch_name),
                      ignore_errors=True)
    info['platform'] = dict(plat)
    return info, image_id


def _attestation(name, subject_digest):
    """An attestation manifest as BuildKit attaches it (an in-toto statement about subject_digest)."""
    statement = _canonical({'_type': 'https://in-toto.io/Statement/v0.1',
                            'predicateType': 'https://spdx.dev/Document',
                            'subject': [{'name': 'sandbox', 'digest': {'sha256': subject_digest.split(':', 1)[1]}}],
                            'predicate': {'spdxVersion': 'SPDX-2.3', 'name': 'sandbox-' + uuid.uuid4().hex}})
    layer_digest = _blob_upload(name, statement)
    config_raw = _canonical({'architecture': 'unknown', 'os': 'unknown', 'config': {},
                             'rootfs': {'type': 'layers', 'diff_ids': [layer_digest]}})
    config_digest = _blob_upload(name, config_raw)
    manifest = {'schemaVersion': 2, 'mediaType': MT_OCI_MANIFEST,
                'config': {'mediaType': MT_OCI_CONFIG, 'digest': config_digest, 'size': len(config_raw)},
                'layers': [{'mediaType': 'application/vnd.in-toto+json', 'digest': layer_digest,
                            'size': len(statement), 'annotations': {'in-toto.io/predicate-type':
                                                                    'https://spdx.dev/Document'}}]}
    raw = _canonical(manifest)
    digest = _manifest_put(name, _sha256(raw), raw, MT_OCI_MANIFEST)
    return {'mediaType': MT_OCI_MANIFEST, 'digest': digest, 'size': len(raw),
            'platform': {'architecture': 'unknown', 'os': 'unknown'},
            'annotations': {'vnd.docker.reference.digest': subject_digest,
                            'vnd.docker.reference.type': 'attestation-manifest'}}


def publish_index(ref, platforms=('linux/amd64', 'linux/arm64'), *, push_only=None, media_type='oci',
                  attestation=False, **publish_options) -> dict:
    """Publish ref as a multi-platform image: an OCI image index (media_type='oci') or a Docker manifest list
    (media_type='docker') over one image per platform, written with a PUT of the tag after the platform
    manifests were pushed by digest.

    The platform of this host (linux/amd64 here) is built by the sandbox engine as publish() builds it
    (publish_options: labels, env, cmd, ... as publish()) and can run here; any other platform ('linux/arm64'
    is linux/arm64/v8) is the base image's layers under a config of that platform, pushed through the registry
    API (its labels, env, cmd, entrypoint follow publish_options), never run here. platforms without this
    host's own give an index this host cannot pull.

    push_only: the platforms that get a new image; every other platform of platforms keeps the manifest the tag
    serves now (byte-identical), taken from the tag's index or, when the tag is a single manifest, that
    manifest (so a plain tag becomes an index over the same image). attestation=True adds, for each platform
    image, an attestation manifest entry (platform unknown/unknown, annotation
    vnd.docker.reference.type=attestation-manifest) as BuildKit does.

    The engine's own tag is treated as publish() treats it: a tag that existed stays on its image; a tag that
    did not exist is pulled (as if pulled: on the containerd store, the image is then the index).

    Returns {'ref', 'digest' (of the index), 'media_type', 'id' (the local image built for this host, or None),
    'manifests': {platform: {'digest', 'config', 'size', 'media_type', 'platform', 'new'}},
    'attestations': {platform: digest}}.
    """
    _check_pushable(ref)
    index_type = INDEX_TYPES.get(media_type)
    if not index_type:
        raise ValueError('media_type is oci or docker (or an index media type), not %r' % (media_type,))
    family = 'oci' if index_type == MT_OCI_INDEX else 'docker'
    name, tag = _repo_name(ref)
    wanted = [(str(p), _parse_platform(p)) for p in platforms]
    if not wanted:
        raise ValueError('an index needs at least one platform')
    renew = None if push_only is None else [_parse_platform(p) for p in
                                            ([push_only] if isinstance(push_only, str) else push_only)]
    for plat in renew or []:
        if not any(_same_platform(plat, w) for _k, w in wanted):
            raise ValueError('push_only %s is not one of platforms %s' % (_platform_key(plat), list(platforms)))
    current = _current_platform_manifests(name, tag) if renew is not None else []
    native = _native_platform()
    previous = _local_image_id(ref)
    image_id = None
    entries = {}
    for key, plat in wanted:
        if renew is not None and not any(_same_platform(plat, r) for r in renew):
            kept = next((i for p, i in current if _same_platform(p, plat)), None)
            if not kept:
                raise SandboxError('%s serves no %s image to keep (push_only=%s)' % (ref, key, list(push_only)))
            entries[key] = dict(kept, new=False)
            continue
        if _same_platform(plat, native):
            info, image_id = _native_image(name, plat, publish_options)
        else:
            info = _foreign_image(name, plat, family, **publish_options)
        entries[key] = dict(info, new=True)
    descriptors, attestations = [], {}
    for key, plat in wanted:
        info = entries[key]
        descriptors.append({'mediaType': info['media_type'], 'digest': info['digest'], 'size': info['size'],
                            'platform': {k: plat[k] for k in ('architecture', 'os', 'variant') if plat.get(k)}})
    if attestation:
        for key, _plat in wanted:
            desc = _attestation(name, entries[key]['digest'])
            attestations[key] = desc['digest']
            descriptors.append(desc)
    index = {'schemaVersion': 2, 'mediaType': index_type, 'manifests': descriptors}
    raw = _canonical(index)
    digest = _manifest_put(name, tag, raw, index_type)
    if previous is None and image_id is not None:
        _run_docker(['pull', '-q', ref], timeout=300)  # as if pulled: the tag, and the digest a pull records
    for info in entries.values():
        info['platform'] = dict(info.get('platform') or {})
    return {'ref': ref, 'digest': digest, 'media_type': index_type, 'id': image_id, 'manifests': entries,
            'attestations': attestations}


def registry_tag(ref, digest) -> str:
    """Point the tag ref at the manifest (or index) digest of the same repository, with the exact bytes the registry
    holds for that digest: e.g. an index tag becomes the plain manifest of one of its platforms. Returns digest."""
    name, tag = _repo_name(ref)
    _status, hdrs, raw = _registry_call('GET', '/v2/%s/manifests/%s' % (name, digest),
                                        headers={'Accept': MANIFEST_ACCEPT})
    media_type = json.loads(raw).get('mediaType') or hdrs.get('content-type')
    return _manifest_put(name, tag, raw, media_type)


# --------------------------------------------------------------------------- reset

def reset(*, registry=False) -> dict:
    """Remove all containers, non-base images, user networks and volumes of the sandbox engine.

    With registry=True also delete every repository but the base one from the registry storage.
    """
    removed = _reset_engine(None)
    removed['repositories'] = 0
    if registry:
        repos_root = os.path.join(_paths().reg_root, 'docker', 'registry', 'v2', 'repositories')
        keep = _split_ref(BASE_LOCAL)[0]
        for dirpath, dirnames, _files in os.walk(repos_root):
            if '_manifests' in dirnames:
                name = os.path.relpath(dirpath, repos_root)
                dirnames[:] = []
                if name != keep:
                    shutil.rmtree(dirpath, ignore_errors=True)
                    removed['repositories'] += 1
        for dirpath in sorted((w[0] for w in os.walk(repos_root)), key=len, reverse=True):
            if dirpath != repos_root:
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)
    return removed


def _reset_engine(sock):
    """Containers (with anonymous volumes), images but the base, user networks and volumes of one engine."""
    def dk(*args, check=True):
        return _run_docker(list(args), check=check, sock=sock)

    base_id = _image_id(BASE_IMAGE, sock=sock)
    removed = {'containers': 0, 'images': 0, 'networks': 0, 'volumes': 0}
    ids = dk('ps', '-aq', '--no-trunc').split()
    if ids:
        dk('rm', '-f', '-v', *ids, check=False)
        removed['containers'] = len(ids)
    for _attempt in range(5):
        listing = dk('image', 'ls', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}')
        victims, extra_tags = [], []
        for line in listing.splitlines():
            image_id, _sep, name = line.partition(' ')
            if image_id == base_id:
                if name not in (BASE_LOCAL, BASE_IMAGE) and '<none>' not in name:
                    extra_tags.append(name)
            elif image_id not in victims:
                victims.append(image_id)
        if extra_tags:
            dk('rmi', *extra_tags, check=False)
        if not victims:
            break
        dk('rmi', '-f', *victims, check=False)
        removed['images'] += len(victims)
    nets = dk('network', 'ls', '-q', '--filter', 'type=custom').split()
    if nets:
        dk('network', 'rm', *nets, check=False)
        removed['networks'] = len(nets)
    vols = dk('volume', 'ls', '-q').split()
    if vols:
        dk('volume', 'rm', '-f', *vols, check=False)
        removed['volumes'] = len(vols)
    return removed


# --------------------------------------------------------------------------- fleet

# Several Docker hosts reached over real SSH, beside the main engine: hostN has its own containerd and
# dockerd (own sockets, exec-root, data-root, bridge, address pool, cgroup parent) and an sshd on
# 127.0.0.1:(FLEET_SSH_PORT + N - 1) that lets root in with a key pair the sandbox generates.

FLEET_MAX = 15
FLEET_SSH_PORT = 2221
FLEET_USER = 'root'
FLEET_GROUP = 'docker_hosts'
FLEET_SSH_COMMON_ARGS = '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'
# hostN: bridge 172.30.N.1/24 (all inside 172.30.0.0/20), user-defined networks from 172.30.(16*N).0/20;
# none of it overlaps the main engine's 172.31.250.0/24 and 172.31.224.0/20
FLEET_BRIDGE_CIDR = '172.30.%d.1/24'
FLEET_POOL_BASE = '172.30.%d.0/20'
# force the fallback of keeping the fleet's key in root's own authorized_keys (normally only used
# when sshd's StrictModes would refuse the file in the state dir)
FLEET_AUTH_ENV = 'PATCHOPS_SANDBOX_FLEET_AUTHORIZED_KEYS'

__all__ += ['fleet_up', 'fleet_down', 'fleet_info', 'fleet_inventory', 'fleet_docker', 'fleet_ssh',
            'fleet_ssh_argv', 'fleet_reset']


class _HostPaths(_EngineFiles):
    """One fleet host: the attributes the engine helpers use (as _Paths) plus its sshd and journal."""

    def __init__(self, p, n):
        if not 1 <= n <= FLEET_MAX:
            raise ValueError('fleet hosts are host1..host%d, not host%d' % (FLEET_MAX, n))
        self.n = n
        self.name = 'host%d' % n
        super().__init__(os.path.join(p.fleet, self.name), os.path.join(p.run, 'h%d' % n), p.kind)
        self.cgroup_parent = '%s-h%d' % (p.cgroup_parent, n)
        self.bridge = 'br-patchops%d' % n
        self.bridge_cidr = FLEET_BRIDGE_CIDR % n
        self.pool_base = FLEET_POOL_BASE % (16 * n)
        self.pool = 'base=%s,size=24' % self.pool_base
        self.journal = os.path.join(self.state, 'journal')
        self.ssh_port = FLEET_SSH_PORT + n - 1
        self.sshd_config = os.path.join(self.state, 'sshd_config')
        self.host_key = os.path.join(self.state, 'ssh_host_ed25519_key')


class _FleetKeys:
    def __init__(self, p):
        self.dir = os.path.join(p.fleet, 'ssh')
        self.private = os.path.join(self.dir, 'id_ed25519')
        self.public = self.private + '.pub'
        self.authorized = os.path.join(self.dir, 'authorized_keys')
        self.comment = 'patchops-sandbox-fleet-' + p.tag
        self.root_record = os.path.join(self.dir, 'root-authorized-keys.json')
        self.run_sshd_record = os.path.join(self.dir, 'run-sshd-created')


def _host(p, host):
    """hostN from 'host2', 2 or a fleet_info() host dict."""
    if isinstance(host, dict):
        host = host.get('name')
    if isinstance(host, int) and not isinstance(host, bool):
        return _HostPaths(p, host)
    m = re.match(r'^host([1-9][0-9]*)$', str(host or ''))
    if not m:
        raise ValueError('not a fleet host name: %r (host1..host%d)' % (host, FLEET_MAX))
    return _HostPaths(p, int(m.group(1)))


def _fleet_numbers(p):
    """The hosts this state dir knows: set up under the state dir, or with a runtime dir."""
    found = set()
    for parent, pattern in ((p.fleet, r'^host([1-9][0-9]*)$'), (p.run, r'^h([1-9][0-9]*)$')):
        with contextlib.suppress(OSError):
            for entry in os.listdir(parent):
                m = re.match(pattern, entry)
                if m and int(m.group(1)) <= FLEET_MAX and os.path.isdir(os.path.join(parent, entry)):
                    found.add(int(m.group(1)))
    return sorted(found)


def _missing_fleet_packages():
    need = []
    if not _which('sshd'):
        need.append('openssh-server')
    if not (_which('ssh') and _which('ssh-keygen')):
        need.append('openssh-client')
    return need


def _proc_children():
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        stat = _read('/proc/%s/stat' % entry, '') or ''
        fields = stat[stat.rfind(')') + 2:].split()
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _descendants(pid):
    children = _proc_children()
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _exe(pid):
    try:
        return os.path.realpath(os.readlink('/proc/%d/exe' % pid))
    except OSError:
        return None


def _sshd_pid(h):
    """The pid of hostN's listening sshd (its command line names its own config file)."""
    text = _read(h.pidfile('sshd'), '') or ''
    pid = int(text.strip()) if text.strip().isdigit() else 0
    if _alive(pid, h.sshd_config):
        return pid
    found = _pids_matching(h.sshd_config)
    sshd = os.path.realpath(_which('sshd') or '/usr/sbin/sshd')
    found = [pid for pid in found if _exe(pid) == sshd]
    # a connection's child has the listener's command line until it re-executes: take the parent
    parents = {pid for pid in found if not any(pid in _descendants(other) for other in found if other != pid)}
    return min(parents) if parents else 0


def _listening(port, addr='127.0.0.1'):
    """A TCP socket listens on addr:port in this network namespace (read from /proc: a probe connection
    would put a line in sshd's log every time)."""
    want = '%s:%04X' % (''.join('%02X' % int(b) for b in reversed(addr.split('.'))), port)
    for line in (_read('/proc/net/tcp', '') or '').splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == want and fields[3] == '0A':
            return True
    return False


def _sshd_up(h):
    return bool(_sshd_pid(h)) and _listening(h.ssh_port)


def _host_running(h):
    return {'containerd': bool(_containerd_pid(h)), 'engine': _engine_up(h), 'sshd': _sshd_up(h)}


def _strict_modes_ok(path):
    """What sshd's StrictModes asks of root's AuthorizedKeysFile: it and every directory above it
    owned by root and writable by nobody else."""
    cur = os.path.realpath(path)
    while True:
        try:
            st = os.stat(cur)
        except OSError:
            return False
        if st.st_uid != 0 or st.st_mode & 0o022:
            return False
        if cur == os.path.dirname(cur):
            return True
        cur = os.path.dirname(cur)


def _ensure_fleet_keys(p):
    """The fleet's client key pair (made with ssh-keygen once) and the authorized_keys file holding it."""
    k = _FleetKeys(p)
    os.makedirs(p.fleet, mode=0o755, exist_ok=True)
    os.makedirs(k.dir, mode=0o700, exist_ok=True)
    os.chmod(k.dir, 0o700)
    if not (os.path.exists(k.private) and os.path.exists(k.public)):
        for f in (k.private, k.public):
            with contextlib.suppress(OSError):
                os.unlink(f)
        _check_run([_which('ssh-keygen'), '-q', '-t', 'ed25519', '-N', '', '-C', k.comment, '-f', k.private])
    pub = (_read(k.public, '') or '').strip()
    if (_read(k.authorized, '') or '').strip() != pub:
        _write(k.authorized, pub + '\n', 0o600)
    return k, pub


def _check_run(argv, timeout=60, input=None):
    proc = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout, check=False)
    out = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0:
        raise SandboxError('%s failed (exit %d): %s' % (' '.join(argv), proc.returncode, out.strip()),
                           cmd=argv, returncode=proc.returncode, stdout=out)
    return out


def _auth_mode(p, k):
    """'state': sshd reads the key from the state dir; 'root': from /root/.ssh/authorized_keys."""
    forced = os.environ.get(FLEET_AUTH_ENV, '').strip().lower()
    if forced in ('root', 'state'):
        return forced
    return 'state' if _strict_modes_ok(k.authorized) else 'root'


def _root_authorized_keys():
    return os.path.join(os.path.expanduser('~root'), '.ssh', 'authorized_keys')


def _root_key_add(k, pub):
    """Fallback: append the fleet's key to root's authorized_keys (fleet_down removes exactly that line)."""
    path = _root_authorized_keys()
    record = json.loads(_read(k.root_record, '') or '{}')
    lines = (_read(path, '') or '').splitlines()
    if pub in lines:
        if not record:
            _write(k.root_record, json.dumps({'path': path, 'line': pub, 'created_dir': False,
                                              'created_file': False}) + '\n', 0o600)
        return
    created_dir = not os.path.isdir(os.path.dirname(path))
    created_file = not os.path.exists(path)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    _write(k.root_record, json.dumps({'path': path, 'line': pub,
                                      'created_dir': record.get('created_dir', created_dir),
                                      'created_file': record.get('created_file', created_file)}) + '\n', 0o600)
    text = _read(path, '') or ''
    with open(path, 'a') as f:
        if text and not text.endswith('\n'):
            f.write('\n')
        f.write(pub + '\n')
    os.chmod(path, 0o600)


def _root_key_remove(k):
    record = json.loads(_read(k.root_record, '') or '{}')
    if not record:
        return False
    path, line = record['path'], record['line']
    text = _read(path)
    if text is not None:
        kept = [entry for entry in text.splitlines(True) if entry.rstrip('\r\n') != line]
        if not kept and record.get('created_file'):
            os.unlink(path)
            if record.get('created_dir'):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.dirname(path))
        elif len(kept) != len(text.splitlines(True)):
            st = os.stat(path)
            _write(path, ''.join(kept), st.st_mode & 0o7777)
    os.unlink(k.root_record)
    return True


def _sshd_config(h, k, mode):
    keys_file = k.authorized if mode == 'state' else '.ssh/authorized_keys'

    def arg(value):
        # sshd_config takes double-quoted arguments; '%' starts a token in AuthorizedKeysFile
        return '"%s"' % value.replace('%', '%%') if re.search(r'[\s"%#]', value) else value

    return '\n'.join([
        '# sshd of the patchops sandbox fleet host %s (written by tests/sandbox/sandbox.py)' % h.name,
        'Port %d' % h.ssh_port,
        'ListenAddress 127.0.0.1',
        'AddressFamily inet',
        'HostKey %s' % arg(h.host_key),
        'PidFile %s' % arg(h.pidfile('sshd')),
        'AuthorizedKeysFile %s' % arg(keys_file),
        'PermitRootLogin prohibit-password',
        'AllowUsers %s' % FLEET_USER,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes yes',
        'X11Forwarding no',
        'AllowTcpForwarding no',
        'AllowAgentForwarding no',
        'PermitTunnel no',
        'PrintMotd no',
        'PrintLastLog no',
        'UseDNS no',
        'MaxStartups 50:30:100',
        'MaxSessions 50',
        'LogLevel INFO',
        'Subsystem sftp internal-sftp',
        '',
    ])


def _start_sshd(p, h, k, mode):
    """Start hostN's sshd (no wait); return its pid."""
    k_run_sshd = '/run/sshd'  # sshd's privilege separation directory (Debian's compiled-in path)
    if not os.path.isdir(k_run_sshd):
        os.makedirs(k_run_sshd, mode=0o755, exist_ok=True)
        _write(k.run_sshd_record, k_run_sshd + '\n')
    if not (os.path.exists(h.host_key) and os.path.exists(h.host_key + '.pub')):
        for f in (h.host_key, h.host_key + '.pub'):
            with contextlib.suppress(OSError):
                os.unlink(f)
        _check_run([_which('ssh-keygen'), '-q', '-t', 'ed25519', '-N', '', '-C', 'patchops-sandbox-' + h.name,
                    '-f', h.host_key])
    _write(h.sshd_config, _sshd_config(h, k, mode), 0o600)
    sshd = _which('sshd')
    _check_run([sshd, '-t', '-f', h.sshd_config])
    if _port_open('127.0.0.1:%d' % h.ssh_port):
        raise SandboxError('127.0.0.1:%d (ssh of fleet %s) is already taken by a process this sandbox did not '
                           'start' % (h.ssh_port, h.name))
    with contextlib.suppress(OSError):
        os.unlink(h.pidfile('sshd'))
    pid = _spawn([sshd, '-D', '-e', '-f', h.sshd_config], h.log('sshd'), _daemon_env())
    _write(h.pidfile('sshd'), '%d\n' % pid)
    return pid


def _wait_sshd(h, pid):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _listening(h.ssh_port) and _alive(pid, h.sshd_config):
            return
        if not _running(pid):
            break
        time.sleep(0.05)
    raise SandboxError('sshd of %s did not listen on 127.0.0.1:%d; log %s:\n%s'
                       % (h.name, h.ssh_port, h.log('sshd'), _tail(h.log('sshd'))))


def _stop_sshd(h):
    """Stop hostN's sshd and the sessions it serves (an Ansible ControlPersist master keeps one open)."""
    pid = _sshd_pid(h)
    if not pid:
        return False
    sessions = _descendants(pid)
    for victim in [pid] + sessions:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_running(v) for v in [pid] + sessions):
        time.sleep(0.05)
    for victim in [pid] + sessions:
        if _running(victim):
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
    return True


def _ssh_base_argv(h, k):
    return [_which('ssh') or 'ssh', '-F', '/dev/null', '-i', k.private, '-p', str(h.ssh_port),
            '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
            '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
            '%s@127.0.0.1' % FLEET_USER]


def _check_cidr_free(h):
    """The host's bridge subnet must not be on any other link of this machine."""
    import ipaddress
    net = ipaddress.ip_network(h.bridge_cidr, strict=False)
    out = _ip('-o', '-4', 'addr', 'show', check=False).stdout.decode()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1].rstrip(':') != h.bridge:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_interface(parts[3]).network.overlaps(net):
                    raise SandboxError('%s (bridge of fleet %s) overlaps %s on %s'
                                       % (h.bridge_cidr, h.name, parts[3], parts[1]))


def _ensure_host_base(h):
    if _engine_get(h, '/images/%s/json' % BASE_IMAGE)[0] != 200:
        _run_docker(['pull', '-q', BASE_IMAGE], sock=h.sock, timeout=300)
    if _engine_get(h, '/images/%s/json' % BASE_LOCAL)[0] != 200:
        _run_docker(['tag', BASE_IMAGE, BASE_LOCAL], sock=h.sock)


def _host_ready(h):
    return (_recorded_kind(h.engine_record) == h.kind and bool(_containerd_pid(h)) and _engine_up(h) and _sshd_up(h)
            and _engine_get(h, '/images/%s/json' % BASE_IMAGE)[0] == 200)


def fleet_up(n=3) -> dict:
    """Start fleet hosts host1..hostN beside the main sandbox (idempotent). Returns fleet_info().

    Each host: its own containerd + dockerd with the base image pulled from the sandbox registry, and
    an sshd on 127.0.0.1:(2221 + N - 1) for root with the fleet's key. Hosts beyond n that already run
    are left alone.
    """
    n = int(n)
    if not 1 <= n <= FLEET_MAX:
        raise ValueError('fleet_up(n): n is 1..%d' % FLEET_MAX)
    up()  # the registry the hosts pull from, and the base image in it
    p = _paths()
    hosts = [_HostPaths(p, i) for i in range(1, n + 1)]
    with _locked(p, p.fleet_lock):
        k = _FleetKeys(p)
        if (os.path.exists(k.private) and os.path.exists(k.authorized)
                and all(_host_ready(h) for h in hosts)):
            return fleet_info()
        if os.geteuid() != 0:
            raise SandboxError('the fleet needs root (it starts dockerd and sshd)')
        _apt_install(_missing_fleet_packages(), _missing_fleet_packages)
        k, pub = _ensure_fleet_keys(p)
        mode = _auth_mode(p, k)
        if mode == 'root':
            _root_key_add(k, pub)

        os.makedirs(p.fleet_cp, mode=0o700, exist_ok=True)
        waits = []
        for h in hosts:
            for d in (h.state, h.logs, h.pids, h.journal):
                os.makedirs(d, exist_ok=True)
            os.makedirs(h.run, mode=0o711, exist_ok=True)
            if (_engine_pid(h) or _containerd_pid(h)) and _recorded_kind(h.engine_record) not in (None, h.kind):
                # the hosts run the main engine's kind: an engine of another kind stops first
                _stop_engine(h, sock=h.sock, who=h.name)
            if _engine_pid(h) and not (_containerd_pid(h) and _engine_up(h)):
                _stop_pid(_engine_pid(h), h.sock, name='%s dockerd' % h.name)
            if not _engine_up(h):
                _start_containerd(h)
                if not os.path.exists(h.bridge_marker):
                    _check_cidr_free(h)
                _ensure_bridge(h)
                log_offset = os.path.getsize(h.log('dockerd')) if os.path.exists(h.log('dockerd')) else 0
                pid, driver = _start_dockerd(h)
                waits.append((h, pid, driver, log_offset))
        for h, pid, driver, log_offset in waits:  # the engines start side by side
            _wait_dockerd(h, pid, driver, log_offset)
        for h in hosts:
            _ensure_host_base(h)

        started = [(h, _start_sshd(p, h, k, mode)) for h in hosts if not _sshd_up(h)]
        for h, pid in started:
            _wait_sshd(h, pid)
        for h, _pid in started:  # a real login: the key, the AuthorizedKeysFile and StrictModes work
            proc = subprocess.run(_ssh_base_argv(h, k) + ['true'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=60, check=False)
            if proc.returncode != 0:
                raise SandboxError('ssh to %s (127.0.0.1:%d) failed: %s\nsshd log %s:\n%s'
                                   % (h.name, h.ssh_port, proc.stdout.decode('utf-8', 'replace').strip(),
                                      h.log('sshd'), _tail(h.log('sshd'), 15)))
        return fleet_info()


def fleet_info() -> dict:
    """Where the fleet's hosts are and what runs: {'hosts': {'host1': {...}, ...}, 'ssh_private_key': ...}."""
    p = _paths()
    k = _FleetKeys(p)
    record = json.loads(_read(k.root_record, '') or '{}')
    hosts = {}
    for n in _fleet_numbers(p):
        h = _HostPaths(p, n)
        hosts[h.name] = {
            'name': h.name,
            'ssh_host': '127.0.0.1',
            'ssh_port': h.ssh_port,
            'ssh_user': FLEET_USER,
            'docker_host': 'unix://' + h.sock,
            'state_dir': h.journal,
            'host_dir': h.state,
            'run_dir': h.run,
            'bridge': h.bridge,
            'bridge_cidr': h.bridge_cidr,
            'address_pool': h.pool_base,
            'storage_driver': (_read(h.driver_file, '') or '').strip() or None,
            'engine': {k: v for k, v in _engine_info_record(h.engine_record).items()
                       if k in ('kind', 'version', 'api_version', 'image_store')} or None,
            'logs': {name: h.log(name) for name in ('containerd', 'dockerd', 'sshd')},
            'running': _host_running(h),
        }
    return {
        'hosts': hosts,
        'group': FLEET_GROUP,
        'ssh_user': FLEET_USER,
        'ssh_private_key': k.private,
        'ssh_public_key': k.public,
        'authorized_keys': record.get('path') or k.authorized,
        'ssh_common_args': FLEET_SSH_COMMON_ARGS,
        'ssh_control_path_dir': p.fleet_cp,
        'python': os.environ.get('PATCHOPS_TARGET_PYTHON') or sys.executable,
        'registry': REGISTRY,
        'base_image': BASE_IMAGE,
    }


def _yaml_value(value):
    # JSON scalars and flow collections are YAML; json.dumps escapes are YAML double-quoted escapes
    if value is None or isinstance(value, (bool, int, float, list, dict)):
        return json.dumps(value)
    return json.dumps(str(value))


def fleet_inventory(path, hosts=None, extra_hosts=None) -> str:
    """Write an Ansible YAML inventory of the fleet (group docker_hosts) to path (.yml/.yaml/.json).

    hosts: names ('host1') or numbers, default every fleet host fleet_info() lists. extra_hosts:
    {name: {var: value}}: a new name starts as a copy of the host named by its 'like' key (default the
    first host) with its own patch_containers_state_dir, then takes the given vars (for a host whose
    socket does not exist, an unreachable port, a Python without the SDK, ...); the name of a host
    already in the inventory just overrides its vars. Returns the path written.
    """
    path = os.fspath(path)
    if not path.endswith(('.yml', '.yaml', '.json')):
        raise ValueError('Ansible reads a YAML inventory only from a .yml, .yaml or .json file: %r' % path)
    p = _paths()
    info = fleet_info()
    if hosts is None:
        names = list(info['hosts'])
    else:
        names = [_host(p, h).name for h in ([hosts] if isinstance(hosts, (str, int)) else hosts)]
    missing = [name for name in names if name not in info['hosts']]
    if missing:
        raise SandboxError('not set up: %s (run fleet_up first)' % ', '.join(missing))
    python = info['python']

    def host_vars(entry):
        return {
            'ansible_host': entry['ssh_host'],
            'ansible_port': entry['ssh_port'],
            'ansible_user': entry['ssh_user'],
            'ansible_ssh_private_key_file': info['ssh_private_key'],
            'ansible_ssh_common_args': info['ssh_common_args'],
            'ansible_python_interpreter': python,
            'ansible_control_path_dir': info['ssh_control_path_dir'],
            'patch_containers_docker_host': entry['docker_host'],
            'patch_containers_state_dir': entry['state_dir'],
        }

    inventory = {name: host_vars(info['hosts'][name]) for name in names}
    for name, overrides in (extra_hosts or {}).items():
        overrides = dict(overrides or {})
        like = overrides.pop('like', None)
        if name not in inventory or like is not None:
            like = _host(p, like).name if like is not None else (names or list(info['hosts']) or [None])[0]
            if like not in info['hosts']:
                raise SandboxError('extra host %r: no fleet host to start from (run fleet_up first)' % name)
            state_dir = os.path.join(p.fleet, 'extra', re.sub(r'[^A-Za-z0-9_.-]', '_', str(name)))
            os.makedirs(state_dir, exist_ok=True)
            inventory[name] = dict(host_vars(info['hosts'][like]), patch_containers_state_dir=state_dir)
        inventory[name].update(overrides)

    lines = ['# Ansible inventory of the patchops sandbox fleet (tests/sandbox/sandbox.py fleet_inventory)',
             'all:', '  children:', '    %s:' % FLEET_GROUP, '      hosts:']
    if not inventory:
        lines[-1] += ' {}'
    for name, hostvars in inventory.items():
        lines.append('        %s:%s' % (_yaml_value(name), '' if hostvars else ' {}'))
        for key, value in hostvars.items():
            lines.append('          %s: %s' % (_yaml_value(key), _yaml_value(value)))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _write(path, '\n'.join(lines) + '\n')
    return path


def fleet_docker(host, *args, check=True, input=None, env=None, timeout=None) -> str:
    """Run the docker CLI against a fleet host's engine ('host1', 1 or its fleet_info() dict); return stdout."""
    return _run_docker(args, check=check, input=input, env=env, timeout=timeout, sock=_host(_paths(), host).sock)


def fleet_ssh_argv(host, *command) -> list:
    """The ssh command line that logs into a fleet host as root (then runs command, if given)."""
    p = _paths()
    argv = _ssh_base_argv(_host(p, host), _FleetKeys(p))
    if command:
        argv.append(' '.join(shlex.quote(str(c)) for c in command))
    return argv


def fleet_ssh(host, *command, check=True, input=None, timeout=120) -> str:
    """Run command on a fleet host over real SSH (words are quoted for the remote shell); return stdout."""
    argv = fleet_ssh_argv(host, *command)
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          check=False)
    out, err = proc.stdout.decode('utf-8', 'replace'), proc.stderr.decode('utf-8', 'replace')
    if check and proc.returncode != 0:
        shown = ' '.join(str(c) for c in command)
        name = _host(_paths(), host).name
        raise SandboxError('ssh %s %s failed (exit %d): %s' % (name, shown, proc.returncode, err.strip()),
                           cmd=argv, returncode=proc.returncode, stdout=out, stderr=err)
    return out


def fleet_reset(hosts=None, *, journal=True) -> dict:
    """On each fleet host (default all): what reset() does on the main engine, and empty its journal dir."""
    p = _paths()
    names = _fleet_numbers(p) if hosts is None else ([hosts] if isinstance(hosts, (str, int)) else hosts)
    out = {}
    for host in names:
        h = _host(p, host)
        out[h.name] = _reset_engine(h.sock)
        if journal and os.path.isdir(h.journal):
            for entry in os.listdir(h.journal):
                target = os.path.join(h.journal, entry)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(target)
    return out


def _stop_host_engine(h):
    stopped = _stop_engine(h, sock=h.sock, who=h.name)
    if _which('ip'):
        _remove_bridges(h)
    for name in ('sshd', 'dockerd', 'containerd'):
        with contextlib.suppress(OSError):
            os.unlink(h.pidfile(name))
    shutil.rmtree(h.run, ignore_errors=True)
    return stopped


def fleet_down(purge=False) -> dict:
    """Stop what fleet_up() started (every host's sshd with its sessions, dockerd, containerd) and remove
    their bridges and runtime dirs; with purge also delete the fleet's state (data, keys, journals)."""
    p = _paths()
    k = _FleetKeys(p)
    if not os.path.isdir(p.fleet) and not _fleet_numbers(p) and not os.path.isdir(p.fleet_cp):
        return {'stopped': [], 'purged': bool(purge)}
    stopped = []
    with _locked(p, p.fleet_lock):
        hosts = [_HostPaths(p, n) for n in _fleet_numbers(p)]
        for h in hosts:
            if _stop_sshd(h):
                stopped.append(h.name + '/sshd')
        results = {}
        threads = [threading.Thread(target=lambda h=h: results.__setitem__(h.name, _stop_host_engine(h)))
                   for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for h in hosts:
            stopped += results.get(h.name, [])
        if _root_key_remove(k):
            stopped.append('root-authorized-keys-line')
        shutil.rmtree(p.fleet_cp, ignore_errors=True)
        _remove_run_sshd(k)
        if purge and os.path.lexists(p.fleet):
            shutil.rmtree(p.fleet, ignore_errors=True)
            if os.path.lexists(p.fleet):
                raise SandboxError('could not remove %s' % p.fleet)
    return {'stopped': stopped, 'purged': bool(purge)}


def _remove_run_sshd(k):
    """/run/sshd, when fleet_up made it, it is empty and no other sshd runs."""
    d = (_read(k.run_sshd_record, '') or '').strip()
    if not d:
        return
    sshd = os.path.realpath(_which('sshd') or '/usr/sbin/sshd')
    others = [pid for pid in (int(e) for e in os.listdir('/proc') if e.isdigit()) if _exe(pid) == sshd]
    if not others:
        with contextlib.suppress(OSError):
            os.rmdir(d)
        with contextlib.suppress(OSError):
            os.unlink(k.run_sshd_record)


# --------------------------------------------------------------------------- registry with basic auth

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


# --------------------------------------------------------------------------- engine with TLS on TCP

TLS_ENGINE_ADDR = '127.0.0.1:5117'
TLS_POOL_BASE = '172.29.240.0/20'


class _TLSEnginePaths(_EngineFiles):
    """A dockerd with --tlsverify on tcp://TLS_ENGINE_ADDR (and a private unix socket for the sandbox)."""

    def __init__(self, p):
        super().__init__(os.path.join(p.state, 'tls-engine'), os.path.join(p.run, 'tls'), p.kind)
        self.cgroup_parent = p.cgroup_parent + '-tls'
        self.bridge = 'none'  # no default bridge: no link to make or remove
        self.bridge_cidr = None
        self.pool_base = TLS_POOL_BASE
        self.pool = 'base=%s,size=24' % TLS_POOL_BASE
        self.certs = os.path.join(self.state, 'certs')
        self.client = os.path.join(self.certs, 'client')      # ca.pem, cert.pem, key.pem (DOCKER_CERT_PATH)
        self.wrong_ca = os.path.join(self.certs, 'wrong-ca')  # ca.pem of a CA that signed nothing here

    def cert(self, name):
        return os.path.join(self.certs, name)


def _openssl(*args):
    proc = subprocess.run([_which('openssl') or 'openssl'] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise SandboxError('openssl %s failed: %s' % (' '.join(args[:2]), proc.stderr.decode().strip()))


def _make_ca(key, cert, cn):
    _openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '365',
             '-subj', '/CN=' + cn, '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash')


def _make_leaf(t, name, cn, ext):
    key, csr, cert = t.cert(name + '-key.pem'), t.cert(name + '.csr'), t.cert(name + '-cert.pem')
    extfile = t.cert(name + '.ext')
    _write(extfile, '\n'.join(ext + ['basicConstraints=critical,CA:FALSE', 'subjectKeyIdentifier=hash',
                                     'authorityKeyIdentifier=keyid,issuer']) + '\n')
    _openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=' + cn)
    _openssl('x509', '-req', '-in', csr, '-CA', t.cert('ca.pem'), '-CAkey', t.cert('ca-key.pem'),
             '-CAcreateserial', '-out', cert, '-days', '365', '-extfile', extfile)
    return key, cert


def _ensure_tls_certs(t):
    if all(os.path.exists(os.path.join(t.client, f)) for f in ('ca.pem', 'cert.pem', 'key.pem')) \
            and os.path.exists(os.path.join(t.wrong_ca, 'ca.pem')) and os.path.exists(t.cert('server-cert.pem')):
        return
    for d in (t.certs, t.client, t.wrong_ca):
        os.makedirs(d, exist_ok=True)
    os.chmod(t.certs, 0o700)
    _make_ca(t.cert('ca-key.pem'), t.cert('ca.pem'), 'patchops sandbox CA')
    _make_leaf(t, 'server', 'localhost', ['subjectAltName=DNS:localhost,IP:127.0.0.1',
                                          'keyUsage=critical,digitalSignature,keyEncipherment',
                                          'extendedKeyUsage=serverAuth'])
    _make_leaf(t, 'client', 'patchops-client', ['keyUsage=critical,digitalSignature,keyEncipherment',
                                                'extendedKeyUsage=clientAuth'])
    shutil.copy(t.cert('ca.pem'), os.path.join(t.client, 'ca.pem'))
    shutil.copy(t.cert('client-cert.pem'), os.path.join(t.client, 'cert.pem'))
    shutil.copy(t.cert('client-key.pem'), os.path.join(t.client, 'key.pem'))
    _make_ca(os.path.join(t.wrong_ca, 'ca-key.pem'), os.path.join(t.wrong_ca, 'ca.pem'), 'patchops wrong CA')


def tls_engine_info() -> dict:
    """Where the TLS engine listens and its certificates are."""
    t = _TLSEnginePaths(_paths())
    return {
        'docker_host': 'tcp://' + TLS_ENGINE_ADDR,
        'unix_host': 'unix://' + t.sock,
        'ca_path': os.path.join(t.client, 'ca.pem'),
        'client_cert': os.path.join(t.client, 'cert.pem'),
        'client_key': os.path.join(t.client, 'key.pem'),
        'cert_path': t.client,
        'wrong_ca_path': os.path.join(t.wrong_ca, 'ca.pem'),
        'server_names': ['localhost', '127.0.0.1'],
        'log': t.log('dockerd'),
        'running': bool(_containerd_pid(t)) and _engine_up(t) and _port_open(TLS_ENGINE_ADDR),
    }


def tls_engine_up() -> dict:
    """Start a dockerd beside the sandbox engine that serves tcp://TLS_ENGINE_ADDR with --tlsverify
    (a CA, a server certificate for localhost/127.0.0.1, a client certificate, made with openssl)
    and a private unix socket; own containerd, data-root, exec-root, cgroup parent, no bridge, the
    main engine's flags. The base image is pulled from the sandbox registry. Idempotent."""
    up()
    p = _paths()
    t = _TLSEnginePaths(p)
    with _locked(p):
        if tls_engine_info()['running'] and _engine_get(t, '/images/%s/json' % BASE_IMAGE)[0] == 200:
            return tls_engine_info()
        for d in (t.state, t.logs, t.pids):
            os.makedirs(d, exist_ok=True)
        os.makedirs(t.run, mode=0o711, exist_ok=True)
        _ensure_tls_certs(t)
        if _engine_pid(t) and not (_containerd_pid(t) and _engine_up(t)):
            _stop_pid(_engine_pid(t), t.sock, name='tls dockerd')
        if not _engine_up(t):
            if _port_open(TLS_ENGINE_ADDR):
                raise SandboxError('%s is already taken by a process this sandbox did not start' % TLS_ENGINE_ADDR)
            _start_containerd(t)
            driver = (_read(p.driver_file, '') or '').strip() or None
            for d in (t.data_root, t.exec_root):
                os.makedirs(d, exist_ok=True)
            _write(t.daemon_json, json.dumps(_daemon_config(t)) + '\n')
            _write_engine_record(t, kind=t.kind)
            driver = (driver or os.environ.get('PATCHOPS_SANDBOX_STORAGE_DRIVER') or 'overlay2').strip()
            with contextlib.suppress(OSError):
                os.unlink(t.sock)
            argv = _dockerd_argv(t, driver) + [
                '--host', 'tcp://' + TLS_ENGINE_ADDR, '--tlsverify', '--tlscacert', t.cert('ca.pem'),
                '--tlscert', t.cert('server-cert.pem'), '--tlskey', t.cert('server-key.pem')]
            pid = _spawn(argv, t.log('dockerd'), _daemon_env(t.kind))
            _wait_dockerd(t, pid, driver)
        deadline = time.monotonic() + START_TIMEOUT
        while not _port_open(TLS_ENGINE_ADDR) and time.monotonic() < deadline:
            time.sleep(0.05)
        _ensure_host_base(t)
        return tls_engine_info()


def tls_engine_docker(*args, check=True, input=None, env=None, timeout=None) -> str:
    """The docker CLI against the TLS engine (over its private unix socket); return stdout."""
    return _run_docker(args, check=check, input=input, env=env, timeout=timeout, sock=_TLSEnginePaths(_paths()).sock)


def tls_engine_down(purge=False) -> dict:
    """Stop the TLS engine (its containers, dockerd, containerd); with purge also delete its state and certs."""
    p = _paths()
    t = _TLSEnginePaths(p)
    if not os.path.isdir(t.state) and not os.path.isdir(t.run):
        return {'stopped': [], 'purged': bool(purge)}
    stopped = []
    with _locked(p):
        stopped += _stop_engine(t, sock=t.sock, who='tls-engine')
        for name in ('dockerd', 'containerd'):
            with contextlib.suppress(OSError):
                os.unlink(t.pidfile(name))
        shutil.rmtree(t.run, ignore_errors=True)
        if purge:
            shutil.rmtree(t.state, ignore_errors=True)
    return {'stopped': stopped, 'purged': bool(purge)}


# --------------------------------------------------------------------------- engine on a small disk

SMALL_POOL_BASE = '172.29.224.0/20'
SMALL_DISK_MB = 64


class _SmallEnginePaths(_EngineFiles):
    """A dockerd whose data root (images, layers, the pull's downloads) is on a small tmpfs of its own."""

    def __init__(self, p):
        self.disk = os.path.join(p.state, 'small-engine', 'disk')  # the mount point of the small filesystem
        super().__init__(os.path.join(p.state, 'small-engine'), os.path.join(p.run, 'small'), p.kind)
        self.cgroup_parent = p.cgroup_parent + '-small'
        self.bridge = 'none'  # no default bridge: no link to make or remove
        self.bridge_cidr = None
        self.pool_base = SMALL_POOL_BASE
        self.pool = 'base=%s,size=24' % SMALL_POOL_BASE

    def use_kind(self, kind):
        super().use_kind(kind)
        self.data_root = os.path.join(self.disk, os.path.basename(self.data_root))


def _mount_point(path):
    """The mountinfo fields of the filesystem mounted exactly at path, or None."""
    for line in (_read('/proc/self/mountinfo', '') or '').splitlines():
        fields = line.split()
        if len(fields) > 4 and re.sub(r'\\(\d{3})', lambda m: chr(int(m.group(1), 8)), fields[4]) == path:
            return fields
    return None


def _disk_usage(path):
    st = os.statvfs(path)
    return {'size_mb': round(st.f_blocks * st.f_frsize / 1048576.0, 1),
            'free_mb': round(st.f_bavail * st.f_frsize / 1048576.0, 1)}


def small_engine_info() -> dict:
    """Where the small-disk engine listens, and how big and how full its disk is."""
    t = _SmallEnginePaths(_paths())
    mounted = _mount_point(t.disk) is not None
    return dict({'docker_host': 'unix://' + t.sock, 'disk': t.disk, 'data_root': t.data_root,
                 'log': t.log('dockerd'), 'mounted': mounted,
                 'running': mounted and bool(_containerd_pid(t)) and _engine_up(t)},
                **(_disk_usage(t.disk) if mounted else {'size_mb': None, 'free_mb': None}))


def small_engine_up(size_mb=SMALL_DISK_MB) -> dict:
    """Start a dockerd beside the sandbox engine whose data root is on a tmpfs of size_mb MiB (mounted
    at <state>/small-engine/disk), so that a pull can fill its disk: own containerd, sockets, exec-root,
    cgroup parent, no bridge (run containers with --network none), the main engine's storage driver. The
    base image is pulled from the sandbox registry. Idempotent; a disk already there gets size_mb (in place)."""
    up()
    p = _paths()
    t = _SmallEnginePaths(p)
    with _locked(p):
        if small_engine_info()['running'] and _engine_get(t, '/images/%s/json' % BASE_IMAGE)[0] == 200:
            return small_engine_resize(size_mb)
        for d in (t.state, t.logs, t.pids, t.disk):
            os.makedirs(d, exist_ok=True)
        os.makedirs(t.run, mode=0o711, exist_ok=True)
        if _mount_point(t.disk) is None:
            subprocess.run([_which('mount') or 'mount', '-t', 'tmpfs', '-o', 'size=%dm,mode=0711' % int(size_mb),
                            'patchops-small-disk', t.disk], check=True)
        else:
            small_engine_resize(size_mb)
        if _engine_pid(t) and not (_containerd_pid(t) and _engine_up(t)):
            _stop_pid(_engine_pid(t), t.sock, name='small dockerd')
        if not _engine_up(t):
            _start_containerd(t)
            driver = ((_read(p.driver_file, '') or '').strip() or os.environ.get('PATCHOPS_SANDBOX_STORAGE_DRIVER')
                      or 'overlay2').strip()
            for d in (t.data_root, t.exec_root):
                os.makedirs(d, exist_ok=True)
            _write(t.daemon_json, json.dumps(_daemon_config(t)) + '\n')
            _write_engine_record(t, kind=t.kind)
            with contextlib.suppress(OSError):
                os.unlink(t.sock)
            pid = _spawn(_dockerd_argv(t, driver), t.log('dockerd'), _daemon_env(t.kind))
            _wait_dockerd(t, pid, driver)
        _ensure_host_base(t)
        return small_engine_info()


def small_engine_resize(size_mb) -> dict:
    """Grow (or shrink) the small engine's disk to size_mb MiB, in place: "space was freed"."""
    t = _SmallEnginePaths(_paths())
    if _mount_point(t.disk) is None:
        raise SandboxError('the small engine has no disk; run small_engine_up() first')
    subprocess.run([_which('mount') or 'mount', '-o', 'remount,size=%dm' % int(size_mb), t.disk], check=True)
    return small_engine_info()


def small_engine_docker(*args, check=True, input=None, env=None, timeout=None) -> str:
    """The docker CLI against the small-disk engine; return stdout."""
    return _run_docker(args, check=check, input=input, env=env, timeout=timeout, sock=_SmallEnginePaths(_paths()).sock)


def small_engine_down(purge=False) -> dict:
    """Stop the small-disk engine (its containers, dockerd, containerd) and unmount its disk, which takes
    its images and containers with it; with purge also delete its state."""
    p = _paths()
    t = _SmallEnginePaths(p)
    if not os.path.isdir(t.state) and not os.path.isdir(t.run):
        return {'stopped': [], 'purged': bool(purge)}
    stopped = []
    with _locked(p):
        stopped += _stop_engine(t, sock=t.sock, who='small-engine')  # unmounts what lies under its state dir too
        if _mount_point(t.disk) is not None:
            subprocess.run([_which('umount') or 'umount', '-l', t.disk], check=False)
        if _mount_point(t.disk) is not None:
            raise SandboxError('could not unmount the small engine disk %s' % t.disk)
        for name in ('dockerd', 'containerd'):
            with contextlib.suppress(OSError):
                os.unlink(t.pidfile(name))
        shutil.rmtree(t.run, ignore_errors=True)
        if purge:
            shutil.rmtree(t.state, ignore_errors=True)
    return {'stopped': stopped, 'purged': bool(purge)}


__all__ += ['small_engine_up', 'small_engine_down', 'small_engine_info', 'small_engine_resize', 'small_engine_docker',
            'engine_stop', 'engine_start', 'engine_restart']


# --------------------------------------------------------------------------- CLI

def _kv(items):
    out = {}
    for item in items or []:
        k, sep, v = item.partition('=')
        if not sep:
            raise SystemExit('expected KEY=VALUE, got %r' % item)
        out[k] = v
    return out


def _json_or_str(value):
    if value is None:
        return None
    if value.strip().startswith(('[', '{')):
        return json.loads(value)
    return value


def _image_opts(args):
    return dict(labels=_kv(args.label) or None, env=_kv(args.env) or None, cmd=_json_or_str(args.cmd),
                entrypoint=_json_or_str(args.entrypoint), healthcheck=_json_or_str(args.healthcheck),
                expose=args.expose or None, volumes=args.volume or None, user=args.user, workdir=args.workdir,
                stopsignal=args.stopsignal, base=args.base, files=_kv(args.file) or None)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['docker']:  # pass everything after "docker" through untouched
        p = _paths()
        os.makedirs(p.client_config, exist_ok=True)
        return subprocess.call([_docker_bin(), '-H', 'unix://' + p.sock] + argv[1:], env=_client_env(p))
    if argv[:1] in (['fleet-docker'], ['fleet_docker']) and len(argv) > 1:  # fleet-docker HOST ARGS...
        p = _paths()
        os.makedirs(p.client_config, exist_ok=True)
        sock = _host(p, argv[1]).sock
        return subprocess.call([_docker_bin(), '-H', 'unix://' + sock] + argv[2:],
                               env=_client_env(p, {'DOCKER_HOST': 'unix://' + sock}))
    if argv[:1] in (['fleet-ssh'], ['fleet_ssh']) and len(argv) > 1:  # fleet-ssh HOST [COMMAND...]
        ssh = fleet_ssh_argv(argv[1])
        if argv[2:]:
            ssh.append(' '.join(argv[2:]))  # like ssh itself: the remote shell reads the words
        else:
            ssh.insert(1, '-t')
        return subprocess.call(ssh)
    parser = argparse.ArgumentParser(prog='sandbox.py', description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    u = sub.add_parser('up', help='start engine + registry + base image (idempotent); prints info')
    u.add_argument('--engine', choices=ENGINES,
                   help='engine kind (default $%s, else the one that runs, else %s)' % (ENGINE_ENV, DEFAULT_ENGINE))
    d = sub.add_parser('down', help='stop everything up started')
    d.add_argument('--purge', action='store_true', help='also delete the state and runtime dirs')
    sub.add_parser('info', help='print where things are and what runs')
    sub.add_parser('prepare', help='install the Debian packages and fetch Engine 26, start nothing')
    sub.add_parser('env', help='print "export DOCKER_HOST=..." for a shell')
    r = sub.add_parser('reset', help='remove containers, non-base images, networks, volumes')
    r.add_argument('--registry', action='store_true', help='also delete all non-base registry repositories')
    for name in ('registry_stop', 'registry_start'):
        sub.add_parser(name, aliases=[name.replace('_', '-')], help=name.replace('_', ' ') + ' only')
    rq = sub.add_parser('registry_requests', aliases=['registry-requests'], help='requests the registry served')
    rq.add_argument('name', nargs='?')
    dk = sub.add_parser('docker', help='run the docker CLI against the sandbox engine')
    dk.add_argument('args', nargs=argparse.REMAINDER)
    fu = sub.add_parser('fleet_up', aliases=['fleet-up'], help='start fleet hosts host1..hostN (idempotent)')
    fu.add_argument('n', nargs='?', type=int, default=3)
    sub.add_parser('fleet_info', aliases=['fleet-info'], help='print the fleet hosts, ports, sockets, keys')
    fi = sub.add_parser('fleet_inventory', aliases=['fleet-inventory'], help='write an Ansible YAML inventory')
    fi.add_argument('path')
    fi.add_argument('--host', action='append', help='only this host (repeatable); default all')
    fd = sub.add_parser('fleet_down', aliases=['fleet-down'], help='stop the fleet (main engine untouched)')
    fd.add_argument('--purge', action='store_true', help='also delete the fleet state (data, keys, journals)')
    fr = sub.add_parser('fleet_reset', aliases=['fleet-reset'], help='reset fleet engines and journals')
    fr.add_argument('hosts', nargs='*')
    for name, text in (('fleet-docker', 'HOST ARGS...: the docker CLI against a fleet host'),
                       ('fleet-ssh', 'HOST [COMMAND...]: ssh into a fleet host as root')):
        fx = sub.add_parser(name, help=text)
        fx.add_argument('args', nargs=argparse.REMAINDER)
    for name in ('publish', 'aged'):
        sp = sub.add_parser(name, help='build (and push) a new image' if name == 'publish'
                            else 'build an image created DAYS ago')
        sp.add_argument('ref')
        if name == 'aged':
            sp.add_argument('days', type=float)
            sp.add_argument('--push', action='store_true')
        else:
            sp.add_argument('--no-push', action='store_true')
        sp.add_argument('--label', action='append', metavar='K=V')
        sp.add_argument('--env', action='append', metavar='K=V')
        sp.add_argument('--cmd', help='JSON list (exec form) or a string (shell form)')
        sp.add_argument('--entrypoint', help='JSON list (exec form) or a string (shell form)')
        sp.add_argument('--healthcheck', help='JSON object {"test": ..., "interval": ...} or NONE')
        sp.add_argument('--expose', action='append')
        sp.add_argument('--volume', action='append')
        sp.add_argument('--user')
        sp.add_argument('--workdir')
        sp.add_argument('--stopsignal')
        sp.add_argument('--base')
        sp.add_argument('--file', action='append', metavar='PATH=TEXT')
    args = parser.parse_args(argv)
    cmd = args.command.replace('-', '_')

    def show(value):
        print(json.dumps(value, indent=2, sort_keys=True))

    try:
        if cmd == 'up':
            show(up(engine=args.engine))
        elif cmd == 'down':
            show(down(purge=args.purge))
        elif cmd == 'info':
            show(info())
        elif cmd == 'prepare':
            show(prepare())
        elif cmd == 'env':
            i = info()
            print('export DOCKER_HOST=%s' % i['docker_host'])
            print('export DOCKER_BUILDKIT=0')
        elif cmd == 'reset':
            show(reset(registry=args.registry))
        elif cmd == 'registry_stop':
            registry_stop()
        elif cmd == 'registry_start':
            registry_start()
        elif cmd == 'registry_requests':
            show(registry_requests(args.name))
        elif cmd == 'publish':
            show(publish(args.ref, push=not args.no_push, **_image_opts(args)))
        elif cmd == 'aged':
            show(aged(args.ref, args.days, push=args.push, **_image_opts(args)))
        elif cmd == 'fleet_up':
            show(fleet_up(args.n))
        elif cmd == 'fleet_info':
            show(fleet_info())
        elif cmd == 'fleet_inventory':
            print(fleet_inventory(args.path, hosts=args.host))
        elif cmd == 'fleet_down':
            show(fleet_down(purge=args.purge))
        elif cmd == 'fleet_reset':
            show(fleet_reset(args.hosts or None))
        elif cmd in ('fleet_docker', 'fleet_ssh'):
            parser.error('%s needs a HOST' % args.command)
    except (SandboxError, ValueError) as exc:
        sys.stderr.write('sandbox: error: %s\n' % exc)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
