# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one Docker client of patchops.docker.

Every module builds its argument spec with :func:`docker_argument_spec` and
talks to the daemon only through :class:`DockerClient`, which guards the
Docker SDK import, turns the connection options into an SDK client and turns
connection failures into one sentence that names the host it tried.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import traceback

from urllib.parse import urlsplit

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.patchops.docker.plugins.module_utils.errors import DockerConnectionError, PatchopsError

try:
    import docker
    from docker import auth as docker_auth
    from docker.errors import DockerException
    from docker.tls import TLSConfig
    from docker.constants import DEFAULT_DOCKER_API_VERSION as DEFAULT_API_VERSION
    HAS_DOCKER_SDK = True
    DOCKER_SDK_VERSION = docker.__version__
except ImportError:
    HAS_DOCKER_SDK = False
    DOCKER_SDK_VERSION = None
    DEFAULT_API_VERSION = None
    docker_auth = None

    class DockerException(Exception):  # type: ignore[no-redef]
        """Stand-in so that ``except DockerException`` works without the SDK."""

try:
    from requests.adapters import HTTPAdapter
    from requests.exceptions import ConnectionError as RequestsConnectionError, RequestException
    from urllib3.exceptions import HTTPError as Urllib3Error
except ImportError:
    HTTPAdapter = object

    class RequestException(Exception):  # type: ignore[no-redef]
        """Stand-in so that ``except RequestException`` works without requests."""

    RequestsConnectionError = Urllib3Error = RequestException

MIN_DOCKER_SDK_VERSION = (7, 0, 0)
DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock'
# Docker Engine 20.10, the oldest engine we support.
MIN_API_VERSION = '1.41'

DOCKER_COMMON_ARGS = dict(
    docker_host=dict(type='str', default=DEFAULT_DOCKER_HOST, aliases=['docker_url'],
                     fallback=(env_fallback, ['DOCKER_HOST'])),
    tls_hostname=dict(type='str', fallback=(env_fallback, ['DOCKER_TLS_HOSTNAME'])),
    api_version=dict(type='str', default='auto', aliases=['docker_api_version'],
                     fallback=(env_fallback, ['DOCKER_API_VERSION'])),
    timeout=dict(type='int', default=60, fallback=(env_fallback, ['DOCKER_TIMEOUT'])),
    ca_path=dict(type='path', aliases=['ca_cert', 'tls_ca_cert', 'cacert_path']),
    client_cert=dict(type='path', aliases=['tls_client_cert', 'cert_path']),
    client_key=dict(type='path', aliases=['tls_client_key', 'key_path']),
    tls=dict(type='bool', default=False, fallback=(env_fallback, ['DOCKER_TLS'])),
    validate_certs=dict(type='bool', default=False, aliases=['tls_verify'],
                        fallback=(env_fallback, ['DOCKER_TLS_VERIFY'])),
)

_CERT_FILES = (('ca_path', 'ca.pem'), ('client_cert', 'cert.pem'), ('client_key', 'key.pem'))


def docker_argument_spec(module_spec):
    """Return the module's own argument spec merged with the shared connection options."""
    spec = dict(DOCKER_COMMON_ARGS)
    spec.update(module_spec)
    return spec


def _version_tuple(text):
    return tuple(int(part) for part in re.findall(r'\d+', text or '')[:3])


def short_reason(exc):
    """Reduce an SDK/requests exception to its last, most specific clause.

    ``requests`` nests causes ("... (Caused by NewConnectionError(...: [Errno
    111] Connection refused'))"); operators need the last part only.
    """
    text = str(exc).strip()
    name_match = re.findall(r"CertificateError\((?:\"(.+?)\"|'(.+?)')\)", text)
    if name_match:
        return 'TLS certificate check failed: %s' % ''.join(name_match[-1]).strip().rstrip('.')
    ssl_match = re.findall(r"\[SSL: [A-Z0-9_]+\] ([^'\"]+)", text)
    if ssl_match:
        reason = re.sub(r'\s*\(_ssl\.c:\d+\)\s*$', '', ssl_match[-1]).strip().rstrip('.')
        return 'TLS handshake failed: %s' % reason
    errno_match = re.findall(r"\[Errno -?\d+\] ([^'\"\)]+)", text)
    if errno_match:
        return errno_match[-1].strip()
    # "('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))": the inner error's words
    inner = re.findall(r"\b[A-Z]\w*(?:Error|Disconnected)\((?:-?\d+, )?'([^']+)'\)", text)
    if inner:
        return inner[-1].strip()
    timeout_match = re.search(r'Read timed out\. \(read timeout=(\d+(?:\.\d+)?)\)', text)
    if timeout_match:
        return 'no answer within %s s (read timed out)' % timeout_match.group(1)
    for marker in ('Caused by ', 'Error while fetching server API version: '):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    text = text.strip(" ()'\"")
    return text[:300]


def not_found(exc):
    """True when the daemon answered 404: no such container or image (and not: no answer at all)."""
    return getattr(getattr(exc, 'response', None), 'status_code', None) == 404


def lost_connection(exc):
    """True when ``exc`` says the daemon did not answer at all (gone, refused, reset, timed out),
    rather than that it answered with an error."""
    return isinstance(exc, RequestException) and not isinstance(exc, DockerException) \
        and getattr(exc, 'response', None) is None


def pull_progress(api, repository, tag, timeout):
    """Pull ``repository:tag`` and yield the daemon's progress lines (dicts), like the SDK's ``pull(stream=True,
    decode=True)`` but with a read timeout.

    The SDK's pull waits without any timeout, and the daemon asks a registry for a manifest without one
    either: a registry that accepts the connection and never answers would hold the run forever. Here
    the pull fails once the daemon has sent nothing for ``timeout`` seconds (it sends progress while
    layers download, and while it waits to retry one), and closing the connection makes the daemon
    give up that pull. Errors come out as SDK or ``requests`` exceptions, never urllib3's own.
    """
    registry, _name = docker_auth.resolve_repository_name(repository)
    headers = {}
    header = docker_auth.get_config_header(api, registry)
    if header:
        headers['X-Registry-Auth'] = header
    response = api._post(api._url('/images/create'), params={'fromImage': repository, 'tag': tag},
                         headers=headers, stream=True, timeout=timeout)
    try:
        api._raise_for_status(response)
        yield from api._stream_helper(response, decode=True)
    except (Urllib3Error, OSError) as exc:
        if isinstance(exc, RequestException):
            raise
        if 'timed out' in str(exc).lower():
            raise RequestsConnectionError('Read timed out. (read timeout=%s)' % timeout)
        raise RequestsConnectionError(str(exc))
    finally:
        response.close()


class _TLSHostnameAdapter(HTTPAdapter):
    """An HTTPS adapter that checks the server certificate against a given name."""

    def __init__(self, hostname, **kwargs):
        self._hostname = hostname
        super(_TLSHostnameAdapter, self).__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs['assert_hostname'] = self._hostname
        kwargs['server_hostname'] = self._hostname
        super(_TLSHostnameAdapter, self).init_poolmanager(*args, **kwargs)


def _pin_ca_file(api, ca_file):
    """Make ``ca_file`` the CA bundle of every request ``api`` sends.

    ``requests`` lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` from the environment
    override a session's own ``verify`` path whenever a request leaves ``verify``
    unset (as the SDK's requests all do): on a host with either variable set, the
    engine's CA given as ``ca_path``/``DOCKER_CERT_PATH`` would be ignored and the
    engine's certificate refused. Proxies from the environment still apply.
    """
    merge = api.merge_environment_settings

    def merge_keeping_ca(url, proxies, stream, verify, cert):
        settings = merge(url, proxies, stream, verify, cert)
        if verify is None or verify is True:
            settings['verify'] = ca_file
        return settings
    api.merge_environment_settings = merge_keeping_ca


def connection_problem(params):
    """Why the connection options cannot work, in one sentence, or None.

    The Docker SDK raises plain ValueErrors for these (no DockerException), which
    would reach the user as a traceback.
    """
    if params['timeout'] < 1:
        return 'timeout must be 1 or more, not %d.' % params['timeout']
    version = params['api_version'] or 'auto'
    if version != 'auto' and not re.match(r'^[0-9]+\.[0-9]+$', version):
        return "api_version must be 'auto' or a version such as '1.41', not %r." % (version[:40],)
    url = params['docker_host'] or ''
    try:
        port = urlsplit(url).port
    except ValueError as exc:
        return 'docker_host %r is not a valid URL: %s.' % (url[:200], str(exc).rstrip('.'))
    if port == 0 and url.startswith(('tcp://', 'http://', 'https://')):
        return 'docker_host %r is not a valid URL: port 0 cannot be connected to.' % (url[:200],)
    return None


class DockerClient(object):
    """A connected Docker API client built from the module's connection options.

    ``api`` is the SDK's low-level ``APIClient``; ``docker_host`` the URL it
    talks to, used in every error message.
    """

    def __init__(self, module, max_pool_size=16):
        self.module = module
        params = module.params
        if not HAS_DOCKER_SDK:
            module.fail_json(msg=missing_required_lib('docker (Docker SDK for Python) >= 7.0.0'))
        if _version_tuple(DOCKER_SDK_VERSION) < MIN_DOCKER_SDK_VERSION:
            module.fail_json(msg='The Docker SDK for Python on this host is version %s; patchops.docker needs 7.0.0 or newer.'
                             % DOCKER_SDK_VERSION)
        self.docker_host = params['docker_host'] or DEFAULT_DOCKER_HOST
        problem = connection_problem(params)
        if problem:
            module.fail_json(msg=problem)
        try:
            self.api = self._connect(params, max_pool_size)
        except DockerConnectionError as exc:
            module.fail_json(msg=str(exc))

    def _tls_config(self, params):
        cert_path = os.environ.get('DOCKER_CERT_PATH')
        files = {}
        for option, file_name in _CERT_FILES:
            files[option] = params.get(option)
            if not files[option] and cert_path:
                candidate = os.path.join(cert_path, file_name)
                if os.path.exists(candidate):
                    files[option] = candidate
        for option in ('ca_path', 'client_cert', 'client_key'):
            if files[option] and not os.path.isfile(files[option]):
                raise DockerConnectionError('The %s file %s does not exist.' % (option, files[option]))
        if bool(files['client_cert']) != bool(files['client_key']):
            raise DockerConnectionError('client_cert and client_key must be given together to connect to %s.'
                                        % self.docker_host)
        client_cert = (files['client_cert'], files['client_key']) if files['client_cert'] else None
        if params['validate_certs']:
            verify = files['ca_path'] or True
        else:
            verify = False
        return TLSConfig(client_cert=client_cert, ca_cert=files['ca_path'], verify=verify)

    def _connect(self, params, max_pool_size):
        base_url = self.docker_host
        use_tls = params['tls'] or params['validate_certs']
        tls_config = False
        if use_tls:
            if base_url.startswith('tcp://'):
                base_url = 'https://' + base_url[len('tcp://'):]
            try:
                tls_config = self._tls_config(params)
            except DockerException as exc:
                raise DockerConnectionError('Invalid TLS settings for %s: %s.' % (self.docker_host, short_reason(exc)))
        version = params['api_version'] or 'auto'
        custom_hostname = use_tls and params.get('tls_hostname')
        ca_file = tls_config.verify if tls_config and isinstance(tls_config.verify, str) else None
        negotiate_later = bool(custom_hostname or ca_file)
        try:
            # With a custom TLS host name or our own CA file the session must be set up
            # before the first request, so the version is negotiated by hand afterwards.
            api = docker.APIClient(base_url=base_url,
                                   version=MIN_API_VERSION if (negotiate_later and version == 'auto') else version,
                                   timeout=params['timeout'], tls=tls_config, max_pool_size=max_pool_size)
            if ca_file:
                _pin_ca_file(api, ca_file)
            if custom_hostname:
                api.mount('https://', _TLSHostnameAdapter(params['tls_hostname'], pool_maxsize=max_pool_size))
            if negotiate_later and version == 'auto':
                server = api.version(api_version=False).get('ApiVersion', MIN_API_VERSION)
                api._version = min(server, DEFAULT_API_VERSION, key=_version_tuple)
            api.ping()
        except (DockerException, RequestException, ValueError) as exc:
            # ValueError: what the SDK raises for a URL or version it cannot use
            raise DockerConnectionError('Cannot connect to the Docker daemon at %s: %s.'
                                        % (self.docker_host, short_reason(exc)))
        return api

    def run(self, work, *args, **kwargs):
        """Return ``work(*args, **kwargs)``; our errors and Docker's fail the module with one sentence."""
        try:
            return work(*args, **kwargs)
        except PatchopsError as exc:
            self.module.fail_json(msg=str(exc))
        except (DockerException, RequestException) as exc:
            # one sentence for the operator; the traceback for -vvv (Ansible shows `exception` only there)
            self.module.fail_json(msg='Docker API error on %s: %s.' % (self.docker_host, short_reason(exc)),
                                  exception=traceback.format_exc())
