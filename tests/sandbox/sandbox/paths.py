"""Where things live: the state dir, the runtime dir (sockets), each engine's files, the engine kind an
engine runs, and the machine-wide Engine 26 cache.
"""

from __future__ import annotations

import hashlib
import json
import os

from .files import _read
from .settings import (ADDRESS_POOL, ADDRESS_POOL_BASE, BRIDGE, BRIDGE_CIDR, DEFAULT_ENGINE, ENGINE26, ENGINE_CACHE,
                       ENGINE_ENV, ENGINES, REPO)


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


def _engine26_dir():
    return os.path.join(ENGINE_CACHE, ENGINE26['dir'])


def _engine26_ready():
    return os.path.exists(os.path.join(_engine26_dir(), 'complete'))
