# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How old is the image behind each container, and is a newer one waiting?

Pure logic over plain data: container records and image records from
``inventory``, remote digests from ``registry``. Nothing here talks to a
daemon, so unit tests pin every rule with small literal fixtures.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.patchops.docker.plugins.module_utils.image_ref import (
    InvalidReference,
    is_image_id,
    parse,
    same_repository,
)

SECONDS_PER_DAY = 86400.0

LABEL_ENABLE = 'patchops.docker.enable'
LABEL_BUILD_CONTEXT = 'patchops.docker.build-context'
LABEL_COMPOSE_PROJECT = 'com.docker.compose.project'
LABEL_COMPOSE_SERVICE = 'com.docker.compose.service'

REASON_PINNED = 'pinned by digest'
REASON_IMAGE_ID = 'created from an image ID, no tag to follow'
REASON_BUILT_LOCALLY = 'image built locally'
REASON_LOCAL_TAG_NEWER = 'running image is older than local tag'
REASON_NOT_CHECKED = 'registry not checked'
REASON_NEWER_IN_REGISTRY = 'registry has a newer image for tag %s'
REASON_CURRENT = 'running image matches the registry for tag %s'
REASON_REGISTRY_ERROR = 'registry error: %s'
REASON_UNUSED = 'no container uses this image'

_LOOPBACK_PREFIXES = ('127.', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.', 'localhost')


def iso8601(epoch):
    """ISO 8601 UTC with second precision: ``2026-05-12T10:00:00Z``."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def age_days(created_epoch, now):
    """Age in days, two decimals; never negative (clock skew)."""
    return round(max(0.0, now - float(created_epoch or 0)) / SECONDS_PER_DAY, 2)


def is_loopback(host_ip):
    return any((host_ip or '').startswith(prefix) for prefix in _LOOPBACK_PREFIXES)


def is_exposed(record):
    """True when the container is reachable from outside the host.

    That is host networking, or any port published on an address other than
    loopback (an empty address or 0.0.0.0/:: means every address).
    """
    if record.get('network_mode') == 'host':
        return True
    for port in record.get('ports') or []:
        if port.get('PublicPort') and not is_loopback(port.get('IP')):
            return True
    for bindings in (record.get('port_bindings') or {}).values():
        for binding in bindings or []:
            if not is_loopback(binding.get('HostIp')):
                return True
    return False


def parse_reference(reference, image_id):
    """The parsed reference a container was created from, or None for an image ID."""
    if not reference or is_image_id(reference):
        return None
    bare_id = (image_id or '').split(':')[-1]
    if ':' not in reference and len(reference) >= 4 and bare_id.startswith(reference):
        return None
    try:
        return parse(reference)
    except InvalidReference:
        return None


def has_digest(image, ref, digest):
    """True when the local image carries ``digest`` for the repository of ``ref``."""
    for repo_digest in image.get('repo_digests') or []:
        try:
            candidate = parse(repo_digest, default_tag=False)
        except InvalidReference:
            continue
        if candidate.digest == digest and same_repository(candidate, ref):
            return True
    return False


def needs_registry(ref, image):
    """Whether the registry must be asked about ``ref`` (a parsed reference or None)."""
    if ref is None or ref.digest:
        return False
    if image is None or not image.get('repo_digests'):
        return False  # built locally: the registry cannot know it
    return True


def plan_lookups(records, inventory_images):
    """The distinct fully qualified references worth a registry look-up."""
    refs = set()
    for record in records:
        ref = parse_reference(record['reference'], record['image_id'])
        image = inventory_images.get(record['image_id'])
        if ref is not None and needs_registry(ref, image):
            refs.add(str(ref))
    return refs


def classify(ref, image, running_id, local_tag_id, remote, check_registry):
    """Decide ``(update_available, reason, remote_digest, error)`` for one container.

    ``ref`` is the parsed reference (None: created from an image ID), ``image``
    the running image's record, ``local_tag_id`` the image the tag names
    locally now, ``remote`` the registry answer for the tag (or None).
    """
    if ref is None:
        return False, REASON_IMAGE_ID, None, None
    if ref.digest:
        return False, REASON_PINNED, None, None
    remote_digest = remote.digest if remote is not None else None
    if local_tag_id and local_tag_id != running_id:
        return True, REASON_LOCAL_TAG_NEWER, remote_digest, None
    if image is None or not image.get('repo_digests'):
        return False, REASON_BUILT_LOCALLY, None, None
    if not check_registry or remote is None:
        return None, REASON_NOT_CHECKED, None, None
    if remote.error:
        return None, REASON_REGISTRY_ERROR % remote.error, None, remote.error
    if has_digest(image, ref, remote.digest):
        return False, REASON_CURRENT % ref.tag, remote.digest, None
    return True, REASON_NEWER_IN_REGISTRY % ref.tag, remote.digest, None


def assess_container(record, image, local_tags, remote_digests, now, max_age_days, max_age_days_exposed,
                     check_registry=True):
    """The report entry for one container."""
    ref = parse_reference(record['reference'], record['image_id'])
    key = str(ref) if ref is not None else None
    local_tag_id = local_tags.get(key) if (ref is not None and not ref.digest) else None
    update, reason, remote_digest, error = classify(
        ref, image, record['image_id'], local_tag_id, remote_digests.get(key), check_registry)
    created = (image or {}).get('created') or 0
    exposed = is_exposed(record)
    days = age_days(created, now) if created else None
    limit = max_age_days_exposed if exposed else max_age_days
    labels = dict(record.get('labels') or {})
    image_labels = (image or {}).get('labels') or {}
    return dict(
        name=record['name'],
        id=record['id'],
        state=record['state'],
        image=record['reference'],
        image_id=record['image_id'],
        image_created=iso8601(created) if created else None,
        image_age_days=days,
        remote_digest=remote_digest,
        update_available=update,
        reason=reason,
        error=error,
        exposed=exposed,
        max_age_days=limit,
        stale=bool(days is not None and days > limit),
        labels=labels,
        compose_project=labels.get(LABEL_COMPOSE_PROJECT),
        compose_service=labels.get(LABEL_COMPOSE_SERVICE),
        build_context=labels.get(LABEL_BUILD_CONTEXT) or image_labels.get(LABEL_BUILD_CONTEXT),
        excluded=str(labels.get(LABEL_ENABLE, '')).strip().lower() == 'false',
    )


def summarize_images(containers, inventory_images, local_tags, now, max_age_days, include_unused):
    """One entry per distinct reference in use, plus unused local images when asked."""
    by_ref = {}
    for entry in containers:
        ref = parse_reference(entry['image'], entry['image_id'])
        key = str(ref) if ref is not None else entry['image_id']
        item = by_ref.get(key)
        if item is None:
            local_id = local_tags.get(key) if ref is not None and not ref.digest else None
            item = by_ref[key] = dict(
                reference=key,
                repository=ref.repository if ref is not None else None,
                tag=ref.tag if ref is not None else None,
                digest=ref.digest if ref is not None else None,
                local_image_id=local_id or (entry['image_id'] if ref is None or ref.digest else None),
                remote_digest=entry['remote_digest'],
                update_available=entry['update_available'],
                reason=entry['reason'],
                in_use=True,
                containers=[],
            )
        elif entry['update_available'] and not item['update_available']:
            # Two containers on one tag can differ: one may run an older image.
            item['update_available'] = True
            item['reason'] = entry['reason']
        item['containers'].append(entry['name'])
    items = sorted(by_ref.values(), key=lambda item: item['reference'])
    if include_unused:
        used = set(entry['image_id'] for entry in containers)
        for image in sorted(inventory_images.values(), key=lambda image: image['id']):
            if image['id'] in used:
                continue
            days = age_days(image['created'], now)
            for reference in image['repo_tags'] or [image['id']]:
                items.append(dict(
                    reference=reference,
                    repository=None,
                    tag=None,
                    digest=None,
                    local_image_id=image['id'],
                    image_created=iso8601(image['created']),
                    image_age_days=days,
                    stale=days > max_age_days,
                    remote_digest=None,
                    update_available=None,
                    reason=REASON_UNUSED,
                    in_use=False,
                    containers=[],
                ))
    return items


def summarize(containers):
    """The counts operators read first."""
    ages = [entry['image_age_days'] for entry in containers if entry['image_age_days'] is not None]
    return dict(
        containers=len(containers),
        updates_available=sum(1 for entry in containers if entry['update_available'] is True),
        stale=sum(1 for entry in containers if entry['stale']),
        unknown=sum(1 for entry in containers if entry['update_available'] is None),
        errors=sum(1 for entry in containers if entry['error']),
        oldest_image_age_days=max(ages) if ages else None,
    )
