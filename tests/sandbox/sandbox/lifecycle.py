"""The whole sandbox: up() starts the engine, the registry and the base image (switching the engine kind
when asked), down() stops everything (the fleet, the side engines, the Podman engine, the auth registry, the
package mirror too), info(), prepare().
"""

from __future__ import annotations

import contextlib
import os
import shutil

from .auth_registry import auth_registry_down
from .base_image import _ensure_base
from .docker_cli import _docker_bin_or_none
from .engine26 import _compose_v2_path, _ensure_engine26
from .engines import (_containerd_pid, _engine_pid, _engine_up, _start_containerd, _start_dockerd, _stop_engine,
                      _wait_dockerd)
from .errors import SandboxError, _say
from .files import _read
from .fleet import fleet_down
from .lock import _locked
from .loopback import _engine_get
from .network import _ensure_bridge, _remove_bridges
from .package_mirror import _ensure_mirror_cache, mirror_down
from .packages import _apt_install, _ensure_packages, _ensure_podman_packages, _missing_fleet_packages
from .paths import _engine_info_record, _paths, _recorded_kind, _wanted_kind
from .podman_engine import podman_down
from .processes import _stop_pid, _which
from .registry import _registry_pid, _registry_up, _start_registry, _wait_registry
from .registry_api import registry_digest
from .settings import BASE_IMAGE, BRIDGE, REGISTRY
from .small_engine import small_engine_down
from .tls_engine import tls_engine_down


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
    """Install and fetch what up(), fleet_up(), podman_up(), mirror_up() and every engine kind need (Debian
    packages, the Engine 26 cache, the Debian package indexes), start nothing: a run in a network namespace of
    its own cannot reach the Debian archive."""
    if os.geteuid() != 0:
        raise SandboxError('the sandbox needs root (apt-get)')
    _ensure_packages()
    _apt_install(_missing_fleet_packages(), _missing_fleet_packages)
    _ensure_podman_packages()
    return {'engine_cache': _ensure_engine26(), 'compose_v2': _compose_v2_path(), 'compose_v1': _which('docker-compose'),
            'package_mirror': _ensure_mirror_cache()}


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
                  + podman_down(purge=purge)['stopped'] + auth_registry_down(purge=purge)['stopped']
                  + mirror_down(purge=purge)['stopped'])
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
