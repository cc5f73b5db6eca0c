# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Registry look-ups: the digest a registry serves for a tag, right now.

The look-ups go through the Docker daemon (``GET /distribution/{name}/json``)
so that they use the daemon's network and the target user's registry
credentials. Each distinct reference is looked up once; look-ups run in a
bounded thread pool; one failing registry only marks its own references.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.patchops.docker.plugins.module_utils.client import (
    DockerException,
    RequestException,
    short_reason,
)

RemoteDigest = namedtuple('RemoteDigest', ['reference', 'digest', 'error'])

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


def lookup_remote_digest(api, reference):
    """Look up one fully qualified reference; never raises."""
    try:
        data = api.inspect_distribution(reference)
    except (DockerException, RequestException) as exc:
        return RemoteDigest(reference, None, describe_registry_error(exc, registry_of(reference),
                                                                     getattr(api, 'timeout', None)))
    digest = (data.get('Descriptor') or {}).get('digest')
    if not digest:
        return RemoteDigest(reference, None, 'the registry answered without a digest')
    return RemoteDigest(reference, digest, None)


def lookup_remote_digests(api, references, concurrency=8):
    """Look up each distinct reference once, at most ``concurrency`` at a time.

    Returns a dict: reference -> RemoteDigest.
    """
    distinct = sorted(set(references))
    if not distinct:
        return {}
    workers = max(1, min(int(concurrency), len(distinct)))
    if workers == 1:
        return dict((ref, lookup_remote_digest(api, ref)) for ref in distinct)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda ref: lookup_remote_digest(api, ref), distinct))
    return dict((result.reference, result) for result in results)
