"""A fault-injecting HTTP proxy in front of the sandbox registry, for the registry fault tests.

It listens on a loopback port (default ``127.0.0.1:5119``) and forwards every request to the real
registry (default the sandbox's ``127.0.0.1:5115``), keeping the ``Host`` header, so the registry's
own ``Location`` headers point back at the proxy. The Docker daemon treats every 127.0.0.0/8
registry as insecure (plain HTTP), so an image can be referenced as ``127.0.0.1:5119/<repo>:<tag>``
and every look-up and pull of it goes through here.

Modes, switched at run time with :meth:`FaultProxy.set` (or, from the command line, through a JSON
control file that the proxy reads again every 0.2 s):

* ``pass``: forward as is;
* ``down``: the listening socket is closed (connection refused), opened again by any other mode;
* ``slow``: wait ``delay`` seconds before forwarding (a later :meth:`set` wakes the waiters);
* ``status``: answer ``code`` (401, 429, 500, ...) with a registry-style JSON error body, a
  ``WWW-Authenticate`` challenge for 401 and ``Retry-After: <retry_after>`` for 429;
* ``drop``: forward, send the headers and half of the body, then reset the connection.

``match`` (a regular expression searched in the request path) limits a fault to some requests,
e.g. ``'/blobs/'`` for a drop in the middle of a layer download; the others pass. ``times`` limits a
fault to the first N matching requests. :attr:`FaultProxy.log` lists ``(method, path, outcome)``
for every request the proxy saw, so a test can check that the daemon really talked to it.

Standard library only, Python 3.9+. Usage from a test::

    with FaultProxy() as proxy:
        proxy.set('status', code=500, match='/manifests/')
        ...
        proxy.set('pass')

From a shell: ``python3 tests/sandbox/sandbox/faultproxy.py --control /tmp/mode.json`` and write e.g.
``{"mode": "slow", "delay": 30}`` into the control file.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import re
import socket
import socketserver
import struct
import sys
import threading
import time

LISTEN = '127.0.0.1:5119'
UPSTREAM = '127.0.0.1:5115'
MODES = ('pass', 'down', 'slow', 'status', 'drop')
HOP_BY_HOP = ('connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade')
_ERROR_CODES = {401: 'UNAUTHORIZED', 403: 'DENIED', 404: 'NAME_UNKNOWN', 429: 'TOOMANYREQUESTS'}
_ERROR_TEXT = {401: 'authentication required', 403: 'requested access to the resource is denied',
               429: 'too many requests, retry later', 500: 'internal server error (injected by faultproxy)'}


def _split(addr):
    host, port = addr.rsplit(':', 1)
    return host, int(port)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy = None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'faultproxy'

    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    def _body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            data = b''
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else None

    def _any(self):
        proxy = self.server.proxy
        body = self._body()
        fault = proxy.fault_for(self.path)
        mode = fault.get('mode', 'pass')
        proxy.record(self.command, self.path, mode)
        if mode == 'slow':
            proxy.wait(float(fault.get('delay', 30)))
            fault = {'mode': 'pass'}  # then forward, whatever the mode is now
        if mode == 'status':
            return self._status(int(fault.get('code', 500)), fault.get('retry_after'))
        self._forward(body, drop=(mode == 'drop'))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def _status(self, code, retry_after):
        body = json.dumps({'errors': [{'code': _ERROR_CODES.get(code, 'UNKNOWN'),
                                       'message': _ERROR_TEXT.get(code, 'injected error'),
                                       'detail': None}]}).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json; charset=utf-8')
        self.send_header('Docker-Distribution-Api-Version', 'registry/2.0')
        if code == 401:
            self.send_header('WWW-Authenticate', 'Basic realm="faultproxy"')
        if retry_after is not None:
            self.send_header('Retry-After', str(retry_after))
        self.send_header('Content-Length', str(0 if self.command == 'HEAD' else len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def _forward(self, body, drop=False):
        proxy = self.server.proxy
        host, port = _split(proxy.upstream)
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            # header by header: the daemon sends Accept once per manifest type, and a dict would keep one
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in HOP_BY_HOP and key.lower() != 'content-length':
                    conn.putheader(key, value)
            if body is not None:
                conn.putheader('Content-Length', str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            proxy.record(self.command, self.path, 'upstream error: %s' % exc)
            self.send_error(502, 'upstream registry unreachable')
            return
        finally:
            conn.close()
        proxy.record(self.command, self.path, 'upstream %d' % resp.status)
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP and (key.lower() != 'content-length' or self.command == 'HEAD'):
                self.send_header(key, value)
        if self.command != 'HEAD':
            self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if self.command == 'HEAD':
            return
        if drop and len(data) > 1:
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            proxy.record(self.command, self.path, 'dropped after %d of %d bytes' % (len(data) // 2, len(data)))
            # a reset, not a clean close: what a dying registry or a middlebox does to the connection
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            self.close_connection = True
            raise ConnectionAbortedError('dropped by faultproxy')
        self.wfile.write(data)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionAbortedError, BrokenPipeError, ConnectionResetError):
            # dropped on purpose, or the client gave up waiting (slow mode)
            self.close_connection = True


class FaultProxy:
    """A threaded proxy listen -> upstream with a fault mode that can change at any time."""

    def __init__(self, listen=LISTEN, upstream=UPSTREAM):
        self.listen = listen
        self.upstream = upstream
        self.log = []
        self._fault = {'mode': 'pass'}
        self._matched = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self._server = None
        self._thread = None
        self._stopped = False

    # --- control ----------------------------------------------------------------------------
    def set(self, mode, **options):
        """Switch to ``mode`` with its options (delay, code, retry_after, match, times)."""
        if mode not in MODES:
            raise ValueError('unknown mode %r (one of %s)' % (mode, ', '.join(MODES)))
        with self._changed:
            self._fault = dict(options, mode=mode)
            self._matched = 0
            self._generation += 1
            self._changed.notify_all()
        if mode == 'down':
            self._close()
        elif not self._stopped:
            self._open()

    @property
    def mode(self):
        return self._fault.get('mode', 'pass')

    def fault_for(self, path):
        """The fault to apply to a request for ``path`` ({'mode': 'pass'} when none)."""
        with self._lock:
            fault = dict(self._fault)
            match = fault.get('match')
            if match and not re.search(match, path):
                return {'mode': 'pass'}
            times = fault.get('times')
            if fault.get('mode', 'pass') != 'pass' and times is not None:
                if self._matched >= int(times):
                    return {'mode': 'pass'}
                self._matched += 1
            return fault

    def wait(self, seconds):
        """Sleep ``seconds``, or less when the mode changes meanwhile."""
        deadline = time.monotonic() + seconds
        with self._changed:
            generation = self._generation
            while generation == self._generation and not self._stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)

    def record(self, method, path, outcome):
        with self._lock:
            self.log.append((method, path, outcome))

    def requests(self, since=0):
        """'METHOD /path' of the requests seen, from index ``since`` on."""
        with self._lock:
            return ['%s %s' % (method, path) for method, path, outcome in self.log[since:] if outcome in MODES]

    # --- life -------------------------------------------------------------------------------
    def _open(self):
        if self._server is not None:
            return
        server = _Server(_split(self.listen), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.1},
                                        name='faultproxy', daemon=True)
        self._thread.start()

    def _close(self):
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(5)

    def start(self):
        self._stopped = False
        self._open()
        return self

    def stop(self):
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--listen', default=LISTEN)
    parser.add_argument('--upstream', default=UPSTREAM)
    parser.add_argument('--control', help='a JSON file {"mode": ..., options}, read for every request')
    args = parser.parse_args(argv)
    if args.control and not os.path.exists(args.control):
        with open(args.control, 'w') as handle:
            json.dump({'mode': 'pass'}, handle)
    proxy = FaultProxy(args.listen, args.upstream).start()
    sys.stderr.write('faultproxy: %s -> %s\n' % (args.listen, args.upstream))
    seen = None
    try:
        while True:
            text = _read(args.control) if args.control else None
            if text is not None and text != seen:
                seen = text
                try:
                    wanted = json.loads(text)
                    proxy.set(wanted.pop('mode', 'pass'), **wanted)
                    sys.stderr.write('faultproxy: %s\n' % text.strip())
                except (ValueError, TypeError, AttributeError) as exc:
                    sys.stderr.write('faultproxy: control file ignored: %s\n' % exc)
            time.sleep(0.2)
    except KeyboardInterrupt:
        proxy.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
