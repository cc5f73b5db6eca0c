"""HTTP on loopback only (the engine's unix socket, the registry on 127.0.0.1, never a proxy), and whether
a port is taken or listens.
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request

from .files import _read
from .settings import REGISTRY_ADDR


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__('localhost', timeout=timeout)
        self._unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._unix_path)
        self.sock = sock


def _engine_get(p, path, timeout=5):
    """GET on the sandbox engine's API socket: (status, body) or (None, '') when unreachable."""
    conn = _UnixHTTPConnection(p.sock, timeout=timeout)
    try:
        conn.request('GET', path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode('utf-8', 'replace')
    except (OSError, http.client.HTTPException):
        return None, ''
    finally:
        conn.close()


# no proxies: every request of the sandbox goes to 127.0.0.1
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _registry_request(method, path, headers=None, timeout=5):
    req = urllib.request.Request('http://%s%s' % (REGISTRY_ADDR, path), method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers or {}), b''
    except (OSError, http.client.HTTPException):
        return None, {}, b''


def _port_open(addr, timeout=0.5):
    host, port = addr.rsplit(':', 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _listening(port, addr='127.0.0.1'):
    """A TCP socket listens on addr:port in this network namespace (read from /proc: a probe connection
    would put a line in sshd's log every time)."""
    want = '%s:%04X' % (''.join('%02X' % int(b) for b in reversed(addr.split('.'))), port)
    for line in (_read('/proc/net/tcp', '') or '').splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == want and fields[3] == '0A':
            return True
    return False
