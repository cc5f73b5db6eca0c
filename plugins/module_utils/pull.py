# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pulling images: each distinct reference once, several at a time, before any container stops."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.patchops.docker.plugins.module_utils.client import DockerException, RequestException, pull_progress
from ansible_collections.patchops.docker.plugins.module_utils.registry import describe_registry_error, registry_of

PULL_POLICIES = ('always', 'missing', 'never')

PullResult = namedtuple('PullResult', ['reference', 'image_id', 'pulled', 'error'])


def local_image(api, reference):
    """The image's inspect, or None when it is not on the host (or cannot be looked at)."""
    try:
        return api.inspect_image(reference)
    except (DockerException, RequestException):
        return None


def local_image_id(api, reference):
    return (local_image(api, reference) or {}).get('Id')


def pull_one(api, ref, policy):
    """Make ``ref`` (a parsed ImageReference) present locally as the policy says; never raises."""
    reference = str(ref)
    before = local_image_id(api, reference)
    if policy == 'never' or (policy == 'missing' and before):
        if before is None:
            return PullResult(reference, None, False, 'the image is not on the host and pull is %s' % policy)
        return PullResult(reference, before, False, None)
    registry = registry_of(reference)
    timeout = getattr(api, 'timeout', None)
    try:
        for line in pull_progress(api, ref.name, ref.tag, timeout):
            if isinstance(line, dict) and line.get('error'):
                return PullResult(reference, before, False,
                                  'pull failed: %s' % describe_registry_error(_StreamError(line), registry))
    except (DockerException, RequestException) as exc:
        return PullResult(reference, before, False, 'pull failed: %s' % describe_registry_error(exc, registry, timeout))
    after = local_image_id(api, reference)
    if after is None:
        return PullResult(reference, before, False, 'pull failed: the image is not on the host afterwards')
    return PullResult(reference, after, after != before, None)


class _StreamError(Exception):
    """An error line in a pull's progress stream."""

    def __init__(self, line):
        super(_StreamError, self).__init__(line.get('error'))
        self.explanation = (line.get('errorDetail') or {}).get('message') or line.get('error')


def pull_all(api, refs, policy, concurrency=4):
    """Pull each distinct reference once; returns {str(ref): PullResult}."""
    distinct = dict((str(ref), ref) for ref in refs)
    if not distinct:
        return {}
    workers = max(1, min(concurrency, len(distinct)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda ref: pull_one(api, ref, policy), distinct.values()))
    return dict((result.reference, result) for result in results)
