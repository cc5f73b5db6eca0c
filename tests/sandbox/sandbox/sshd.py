"""SSH into the fleet hosts: the key pair the sandbox makes, the authorized_keys sshd reads (in the state
dir, or a line in root's own), and each host's sshd (config, start, stop with its sessions).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time

from .errors import SandboxError
from .files import _read, _tail, _write
from .loopback import _listening, _port_open
from .processes import _alive, _check_run, _daemon_env, _descendants, _exe, _pids_matching, _running, _spawn, _which
from .settings import START_TIMEOUT


FLEET_USER = 'root'

# force the fallback of keeping the fleet's key in root's own authorized_keys (normally only used
# when sshd's StrictModes would refuse the file in the state dir)
FLEET_AUTH_ENV = 'PATCHOPS_SANDBOX_FLEET_AUTHORIZED_KEYS'


class _FleetKeys:
    def __init__(self, p):
        self.dir = os.path.join(p.fleet, 'ssh')
        self.private = os.path.join(self.dir, 'id_ed25519')
        self.public = self.private + '.pub'
        self.authorized = os.path.join(self.dir, 'authorized_keys')
        self.comment = 'patchops-sandbox-fleet-' + p.tag
        self.root_record = os.path.join(self.dir, 'root-authorized-keys.json')
        self.run_sshd_record = os.path.join(self.dir, 'run-sshd-created')


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
        '# sshd of the patchops sandbox fleet host %s (written by tests/sandbox/sandbox/sshd.py)' % h.name,
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
        # bash sources ~/.bashrc in a session sshd starts unless SHLVL says it is not the top shell: this machine's
        # root runs pyenv init there (0.13 CPU-s, and Ansible opens 4 sessions per module without pipelining),
        # which a fleet host does not
        'SetEnv SHLVL=1',
        '',
    ])


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


def _sshd_up(h):
    return bool(_sshd_pid(h)) and _listening(h.ssh_port)


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


def _ssh_base_argv(h, k):
    return [_which('ssh') or 'ssh', '-F', '/dev/null', '-i', k.private, '-p', str(h.ssh_port),
            '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
            '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
            '%s@127.0.0.1' % FLEET_USER]
