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
_DIAL_ERROR = re.compile(r'dial tcp ([^\s:]+(?::\d+)?): .*?([a-z][a-z ]+)$')


def redact(text):
    """Remove user:password@ from any URL in ``text``."""
    return _CREDENTIALS_IN_URL.sub(r'\1***@', text)


def describe_registry_error(exc):
    """One short clause for a failed look-up, without credentials.

    >>> "dial tcp 127.0.0.1:5115: connect: connection refused" -> "127.0.0.1:5115: connection refused"
    """
    explanation = getattr(exc, 'explanation', None)
    status = getattr(getattr(exc, 'response', None), 'status_code', None)
    if explanation:
        text = explanation if isinstance(explanation, str) else str(explanation)
    elif 'timed out' in str(exc).lower():
        text = 'timed out waiting for the registry'
    else:
        text = short_reason(exc)
    text = redact(' '.join(text.split()))
    dial = _DIAL_ERROR.search(text)
    if dial:
        text = '%s: %s' % (dial.group(1), dial.group(2).strip())
    elif status and str(status) not in text:
        text = 'HTTP %s: %s' % (status, text)
    return text[:240]


def lookup_remote_digest(api, reference):
    """Look up one fully qualified reference; never raises."""
    try:
        data = api.inspect_distribution(reference)
    except (DockerException, RequestException) as exc:
        return RemoteDigest(reference, None, describe_registry_error(exc))
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
