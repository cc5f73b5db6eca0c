"""The base image sandbox/busybox:base: a root filesystem of busybox-static imported into the sandbox
engine and pushed to the registry; pulled from there by every other engine.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time

from .docker_cli import _run_docker
from .errors import _say
from .loopback import _engine_get
from .registry_api import registry_digest
from .settings import BASE_IMAGE, BASE_LOCAL


def _rootfs_tar():
    """A root filesystem of busybox-static: /bin/busybox plus one symlink per applet."""
    applets = subprocess.run(['/bin/busybox', '--list'], stdout=subprocess.PIPE, check=True).stdout.decode().split()
    buf = io.BytesIO()
    now = int(time.time())

    def add(name, kind=tarfile.DIRTYPE, mode=0o755, data=None, link=None):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = kind, mode, now, 0, 0, 'root', 'root'
        if link:
            ti.linkname = link
        if data is not None:
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        else:
            tar.addfile(ti)

    with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as tar:
        for d in ('bin', 'etc', 'root', 'var'):
            add(d)
        add('tmp', mode=0o1777)
        with open('/bin/busybox', 'rb') as f:
            add('bin/busybox', tarfile.REGTYPE, 0o755, f.read())
        for applet in sorted(set(applets)):
            if applet != 'busybox' and '/' not in applet:
                add('bin/' + applet, tarfile.SYMTYPE, 0o777, link='busybox')
        add('etc/passwd', tarfile.REGTYPE, 0o644,
            b'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n')
        add('etc/group', tarfile.REGTYPE, 0o644, b'root:x:0:\nnobody:x:65534:\n')
    return buf.getvalue()


def _ensure_base(p):
    if _engine_get(p, '/images/%s/json' % BASE_IMAGE)[0] != 200:
        if _engine_get(p, '/images/%s/json' % BASE_LOCAL)[0] != 200:
            _say('creating %s from /bin/busybox' % BASE_LOCAL)
            _run_docker(['import', '-c', 'CMD ["/bin/sh"]', '-', BASE_LOCAL], input=_rootfs_tar())
        _run_docker(['tag', BASE_LOCAL, BASE_IMAGE])
    if registry_digest(BASE_IMAGE) is None:
        _run_docker(['push', BASE_IMAGE])


def _ensure_host_base(h):
    if _engine_get(h, '/images/%s/json' % BASE_IMAGE)[0] != 200:
        _run_docker(['pull', '-q', BASE_IMAGE], sock=h.sock, timeout=300)
    if _engine_get(h, '/images/%s/json' % BASE_LOCAL)[0] != 200:
        _run_docker(['tag', BASE_IMAGE, BASE_LOCAL], sock=h.sock)
