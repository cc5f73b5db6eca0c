# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filters with which the role shares registry look-ups across a play batch: ``lookup_owners`` says which
host looks up which reference, ``settle_lookups`` decides a host's containers with the digests the others found.
The logic lives in ``plugins/module_utils/shared_lookups.py``.

Documentation for ansible-doc lives beside this file, one ``<filter>.yml`` per filter.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.shared_lookups import outcome, plan_owners


def lookup_owners(results, known=None):
    """``{host: [container names]}`` from ``{host: image_age_info result}`` (in the play's order); references in
    ``known`` (reference -> digest, already found) are left out."""
    if not isinstance(results, Mapping):
        raise AnsibleFilterError('lookup_owners expects a dict of inventory_hostname to image_age_info result.')
    if known is not None and not isinstance(known, Mapping):
        raise AnsibleFilterError('lookup_owners expects known to be a dict of reference to digest.')
    try:
        return plan_owners([(host, (result or {}).get('containers') or []) for host, result in results.items()
                            if isinstance(result, Mapping)], known)
    except PatchopsError as exc:
        raise AnsibleFilterError(str(exc))


def settle_lookups(result, remote_digests, decided=None, rechecked=None):
    """The host's image_age_info result: ``rechecked`` when that run happened, else ``result`` with the containers
    the shared digests (and ``decided``, the host's own run for the references it was picked for) settle."""
    if not isinstance(result, Mapping) or not isinstance(remote_digests, Mapping):
        raise AnsibleFilterError('settle_lookups expects an image_age_info result and a dict of reference to digest.')
    if isinstance(decided, list):
        decided = {'containers': decided}
    elif decided is not None and not isinstance(decided, Mapping):
        raise AnsibleFilterError('settle_lookups expects decided to be an image_age_info result or its containers list.')
    if rechecked is not None and not isinstance(rechecked, Mapping):
        raise AnsibleFilterError('settle_lookups expects rechecked to be an image_age_info result.')
    try:
        return outcome(dict(result), remote_digests, dict(decided) if decided else None,
                       dict(rechecked) if rechecked else None)
    except PatchopsError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """Registry look-ups shared across a play batch."""

    def filters(self):
        return {'lookup_owners': lookup_owners, 'settle_lookups': settle_lookups}
