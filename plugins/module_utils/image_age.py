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
# The label Podman puts on a container that a systemd unit runs (``podman generate systemd --new``, Quadlet).
LABEL_SYSTEMD_UNIT = 'PODMAN_SYSTEMD_UNIT'

REASON_PINNED = 'pinned by digest'
REASON_IMAGE_ID = 'created from an image ID, no tag to follow'
REASON_BUILT_LOCALLY = 'image built locally'
REASON_LOCAL_TAG_NEWER = 'running image is older than local tag'
REASON_NOT_CHECKED = 'registry not checked'
REASON_NEWER_IN_REGISTRY = 'registry has a newer image for tag %s'
REASON_CURRENT = 'running image matches the registry for tag %s'
REASON_OTHER_PLATFORMS = 'tag %s moved for other platforms only; the %s image is unchanged'
REASON_IMAGE_GONE = 'the image it runs is no longer in the image store, and tag %s names no other image here'
REASON_REGISTRY_ERROR = 'registry error: %s'
REASON_UNUSED = 'no container uses this image'

_LOOPBACK_PREFIXES = ('127.', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.', 'localhost')


def systemd_unit(labels):
    """The systemd unit that runs a Podman container (its ``PODMAN_SYSTEMD_UNIT`` label), or None."""
    return (labels or {}).get(LABEL_SYSTEMD_UNIT) or None


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


def known_digests(image, ref, running_id):
    """The digests the running image is known by in the repository of ``ref``.

    Its repo digests (what it was pulled or pushed as: the index digest for a multi-platform
    tag) and its ID: under the containerd image store the ID is that digest too, and when the
    store no longer holds the image (its tag moved on) the ID is all that is left. Under the
    classic store the ID is a config digest, which never equals a manifest digest.
    """
    digests = set()
    for repo_digest in (image or {}).get('repo_digests') or []:
        try:
            candidate = parse(repo_digest, default_tag=False)
        except InvalidReference:
            continue
        if candidate.digest and same_repository(candidate, ref):
            digests.add(candidate.digest)
    if running_id and running_id.startswith('sha256:'):
        digests.add(running_id)
    return digests


def has_digest(image, ref, digest, running_id=None):
    """True when the running image is known by ``digest`` in the repository of ``ref``."""
    return digest in known_digests(image, ref, running_id)


def needs_registry(ref, image):
    """Whether the registry must be asked about ``ref`` (a parsed reference or None).

    ``image`` is the running image's record, or None when the store no longer has it (the
    containerd image store drops an image whose tag moved on): then the registry still tells.
    """
    if ref is None or ref.digest:
        return False
    return not built_here(image)


def built_here(image):
    """True for an image built on the host: no repo digest (classic store), built by image_rebuild, or a Podman build."""
    if image is None:
        return False
    return not image.get('repo_digests') or LABEL_BUILD_CONTEXT in (image.get('labels') or {}) \
        or bool(image.get('podman_build'))


# Podman names an image that came from no registry ``localhost/<name>`` (podman build, commit, import).
PODMAN_LOCAL_REGISTRY = 'localhost'


def podman_build(image):
    """True for an image Podman built on the host.

    Podman gives every image a repo digest, its own builds too, so the digest cannot tell; but it records
    the image a build started from as the new image's parent (a pulled image has none), and it names images
    that came from no registry under ``localhost/``.
    """
    if image is None:
        return False
    if image.get('parent'):
        return True
    for name in list(image.get('repo_tags') or []) + list(image.get('repo_digests') or []):
        if name.split('/', 1)[0] == PODMAN_LOCAL_REGISTRY and '/' in name:
            return True
    return False


def mark_podman_builds(images):
    """Mark the image records (``inventory`` style) Podman built on the host: they are never looked up."""
    for image in images.values():
        if image is not None and podman_build(image):
            image['podman_build'] = True
    return images


def record_of_inspect(inspect, podman=False):
    """The ``inventory`` style record of an image inspect, as much as :func:`built_here` needs."""
    if inspect is None:
        return None
    record = dict(repo_tags=inspect.get('RepoTags') or [], repo_digests=inspect.get('RepoDigests') or [],
                  labels=(inspect.get('Config') or {}).get('Labels') or {}, parent=inspect.get('Parent') or None)
    if podman and podman_build(record):
        record['podman_build'] = True
    return record


def plan_lookups(records, inventory_images):
    """The distinct fully qualified references worth a registry look-up."""
    refs = set()
    for record in records:
        ref = parse_reference(record['reference'], record['image_id'])
        image = inventory_images.get(record['image_id'])
        if ref is not None and needs_registry(ref, image):
            refs.add(str(ref))
    return refs


def plan_platform_checks(records, inventory_images, remote_digests, platform_of, ids_are_configs):
    """The containers whose tag now resolves to a digest their image is not known by.

    For those only, the registry is asked which image the tag holds for their platform.
    Returns ``{(reference, image id): (ref, remote digest, known digests, platform, config id)}``;
    ``platform_of(image_id)`` gives the platform of a running image; ``ids_are_configs`` says that
    image IDs are config digests (the classic image store), so a config digest can settle it.
    """
    pending = {}
    for record in records:
        ref = parse_reference(record['reference'], record['image_id'])
        if ref is None or ref.digest:
            continue
        remote = remote_digests.get(str(ref))
        image = inventory_images.get(record['image_id'])
        if remote is None or remote.error or not needs_registry(ref, image):
            continue
        known = known_digests(image, ref, record['image_id'])
        if remote.digest in known:
            continue
        key = (str(ref), record['image_id'])
        if key not in pending:
            config_id = record['image_id'] if image is not None and ids_are_configs else None
            if config_id:
                known.discard(config_id)  # a config digest names no manifest: asking for one is a wasted GET
            pending[key] = (ref, remote.digest, frozenset(known), platform_of(record['image_id']), config_id)
    return pending


def classify(ref, image, running_id, local_tag_id, remote, check_registry, platform_check=None, platform=None,
             unlisted_is_local=False):
    """Decide ``(update_available, reason, remote_digest, error)`` for one container.

    ``ref`` is the parsed reference (None: created from an image ID), ``image``
    the running image's record (None: no longer in the store), ``local_tag_id``
    the image the tag names locally now, ``remote`` the registry answer for the
    tag (or None), ``platform_check`` what the registry's index holds for the
    container's ``platform`` (text) when the tag's digest is not one the image is known by.
    ``unlisted_is_local``: a tag its registry does not have is a local build (the containerd image
    store gives every image a repo digest, so the image alone cannot say that it was never pushed).
    """
    if ref is None:
        return False, REASON_IMAGE_ID, None, None
    if ref.digest:
        return False, REASON_PINNED, None, None
    remote_digest = remote.digest if remote is not None else None
    if local_tag_id and local_tag_id != running_id:
        if image is None and platform_check is not None and platform_check.changed is False:
            # containerd image store: a pull of a tag that moved for other platforms only gave the
            # same image a new ID and took the old ID out of the store
            return False, REASON_OTHER_PLATFORMS % (ref.tag, platform), remote_digest, None
        return True, REASON_LOCAL_TAG_NEWER, remote_digest, None
    if built_here(image):
        return False, REASON_BUILT_LOCALLY, None, None
    if not check_registry or remote is None:
        if image is None:
            return None, REASON_IMAGE_GONE % ref.tag, None, None
        return None, REASON_NOT_CHECKED, None, None
    if remote.error:
        if unlisted_is_local and remote.missing and image is not None:
            return False, REASON_BUILT_LOCALLY, None, None
        return None, REASON_REGISTRY_ERROR % remote.error, None, remote.error
    if has_digest(image, ref, remote.digest, running_id):
        return False, REASON_CURRENT % ref.tag, remote.digest, None
    if platform_check is not None:
        if platform_check.error:
            return None, REASON_REGISTRY_ERROR % platform_check.error, remote.digest, platform_check.error
        if platform_check.changed is False:
            return False, REASON_OTHER_PLATFORMS % (ref.tag, platform), remote.digest, None
    return True, REASON_NEWER_IN_REGISTRY % ref.tag, remote.digest, None


def assess_container(record, image, local_tags, remote_digests, now, max_age_days, max_age_days_exposed,
                     check_registry=True, platform_checks=None, platform=None, unlisted_is_local=False):
    """The report entry for one container; ``platform`` is its image's, as text (``linux/amd64``)."""
    ref = parse_reference(record['reference'], record['image_id'])
    key = str(ref) if ref is not None else None
    local_tag_id = local_tags.get(key) if (ref is not None and not ref.digest) else None
    platform_check = (platform_checks or {}).get((key, record['image_id']))
    update, reason, remote_digest, error = classify(
        ref, image, record['image_id'], local_tag_id, remote_digests.get(key), check_registry, platform_check,
        platform, unlisted_is_local)
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
        platform=platform,
        image_created=iso8601(created) if created else None,
        image_age_days=days,
        remote_digest=remote_digest,
        # what a shared remote digest is compared with (shared_lookups.settle)
        image_digests=sorted(known_digests(image, ref, record['image_id'])) if ref is not None and not ref.digest
        else [],
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
        systemd_unit=systemd_unit(labels),
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
