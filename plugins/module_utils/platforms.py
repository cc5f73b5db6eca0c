# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Platforms (``linux/amd64``, ``linux/arm64/v8``) and how a multi-platform tag is resolved for one.

Pure logic, no daemon: which entry of an image index (OCI) or manifest list (Docker) a
host of a given platform pulls. The rules follow containerd's platform matching, which
both Docker image stores use: OS and architecture must be equal after normalisation
(``x86_64`` is ``amd64``, ``aarch64`` is ``arm64``); for ``arm64`` an empty variant means
``v8``; for ``arm`` an entry of a lower variant is used when no exact one exists, the
highest first. Attestation manifests (platform ``unknown/unknown``) are never chosen.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple

Platform = namedtuple('Platform', ['os', 'architecture', 'variant'])

MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MEDIA_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MEDIA_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MEDIA_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)
# What a look-up accepts, in the order a registry should prefer them.
ACCEPT = ', '.join(INDEX_TYPES + MANIFEST_TYPES)

_ARCH_ALIASES = {
    'x86_64': 'amd64', 'x86-64': 'amd64', 'amd64': 'amd64',
    'aarch64': 'arm64', 'arm64': 'arm64',
    'i386': '386', 'i486': '386', 'i586': '386', 'i686': '386', '386': '386',
    'armhf': 'arm', 'armel': 'arm', 'arm': 'arm',
}
_ATTESTATION_ANNOTATION = 'vnd.docker.reference.type'


def normalize(os_name, architecture, variant=None):
    """The canonical Platform, as containerd's ``platforms.Normalize`` writes it."""
    os_name = (os_name or 'linux').lower()
    arch = (architecture or '').lower()
    variant = (variant or '').lower() or None
    if arch.startswith('armv') and arch[4:].rstrip('l').isdigit():  # armv7l -> arm/v7
        variant = 'v' + arch[4:].rstrip('l')
        arch = 'arm'
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch == 'arm64' and variant in (None, '8', 'v8'):
        variant = 'v8'
    elif arch == 'arm':
        if variant in (None, '7', 'v7'):
            variant = 'v7'
        elif variant.isdigit():
            variant = 'v' + variant
    elif arch == 'amd64' and variant == 'v1':
        variant = None
    return Platform(os_name, arch, variant)


def parse(text):
    """``'linux/arm64/v8'`` -> Platform; raises ValueError for anything else."""
    parts = (text or '').strip().split('/')
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError('%r is not a platform of the form os/architecture[/variant]' % text)
    return normalize(*parts)


def format_platform(platform):
    """``Platform('linux', 'arm64', 'v8')`` -> ``'linux/arm64/v8'``."""
    return '/'.join(part for part in platform if part)


def of_image(image_inspect, fallback=None):
    """The platform an image inspect says it is for, or ``fallback`` when it says nothing."""
    image_inspect = image_inspect or {}
    if not image_inspect.get('Architecture'):
        return fallback
    return normalize(image_inspect.get('Os'), image_inspect.get('Architecture'), image_inspect.get('Variant'))


def of_daemon(info):
    """The platform a daemon pulls for by default, from ``GET /info``."""
    return normalize(info.get('OSType') or 'linux', info.get('Architecture') or 'amd64')


def is_index(media_type, document=None):
    """True for an OCI image index or a Docker manifest list (by media type, else by shape)."""
    if media_type in INDEX_TYPES:
        return True
    if media_type in MANIFEST_TYPES:
        return False
    document = document or {}
    return document.get('mediaType') in INDEX_TYPES or ('manifests' in document and 'config' not in document)


def _is_attestation(descriptor):
    annotations = descriptor.get('annotations') or {}
    return _ATTESTATION_ANNOTATION in annotations


def _entry_platform(descriptor):
    platform = descriptor.get('platform') or {}
    if not platform.get('architecture') or platform.get('os') == 'unknown':
        return None
    return normalize(platform.get('os'), platform.get('architecture'), platform.get('variant'))


def _variant_number(variant):
    try:
        return int((variant or 'v0').lstrip('v'))
    except ValueError:
        return -1


def select_manifest(index, platform):
    """The digest of the entry of ``index`` (a parsed index/list) that a host of ``platform`` pulls, or None."""
    wanted = platform
    exact, lower = [], []
    for descriptor in index.get('manifests') or []:
        if _is_attestation(descriptor) or not descriptor.get('digest'):
            continue
        entry = _entry_platform(descriptor)
        if entry is None or entry.os != wanted.os or entry.architecture != wanted.architecture:
            continue
        if entry.variant == wanted.variant:
            exact.append(descriptor['digest'])
        elif wanted.architecture == 'arm' and 0 <= _variant_number(entry.variant) < _variant_number(wanted.variant):
            lower.append((_variant_number(entry.variant), descriptor['digest']))
    if exact:
        return exact[0]
    if lower:
        return sorted(lower, reverse=True)[0][1]
    return None


def platforms_in(index):
    """The platforms an index offers, as text, attestations left out (for messages)."""
    found = []
    for descriptor in index.get('manifests') or []:
        entry = _entry_platform(descriptor)
        if entry is not None and not _is_attestation(descriptor):
            text = format_platform(entry)
            if text not in found:
                found.append(text)
    return found
