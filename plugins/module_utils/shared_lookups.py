# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One registry look-up per reference across a fleet: what one host found, the others use.

The role lists every host's containers without asking a registry (``image_age_info`` with
``check_registry: false``), picks for each reference that needs a look-up the first host of the play
that runs it (:func:`plan_owners`: the look-up goes out with that host's credentials and network),
lets those hosts look their references up, and hands the digests to every host as ``remote_digests``.
A container whose image is known by the shared digest is settled on the controller
(:func:`settle`); any other (a tag that moved, a look-up that failed) is looked at again on its own
host, which then asks the registry only what the shared digest cannot tell.

Pure logic over plain data, shared by the modules and the role's filters.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.patchops.docker.plugins.module_utils.errors import InvalidOption
from ansible_collections.patchops.docker.plugins.module_utils.image_age import (
    REASON_CURRENT,
    REASON_NOT_CHECKED,
    parse_reference,
    summarize,
)
from ansible_collections.patchops.docker.plugins.module_utils.image_ref import InvalidReference, parse
from ansible_collections.patchops.docker.plugins.module_utils.registry import RemoteDigest

_DIGEST = re.compile(r'^sha256:[0-9a-f]{64}$')


def normalize(remote_digests, option='remote_digests'):
    """``{reference: digest}`` with every reference fully qualified (``app:1`` is ``docker.io/library/app:1``).

    Raises InvalidOption, one sentence, for a reference that is no tag or a value that is no digest.
    """
    result = {}
    for reference, digest in sorted((remote_digests or {}).items()):
        try:
            ref = parse(str(reference))
        except InvalidReference as exc:
            raise InvalidOption('%s: %s is not an image reference (%s).' % (option, reference, exc))
        if ref.digest:
            raise InvalidOption('%s: %s is pinned by digest; only tags are looked up.' % (option, reference))
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise InvalidOption('%s: the value for %s must be a sha256 digest (sha256: and 64 hex digits).'
                                % (option, reference))
        result[str(ref)] = digest
    return result


def as_remote(shared):
    """``{reference: RemoteDigest}`` of normalized ``remote_digests``, as a look-up would have answered."""
    return dict((reference, RemoteDigest(reference, digest, None)) for reference, digest in shared.items())


def found(remote, looked_up):
    """``{reference: digest}`` of the look-ups this run made that answered (errors are not passed on)."""
    return dict((reference, result.digest) for reference, result in remote.items()
                if reference in looked_up and result.digest and not result.error)


def _needs_lookup(entry):
    return entry.get('update_available') is None and entry.get('reason') == REASON_NOT_CHECKED


def plan_owners(listings):
    """Which host looks up which reference: ``{host: [container names]}``, one container per reference.

    ``listings`` is ``[(host, image_age_info containers)]`` in the play's order; each reference that needs
    the registry goes to the first host that runs it, by the name of one of its containers there (the
    module is then asked about that container only).
    """
    owners = {}
    taken = set()
    for host, containers in listings:
        for entry in containers or []:
            if not _needs_lookup(entry):
                continue
            ref = parse_reference(entry.get('image'), entry.get('image_id'))
            if ref is None or str(ref) in taken:
                continue
            taken.add(str(ref))
            owners.setdefault(host, []).append(entry['name'])
    return owners


_DECISION = ('update_available', 'reason', 'remote_digest', 'error')


def settle(result, remote_digests, decided=None):
    """The ``image_age_info`` result of a listing, with every container the shared digests settle decided.

    A container waiting for the registry whose running image is known by its tag's shared digest runs what
    the registry serves: not an update, as the module itself would say. ``decided`` are entries this host's
    own look-up run decided (the references it was picked for): a container on the same tag and image takes
    that decision, so the host never asks the registry twice. The others stay undecided (``unsettled``
    counts them) and their host asks again with ``remote_digests``.
    """
    shared = normalize(remote_digests)
    known = dict(((e.get('image'), e.get('image_id')), e) for e in decided or [] if not _needs_lookup(e))
    containers = []
    unsettled = 0
    for entry in result.get('containers') or []:
        entry = dict(entry)
        if _needs_lookup(entry):
            ref = parse_reference(entry.get('image'), entry.get('image_id'))
            digest = shared.get(str(ref)) if ref is not None else None
            same = known.get((entry.get('image'), entry.get('image_id')))
            if same is not None:
                entry.update((key, same.get(key)) for key in _DECISION)
            elif digest is not None and digest in (entry.get('image_digests') or []):
                entry.update(update_available=False, reason=REASON_CURRENT % ref.tag, remote_digest=digest)
            else:
                unsettled += 1
        containers.append(entry)
    by_name = dict((entry['name'], entry) for entry in containers)
    images = []
    for item in result.get('images') or []:
        item = dict(item)
        entries = [by_name[name] for name in item.get('containers') or [] if name in by_name]
        if entries:
            first = next((e for e in entries if e['update_available']), entries[0])
            item.update(update_available=first['update_available'], reason=first['reason'],
                        remote_digest=first['remote_digest'])
        images.append(item)
    settled = dict(result)
    settled.update(containers=containers, images=images, summary=summarize(containers), unsettled=unsettled)
    return settled
