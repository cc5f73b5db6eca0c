"""The fleet: several Docker hosts reached over real SSH, beside the main engine.

hostN has its own containerd and dockerd (own sockets, exec-root, data-root, bridge, address pool, cgroup
parent) and an sshd on 127.0.0.1:(FLEET_SSH_PORT + N - 1) that lets root in with a key pair the sandbox
generates (sshd.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading

from .base_image import _ensure_host_base
from .cleanup import _reset_engine
from .docker_cli import _run_docker
from .engines import (_containerd_pid, _engine_pid, _engine_up, _start_containerd, _start_dockerd, _stop_engine,
                      _wait_dockerd)
from .errors import SandboxError
from .files import _read, _tail, _write
from .lock import _locked
from .loopback import _engine_get
from .network import _check_cidr_free, _ensure_bridge, _remove_bridges
from .packages import _apt_install, _missing_fleet_packages
from .paths import _EngineFiles, _engine_info_record, _paths, _recorded_kind
from .processes import _stop_pid, _which
from .settings import BASE_IMAGE, REGISTRY
from .sshd import (FLEET_USER, _FleetKeys, _auth_mode, _ensure_fleet_keys, _remove_run_sshd, _root_key_add,
                   _root_key_remove, _ssh_base_argv, _sshd_up, _start_sshd, _stop_sshd, _wait_sshd)


FLEET_MAX = 15
FLEET_SSH_PORT = 2221

FLEET_GROUP = 'docker_hosts'
FLEET_SSH_COMMON_ARGS = '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'
# hostN: bridge 172.30.N.1/24 (all inside 172.30.0.0/20), user-defined networks from 172.30.(16*N).0/20;
# none of it overlaps the main engine's 172.31.250.0/24 and 172.31.224.0/20
FLEET_BRIDGE_CIDR = '172.30.%d.1/24'
FLEET_POOL_BASE = '172.30.%d.0/20'


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


def _host_running(h):
    return {'containerd': bool(_containerd_pid(h)), 'engine': _engine_up(h), 'sshd': _sshd_up(h)}


def _host_ready(h):
    return (_recorded_kind(h.engine_record) == h.kind and bool(_containerd_pid(h)) and _engine_up(h) and _sshd_up(h)
            and _engine_get(h, '/images/%s/json' % BASE_IMAGE)[0] == 200)


def fleet_up(n=3) -> dict:
    """Start fleet hosts host1..hostN beside the main sandbox (idempotent). Returns fleet_info().

    Each host: its own containerd + dockerd with the base image pulled from the sandbox registry, and
    an sshd on 127.0.0.1:(2221 + N - 1) for root with the fleet's key. Hosts beyond n that already run
    are left alone.
    """
    from .lifecycle import up  # here, not at the top: lifecycle imports this module for down()
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

    lines = ['# Ansible inventory of the patchops sandbox fleet (tests/sandbox: sandbox.fleet_inventory)',
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
