"""An engine with TLS on TCP: a containerd + dockerd on tcp://127.0.0.1:5117 with --tlsverify, and the
certificates for it made with openssl, for the security tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time

from .base_image import _ensure_host_base
from .docker_cli import _run_docker
from .engines import (_containerd_pid, _daemon_config, _dockerd_argv, _engine_pid, _engine_up, _start_containerd,
                      _stop_engine, _wait_dockerd, _write_engine_record)
from .errors import SandboxError
from .files import _read, _write
from .lock import _locked
from .loopback import _engine_get, _port_open
from .paths import _EngineFiles, _paths
from .processes import _daemon_env, _spawn, _stop_pid, _which
from .settings import BASE_IMAGE, START_TIMEOUT


TLS_ENGINE_ADDR = '127.0.0.1:5117'
TLS_POOL_BASE = '172.29.240.0/20'


class _TLSEnginePaths(_EngineFiles):
    """A dockerd with --tlsverify on tcp://TLS_ENGINE_ADDR (and a private unix socket for the sandbox)."""

    def __init__(self, p):
        super().__init__(os.path.join(p.state, 'tls-engine'), os.path.join(p.run, 'tls'), p.kind)
        self.cgroup_parent = p.cgroup_parent + '-tls'
        self.bridge = 'none'  # no default bridge: no link to make or remove
        self.bridge_cidr = None
        self.pool_base = TLS_POOL_BASE
        self.pool = 'base=%s,size=24' % TLS_POOL_BASE
        self.certs = os.path.join(self.state, 'certs')
        self.client = os.path.join(self.certs, 'client')      # ca.pem, cert.pem, key.pem (DOCKER_CERT_PATH)
        self.wrong_ca = os.path.join(self.certs, 'wrong-ca')  # ca.pem of a CA that signed nothing here

    def cert(self, name):
        return os.path.join(self.certs, name)


def _openssl(*args):
    proc = subprocess.run([_which('openssl') or 'openssl'] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise SandboxError('openssl %s failed: %s' % (' '.join(args[:2]), proc.stderr.decode().strip()))


def _make_ca(key, cert, cn):
    _openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '365',
             '-subj', '/CN=' + cn, '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash')


def _make_leaf(t, name, cn, ext):
    key, csr, cert = t.cert(name + '-key.pem'), t.cert(name + '.csr'), t.cert(name + '-cert.pem')
    extfile = t.cert(name + '.ext')
    _write(extfile, '\n'.join(ext + ['basicConstraints=critical,CA:FALSE', 'subjectKeyIdentifier=hash',
                                     'authorityKeyIdentifier=keyid,issuer']) + '\n')
    _openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=' + cn)
    _openssl('x509', '-req', '-in', csr, '-CA', t.cert('ca.pem'), '-CAkey', t.cert('ca-key.pem'),
             '-CAcreateserial', '-out', cert, '-days', '365', '-extfile', extfile)
    return key, cert


def _ensure_tls_certs(t):
    if all(os.path.exists(os.path.join(t.client, f)) for f in ('ca.pem', 'cert.pem', 'key.pem')) \
            and os.path.exists(os.path.join(t.wrong_ca, 'ca.pem')) and os.path.exists(t.cert('server-cert.pem')):
        return
    for d in (t.certs, t.client, t.wrong_ca):
        os.makedirs(d, exist_ok=True)
    os.chmod(t.certs, 0o700)
    _make_ca(t.cert('ca-key.pem'), t.cert('ca.pem'), 'patchops sandbox CA')
    _make_leaf(t, 'server', 'localhost', ['subjectAltName=DNS:localhost,IP:127.0.0.1',
                                          'keyUsage=critical,digitalSignature,keyEncipherment',
                                          'extendedKeyUsage=serverAuth'])
    _make_leaf(t, 'client', 'patchops-client', ['keyUsage=critical,digitalSignature,keyEncipherment',
                                                'extendedKeyUsage=clientAuth'])
    shutil.copy(t.cert('ca.pem'), os.path.join(t.client, 'ca.pem'))
    shutil.copy(t.cert('client-cert.pem'), os.path.join(t.client, 'cert.pem'))
    shutil.copy(t.cert('client-key.pem'), os.path.join(t.client, 'key.pem'))
    _make_ca(os.path.join(t.wrong_ca, 'ca-key.pem'), os.path.join(t.wrong_ca, 'ca.pem'), 'patchops wrong CA')


def tls_engine_info() -> dict:
    """Where the TLS engine listens and its certificates are."""
    t = _TLSEnginePaths(_paths())
    return {
        'docker_host': 'tcp://' + TLS_ENGINE_ADDR,
        'unix_host': 'unix://' + t.sock,
        'ca_path': os.path.join(t.client, 'ca.pem'),
        'client_cert': os.path.join(t.client, 'cert.pem'),
        'client_key': os.path.join(t.client, 'key.pem'),
        'cert_path': t.client,
        'wrong_ca_path': os.path.join(t.wrong_ca, 'ca.pem'),
        'server_names': ['localhost', '127.0.0.1'],
        'log': t.log('dockerd'),
        'running': bool(_containerd_pid(t)) and _engine_up(t) and _port_open(TLS_ENGINE_ADDR),
    }


def tls_engine_up() -> dict:
    """Start a dockerd beside the sandbox engine that serves tcp://TLS_ENGINE_ADDR with --tlsverify
    (a CA, a server certificate for localhost/127.0.0.1, a client certificate, made with openssl)
    and a private unix socket; own containerd, data-root, exec-root, cgroup parent, no bridge, the
    main engine's flags. The base image is pulled from the sandbox registry. Idempotent."""
    from .lifecycle import up  # here, not at the top: lifecycle imports this module for down()
    up()
    p = _paths()
    t = _TLSEnginePaths(p)
    with _locked(p):
        if tls_engine_info()['running'] and _engine_get(t, '/images/%s/json' % BASE_IMAGE)[0] == 200:
            return tls_engine_info()
        for d in (t.state, t.logs, t.pids):
            os.makedirs(d, exist_ok=True)
        os.makedirs(t.run, mode=0o711, exist_ok=True)
        _ensure_tls_certs(t)
        if _engine_pid(t) and not (_containerd_pid(t) and _engine_up(t)):
            _stop_pid(_engine_pid(t), t.sock, name='tls dockerd')
        if not _engine_up(t):
            if _port_open(TLS_ENGINE_ADDR):
                raise SandboxError('%s is already taken by a process this sandbox did not start' % TLS_ENGINE_ADDR)
            _start_containerd(t)
            driver = (_read(p.driver_file, '') or '').strip() or None
            for d in (t.data_root, t.exec_root):
                os.makedirs(d, exist_ok=True)
            _write(t.daemon_json, json.dumps(_daemon_config(t)) + '\n')
            _write_engine_record(t, kind=t.kind)
            driver = (driver or os.environ.get('PATCHOPS_SANDBOX_STORAGE_DRIVER') or 'overlay2').strip()
            with contextlib.suppress(OSError):
                os.unlink(t.sock)
            argv = _dockerd_argv(t, driver) + [
                '--host', 'tcp://' + TLS_ENGINE_ADDR, '--tlsverify', '--tlscacert', t.cert('ca.pem'),
                '--tlscert', t.cert('server-cert.pem'), '--tlskey', t.cert('server-key.pem')]
            pid = _spawn(argv, t.log('dockerd'), _daemon_env(t.kind))
            _wait_dockerd(t, pid, driver)
        deadline = time.monotonic() + START_TIMEOUT
        while not _port_open(TLS_ENGINE_ADDR) and time.monotonic() < deadline:
            time.sleep(0.05)
        _ensure_host_base(t)
        return tls_engine_info()


def tls_engine_docker(*args, check=True, input=None, env=None, timeout=None) -> str:
    """The docker CLI against the TLS engine (over its private unix socket); return stdout."""
    return _run_docker(args, check=check, input=input, env=env, timeout=timeout, sock=_TLSEnginePaths(_paths()).sock)


def tls_engine_down(purge=False) -> dict:
    """Stop the TLS engine (its containers, dockerd, containerd); with purge also delete its state and certs."""
    p = _paths()
    t = _TLSEnginePaths(p)
    if not os.path.isdir(t.state) and not os.path.isdir(t.run):
        return {'stopped': [], 'purged': bool(purge)}
    stopped = []
    with _locked(p):
        stopped += _stop_engine(t, sock=t.sock, who='tls-engine')
        for name in ('dockerd', 'containerd'):
            with contextlib.suppress(OSError):
                os.unlink(t.pidfile(name))
        shutil.rmtree(t.run, ignore_errors=True)
        if purge:
            shutil.rmtree(t.state, ignore_errors=True)
    return {'stopped': stopped, 'purged': bool(purge)}
