"""Start and stop one engine, containerd + dockerd, whichever it is (the main one, a fleet host's, the TLS
or the small-disk engine: an _EngineFiles says where its files are), and engine_stop/start/restart of the
main engine for the fault tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time

from .docker_cli import _run_docker
from .engine26 import _ensure_engine26
from .errors import SandboxError, _say
from .files import _read, _tail, _write
from .lock import _locked
from .loopback import _engine_get
from .network import _ensure_bridge
from .paths import _engine_info_record, _paths
from .processes import _daemon_env, _pid_of, _pids_matching, _running, _spawn, _stop_one, _stop_pid, _which
from .settings import START_TIMEOUT


def _engine_pid(p):
    return _pid_of(p, 'dockerd', p.sock, 'dockerd')


def _containerd_pid(p):
    return _pid_of(p, 'containerd', p.ctd_config, 'containerd')


def _engine_up(p, timeout=2):
    return bool(_engine_pid(p)) and _engine_get(p, '/_ping', timeout)[0] == 200


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
