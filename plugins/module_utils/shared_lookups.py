# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One registry look-up per reference across a fleet: what one host found, the others use.

In the role's one check run per host (``image_age_info`` with ``share_lookups``), every host looks up the
references of its share (:func:`share_of`, a hash of the reference modulo the batch size) that it runs; a batch
whose hosts run the same images is then answered with one look-up per reference and no second run. A reference
whose share fell to a host that does not run it goes to the first host of the play that does
(:func:`plan_owners`: the look-up goes out with that host's credentials and network). The digests found are
handed to every host: a container whose image is known by the shared digest is settled on the controller
(:func:`settle`, :func:`outcome`); any other (a tag that moved, a look-up that failed) is looked at again on its
own host, which then asks the registry only what the shared digest cannot tell.

Pure logic over plain data, shared by the modules and the role's filters.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import zlib

from ansible_collections.patchops.docker.plugins.module_utils.errors import InvalidOption
from ansible_collections.patchops.docker.plugins.module_utils.image_age import (
    REASON_CURRENT,
    REASON_NOT_CHECKED,
    parse_reference,
    summarize,
)
from ansible_collections.patchops.docker.plugins.module_utils.image_ref import InvalidReference, parse

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


def check_share(share):
    """``share_lookups`` as ``{'index': int, 'count': int}``; InvalidOption, one sentence, for one that names no
    share."""
    if not isinstance(share, dict) or sorted(share) != ['count', 'index']:
        raise InvalidOption('share_lookups must be a dict of index and count, not %r.' % (share,))
    values = {}
    for key in ('count', 'index'):
        value = share[key]
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
            raise InvalidOption('share_lookups: %s must be a whole number, not %r.' % (key, value))
        values[key] = int(value)
    if values['count'] < 1:
        raise InvalidOption('share_lookups: count must be 1 or more, not %d.' % values['count'])
    if not 0 <= values['index'] < values['count']:
        raise InvalidOption('share_lookups: index must be from 0 to %d (count minus one), not %d.'
                            % (values['count'] - 1, values['index']))
    return values


def share_index(reference, count):
    """The share (0 to ``count`` - 1) a fully qualified reference falls to: CRC-32 of its text, the same on every
    host and Python."""
    return zlib.crc32(str(reference).encode('utf-8')) % count


def share_of(references, share):
    """The references of ``share`` (``{index, count}``; None: all of them)."""
    if share is None:
        return set(references)
    return set(r for r in references if share_index(r, share['count']) == share['index'])


def found(remote, looked_up):
    """``{reference: digest}`` of the look-ups this run made that answered (errors are not passed on)."""
    return dict((reference, result.digest) for reference, result in remote.items()
                if reference in looked_up and result.digest and not result.error)


def _needs_lookup(entry):
    return entry.get('update_available') is None and entry.get('reason') == REASON_NOT_CHECKED


def plan_owners(listings, known=None):
    """Which host looks up which reference: ``{host: [container names]}``, one container per reference.

    ``listings`` is ``[(host, image_age_info containers)]`` in the play's order; each reference that needs
    the registry goes to the first host that runs it, by the name of one of its containers there (the
    module is then asked about that container only). References in ``known`` (digests some host's share
    already found) are left out.
    """
    owners = {}
    taken = set(normalize(known, 'known'))
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
    that decision, so the host never asks the registry twice. The others stay undecided (``unsettled`` counts
    them, ``unsettled_containers`` names them) and their host asks again about them with ``remote_digests``.
    """
    shared = normalize(remote_digests)
    known = dict(((e.get('image'), e.get('image_id')), e) for e in decided or [] if not _needs_lookup(e))
    containers = []
    unsettled = []
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
                unsettled.append(entry['name'])
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
    settled.update(containers=containers, images=images, summary=summarize(containers), unsettled=len(unsettled),
                   unsettled_containers=unsettled)
    return settled


def _ran(result):
    """``result`` when it is an image_age_info run's result (a skipped task's register is not)."""
    return result if isinstance(result, dict) and isinstance(result.get('containers'), list) else None


def outcome(listing, remote_digests, owned=None, rechecked=None):
    """A host's check as the role reports it, from its image_age_info runs of one play batch.

    ``listing`` is the first run (its own share looked up, or nothing), ``owned`` the run for the references the
    host was picked for (:func:`plan_owners`), ``rechecked`` the run that asked again, with ``remote_digests``,
    about the containers those left undecided; a skipped one is None or a skipped task's result. A second check of
    every container (the role's, with a query) is the answer; one of some containers decides those, and the
    listing settled by the shared digests the rest (:func:`settle`). ``registry_lookups`` counts every run's.
    """
    owned, rechecked = _ran(owned), _ran(rechecked)
    lookups = sum((run or {}).get('registry_lookups') or 0 for run in (listing, owned, rechecked))
    if rechecked is not None and (set(e.get('name') for e in listing.get('containers') or [])
                                  <= set(e.get('name') for e in rechecked['containers'])):
        final = dict(rechecked)
        final.update(recovered=listing.get('recovered') or [], registry_lookups=lookups,
                     unsettled_containers=[e['name'] for e in rechecked['containers'] if _needs_lookup(e)])
        final['unsettled'] = len(final['unsettled_containers'])
        return final
    decided = ((owned or {}).get('containers') or []) + ((rechecked or {}).get('containers') or [])
    final = settle(listing, remote_digests, decided)
    final['registry_lookups'] = lookups
    return final
