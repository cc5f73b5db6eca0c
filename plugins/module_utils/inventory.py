# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What runs on one Docker host: containers and local images, read cheaply.

One container list and one image list answer nearly everything; a container
is inspected only when the list cannot say which reference it was created from
(its tag has moved on) or, when stopped, which ports it would publish.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import re
import time

from ansible_collections.patchops.docker.plugins.module_utils import platforms
from ansible_collections.patchops.docker.plugins.module_utils.client import DockerException, RequestException, not_found
from ansible_collections.patchops.docker.plugins.module_utils.errors import ContainerNotFound
from ansible_collections.patchops.docker.plugins.module_utils.image_age import parse_reference
from ansible_collections.patchops.docker.plugins.module_utils.image_ref import InvalidReference, parse


def iso_to_epoch(value):
    """Seconds since the epoch for Docker's RFC 3339 timestamps (nanoseconds allowed)."""
    if isinstance(value, (int, float)):
        return float(value)
    match = re.match(r'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$', value or '')
    if not match:
        return 0.0
    seconds = calendar.timegm(time.strptime(match.group(1), '%Y-%m-%dT%H:%M:%S'))
    fraction = float('0' + match.group(2)) if match.group(2) else 0.0
    zone = match.group(3) or 'Z'
    if zone != 'Z':
        sign = 1 if zone[0] == '+' else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + fraction


def primary_name(summary):
    """The container's own name from its list entry.

    A container that others link to also lists ``/<linker>/<alias>`` names, and the engine
    sorts them, so the first name is not always its own.
    """
    names = [n.strip('/') for n in summary.get('Names') or []]
    own = [n for n in names if '/' not in n]
    return (own or names or [summary['Id'][:12]])[0]


def container_record(summary, inspect=None):
    """Turn a container list entry (and optionally its inspect data) into a record."""
    name = primary_name(summary)
    reference = summary.get('Image')
    port_bindings = None
    if inspect is not None:
        reference = (inspect.get('Config') or {}).get('Image') or reference
        port_bindings = (inspect.get('HostConfig') or {}).get('PortBindings') or {}
    return dict(
        id=summary['Id'],
        name=name,
        state=summary.get('State') or 'unknown',
        reference=reference,
        image_id=summary.get('ImageID'),
        labels=summary.get('Labels') or {},
        ports=summary.get('Ports') or [],
        port_bindings=port_bindings,
        network_mode=(summary.get('HostConfig') or {}).get('NetworkMode') or 'default',
    )


_SHOWN_NAME_MAX = 80


def shown_name(name):
    """A container name as an error message shows it: quoted, on one line, not too long.

    Names as Docker makes them print as they are (``'web-1'``); anything else a user
    may have typed (newlines, control characters, thousands of characters) is escaped
    and shortened, so that the message stays one short sentence.
    """
    text = name if isinstance(name, str) else repr(name)
    cut = len(text) > _SHOWN_NAME_MAX
    if cut:
        text = text[:_SHOWN_NAME_MAX]
    if text.isprintable() and "'" not in text:
        shown = "'%s'" % text
    else:
        shown = repr(text)
    return shown[:-1] + "...'" if cut and shown.endswith("'") else shown + ('...' if cut else '')


def select_containers(summaries, wanted, docker_host):
    """Pick the named containers out of a list, by name, full ID or unique ID prefix.

    Raises ContainerNotFound for the first name that matches nothing (or more
    than one container), before anything else happens.
    """
    by_name = {}
    for summary in summaries:
        for name in summary.get('Names') or []:
            by_name[name.lstrip('/')] = summary
    selected = []
    seen = set()
    for wanted_name in wanted:
        key = (wanted_name or '').lstrip('/')
        match = by_name.get(key)
        if match is None and key:
            prefixed = [s for s in summaries if s['Id'].startswith(key)]
            if len(prefixed) == 1:
                match = prefixed[0]
            elif len(prefixed) > 1:
                raise ContainerNotFound("Container ID prefix %s matches %d containers on %s; give more of the ID."
                                        % (shown_name(key), len(prefixed), docker_host))
        if match is None:
            raise ContainerNotFound("Container %s not found on %s." % (shown_name(wanted_name), docker_host))
        if match['Id'] not in seen:
            seen.add(match['Id'])
            selected.append(match)
    return selected


class HostInventory(object):
    """Containers and images of one Docker host, each read once per run."""

    def __init__(self, api, docker_host):
        self.api = api
        self.docker_host = docker_host
        self._images = None
        self._inspects = {}

    def containers(self, names=None, include_stopped=False):
        """Records of the containers to look at.

        ``names`` selects containers whatever their state; without it, all
        running containers (and stopped ones with ``include_stopped``).
        """
        summaries = self.api.containers(all=bool(names) or include_stopped)
        if names:
            summaries = select_containers(summaries, names, self.docker_host)
        records = []
        for summary in summaries:
            needs_inspect = parse_reference(summary.get('Image'), summary.get('ImageID')) is None \
                or summary.get('State') != 'running'
            inspect = self.api.inspect_container(summary['Id']) if needs_inspect else None
            records.append(container_record(summary, inspect))
        return records

    def images(self):
        """Local images by ID: ``{id: {'id', 'created', 'repo_tags', 'repo_digests', 'labels'}}``."""
        if self._images is None:
            self._images = {}
            for image in self.api.images():
                self._images[image['Id']] = dict(
                    id=image['Id'],
                    created=image.get('Created') or 0,
                    repo_tags=[t for t in (image.get('RepoTags') or []) if t != '<none>:<none>'],
                    repo_digests=[d for d in (image.get('RepoDigests') or []) if d != '<none>@<none>'],
                    labels=image.get('Labels') or {},
                    parent=image.get('ParentId') or None,
                )
        return self._images

    def _inspect(self, image_id):
        """The image's inspect, or None when the store does not have it (404); read once."""
        if image_id not in self._inspects:
            try:
                self._inspects[image_id] = self.api.inspect_image(image_id)
            except (DockerException, RequestException) as exc:
                if not not_found(exc):
                    raise
                # The containerd image store drops an image whose tag moved on, also while a
                # container still runs it: that container's own business, not the host's.
                self._inspects[image_id] = None
        return self._inspects[image_id]

    def image(self, image_id):
        """One image's record, inspecting it when the list did not have it; None when the store has it no more."""
        images = self.images()
        if image_id not in images and image_id:
            data = self._inspect(image_id)
            if data is None:
                return None
            images[image_id] = dict(
                id=data['Id'],
                created=iso_to_epoch(data.get('Created')),
                repo_tags=data.get('RepoTags') or [],
                repo_digests=data.get('RepoDigests') or [],
                labels=(data.get('Config') or {}).get('Labels') or {},
                parent=data.get('Parent') or None,
            )
        return images.get(image_id)

    def platform_of(self, image_id, default, inspect=True):
        """The platform the image was made for, or ``default`` when unknown.

        With ``inspect=False`` only an inspect this run already made is used: the image list does
        not say, and every image here is one the daemon pulled or built for its own platform
        unless it was asked for another, which the containers whose tag moved are inspected for.
        """
        if not image_id or (not inspect and image_id not in self._inspects):
            return default
        return platforms.of_image(self._inspect(image_id), default)

    def local_tags(self):
        """Fully qualified tag -> image ID, for every tagged local image."""
        tags = {}
        for image in self.images().values():
            for tag in image['repo_tags']:
                try:
                    tags[str(parse(tag))] = image['id']
                except InvalidReference:
                    continue
        return tags
