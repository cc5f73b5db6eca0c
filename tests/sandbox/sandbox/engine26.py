"""Engine 26.1, containerd 1.7 and Compose v2 from Debian 13's packages: fetched with apt's own client into a
private folder and unpacked (never installed) into one machine-wide cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from .errors import SandboxError, _say
from .files import _read, _write
from .lock import _locked
from .packages import _apt_sources
from .paths import _engine26_dir, _engine26_ready
from .processes import _check_run, _which
from .settings import ENGINE26, ENGINE_CACHE, SYS_PATH


def _archive_uri():
    """The Debian archive this machine's apt uses (its main suite's URIs, not the security archive's)."""
    codename = ''
    for line in (_read('/etc/os-release', '') or '').splitlines():
        if line.startswith('VERSION_CODENAME='):
            codename = line.split('=', 1)[1].strip().strip('"')
    found = []  # (rank, uri): 0 = lists this release's own suite, 1 = another suite, not security
    for uri, suites in _apt_sources():
        if 'security' not in uri and not any(s.endswith('-security') for s in suites):
            found.append((0 if codename in suites else 1, uri))
    uris = [uri for _rank, uri in sorted(found, key=lambda f: f[0])]
    if not uris:
        raise SandboxError('no Debian archive in this machine\'s apt configuration (/etc/apt/sources.list, '
                           '/etc/apt/sources.list.d): cannot fetch Engine 26')
    return uris[0]


def _engine26_file(root, name):
    for sub in ('usr/sbin', 'usr/bin', 'usr/libexec/docker', 'usr/libexec/docker/cli-plugins'):
        path = os.path.join(root, sub, name)
        if os.path.isfile(path):
            return path
    return None


def _ensure_engine26():
    """Engine 26.1, containerd 1.7 and Compose v2 from Debian 13's packages, fetched with apt's own client into
    a private folder and unpacked (never installed) into one machine-wide cache dir, once: the sandboxes of
    every checkout and namespace share it. Its bin/ holds what dockerd and containerd need first on PATH,
    with Debian 12's runc (Debian 13's needs glibc 2.38). Returns the cache dir."""
    target = _engine26_dir()
    if _engine26_ready():
        return target
    os.makedirs(ENGINE_CACHE, exist_ok=True)
    with _locked(None, target + '.lock'):
        if _engine26_ready():
            return target
        if os.geteuid() != 0:
            raise SandboxError('fetching Engine 26 needs root (apt-get)')
        runc = _which('runc')
        if not runc:
            raise SandboxError('no runc on this machine (Debian 12\'s docker.io brings it)')
        started = time.monotonic()
        work = target + '.partial'
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        apt_dir, debs, root, bindir = (os.path.join(work, d) for d in ('apt', 'debs', 'root', 'bin'))
        for d in (os.path.join(apt_dir, 'lists', 'partial'), os.path.join(apt_dir, 'cache', 'archives', 'partial'),
                  debs, root, bindir):
            os.makedirs(d)
        uri = _archive_uri()
        sources = os.path.join(apt_dir, 'sources.list')
        _write(sources, 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n'
               % (uri, ENGINE26['suite']))
        opts = ['-q', '-o', 'Dir::Etc::sourcelist=' + sources, '-o', 'Dir::Etc::sourceparts=/dev/null',
                '-o', 'Dir::State::Lists=' + os.path.join(apt_dir, 'lists'),
                '-o', 'Dir::Cache=' + os.path.join(apt_dir, 'cache'), '-o', 'APT::Sandbox::User=root']
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive', PATH=os.environ.get('PATH', '') + ':' + SYS_PATH)
        _say('fetching Engine 26 from Debian %s (%s) into %s' % (ENGINE26['suite'], uri, target))
        for argv in (['apt-get'] + opts + ['update'], ['apt-get'] + opts + ['download'] + list(ENGINE26['packages'])):
            proc = subprocess.run(argv, cwd=debs, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=600, check=False)
            if proc.returncode != 0:
                raise SandboxError('%s failed:\n%s' % (' '.join(argv), proc.stdout.decode('utf-8', 'replace')[-4000:]))
        for deb in sorted(os.listdir(debs)):
            _check_run(['dpkg-deb', '-x', os.path.join(debs, deb), root], timeout=300)
        links = {'runc': runc}
        for name in ('dockerd', 'docker-proxy', 'containerd', 'containerd-shim-runc-v2', 'ctr', 'docker-init',
                     'docker-compose'):
            found = _engine26_file(root, name)
            if name == 'docker-compose':
                found = os.path.join(root, 'usr/libexec/docker/cli-plugins/docker-compose')
            if not (found and os.path.isfile(found)):
                if name == 'docker-init' and (_which('docker-init') or _which('tini')):
                    links[name] = _which('docker-init') or _which('tini')
                    continue
                raise SandboxError('%s is not in the Debian %s packages %s' % (name, ENGINE26['suite'],
                                                                               ' '.join(ENGINE26['packages'])))
            links[name] = os.path.relpath(found, bindir)
        for name, dest in links.items():
            os.symlink(dest, os.path.join(bindir, name))
        versions = {}
        for name, argv in (('dockerd', ['dockerd', '--version']), ('containerd', ['containerd', '--version']),
                           ('compose', ['docker-compose', 'version', '--short'])):
            argv[0] = os.path.join(bindir, argv[0])
            versions[name] = _check_run(argv).strip()
        versions['debs'] = sorted(os.listdir(debs))
        shutil.rmtree(apt_dir, ignore_errors=True)
        shutil.rmtree(debs, ignore_errors=True)
        _write(os.path.join(work, 'versions.json'), json.dumps(versions, indent=2) + '\n')
        os.rename(work, target)
        _write(os.path.join(target, 'complete'), 'fetched %s in %.1fs\n'
               % (time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), time.monotonic() - started))
        _say('Engine 26 ready in %.1fs: %s' % (time.monotonic() - started, versions['dockerd']))
        return target


def _compose_v2_path():
    path = os.path.join(_engine26_dir(), 'bin', 'docker-compose')
    return os.path.realpath(path) if _engine26_ready() and os.path.exists(path) else None
