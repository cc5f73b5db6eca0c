"""What the registry serves, through its HTTP API: tag digests, manifests, blobs (upload, cross-repository
mount), pointing a tag at a digest, and the requests it was asked (from its access log).
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request

from .errors import SandboxError
from .files import _read
from .loopback import _opener, _registry_request
from .paths import _paths
from .settings import REGISTRY, REGISTRY_ADDR


MANIFEST_ACCEPT = ', '.join([
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.oci.image.index.v1+json',
])


def _split_ref(ref):
    """'127.0.0.1:5115/a/b:tag' -> ('127.0.0.1:5115/a/b', 'tag'); digests keep '@'."""
    if '@' in ref:
        repo, digest = ref.split('@', 1)
        return repo, digest
    slash = ref.rfind('/')
    colon = ref.rfind(':')
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, 'latest'


def _repo_name(ref):
    repo, tag = _split_ref(ref)
    if not repo.startswith(REGISTRY + '/'):
        raise ValueError('not a reference in the sandbox registry %s: %r' % (REGISTRY, ref))
    return repo[len(REGISTRY) + 1:], tag


def registry_digest(ref) -> str | None:
    """The digest the registry serves for ref (a tag under 127.0.0.1:5115), or None."""
    repo, tag = _split_ref(ref)
    if repo.startswith(REGISTRY + '/'):
        repo = repo[len(REGISTRY) + 1:]
    status, headers, _body = _registry_request('HEAD', '/v2/%s/manifests/%s' % (repo, tag),
                                               headers={'Accept': MANIFEST_ACCEPT})
    if status != 200:
        return None
    return {k.lower(): v for k, v in headers.items()}.get('docker-content-digest')


_ACCESS = re.compile(r'"([A-Z]+) (/v2/[^ "?]*)[^ "]* HTTP/[\d.]+"')


def registry_requests(name=None) -> list:
    """Requests the registry has served, oldest first, as 'METHOD /v2/...' strings.

    With name (a repository path such as 'itest/app-1234', no registry host), only the requests
    for that repository. Read from the registry's access log; take len() before and slice after to
    count what one step asked.
    """
    p = _paths()
    out = []
    prefix = None
    if name:
        name = name[len(REGISTRY) + 1:] if name.startswith(REGISTRY + '/') else name
        prefix = '/v2/%s/' % name.strip('/')
    for line in (_read(p.log('registry'), '') or '').splitlines():
        m = _ACCESS.search(line)
        if m and (prefix is None or m.group(2).startswith(prefix)):
            out.append('%s %s' % (m.group(1), m.group(2)))
    return out


def _registry_call(method, path, data=None, headers=None, expect=(200,)):
    """One request to the sandbox registry's HTTP API (stdlib only); (status, headers with lower-case names, body)."""
    url = path if path.startswith('http') else 'http://%s%s' % (REGISTRY_ADDR, path)
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=60) as resp:
            status, hdrs, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, body = exc.code, exc.headers, exc.read()
    hdrs = {k.lower(): v for k, v in (hdrs or {}).items()}
    if status not in expect:
        raise SandboxError('registry: %s %s answered %s: %s'
                           % (method, path.split('?')[0], status, body.decode('utf-8', 'replace')[:500]))
    return status, hdrs, body


def _sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def _canonical(doc):
    return json.dumps(doc, separators=(',', ':'), sort_keys=False).encode()


def registry_manifest(ref) -> dict | None:
    """What the registry serves for a tag or digest of the sandbox registry: {'digest', 'media_type', 'size',
    'raw' (the exact bytes), 'manifest' (parsed)}, or None when it has none."""
    name, tag = _repo_name(ref)
    status, hdrs, body = _registry_call('GET', '/v2/%s/manifests/%s' % (name, tag),
                                        headers={'Accept': MANIFEST_ACCEPT}, expect=(200, 404))
    if status == 404:
        return None
    doc = json.loads(body)
    return {'digest': hdrs.get('docker-content-digest') or _sha256(body),
            'media_type': doc.get('mediaType') or hdrs.get('content-type'), 'size': len(body), 'raw': body,
            'manifest': doc}


def registry_tag(ref, digest) -> str:
    """Point the tag ref at the manifest (or index) digest of the same repository, with the exact bytes the registry
    holds for that digest: e.g. an index tag becomes the plain manifest of one of its platforms. Returns digest."""
    name, tag = _repo_name(ref)
    _status, hdrs, raw = _registry_call('GET', '/v2/%s/manifests/%s' % (name, digest),
                                        headers={'Accept': MANIFEST_ACCEPT})
    media_type = json.loads(raw).get('mediaType') or hdrs.get('content-type')
    return _manifest_put(name, tag, raw, media_type)


def _blob(name, digest):
    return _registry_call('GET', '/v2/%s/blobs/%s' % (name, digest))[2]


def _blob_mount(name, digest, source):
    """Make a blob of repository source part of name (a cross-repository mount: no data moves)."""
    if _registry_call('HEAD', '/v2/%s/blobs/%s' % (name, digest), expect=(200, 404))[0] == 200:
        return
    status, hdrs, _body = _registry_call(
        'POST', '/v2/%s/blobs/uploads/?mount=%s&from=%s' % (name, digest, source), data=b'', expect=(201, 202))
    if status == 202:  # not mounted (the registry wants the data): upload it
        _blob_upload(name, _blob(source, digest), location=hdrs.get('location'))


def _blob_upload(name, data, location=None):
    digest = _sha256(data)
    if _registry_call('HEAD', '/v2/%s/blobs/%s' % (name, digest), expect=(200, 404))[0] == 200:
        return digest
    if not location:
        location = _registry_call('POST', '/v2/%s/blobs/uploads/' % name, data=b'', expect=(202,))[1]['location']
    if location.startswith('/'):
        location = 'http://%s%s' % (REGISTRY_ADDR, location)
    _registry_call('PUT', '%s%sdigest=%s' % (location, '&' if '?' in location else '?', digest), data=data,
                   headers={'Content-Type': 'application/octet-stream'}, expect=(201,))
    return digest


def _manifest_put(name, reference, raw, media_type):
    _s, hdrs, _b = _registry_call('PUT', '/v2/%s/manifests/%s' % (name, reference), data=raw,
                                  headers={'Content-Type': media_type}, expect=(201,))
    return hdrs.get('docker-content-digest') or _sha256(raw)
