"""The Debian packages the sandbox and the fleet need, installed with apt-get when missing (their services
kept from starting).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import subprocess

from .errors import SandboxError, _say
from .files import _read, _write
from .processes import _which
from .settings import SYS_PATH

# Wait for another apt-get (another make target, unattended-upgrades) instead of failing at once.
LOCK_WAIT = '-oDPkg::Lock::Timeout=600'


def _is_static_elf(path):
    try:
        with open(path, 'rb') as f:
            hdr = f.read(64)
            if hdr[:4] != b'\x7fELF':
                return False
            e = '<' if hdr[5] == 1 else '>'
            if hdr[4] == 2:
                phoff = struct.unpack(e + 'Q', hdr[32:40])[0]
                phentsize, phnum = struct.unpack(e + 'HH', hdr[54:58])
            else:
                phoff = struct.unpack(e + 'I', hdr[28:32])[0]
                phentsize, phnum = struct.unpack(e + 'HH', hdr[42:46])
            f.seek(phoff)
            for _index in range(phnum):
                if struct.unpack(e + 'I', f.read(phentsize)[:4])[0] == 3:  # PT_INTERP
                    return False
            return True
    except (OSError, struct.error):
        return False


def _missing_packages():
    need = []
    if not all(_which(b) for b in ('dockerd', 'containerd', 'containerd-shim-runc-v2', 'runc')) \
            or not (shutil.which('docker') or _which('docker')):
        need.append('docker.io')
    if not _which('docker-registry'):
        need.append('docker-registry')
    if not _is_static_elf('/bin/busybox'):
        need.append('busybox-static')
    if not _which('docker-compose'):
        need.append('docker-compose')
    if not _which('ip'):
        need.append('iproute2')
    return need


def _missing_fleet_packages():
    need = []
    if not _which('sshd'):
        need.append('openssh-server')
    if not (_which('ssh') and _which('ssh-keygen')):
        need.append('openssh-client')
    return need


# Debian 12's Podman 4.3 and what podman_up() runs it with (podman_engine.py): crun and conmon, netavark and
# aardvark-dns (the network backend and its DNS); without recommends (no buildah, slirp4netns, fuse-overlayfs,
# dbus-user-session: a rootful service on a private socket needs none of them). runc comes with docker.io.
PODMAN_PACKAGES = ('podman', 'crun', 'conmon', 'netavark', 'aardvark-dns')
PODMAN_HELPERS = ('/usr/lib/podman/netavark', '/usr/lib/podman/aardvark-dns')


def _missing_podman_packages():
    need = [name for name in ('podman', 'crun', 'conmon') if not _which(name)]
    need += [os.path.basename(path) for path in PODMAN_HELPERS if not os.access(path, os.X_OK)]
    return need


def _ensure_podman_packages():
    _apt_install(_missing_podman_packages(), _missing_podman_packages, recommends=False)


def _ensure_packages():
    _apt_install(_missing_packages(), _missing_packages)


def _apt_install(need, still_missing, recommends=True):
    if not need:
        return
    _say('installing missing Debian packages: %s' % ' '.join(need))
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive', PATH=os.environ.get('PATH', '') + ':' + SYS_PATH)
    # keep apt from starting the packages' own services (the machine's default dockerd, a registry on :5000,
    # podman's API service)
    policy = '/usr/sbin/policy-rc.d'
    added_policy = not os.path.exists(policy)
    if added_policy:
        _write(policy, '#!/bin/sh\n# added by patchops sandbox during apt-get install\nexit 101\n', 0o755)
    try:
        install = ['apt-get', LOCK_WAIT, 'install', '-y'] + ([] if recommends else ['--no-install-recommends'])
        for cmd in (['apt-get', LOCK_WAIT, 'update'], install + need):
            proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
            if proc.returncode != 0:
                raise SandboxError('%s failed:\n%s' % (' '.join(cmd), proc.stdout.decode('utf-8', 'replace')[-4000:]))
    finally:
        if added_policy:
            with contextlib.suppress(OSError):
                os.unlink(policy)
    still = still_missing()
    if still:
        raise SandboxError('still missing after apt-get install: %s' % ' '.join(still))


def _apt_sources():
    """[(uri, [suite, ...])] of every enabled `deb` source in this machine's apt configuration."""
    found = []
    parts = sorted(os.path.join('/etc/apt/sources.list.d', f) for f in os.listdir('/etc/apt/sources.list.d')) \
        if os.path.isdir('/etc/apt/sources.list.d') else []
    for path in parts:
        if not path.endswith('.sources'):
            continue
        for stanza in re.split(r'\n\s*\n', _read(path, '') or ''):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith('#') or ':' not in line or line[:1].isspace():
                    continue
                key, value = line.split(':', 1)
                fields[key.strip().lower()] = value.split()
            if 'deb' not in fields.get('types', []) or fields.get('enabled', ['yes'])[0].lower() == 'no':
                continue
            found.extend((uri, fields.get('suites', [])) for uri in fields.get('uris', []))
    for path in ['/etc/apt/sources.list'] + [p for p in parts if p.endswith('.list')]:
        for line in (_read(path, '') or '').splitlines():
            words = re.sub(r'\[[^\]]*\]', ' ', line.split('#', 1)[0]).split()
            if len(words) >= 3 and words[0] == 'deb':
                found.append((words[1], [words[2]]))
    return [(uri.rstrip('/'), suites) for uri, suites in found if uri.startswith(('http://', 'https://'))]
