"""The engines' bridges and address pools: made, checked against other links and other sandboxes, removed."""

from __future__ import annotations

import contextlib
import os
import subprocess

from .errors import SandboxError, _say
from .files import _write
from .processes import _alive, _pids_matching, _which
from .settings import ADDRESS_POOL_BASE


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
