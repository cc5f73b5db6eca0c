"""A Podman engine: Debian 12's podman 4.3 serving the Docker-compatible API (1.41) on a private socket,
for the tests of Podman hosts.

``podman --root <state>/podman/root --runroot <run>/podman/runroot system service --time=0 unix://<run>/podman/
podman.sock``, with a containers.conf, registries.conf and storage.conf of its own (``CONTAINERS_CONF``,
``CONTAINERS_REGISTRIES_CONF``, ``CONTAINERS_STORAGE_CONF``), its own ``HOME``, ``TMPDIR``, libpod tmp dir,
file locks (not the machine-wide ``/dev/shm/libpod_lock``), events file and netavark config dir; the default
network ``podman`` on PODMAN_SUBNET, user networks from PODMAN_POOL_BASE.

netavark, Podman's network backend, has no setting that keeps it off the firewall and sysctls: for every
container on a bridge network it adds iptables rules and sets ``net.ipv4.ip_forward=1`` (and
``route_localnet`` on the bridge), and Podman 4.3 as root keeps netavark's IPAM database and aardvark-dns's pid
file in /run/containers/networks and the containers' network namespaces in /run/netns whatever its
configuration. All of that stays private in network and mount namespaces of our own (private dirs bind-mounted
over the fixed ones): podman_up() and podman() run only there (as ``make integration``'s runs are made) and
refuse in the machine's.

Without systemd nothing runs Podman's health checks (Podman asks systemd for a timer per container and logs
"unable to get systemd connection to add healthchecks"): a small helper of ours, the ``podman-healthd``
process, does what those timers do, through the service's libpod API (``GET /libpod/containers/ID/
healthcheck`` every ``Interval``), and is started and stopped with the service.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from .engines import _unmount_under
from .errors import SandboxError, _say
from .files import _read, _write
from .lock import _locked
from .loopback import _UnixHTTPConnection, _engine_get
from .packages import _ensure_podman_packages
from .paths import _paths
from .processes import _cmdline, _daemon_env, _descendants, _pid_of, _pids_matching, _running, _spawn, _stop_pid, _which
from .settings import BASE_IMAGE, HERE, REGISTRY_ADDR, START_TIMEOUT, STOP_TIMEOUT


# the default network `podman` (bridge podman0) and the pool of `podman network create`: none of it overlaps the
# main engine's 172.31.250.0/24 and 172.31.224.0/20, the fleet's 172.30.0.0/16, the TLS and small engines'
# 172.29.224.0/19
PODMAN_SUBNET = '172.31.200.0/24'
PODMAN_POOL_BASE = '172.31.192.0/21'
PODMAN_NETWORK = 'podman'
# registries that Podman's Docker-compatible API (short names become docker.io/...) and its defaults reach for:
# refused before any connection, on top of the namespace having no route beyond the host
PODMAN_BLOCKED_REGISTRIES = ('docker.io', 'registry-1.docker.io', 'quay.io')

# Podman 4.3 as root keeps some things in fixed places that every Podman of the machine shares, whatever its
# configuration: netavark's IPAM database and aardvark-dns's configs and pid file (/run/containers/networks), the
# containers' network namespaces (/run/netns), the short-name alias cache (/var/cache/containers). podman_up()
# bind-mounts a private dir of its own over each, in its mount namespace: the mount points stay (empty) on the
# machine, what Podman writes goes to <run>/podman/fixed/ and goes with podman_down().
PODMAN_FIXED_DIRS = (('/run/containers', 'run-containers'), ('/run/netns', 'netns'),
                     ('/var/cache/containers', 'cache-containers'))

# Linux numbers the machine's first namespaces with fixed inodes (include/linux/proc_ns.h): the PID namespace
# since 3.8, the mount and network namespaces since 6.18 (older kernels number them like any other)
_INIT_NS_INO = {'pid': 0xEFFFFFFC, 'net': 0xEFFFFFF9, 'mnt': 0xEFFFFFF8}


class _PodmanPaths:
    """Where the Podman engine keeps its files: its state under <state>/podman, its sockets and run-time state
    under <run>/podman."""

    def __init__(self, p):
        self.state = os.path.join(p.state, 'podman')
        self.run = os.path.join(p.run, 'podman')
        self.sock = os.path.join(self.run, 'podman.sock')
        self.root = os.path.join(self.state, 'root')            # graphroot: images, layers, containers
        self.runroot = os.path.join(self.run, 'runroot')        # storage's run-time state
        self.tmp_dir = os.path.join(self.run, 'tmp')            # libpod's tmp dir: locks, exits, alive file
        self.static_dir = os.path.join(self.root, 'libpod')     # libpod's database
        self.volume_path = os.path.join(self.root, 'volumes')
        self.network_dir = os.path.join(self.state, 'networks')  # netavark's config dir (the networks' JSON)
        self.tmp = os.path.join(self.state, 'tmp')              # TMPDIR and image_copy_tmp_dir: pulls, builds
        self.home = os.path.join(self.state, 'home')            # HOME: no ~/.config/containers, no ~/.docker
        self.events = os.path.join(self.state, 'events', 'events.log')
        self.conf = os.path.join(self.state, 'containers.conf')
        self.registries_conf = os.path.join(self.state, 'registries.conf')
        self.storage_conf = os.path.join(self.state, 'storage.conf')
        self.auth_file = os.path.join(self.state, 'auth.json')
        self.record = os.path.join(self.state, 'engine.json')
        self.logs = os.path.join(self.state, 'logs')
        self.pids = os.path.join(self.state, 'pids')
        self.fixed = os.path.join(self.run, 'fixed')            # what Podman writes to PODMAN_FIXED_DIRS

    def log(self, name):
        return os.path.join(self.logs, name + '.log')

    def pidfile(self, name):
        return os.path.join(self.pids, name + '.pid')


def _toml(value):
    return json.dumps(value)  # a JSON string or list of strings is TOML


def _containers_conf(t):
    return '\n'.join([
        '# written by the patchops sandbox (podman_engine.py)',
        '[containers]',
        # Podman's default limits (1048576) and crun are refused on this machine
        'default_ulimits = %s' % _toml(['nofile=1024:1024', 'nproc=1024:1024']),
        'log_driver = "k8s-file"',
        '',
        '[network]',
        'network_backend = "netavark"',
        'network_config_dir = %s' % _toml(t.network_dir),
        'default_network = %s' % _toml(PODMAN_NETWORK),
        'default_subnet = %s' % _toml(PODMAN_SUBNET),
        'default_subnet_pools = [{"base" = %s, "size" = 24}]' % _toml(PODMAN_POOL_BASE),
        '',
        '[engine]',
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        'events_logfile_path = %s' % _toml(t.events),
        'tmp_dir = %s' % _toml(t.tmp_dir),
        'static_dir = %s' % _toml(t.static_dir),
        'volume_path = %s' % _toml(t.volume_path),
        'image_copy_tmp_dir = %s' % _toml(t.tmp),
        # file locks under tmp_dir: the default shm locks live in the machine-wide /dev/shm/libpod_lock, which
        # every rootful Podman shares (and frees all of on its first start after a boot)
        'lock_type = "file"',
        'helper_binaries_dir = %s' % _toml(['/usr/lib/podman', '/usr/libexec/podman']),
        'conmon_env_vars = %s' % _toml(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']),
        'hooks_dir = []',
        '',
        '[engine.runtimes]',
        'runc = %s' % _toml([_which('runc') or '/usr/sbin/runc']),
        '',
    ])


def _registries_conf():
    lines = ['# written by the patchops sandbox (podman_engine.py): no short-name search, the sandbox registry over',
             '# plain HTTP, the registries short names would reach refused before any connection',
             'unqualified-search-registries = []',
             'short-name-mode = "permissive"',
             '',
             '[[registry]]',
             'location = %s' % _toml(REGISTRY_ADDR),
             'insecure = true',
             '']
    for name in PODMAN_BLOCKED_REGISTRIES:
        lines += ['[[registry]]', 'location = %s' % _toml(name), 'blocked = true', '']
    return '\n'.join(lines)


def _storage_driver():
    """overlay, or vfs when the main engine runs on vfs (its data root cannot carry overlay) or it is forced."""
    main = (os.environ.get('PATCHOPS_SANDBOX_STORAGE_DRIVER') or _read(_paths().driver_file, '') or '').strip()
    return 'vfs' if main == 'vfs' else 'overlay'


def _storage_conf(t, driver):
    return '\n'.join([
        '# written by the patchops sandbox (podman_engine.py)',
        '[storage]',
        'driver = %s' % _toml(driver),
        'graphroot = %s' % _toml(t.root),
        'runroot = %s' % _toml(t.runroot),
        '',
    ])


def _podman_env(t):
    """The environment of the service and of every podman command: our configuration files only."""
    env = _daemon_env()
    for name in ('XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'CONTAINER_HOST', 'CONTAINER_CONNECTION',
                 'CONTAINERS_CONF_OVERRIDE', 'REGISTRY_AUTH_FILE', 'NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID'):
        env.pop(name, None)
    env.update(CONTAINERS_CONF=t.conf, CONTAINERS_REGISTRIES_CONF=t.registries_conf,
               CONTAINERS_STORAGE_CONF=t.storage_conf, HOME=t.home, TMPDIR=t.tmp, REGISTRY_AUTH_FILE=t.auth_file)
    return env


def _podman_argv(t, *args):
    return [_which('podman') or 'podman', '--root', t.root, '--runroot', t.runroot] + [str(a) for a in args]


def _ns_inode(pid, kind):
    try:
        link = os.readlink('/proc/%s/ns/%s' % (pid, kind))
    except OSError:
        return None
    return int(link[link.index('[') + 1:-1]) if '[' in link else None


def _default_route():
    for line in (_read('/proc/net/route', '') or '').splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == '00000000':
            return True
    return False


def _private_ns(kind):
    """True when this process runs in a ``kind`` ('net' or 'mnt') namespace of its own, not the machine's.

    /proc/1 is the machine's init only in the machine's PID namespace: under ``unshare --pid --mount-proc`` (as
    ``make integration`` runs) it is the run's own init, which shares the run's namespaces, so comparing with
    /proc/1 alone says "the machine's" there. Hence: the machine's where the kernel gives it its fixed inode;
    private when it is not PID 1's; the machine's when PID 1 is the machine's init (and shares it); when PID 1 is
    the init of a PID namespace of our own (or cannot be read): a mount namespace is private when /proc is this
    PID namespace's (``--mount-proc`` needs a mount namespace of its own), a network namespace when it has no
    default route (a new one has none; the machine's has)."""
    mine = _ns_inode('self', kind)
    if mine is None or mine == _INIT_NS_INO[kind]:
        return False
    init = _ns_inode('1', kind)
    if init is not None and init != mine:
        return True
    own_pid_ns = _ns_inode('self', 'pid') != _INIT_NS_INO['pid']
    if init is not None and not own_pid_ns:
        return False
    if kind == 'mnt':
        try:
            return own_pid_ns and int(os.readlink('/proc/self')) == os.getpid()
        except (OSError, ValueError):
            return False
    return not _default_route()


def _in_private_namespaces():
    return _private_ns('net') and _private_ns('mnt')


def _require_private_namespaces():
    if not _in_private_namespaces():
        raise SandboxError('the Podman engine runs only in network and mount namespaces of its own (netavark sets '
                           'iptables rules and net.ipv4.ip_forward in its network namespace, and Podman keeps its '
                           'networks in /run/containers whatever its configuration): run it inside '
                           '`unshare --net --pid --mount --fork --mount-proc`, as tests/tooling/integration does')


def _same_dir(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _bind_fixed_dirs(t):
    """A private dir of ours over each of PODMAN_FIXED_DIRS (in this mount namespace only)."""
    for target, name in PODMAN_FIXED_DIRS:
        source = os.path.join(t.fixed, name)
        os.makedirs(source, mode=0o755, exist_ok=True)
        if _same_dir(source, target):
            continue
        os.makedirs(target, mode=0o755, exist_ok=True)
        subprocess.run([_which('mount') or 'mount', '--bind', source, target], check=True)
        subprocess.run([_which('mount') or 'mount', '--make-private', target], check=False)


def _unbind_fixed_dirs(t):
    for target, name in PODMAN_FIXED_DIRS:
        source = os.path.join(t.fixed, name)
        for _attempt in range(5):
            if not os.path.isdir(source) or not _same_dir(source, target):
                break
            _unmount_under([target])


def _service_pid(t):
    return _pid_of(t, 'podman', t.sock, 'podman')


def _healthd_pid(t):
    return _pid_of(t, 'podman-healthd', 'podman-healthd ' + t.sock, None)


def _service_up(t, timeout=2):
    return bool(_service_pid(t)) and _engine_get(t, '/_ping', timeout)[0] == 200


def _record(t):
    try:
        return json.loads(_read(t.record, '') or '{}') or {}
    except ValueError:
        return {}


def podman_info() -> dict:
    """Where the Podman engine listens, what it is, and whether it runs."""
    t = _PodmanPaths(_paths())
    record = _record(t)
    return {
        'docker_host': 'unix://' + t.sock,
        'socket': t.sock,
        'running': _service_up(t),
        'version': record.get('version'),
        'api_version': record.get('api_version'),
        'storage_driver': record.get('storage_driver'),
        'network': {'name': PODMAN_NETWORK, 'subnet': PODMAN_SUBNET, 'pool': PODMAN_POOL_BASE},
        'state_dir': t.state,
        'run_dir': t.run,
        'root': t.root,
        'runroot': t.runroot,
        'env': {k: v for k, v in _podman_env(t).items() if k.startswith('CONTAINERS_')},
        'log': t.log('podman'),
        'base_image': BASE_IMAGE,
    }


def podman(*args, check=True, input=None, env=None, timeout=None) -> str:
    """The podman CLI on the Podman engine's storage (``podman --root .. --runroot ..`` with its environment, not
    through the socket); return stdout. Raises SandboxError (with ``.stderr``) when it fails and check is true, and
    outside network and mount namespaces of our own (where a container would change the machine's firewall)."""
    _require_private_namespaces()
    t = _PodmanPaths(_paths())
    cmd = _podman_argv(t, *args)
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=dict(_podman_env(t), **(env or {})), timeout=timeout, check=False)
    out, err = proc.stdout.decode('utf-8', 'replace'), proc.stderr.decode('utf-8', 'replace')
    if check and proc.returncode != 0:
        raise SandboxError('podman %s failed (exit %d): %s' % (' '.join(cmd[5:]), proc.returncode, err.strip()),
                           cmd=cmd, returncode=proc.returncode, stdout=out, stderr=err)
    return out


def _write_config(t, driver):
    for d in (t.state, t.logs, t.pids, t.root, t.network_dir, t.tmp, t.home, os.path.dirname(t.events)):
        os.makedirs(d, exist_ok=True)
    for d in (t.run, t.runroot, t.tmp_dir):
        os.makedirs(d, mode=0o711, exist_ok=True)
    _write(t.conf, _containers_conf(t))
    _write(t.registries_conf, _registries_conf())
    _write(t.storage_conf, _storage_conf(t, driver))
    if not os.path.exists(t.auth_file):  # REGISTRY_AUTH_FILE: not /run/containers/0/auth.json, shared by the machine
        _write(t.auth_file, '{"auths": {}}\n', 0o600)


def _start_service(t):
    with contextlib.suppress(OSError):
        os.unlink(t.sock)
    log_offset = os.path.getsize(t.log('podman')) if os.path.exists(t.log('podman')) else 0
    argv = _podman_argv(t, '--log-level', 'info', 'system', 'service', '--time=0', 'unix://' + t.sock)
    pid = _spawn(argv, t.log('podman'), _podman_env(t))
    _write(t.pidfile('podman'), '%d\n' % pid)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _engine_get(t, '/_ping', 2)[0] == 200:
            return pid
        if not _running(pid):
            break
        time.sleep(0.05)
    tail = '\n'.join((_read(t.log('podman'), '') or '')[log_offset:].splitlines()[-40:])
    if _running(pid):
        _stop_pid(pid, t.sock, name='podman service')
        raise SandboxError('podman system service did not answer on %s within %ds; log %s:\n%s'
                           % (t.sock, START_TIMEOUT, t.log('podman'), tail))
    raise SandboxError('podman system service exited at start; log %s:\n%s' % (t.log('podman'), tail))


def _start_healthd(t):
    pid = _healthd_pid(t)
    if pid:
        return pid
    code = ('import sys; sys.path.insert(0, sys.argv[3]); from sandbox.podman_engine import _healthd; '
            '_healthd(sys.argv[2])')
    pid = _spawn([sys.executable, '-c', code, 'podman-healthd', t.sock, HERE], t.log('podman-healthd'),
                 _daemon_env())
    _write(t.pidfile('podman-healthd'), '%d\n' % pid)
    return pid


def _record_running(t, driver):
    _status, body = _engine_get(t, '/version')
    version = json.loads(body or '{}')
    record = {'kind': 'podman', 'version': version.get('Version'), 'api_version': version.get('ApiVersion'),
              'storage_driver': driver}
    _write(t.record, json.dumps(record, sort_keys=True) + '\n')
    return record


def podman_up() -> dict:
    """Start the Podman engine beside the sandbox engine (idempotent; the sandbox's up() first, for its
    registry): ``podman system service`` on a private socket with its own configuration, storage, networks and
    locks, the health-check helper, and the base image pulled from the sandbox registry. Runs only in network and
    mount namespaces of its own (netavark changes the firewall rules and sysctls of the one it runs in, Podman
    writes to /run/containers and /run/netns)."""
    _require_private_namespaces()
    from .lifecycle import up  # here, not at the top: lifecycle imports this module for down()
    up()
    p = _paths()
    t = _PodmanPaths(p)
    with _locked(p):
        if _service_up(t) and _healthd_pid(t) and _engine_get(t, '/images/%s/json' % BASE_IMAGE)[0] == 200:
            return podman_info()
        _ensure_podman_packages()
        pid = _service_pid(t)
        if pid and not _service_up(t):
            _stop_pid(pid, t.sock, name='podman service')
        driver = _storage_driver()
        if not _service_up(t):
            _write_config(t, driver)
            _bind_fixed_dirs(t)
            _start_service(t)
            _record_running(t, driver)
        _start_healthd(t)
        if _engine_get(t, '/images/%s/json' % BASE_IMAGE)[0] != 200:
            podman('pull', '-q', BASE_IMAGE, timeout=300)
        return podman_info()


def _leftover_pids(t):
    """conmon (with its container or exec session), podman and aardvark-dns processes of this engine that outlived
    it: an exec session's conmon waits 300 s after the exec ends (``--exit-delay``, for the Docker API's exec
    inspect); aardvark-dns (its --config is the shared-looking /run/containers/networks/aardvark-dns) counts as
    ours in this network namespace, where no other Podman runs."""
    pids = set()
    for needle, exe in ((t.root, 'conmon'), (t.runroot, 'conmon'), (t.root, 'podman'), (t.runroot, 'podman')):
        pids.update(_pids_matching(needle, exe))
    if _in_private_namespaces():
        mine = _ns_inode('self', 'net')
        pids.update(pid for pid in _pids_matching('/run/containers/networks/aardvark-dns', 'aardvark-dns')
                    if _ns_inode(pid, 'net') == mine)
    for pid in list(pids):
        pids.update(_descendants(pid))
    return sorted(pids)


def _kill_leftovers(t):
    pids = _leftover_pids(t)
    if pids:
        _say('podman: stopping leftover processes %s' % ', '.join(
            '%d (%s)' % (pid, ' '.join((_cmdline(pid) or ['?'])[:2])[:80]) for pid in pids))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_running(pid) for pid in pids):
            time.sleep(0.05)
        pids = [pid for pid in pids if _running(pid)]
        if not pids:
            break


def _cgroup_roots():
    roots = set()
    for line in (_read('/proc/self/mountinfo', '') or '').splitlines():
        parts = line.split(' - ')
        if len(parts) == 2 and parts[1].split()[0] in ('cgroup', 'cgroup2'):
            roots.add(parts[0].split()[4])
    return sorted(roots)


def _remove_cgroups(ids):
    """The cgroups of our containers (cgroupfs: /libpod_parent/libpod-ID, /libpod_parent/conmon), then
    /libpod_parent when nothing else is left in it (another Podman on the machine may use it: rmdir removes
    only an empty one)."""
    for root in _cgroup_roots():
        parent = os.path.join(root, 'libpod_parent')
        if not os.path.isdir(parent):
            continue
        for cid in ids:
            for name in ('libpod-' + cid, 'libpod-conmon-' + cid):
                path = os.path.join(parent, name)
                for dirpath in sorted((w[0] for w in os.walk(path)), key=len, reverse=True):
                    with contextlib.suppress(OSError):
                        os.rmdir(dirpath)
        for name in ('conmon', ''):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(parent, name) if name else parent)


def podman_down(purge=False) -> dict:
    """Stop the Podman engine: its containers and pods (``podman stop -a``, ``rm -af``), the health-check helper,
    the service, by their pids, and whatever conmon or aardvark-dns outlived them; with purge also delete its
    state (images, volumes, networks). Nothing of it keeps running."""
    p = _paths()
    t = _PodmanPaths(p)
    if not os.path.isdir(t.state) and not os.path.isdir(t.run):
        return {'stopped': [], 'purged': bool(purge)}
    stopped = []
    with _locked(p):
        pid = _healthd_pid(t)
        if pid:
            _stop_pid(pid, 'podman-healthd ' + t.sock, name='podman-healthd')
            stopped.append('podman-healthd')
        ids = []
        # outside our namespaces (they are gone, and the containers with them) podman would run netavark in the
        # machine's network namespace: only the processes are looked for then
        if os.path.exists(t.conf) and _which('podman') and _in_private_namespaces():
            ids = podman('ps', '-aq', '--no-trunc', check=False, timeout=60).split()
            if ids:
                # busybox as PID 1 ignores SIGTERM: 2 s each, not 10
                podman('stop', '-a', '-t', '2', check=False, timeout=120)
                podman('pod', 'rm', '-af', '-t', '2', check=False, timeout=120)
                podman('rm', '-af', '-v', '-t', '0', check=False, timeout=120)
                stopped.append('podman/containers')
        pid = _service_pid(t)
        if pid:
            _stop_pid(pid, t.sock, timeout=STOP_TIMEOUT, name='podman service')
            stopped.append('podman')
        _kill_leftovers(t)
        _remove_cgroups(ids)
        _unbind_fixed_dirs(t)
        _unmount_under([t.root, t.runroot, t.run, t.state])
        for name in ('podman', 'podman-healthd'):
            with contextlib.suppress(OSError):
                os.unlink(t.pidfile(name))
        shutil.rmtree(t.run, ignore_errors=True)
        if purge:
            shutil.rmtree(t.state, ignore_errors=True)
            if os.path.lexists(t.state):
                raise SandboxError('could not remove %s' % t.state)
    return {'stopped': stopped, 'purged': bool(purge)}


# --- the health-check helper: what systemd's timers do on a Podman host ---------------------------------------

_LIBPOD = '/v4.0.0/libpod'


def _api(sock, method, path, timeout=10):
    conn = _UnixHTTPConnection(sock, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode('utf-8', 'replace')
    except (OSError, http.client.HTTPException):
        return None, ''
    finally:
        conn.close()


def _health_config(sock, cid):
    """(interval, timeout) in seconds of a container's health check, or None when it has none or interval 0."""
    status, body = _api(sock, 'GET', '%s/containers/%s/json' % (_LIBPOD, cid))
    hc = ((json.loads(body or '{}') if status == 200 else {}).get('Config') or {}).get('Healthcheck') or {}
    test = hc.get('Test') or []
    interval = (hc.get('Interval') or 0) / 1e9
    if not test or test[0] == 'NONE' or interval <= 0:
        return None
    return interval, (hc.get('Timeout') or 30e9) / 1e9


def _healthd(sock, tick=0.25):
    """Run every running container's health check each ``Interval`` after its start and after its last check,
    through the service (``GET /libpod/containers/ID/healthcheck``): the transient systemd timer
    (``--on-unit-inactive=Interval``) Podman makes per container where systemd runs. A container whose interval
    is 0 gets none, as from Podman. Runs until killed."""
    checks = {}   # (id, StartedAt) -> {'next': monotonic time, 'interval': s, 'timeout': s} or None
    busy = set()
    lock = threading.Lock()

    def run(key, timeout):
        status, body = _api(sock, 'GET', '%s/containers/%s/healthcheck' % (_LIBPOD, key[0]), timeout=timeout + 30)
        if status not in (200, None):
            sys.stderr.write('healthcheck %s: HTTP %s %s\n' % (key[0][:12], status, body.strip()[:300]))
            sys.stderr.flush()
        with lock:
            busy.discard(key)
            if checks.get(key):
                checks[key]['next'] = time.monotonic() + checks[key]['interval']

    while True:
        status, body = _api(sock, 'GET', '%s/containers/json' % _LIBPOD)
        listed = json.loads(body or '[]') if status == 200 else []
        seen = set()
        for c in listed if isinstance(listed, list) else []:
            key = (c.get('Id'), str(c.get('StartedAt')))
            seen.add(key)
            if key not in checks:
                config = _health_config(sock, key[0])
                checks[key] = config and {'next': time.monotonic() + config[0], 'interval': config[0],
                                          'timeout': config[1]}
            with lock:
                entry = checks[key]
                if not entry or key in busy or time.monotonic() < entry['next']:
                    continue
                busy.add(key)
            threading.Thread(target=run, args=(key, entry['timeout']), daemon=True).start()
        with lock:
            for key in [k for k in checks if k not in seen and k not in busy]:
                del checks[key]
        time.sleep(tick)
