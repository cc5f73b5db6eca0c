"""An engine on a small disk: a containerd + dockerd whose data root is a tmpfs of its own, for the fault
tests that fill the disk during a pull.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess

from .base_image import _ensure_host_base
from .docker_cli import _run_docker
from .engines import (_containerd_pid, _daemon_config, _dockerd_argv, _engine_pid, _engine_up, _start_containerd,
                      _stop_engine, _wait_dockerd, _write_engine_record)
from .errors import SandboxError
from .files import _read, _write
from .lock import _locked
from .loopback import _engine_get
from .paths import _EngineFiles, _paths
from .processes import _daemon_env, _spawn, _stop_pid, _which
from .settings import BASE_IMAGE


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
    from .lifecycle import up  # here, not at the top: lifecycle imports this module for down()
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
