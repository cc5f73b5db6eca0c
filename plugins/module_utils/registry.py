# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Registry look-ups: the digest a registry serves for a tag, right now, and what it means for one platform.

The target asks each registry itself, the way the host's Docker daemon and CLI would:

* credentials from the target user's Docker config (``~/.docker/config.json`` or ``$DOCKER_CONFIG``),
  credential stores and helpers included, through the Docker SDK's own ``docker.auth``;
* the daemon's registry settings from ``GET /info``: registries it treats as insecure (HTTPS
  without certificate checks, then plain HTTP; ``127.0.0.0/8`` by default) and its mirrors for
  Docker Hub; certificates in ``/etc/docker/certs.d/<registry>/`` as the daemon uses them;
* the Registry HTTP API v2 with ``requests`` (the HTTP library the Docker SDK itself uses), token
  and basic authentication as the distribution specification describes them.

Why not the daemon's ``GET /distribution/{name}/json``: it answers only the digest the tag
resolves to, never which image an index holds for this host's platform, so a multi-platform
tag that moved for other platforms only would look like an update; and it always makes two
requests (HEAD, then GET), where a HEAD alone answers the nights when nothing moved. Docker
Hub counts manifest GETs against its pull limits and not HEADs.

A look-up is one HEAD of the tag. Only when that digest is not one the running image carries,
the index behind it (and the one the running image came from) is fetched by digest, once per
run, to tell whether this host's platform moved. Each distinct reference is looked up once;
look-ups run in a bounded thread pool; one failing registry only marks its own references.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import hashlib
import ipaddress
import json
import os
import re
import socket
import threading
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.patchops.docker.plugins.module_utils import platforms
from ansible_collections.patchops.docker.plugins.module_utils.client import (
    DockerException,
    docker_auth,
    short_reason,
)

RemoteDigest = namedtuple('RemoteDigest', ['reference', 'digest', 'error', 'media_type', 'missing'])
RemoteDigest.__new__.__defaults__ = (None, False)
# What a look-up found for one platform: changed True/False/None (unknown), the digest of this platform's
# image in the tag's current index (or of the single manifest), why in a few words, or an error sentence.
PlatformCheck = namedtuple('PlatformCheck', ['changed', 'platform_digest', 'detail', 'error'])

_CREDENTIALS_IN_URL = re.compile(r'(\w+://)[^/@\s]+@')
# Go's net errors: "dial tcp 127.0.0.1:5115: connect: connection refused",
# "read tcp 127.0.0.1:40000->127.0.0.1:5119: read: connection reset by peer"
_NET_ERROR = re.compile(r'(?:dial|read|write) tcp (?:\S+->)?([^\s:]+(?::\d+)?): .*?([a-z][a-z ]+)$')
# Go's url.Error: 'Head "http://127.0.0.1:5119/v2/a/manifests/1": no basic auth credentials' -> the host
_GO_REQUEST = re.compile(r'\b(?:Get|Head|Post|Put|Patch|Delete) "(?:\w+://)?(?:[^/@"\s]+@)?([^/"\s]+)[^"]*": ')
_REGISTRY_HOST = re.compile(r'^[^/\s]*[.:][^/\s]*$|^localhost$')
# Go's words that say little to an operator on their own.
_PLAIN_WORDS = (
    (re.compile(r'(^|: )unexpected EOF$'), r'\1the connection broke off in the middle of an answer (unexpected EOF)'),
    (re.compile(r'(^|: )EOF$'), r'\1the connection was closed without an answer (EOF)'),
    (re.compile(r'(?:net/http: request canceled(?: while waiting for connection)?|context deadline exceeded) '
                r'\((Client\.Timeout exceeded)'),
     r'no answer in time (\1'),
    (re.compile(r'(^|: )(context deadline exceeded|i/o timeout)$'), r'\1no answer in time (\2)'),
)
# The daemon answers 500 for any registry trouble it has no better code for: that number is not the registry's.
_DAEMON_GENERIC_STATUS = 500


def redact(text):
    """Remove user:password@ from any URL in ``text``."""
    return _CREDENTIALS_IN_URL.sub(r'\1***@', text)


def registry_of(reference):
    """The registry a reference names explicitly (``127.0.0.1:5115`` of ``127.0.0.1:5115/a/b:1``), or None."""
    first = (reference or '').split('/', 1)[0] if '/' in (reference or '') else ''
    return first if _REGISTRY_HOST.match(first) else None


def describe_registry_error(exc, registry=None, timeout=None):
    """One short clause for a failed look-up or pull, without credentials, naming ``registry`` when given.

    >>> "dial tcp 127.0.0.1:5115: connect: connection refused" -> "127.0.0.1:5115: connection refused"
    """
    explanation = getattr(exc, 'explanation', None)
    status = getattr(getattr(exc, 'response', None), 'status_code', None)
    if explanation:
        text = explanation if isinstance(explanation, str) else str(explanation)
    elif 'timed out' in str(exc).lower():
        text = 'timed out waiting for the registry'
        if timeout:
            text += ' (the Docker daemon gave no answer within %s s)' % timeout
    else:
        text = short_reason(exc)
    text = redact(' '.join(text.split()))
    net = _NET_ERROR.search(text)
    if net:
        text = '%s: %s' % (net.group(1), net.group(2).strip())
    else:
        text = _GO_REQUEST.sub(r'\1: ', text)
        for pattern, plain in _PLAIN_WORDS:
            text = pattern.sub(plain, text)
        if status and status != _DAEMON_GENERIC_STATUS and str(status) not in text:
            text = 'HTTP %s: %s' % (status, text)
    if 'no space left on device' in text.lower():
        # the Docker host's own disk, not the registry
        return ('the Docker host ran out of disk space (%s)' % text)[:240]
    if registry and registry not in text:
        text = '%s: %s' % (registry, text)
    return text[:240]


DOCKER_HUB = 'docker.io'
# Where Docker Hub serves the Registry API (docker.io is only its name in references).
DOCKER_HUB_API = 'registry-1.docker.io'
CERTS_DIR = '/etc/docker/certs.d'
# Seconds a registry request may take at most (the module's timeout when that is lower): what the
# daemon's own registry client allows for its first request to a registry.
REGISTRY_TIMEOUT = 15
# The daemon's default when it has no settings of its own: loopback registries are insecure.
DEFAULT_INSECURE_CIDRS = ('127.0.0.0/8',)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """One look-up failed; the message is one clause, without credentials. ``missing``: the registry said it has
    no such tag or repository (HTTP 404)."""

    def __init__(self, message, missing=False):
        super(RegistryError, self).__init__(message)
        self.missing = missing


def _errors_text(response):
    """The registry's own words from an error body (``{"errors": [{"code", "message"}]}``)."""
    try:
        errors = response.json().get('errors') or []
    except ValueError:
        errors = []
    words = []
    for error in errors[:2]:
        code = (error.get('code') or '').lower().replace('_', ' ')
        message = error.get('message') or ''
        words.append(': '.join(part for part in (code, message) if part and part != code.replace(' ', '')) or code)
    return '; '.join(w for w in words if w) or (response.reason or '').strip()


def _http_error(response):
    text = _errors_text(response)
    if response.status_code == 429:
        text = 'toomanyrequests: %s' % (text or 'too many requests')
    return 'HTTP %d: %s' % (response.status_code, text or 'no reason given')


def _describe_request_error(exc, timeout):
    text = short_reason(exc)
    lowered = str(exc).lower()
    if 'timed out' in lowered or 'timeout' in lowered:
        return 'timed out waiting for the registry (no answer within %s s)' % timeout
    if 'remotedisconnected' in lowered or 'connection aborted' in lowered or 'incompleteread' in lowered:
        return 'the connection broke off in the middle of an answer (unexpected EOF)'
    if 'connection refused' in lowered:
        return 'connection refused'
    return text


def _auth_fields(entry):
    """(username, password, identity token) from a Docker SDK auth entry (its keys vary in case)."""
    entry = dict((str(k).lower(), v) for k, v in (entry or {}).items())
    return entry.get('username'), entry.get('password'), entry.get('identitytoken')


class RegistryClient(object):
    """Asks registries for manifests the way the host's daemon would; safe to share between threads.

    ``registry_config`` is the daemon's ``RegistryConfig`` (from ``GET /info``), ``auth`` a
    ``docker.auth.AuthConfig`` (the target user's Docker config), ``timeout`` seconds per request.
    ``requests`` counts the registry requests made, by method (token requests left out).
    """

    def __init__(self, registry_config=None, auth=None, timeout=60, session=None):
        import requests  # the Docker SDK's own dependency; imported here so a host without it fails in one place
        self._requests = requests
        self.session = session or requests.Session()
        self.registry_config = registry_config or {}
        self.auth = auth
        self.timeout = timeout
        self.requests = {'HEAD': 0, 'GET': 0}
        self._lock = threading.Lock()
        self._tokens = {}       # (base url, repository) -> Authorization header value
        self._documents = {}    # (domain, path, digest) -> (media type, document)
        self._bases = {}        # domain -> the base URL that answered
        self._insecure_domains = {}  # domain -> bool

    # --- where and how --------------------------------------------------------------------------
    def _insecure(self, domain):
        """Whether the daemon treats ``domain`` as an insecure registry (worked out once per registry)."""
        if domain not in self._insecure_domains:
            self._insecure_domains[domain] = self._is_insecure(domain)
        return self._insecure_domains[domain]

    def _is_insecure(self, domain):
        index = (self.registry_config.get('IndexConfigs') or {}).get(domain)
        if index is not None and 'Secure' in index:
            return not index['Secure']
        cidrs = self.registry_config.get('InsecureRegistryCIDRs')
        if cidrs is None:
            cidrs = DEFAULT_INSECURE_CIDRS
        host = domain.rsplit(':', 1)[0] if not domain.endswith(']') else domain
        host = host.strip('[]')
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                addresses = [ipaddress.ip_address(info[4][0].split('%')[0])
                             for info in socket.getaddrinfo(host, None)]
            except (OSError, ValueError):
                addresses = []
        networks = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                continue
        return any(address in network for address in addresses for network in networks
                   if address.version == network.version)

    def _bases_for(self, domain):
        """Base URLs to try, in order: mirrors for Docker Hub, HTTPS, and plain HTTP for insecure registries."""
        known = self._bases.get(domain)
        if known:
            return [known]
        if domain == DOCKER_HUB:
            mirrors = [m.rstrip('/') for m in self.registry_config.get('Mirrors') or []]
            return mirrors + ['https://' + DOCKER_HUB_API]
        bases = ['https://' + domain]
        if self._insecure(domain):
            bases.append('http://' + domain)
        return bases

    def _tls(self, domain, base):
        """(verify, cert) for ``requests``: the daemon's certs.d files, none for insecure registries."""
        if not base.startswith('https://'):
            return True, None
        if domain != DOCKER_HUB and self._insecure(domain):
            return False, None
        directory = os.path.join(CERTS_DIR, domain)
        if not os.path.isdir(directory):
            return True, None
        names = sorted(os.listdir(directory))
        cas = [os.path.join(directory, n) for n in names if n.endswith('.crt')]
        cert = None
        for name in names:
            if name.endswith('.cert') and name[:-5] + '.key' in names:
                cert = (os.path.join(directory, name), os.path.join(directory, name[:-5] + '.key'))
                break
        return (cas[0] if cas else True), cert

    def _credentials(self, domain):
        if self.auth is None:
            return None, None, None
        try:
            entry = self.auth.resolve_authconfig(domain)
        except DockerException as exc:
            raise RegistryError('the credential helper failed: %s' % short_reason(exc))
        return _auth_fields(entry)

    def _token(self, challenge, domain, path, verify, cert):
        """A bearer token for pulling ``path``, as the challenge's realm hands it out."""
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop('realm', None)
        if not realm:
            raise RegistryError('the registry asked for a token without saying where to get it')
        query = {'scope': 'repository:%s:pull' % path}
        if params.get('service'):
            query['service'] = params['service']
        username, password, identity = self._credentials(domain)
        try:
            if identity:
                query.update(grant_type='refresh_token', refresh_token=identity, client_id='patchops.docker')
                response = self.session.post(realm, data=query, timeout=self.timeout, verify=verify, cert=cert)
            else:
                response = self.session.get(realm, params=query, timeout=self.timeout, verify=verify, cert=cert,
                                            auth=(username, password) if username else None)
        except self._requests.RequestException as exc:
            raise RegistryError('token service: %s' % _describe_request_error(exc, self.timeout))
        if response.status_code != 200:
            raise RegistryError('token service %s' % _http_error(response))
        try:
            data = response.json()
        except ValueError:
            raise RegistryError('the token service answered something that is not JSON')
        token = data.get('token') or data.get('access_token')
        if not token:
            raise RegistryError('the token service answered without a token')
        return 'Bearer ' + token

    def _authorization(self, response, domain, path, verify, cert):
        challenge = response.headers.get('WWW-Authenticate') or ''
        scheme = challenge.split(' ', 1)[0].lower()
        if scheme == 'bearer':
            return self._token(challenge, domain, path, verify, cert)
        if scheme == 'basic':
            username, password, _identity = self._credentials(domain)
            if username:
                raw = ('%s:%s' % (username, password or '')).encode('utf-8')
                return 'Basic ' + base64.b64encode(raw).decode('ascii')
        return None

    # --- requests ---------------------------------------------------------------------------------
    def _send(self, method, ref, target):
        """``method`` /v2/<path>/manifests/<target> on the first base that answers; returns the response."""
        domain = ref.domain or DOCKER_HUB
        last_error = None
        for base in self._bases_for(domain):
            verify, cert = self._tls(domain, base)
            url = '%s/v2/%s/manifests/%s' % (base, ref.path, target)
            key = (base, ref.path)
            headers = {'Accept': platforms.ACCEPT}
            try:
                for attempt in (1, 2):
                    if self._tokens.get(key):
                        headers['Authorization'] = self._tokens[key]
                    with self._lock:
                        self.requests[method] = self.requests.get(method, 0) + 1
                    response = self.session.request(method, url, headers=headers, timeout=self.timeout,
                                                    verify=verify, cert=cert, allow_redirects=True)
                    if response.status_code == 401 and attempt == 1:
                        authorization = self._authorization(response, domain, ref.path, verify, cert)
                        if authorization:
                            self._tokens[key] = authorization
                            continue
                    break
            except self._requests.exceptions.SSLError as exc:
                last_error = RegistryError(_describe_request_error(exc, self.timeout))
                continue  # an insecure registry may speak plain HTTP: the next base
            except self._requests.exceptions.Timeout as exc:
                last_error = RegistryError(_describe_request_error(exc, self.timeout))
                if domain == DOCKER_HUB:
                    continue  # a slow mirror: the next one, or Docker Hub itself
                # a registry that does not answer in time would not answer over plain HTTP either
                raise last_error
            except self._requests.RequestException as exc:
                last_error = RegistryError(_describe_request_error(exc, self.timeout))
                continue  # the next mirror, Docker Hub itself, or plain HTTP for an insecure registry
            self._bases[domain] = base
            return response
        raise last_error or RegistryError('no way to reach the registry')

    def head_tag(self, ref):
        """(digest, media type) the registry serves for the tag of ``ref``: one HEAD (a GET when it omits the digest)."""
        response = self._send('HEAD', ref, ref.tag)
        if response.status_code != 200:
            if response.status_code == 404:
                raise RegistryError('HTTP 404: the registry has no tag %s of %s' % (ref.tag, ref.repository),
                                    missing=True)
            raise RegistryError(_http_error(response))
        digest = response.headers.get('Docker-Content-Digest')
        media_type = (response.headers.get('Content-Type') or '').split(';')[0].strip()
        if digest:
            return digest, media_type
        media_type, document, digest = self._get(ref, ref.tag)
        return digest, media_type

    def _get(self, ref, target):
        response = self._send('GET', ref, target)
        if response.status_code != 200:
            raise RegistryError(_http_error(response))
        body = response.content
        digest = response.headers.get('Docker-Content-Digest') or 'sha256:' + hashlib.sha256(body).hexdigest()
        try:
            document = json.loads(body.decode('utf-8'))
        except ValueError:
            raise RegistryError('the registry answered a manifest that is not JSON')
        media_type = (response.headers.get('Content-Type') or '').split(';')[0].strip() or document.get('mediaType')
        return media_type, document, digest

    def document(self, ref, digest):
        """(media type, parsed manifest or index) at ``digest`` in the repository of ``ref``; fetched once per run."""
        key = (ref.domain, ref.path, digest)
        if key not in self._documents:
            media_type, document, _digest = self._get(ref, digest)
            self._documents[key] = (media_type, document)
        return self._documents[key]

    def platform_digest(self, ref, digest, platform):
        """The digest of the manifest a host of ``platform`` pulls through ``digest`` (itself for a single manifest)."""
        media_type, document = self.document(ref, digest)
        if not platforms.is_index(media_type, document):
            return digest
        chosen = platforms.select_manifest(document, platform)
        if chosen is None:
            offered = platforms.platforms_in(document) or ['no platform']
            raise RegistryError('tag %s has no image for %s (it has %s)'
                                % (ref.tag, platforms.format_platform(platform), ', '.join(offered)))
        return chosen

    def image_config(self, ref, manifest_digest):
        """The image config (``{'architecture', 'config': {...}, 'rootfs', ...}``) a manifest names: one blob GET."""
        config_digest = self.config_digest(ref, manifest_digest)
        if not config_digest:
            raise RegistryError('manifest %s names no config' % manifest_digest)
        domain = ref.domain or DOCKER_HUB
        base = self._bases.get(domain) or self._bases_for(domain)[0]
        verify, cert = self._tls(domain, base)
        headers = {}
        if self._tokens.get((base, ref.path)):
            headers['Authorization'] = self._tokens[(base, ref.path)]
        try:
            response = self.session.get('%s/v2/%s/blobs/%s' % (base, ref.path, config_digest), headers=headers,
                                        timeout=self.timeout, verify=verify, cert=cert)
        except self._requests.RequestException as exc:
            raise RegistryError(_describe_request_error(exc, self.timeout))
        if response.status_code != 200:
            raise RegistryError(_http_error(response))
        try:
            return response.json()
        except ValueError:
            raise RegistryError('the image config is not JSON')

    def config_digest(self, ref, manifest_digest):
        _media_type, document = self.document(ref, manifest_digest)
        return (document.get('config') or {}).get('digest')


def lookup_remote_digest(client, ref):
    """HEAD one parsed reference; never raises."""
    reference = str(ref)
    try:
        digest, media_type = client.head_tag(ref)
    except RegistryError as exc:
        return RemoteDigest(reference, None, '%s: %s' % (ref.domain or DOCKER_HUB, redact(str(exc)))[:240],
                            None, exc.missing)
    return RemoteDigest(reference, digest, None, media_type)


def _parse(reference):
    from ansible_collections.patchops.docker.plugins.module_utils.image_ref import parse
    return parse(reference)


def _pool_map(function, items, concurrency):
    workers = max(1, min(int(concurrency), len(items)))
    if workers == 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def lookup_remote_digests(client, references, concurrency=8):
    """Look up each distinct reference once, at most ``concurrency`` at a time.

    Returns a dict: reference -> RemoteDigest.
    """
    distinct = sorted(set(references))
    if not distinct:
        return {}
    results = _pool_map(lambda reference: lookup_remote_digest(client, _parse(reference)), distinct, concurrency)
    return dict((reference, result._replace(reference=reference)) for reference, result in zip(distinct, results))


def as_remote(shared):
    """``{reference: RemoteDigest}`` of normalized ``remote_digests`` (another host's look-ups), as a look-up
    would have answered."""
    return dict((reference, RemoteDigest(reference, digest, None)) for reference, digest in shared.items())


def check_platform(client, ref, remote_digest, known_digests, platform, config_id=None):
    """Did the image for ``platform`` behind the tag move, now that the tag resolves to ``remote_digest``?

    ``known_digests`` are the digests the running image is known by in this repository (its repo
    digests; under the containerd image store also its ID), ``config_id`` its config digest where
    the image ID is one (classic store). Compares this platform's manifest in the tag's index now
    with the one in the index the running image came from; when that one is gone from the
    registry, compares config digests. Never raises.
    """
    text_platform = platforms.format_platform(platform)
    try:
        new = client.platform_digest(ref, remote_digest, platform)
        if new in known_digests:
            return PlatformCheck(False, new, 'only other platforms changed' if new != remote_digest
                                 else 'the tag is now a single-platform manifest of the same image', None)
        gone = []
        for old_digest in sorted(known_digests):
            try:
                old = client.platform_digest(ref, old_digest, platform)
            except RegistryError as exc:
                gone.append(str(exc))
                continue
            if old == new:
                return PlatformCheck(False, new, 'only other platforms changed', None)
            return PlatformCheck(True, new, 'the %s image changed' % text_platform, None)
        if config_id and config_id.startswith('sha256:'):
            if client.config_digest(ref, new) == config_id:
                return PlatformCheck(False, new, 'only other platforms changed', None)
        return PlatformCheck(True, new, 'the %s image changed' % text_platform, None)
    except RegistryError as exc:
        return PlatformCheck(None, None, None, '%s: %s' % (ref.domain or DOCKER_HUB, redact(str(exc)))[:240])


def check_platforms(client, pending, concurrency=8):
    """``check_platform`` for each of ``pending`` ({key: (ref, remote digest, known digests, platform, config id)})."""
    keys = sorted(pending)
    if not keys:
        return {}
    results = _pool_map(lambda key: check_platform(client, *pending[key]), keys, concurrency)
    return dict(zip(keys, results))


def client_for(api, engine, timeout):
    """A RegistryClient that uses the host's settings: the daemon's registry config, the user's Docker config."""
    try:
        auth = docker_auth.load_config()
    except (DockerException, OSError, ValueError):
        auth = None
    return RegistryClient(engine.registry_config if engine is not None else None, auth,
                          min(timeout or REGISTRY_TIMEOUT, REGISTRY_TIMEOUT))
