"""A Debian package mirror on loopback, for package_updates_info: real, signed indexes fetched with apt.

Fetching (``prepare()``, outside any network namespace): ``apt-get update`` with a private sources list and
lists folder (the archive and security archive this machine's apt already uses, read from its sources at run
time), ``Acquire::GzipIndexes=false`` and ``Acquire::Languages=none``, for Debian 12's suites ``bookworm``,
``bookworm-updates`` and ``bookworm-security``, component ``main``, amd64, into one machine-wide cache dir per
fetch, ``<cache>/debian-mirror/<UTC time>/``: ``apt/`` (apt's sources list and lists folder, as apt left them:
the test oracle runs ``apt list --upgradable`` on them) and ``root/`` (the same files, hard-linked, in the
archive's standard layout). A fetch older than a day is fetched again; when that fails the previous one stays.

Serving (``mirror_up()``): a threaded HTTP server of the standard library on 127.0.0.1:5118 serves ``root/``
(and, first, the files tests put into its ``extra/`` dir with ``mirror_put()``, such as Alpine's
``APKINDEX.tar.gz``), logs every request (``mirror_requests()``), and takes faults from a JSON file
(``mirror_fault()``): paths that answer 404 or another status, are slow, or serve bytes that no longer match
the hash InRelease lists. ``mirror_down()`` (and ``down()``) stop it.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .errors import SandboxError, _say
from .files import _read, _tail, _write
from .lock import _locked
from .loopback import _opener, _port_open
from .packages import _apt_sources
from .paths import _paths
from .processes import _alive, _daemon_env, _pids_matching, _spawn, _stop_pid
from .settings import ENGINE_CACHE, HERE, START_TIMEOUT, SYS_PATH

MIRROR_ADDR = '127.0.0.1:5118'
MIRROR_URL = 'http://' + MIRROR_ADDR
MIRROR_CODENAME = 'bookworm'
MIRROR_COMPONENT = 'main'
MIRROR_ARCH = 'amd64'
# (archive folder under the mirror's root, suite): the layout of the official archive and security archive
MIRROR_SUITES = (('debian', 'bookworm'), ('debian', 'bookworm-updates'), ('debian-security', 'bookworm-security'))
MIRROR_MAX_AGE = 86400
MIRROR_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'
_PING = '/-/ping'


def _cache_base():
    return os.path.join(ENGINE_CACHE, 'debian-mirror')


class _MirrorPaths:
    """The served mirror's files under the state dir; the fetched indexes live in the machine-wide cache."""

    def __init__(self, p):
        self.dir = os.path.join(p.state, 'package-mirror')
        self.extra = os.path.join(self.dir, 'extra')
        self.faults = os.path.join(self.dir, 'faults.json')
        self.record = os.path.join(self.dir, 'mirror.json')
        self.pidfile = p.pidfile('package-mirror')
        self.log = p.log('package-mirror')
        self.requests = p.log('package-mirror-requests')


# ------------------------------------------------------------------------------------------------- fetch

def _debian_archives():
    """{'debian': archive URI, 'debian-security': security archive URI} as this machine's apt has them."""
    sources = _apt_sources()
    archive = [uri for uri, suites in sources if MIRROR_CODENAME in suites]
    archive += [uri for uri, suites in sources if uri.endswith('/debian') and uri not in archive]
    security = [uri for uri, suites in sources if MIRROR_CODENAME + '-security' in suites]
    if not archive:
        raise SandboxError('no Debian archive for %s in this machine\'s apt configuration (/etc/apt/sources.list, '
                           '/etc/apt/sources.list.d): cannot fetch the package mirror' % MIRROR_CODENAME)
    # the security archive sits beside the archive on Debian's mirrors when the machine names none
    return {'debian': archive[0], 'debian-security': security[0] if security else archive[0] + '-security'}


def _sha256_listed(inrelease, path):
    """(size, hex digest) InRelease lists for path (relative to the suite), else None."""
    block = False
    for line in inrelease.splitlines():
        if not line[:1].isspace():
            block = line.startswith('SHA256:')
            continue
        words = line.split()
        if block and len(words) == 3 and words[2] == path:
            return int(words[1]), words[0]
    return None


def _link(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _fetch(target):
    """apt-get update into target/apt, then the standard layout under target/root; raises SandboxError."""
    if os.geteuid() != 0:
        raise SandboxError('fetching the Debian package indexes needs root (apt-get)')
    started = time.monotonic()
    work = target + '.partial'
    shutil.rmtree(work, ignore_errors=True)
    apt_dir, root = os.path.join(work, 'apt'), os.path.join(work, 'root')
    lists = os.path.join(apt_dir, 'lists')
    for d in (os.path.join(lists, 'partial'), os.path.join(apt_dir, 'cache', 'archives', 'partial'), root):
        os.makedirs(d)
    archives = _debian_archives()
    sources = os.path.join(apt_dir, 'sources.list')
    _write(sources, ''.join('deb [arch=%s signed-by=%s] %s %s %s\n' % (MIRROR_ARCH, MIRROR_KEYRING, archives[name],
                                                                       suite, MIRROR_COMPONENT)
                            for name, suite in MIRROR_SUITES))
    argv = ['apt-get', '-q'] + _apt_options(sources, lists, os.path.join(apt_dir, 'cache')) + [
        '-o', 'Acquire::GzipIndexes=false', '-o', 'Acquire::Languages=none', '-o', 'APT::Sandbox::User=root',
        'update']
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive', PATH=os.environ.get('PATH', '') + ':' + SYS_PATH)
    _say('fetching the Debian %s package indexes into %s' % (MIRROR_CODENAME, target))
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600, check=False)
    out = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0 or re.search(r'^(E:|W: Failed to fetch)', out, re.M):
        raise SandboxError('apt-get update of the package mirror failed (exit %d):\n%s' % (proc.returncode, out[-4000:]))
    names = os.listdir(lists)
    record = {'codename': MIRROR_CODENAME, 'component': MIRROR_COMPONENT, 'arch': MIRROR_ARCH, 'suites': {}}
    index = '%s/binary-%s/Packages' % (MIRROR_COMPONENT, MIRROR_ARCH)
    for name, suite in MIRROR_SUITES:
        files = {}
        for kind, suffix in (('InRelease', '_dists_%s_InRelease' % suite),
                             ('Packages', '_dists_%s_%s' % (suite, index.replace('/', '_')))):
            found = [n for n in names if n.endswith(suffix)]
            if len(found) != 1:
                raise SandboxError('apt-get update left %s %s files for %s in %s' % (len(found), kind, suite, lists))
            files[kind] = os.path.join(lists, found[0])
        listed = _sha256_listed(_read(files['InRelease'], ''), index)
        with open(files['Packages'], 'rb') as f:
            data = f.read()
        digest = hashlib.sha256(data).hexdigest()
        if listed != (len(data), digest):
            raise SandboxError('the %s Packages apt fetched (%d bytes, %s) is not what its InRelease lists (%s)'
                               % (suite, len(data), digest, listed))
        dists = os.path.join(root, name, 'dists', suite)
        _link(files['InRelease'], os.path.join(dists, 'InRelease'))
        _link(files['Packages'], os.path.join(dists, index))
        _link(files['Packages'], os.path.join(dists, posixpath.dirname(index), 'by-hash', 'SHA256', digest))
        record['suites'][suite] = {
            'archive': name, 'inrelease_bytes': os.path.getsize(files['InRelease']), 'packages_bytes': len(data),
            'packages_sha256': digest, 'packages': data.count(b'\nPackage: ') + data.startswith(b'Package: ')}
    record['seconds'] = round(time.monotonic() - started, 1)
    record['fetched'] = os.path.basename(target)
    _write(os.path.join(work, 'mirror.json'), json.dumps(record, indent=2, sort_keys=True) + '\n')
    os.rename(work, target)
    _write(os.path.join(target, 'complete'), 'fetched in %.1fs\n' % record['seconds'])
    _say('package mirror fetched in %.1fs: %s' % (record['seconds'], ', '.join(
        '%s %d packages' % (s, v['packages']) for s, v in record['suites'].items())))
    return target


def _fetched(base):
    """The complete fetches under base, newest first."""
    names = os.listdir(base) if os.path.isdir(base) else []
    return [os.path.join(base, n) for n in sorted(names, reverse=True)
            if re.match(r'^\d{8}T\d{6}Z$', n) and os.path.exists(os.path.join(base, n, 'complete'))]


def _age(path):
    return time.time() - calendar.timegm(time.strptime(os.path.basename(path), '%Y%m%dT%H%M%SZ'))


def _ensure_mirror_cache(max_age=MIRROR_MAX_AGE):
    """The newest fetch of the Debian indexes, fetched again when older than max_age (None: any age will do);
    when a fetch fails the previous one is kept. Returns its dir."""
    base = _cache_base()
    os.makedirs(base, exist_ok=True)
    with _locked(None, base + '.lock'):
        fetched = _fetched(base)
        if fetched and (max_age is None or _age(fetched[0]) < max_age):
            return fetched[0]
        target = os.path.join(base, time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))
        try:
            _fetch(target)
        except (SandboxError, OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(target + '.partial', ignore_errors=True)
            if not fetched:
                raise SandboxError('no Debian package mirror in %s and fetching one failed (run `python3 tests/'
                                   'sandbox prepare` where the Debian archive is reachable): %s' % (base, exc))
            _say('fetching the package mirror failed, keeping the one of %s: %s'
                 % (os.path.basename(fetched[0]), str(exc).splitlines()[0]))
            return fetched[0]
        # keep the previous fetch too: a mirror in another namespace may still serve it
        for old in _fetched(base)[2:]:
            shutil.rmtree(old, ignore_errors=True)
        return target


def _apt_options(sources, lists, cache=None):
    opts = ['-o', 'Dir::Etc::sourcelist=' + sources, '-o', 'Dir::Etc::sourceparts=/dev/null',
            '-o', 'Dir::State::Lists=' + lists, '-o', 'Dir::Etc::preferences=/dev/null',
            '-o', 'Dir::Etc::preferencesparts=/dev/null', '-o', 'APT::Architecture=' + MIRROR_ARCH,
            '-o', 'APT::Architectures=' + MIRROR_ARCH]
    if cache:
        opts += ['-o', 'Dir::Cache=' + cache]
    else:
        opts += ['-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache=']
    return opts


# ------------------------------------------------------------------------------------------------ server

class _Handler(BaseHTTPRequestHandler):
    server_version = 'patchops-sandbox-mirror/1'
    protocol_version = 'HTTP/1.1'
    _path = ''

    def do_GET(self):  # noqa: N802 (http.server's names)
        self._answer(True)

    def do_HEAD(self):  # noqa: N802
        self._answer(False)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # every request goes to the requests log instead (_record)

    def _begin(self, status):
        # logged before the answer goes out: whoever got it finds the request in the log
        if self._path != _PING:
            self.server.record('%s %s %d' % (self.command, self._path, status))
        self.send_response(status)

    def _send(self, status, body=b'', headers=None, with_body=True):
        self._begin(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _answer(self, with_body):
        path = self._path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path == _PING:
            self._send(200, b'ok\n', with_body=with_body)
            return
        faults = self.server.faults()
        for pattern, seconds in (faults.get('delay') or {}).items():
            if re.search(pattern, path):
                time.sleep(float(seconds))
        for pattern, code in (faults.get('status') or {}).items():
            if re.search(pattern, path):
                self._send(int(code), b'fault\n', with_body=with_body)
                return
        if any(re.search(pattern, path) for pattern in faults.get('missing') or ()):
            self._send(404, b'not found\n', with_body=with_body)
            return
        rel = posixpath.normpath(path).lstrip('/')
        if rel.startswith('..') or rel in ('', '.'):
            self._send(404, b'not found\n', with_body=with_body)
            return
        for top in (self.server.extra, self.server.root):
            full = os.path.join(top, rel)
            if os.path.isfile(full):
                break
        else:
            self._send(404, b'not found\n', with_body=with_body)
            return
        headers = {'Content-Type': 'application/octet-stream',
                   'Last-Modified': self.date_time_string(int(os.path.getmtime(full)))}
        if any(re.search(pattern, path) for pattern in faults.get('corrupt') or ()):
            with open(full, 'rb') as f:
                self._send(200, _corrupt(f.read()), headers, with_body=with_body)
            return
        with open(full, 'rb') as f:
            self._begin(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header('Content-Length', str(os.fstat(f.fileno()).st_size))
            self.end_headers()
            if with_body:
                shutil.copyfileobj(f, self.wfile, 1 << 20)


def _corrupt(data):
    """The same number of bytes with one changed (in a Description where there is one, so the file still
    reads as a Packages index): its SHA256 no longer matches what InRelease lists."""
    data = bytearray(data)
    at = data.find(b'\nDescription: ')
    at = at + len(b'\nDescription: ') if at >= 0 else len(data) // 2
    if data:
        at = min(at, len(data) - 1)
        data[at] = data[at] ^ 0x20 if chr(data[at]).isalpha() else ord('x') if data[at] != ord('x') else ord('y')
    return bytes(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, root, extra, faults_path, requests_path):
        super().__init__(addr, _Handler)
        self.root, self.extra = root, extra
        self.faults_path, self.requests_path = faults_path, requests_path
        self._lock = threading.Lock()

    def faults(self):
        try:
            return json.loads(_read(self.faults_path, '') or '{}') or {}
        except ValueError:
            return {}

    def record(self, line):
        with self._lock, open(self.requests_path, 'a') as f:
            f.write(line + '\n')


def _serve(argv=None):
    parser = argparse.ArgumentParser(prog='python3 -m sandbox.package_mirror serve')
    parser.add_argument('verb', choices=['serve'])
    parser.add_argument('--root', required=True)
    parser.add_argument('--extra', required=True)
    parser.add_argument('--faults', required=True)
    parser.add_argument('--requests', required=True)
    parser.add_argument('--listen', default=MIRROR_ADDR)
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(':', 1)
    server = _Server((host, int(port)), args.root, args.extra, args.faults, args.requests)
    sys.stdout.write('serving %s on %s\n' % (args.root, args.listen))
    sys.stdout.flush()
    server.serve_forever()


# --------------------------------------------------------------------------------------------- lifecycle

def _mirror_pid(m):
    text = _read(m.pidfile, '') or ''
    pid = int(text.strip()) if text.strip().isdigit() else 0
    if _alive(pid, m.faults):
        return pid
    found = _pids_matching(m.faults)
    return found[0] if found else 0


def _ping(timeout=2):
    try:
        with _opener.open(MIRROR_URL + _PING, timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _record(m):
    try:
        return json.loads(_read(m.record, '') or '{}') or {}
    except ValueError:
        return {}


def mirror_info() -> dict:
    """Where the package mirror serves what, from which fetch, and whether it runs.

    ``archive`` and ``security`` are the archive roots to give package_updates_info (``mirrors: {debian:
    {archive, security}}``, also as ``mirrors``), ``alpine`` the root of what tests put under ``alpine/``;
    ``lists_dir`` and ``sources_list`` are apt's lists folder and the sources list that goes with it (for
    ``apt list --upgradable``), ``cache_dir`` the fetch they come from.
    """
    m = _MirrorPaths(_paths())
    cache = _record(m).get('cache_dir')
    if not cache:
        fetched = _fetched(_cache_base())
        cache = fetched[0] if fetched else None
    details = json.loads(_read(os.path.join(cache, 'mirror.json'), '{}') or '{}') if cache else {}
    pid = _mirror_pid(m)
    return {
        'url': MIRROR_URL,
        'archive': MIRROR_URL + '/debian',
        'security': MIRROR_URL + '/debian-security',
        'alpine': MIRROR_URL + '/alpine',
        'mirrors': {'debian': {'archive': MIRROR_URL + '/debian', 'security': MIRROR_URL + '/debian-security'}},
        'codename': MIRROR_CODENAME,
        'component': MIRROR_COMPONENT,
        'arch': MIRROR_ARCH,
        'suites': [suite for _name, suite in MIRROR_SUITES],
        'cache_dir': cache,
        'root': os.path.join(cache, 'root') if cache else None,
        'lists_dir': os.path.join(cache, 'apt', 'lists') if cache else None,
        'sources_list': os.path.join(cache, 'apt', 'sources.list') if cache else None,
        'fetched': details.get('fetched'),
        'indexes': details.get('suites'),
        'extra': m.extra,
        'faults': json.loads(_read(m.faults, '{}') or '{}'),
        'requests_log': m.requests,
        'log': m.log,
        'pid': pid or None,
        'running': bool(pid) and _ping(),
    }


def mirror_up() -> dict:
    """Serve the newest fetched indexes on 127.0.0.1:5118 (idempotent; fetches only when none was fetched yet,
    which works only outside a network namespace of its own). Returns mirror_info()."""
    p = _paths()
    m = _MirrorPaths(p)
    with _locked(p):
        pid = _mirror_pid(m)
        if pid and _ping():
            return mirror_info()
        if pid:
            _stop_pid(pid, m.faults, name='package mirror')
        cache = _ensure_mirror_cache(max_age=None)
        if _port_open(MIRROR_ADDR):
            raise SandboxError('%s is already taken by a process this sandbox did not start' % MIRROR_ADDR)
        os.makedirs(m.extra, exist_ok=True)
        if not os.path.exists(m.faults):
            _write(m.faults, '{}\n')
        _write(m.record, json.dumps({'cache_dir': cache}) + '\n')
        env = _daemon_env()
        env['PYTHONPATH'] = HERE
        pid = _spawn([sys.executable, '-m', 'sandbox.package_mirror', 'serve', '--root', os.path.join(cache, 'root'),
                      '--extra', m.extra, '--faults', m.faults, '--requests', m.requests, '--listen', MIRROR_ADDR],
                     m.log, env)
        _write(m.pidfile, '%d\n' % pid)
        deadline = time.monotonic() + START_TIMEOUT
        while not _ping(timeout=1):
            if time.monotonic() > deadline or not _alive(pid, m.faults):
                raise SandboxError('the package mirror did not answer on %s; log %s:\n%s'
                                   % (MIRROR_ADDR, m.log, _tail(m.log)))
            time.sleep(0.05)
    return mirror_info()


def mirror_down(purge=False) -> dict:
    """Stop the package mirror (the fetched cache stays; purge also deletes its extra files and faults)."""
    p = _paths()
    m = _MirrorPaths(p)
    stopped = []
    with _locked(p):
        pid = _mirror_pid(m)
        if pid:
            _stop_pid(pid, m.faults, name='package mirror')
            stopped.append('package-mirror')
        with contextlib.suppress(OSError):
            os.unlink(m.pidfile)
        if purge:
            shutil.rmtree(m.dir, ignore_errors=True)
    return {'stopped': stopped, 'purged': bool(purge)}


def mirror_fault(missing=(), corrupt=(), status=None, delay=None) -> dict:
    """Faults of the package mirror from now on (each a regular expression searched in the request's path);
    called without arguments it serves everything again.

    ``missing``: answer 404; ``corrupt``: serve the file with one byte changed (same size, another SHA256
    than InRelease lists); ``status``: {pattern: HTTP status}; ``delay``: {pattern: seconds} before answering.
    """
    m = _MirrorPaths(_paths())
    faults = {'missing': list(missing), 'corrupt': list(corrupt), 'status': dict(status or {}),
              'delay': dict(delay or {})}
    _write(m.faults, json.dumps(faults, indent=2) + '\n')
    return faults


def mirror_put(path, data) -> str:
    """Serve data (bytes or text) at path (e.g. ``alpine/v3.20/main/x86_64/APKINDEX.tar.gz``), before the
    fetched files; returns the file written."""
    m = _MirrorPaths(_paths())
    rel = posixpath.normpath(path).lstrip('/')
    if rel.startswith('..') or rel in ('', '.'):
        raise ValueError('not a path under the mirror: %r' % path)
    full = os.path.join(m.extra, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'wb') as f:
        f.write(data.encode('utf-8') if isinstance(data, str) else data)
    return full


def mirror_reset() -> None:
    """No faults, no files put, an empty request log."""
    m = _MirrorPaths(_paths())
    mirror_fault()
    shutil.rmtree(m.extra, ignore_errors=True)
    os.makedirs(m.extra, exist_ok=True)
    with contextlib.suppress(OSError):
        os.unlink(m.requests)


def mirror_requests(prefix=None) -> list:
    """'METHOD /path STATUS' of every request the mirror answered, oldest first (only paths under prefix);
    len() before and a slice after count what a run asked."""
    lines = (_read(_MirrorPaths(_paths()).requests, '') or '').splitlines()
    if prefix:
        lines = [line for line in lines if line.split(' ', 2)[1:2] and line.split(' ', 2)[1].startswith(prefix)]
    return lines


def mirror_apt_upgradable(status_file, info=None) -> list:
    """What apt would upgrade for a dpkg status file, with the mirror's fetched lists (``apt list
    --upgradable``): [{name, available, arch, installed, suites, security}] in apt's order. ``suites``
    as apt prints them (the Release files' Suite, e.g. ``oldstable-security``); ``security`` when one ends
    in ``-security``."""
    info = info or mirror_info()
    if not info.get('lists_dir'):
        raise SandboxError('no Debian package mirror fetched yet (python3 tests/sandbox prepare)')
    argv = ['apt', 'list', '--upgradable', '-o', 'Dir::State::status=' + status_file,
            '-o', 'Dir::State::extended_states=/dev/null', '-o', 'Debug::NoLocking=1'] + \
        _apt_options(info['sources_list'], info['lists_dir'])
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, check=False,
                          env=dict(os.environ, PATH=os.environ.get('PATH', '') + ':' + SYS_PATH, LC_ALL='C.UTF-8'))
    if proc.returncode != 0:
        error = proc.stderr.decode('utf-8', 'replace').strip()
        raise SandboxError('%s failed (exit %d): %s' % (' '.join(argv), proc.returncode, error))
    found = []
    for line in proc.stdout.decode('utf-8', 'replace').splitlines():
        match = re.match(r'^(\S+)/(\S+) (\S+) (\S+) \[upgradable from: (\S+)\]$', line)
        if match:
            suites = match.group(2).split(',')
            found.append({'name': match.group(1), 'suites': suites, 'available': match.group(3),
                          'arch': match.group(4), 'installed': match.group(5),
                          'security': any(s.endswith('-security') for s in suites)})
    return found


if __name__ == '__main__':
    _serve()
