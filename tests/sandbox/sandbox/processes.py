"""Programs and processes: finding binaries, our daemons' pids (pid file, else a scan of /proc), starting
them detached, stopping them by pid, the process tree, a command that must succeed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time

from .errors import SandboxError, _say
from .files import _read
from .lock import _locked
from .paths import _engine26_dir
from .settings import STOP_TIMEOUT, SYS_PATH


def _which(name):
    path = os.environ.get('PATH', '') + ':' + SYS_PATH
    return shutil.which(name, path=path)


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


def _stop_one(p, pid_of, needle, name):
    """Stop one daemon of the sandbox by its pid (under the sandbox lock); its files stay."""
    with _locked(p):
        pid = pid_of(p)
        if pid:
            _stop_pid(pid, needle, name=name)
        with contextlib.suppress(OSError):
            os.unlink(p.pidfile(name))


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


def _check_run(argv, timeout=60, input=None):
    proc = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout, check=False)
    out = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0:
        raise SandboxError('%s failed (exit %d): %s' % (' '.join(argv), proc.returncode, out.strip()),
                           cmd=argv, returncode=proc.returncode, stdout=out)
    return out


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
