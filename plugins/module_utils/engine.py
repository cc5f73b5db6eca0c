# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which engine a host runs, and the facts that change what the other modules do there.

Read once per run from ``GET /version`` and ``GET /info``: the engine and API version,
the image store (``classic`` graph drivers, the ``containerd`` image store that fresh
installs of Engine 29 use, or ``podman``), the platform images are pulled for, and the
daemon's registry settings (insecure registries and mirrors), which registry look-ups
follow the way the daemon's own pulls do.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple

from ansible_collections.patchops.docker.plugins.module_utils import platforms

Engine = namedtuple('Engine', ['version', 'api_version', 'image_store', 'platform', 'registry_config'])

STORE_CLASSIC = 'classic'
STORE_CONTAINERD = 'containerd'
STORE_PODMAN = 'podman'
_CONTAINERD_DRIVER_TYPE = 'io.containerd.snapshotter.v1'


def image_store(version, info):
    """``classic``, ``containerd`` or ``podman`` from the daemon's own words."""
    for component in version.get('Components') or []:
        if 'podman' in (component.get('Name') or '').lower():
            return STORE_PODMAN
    for key, value in info.get('DriverStatus') or []:
        if key == 'driver-type' and value == _CONTAINERD_DRIVER_TYPE:
            return STORE_CONTAINERD
    return STORE_CLASSIC


def from_daemon(version, info):
    """The Engine facts from ``GET /version`` and ``GET /info`` answers."""
    return Engine(
        version=version.get('Version'),
        api_version=version.get('ApiVersion'),
        image_store=image_store(version, info),
        platform=platforms.of_daemon(info),
        registry_config=info.get('RegistryConfig') or {},
    )


def read(api):
    """Ask the daemon; two requests."""
    return from_daemon(api.version(), api.info())


def report(engine):
    """What ``image_age_info`` returns as ``engine``."""
    return dict(version=engine.version, api_version=engine.api_version, image_store=engine.image_store,
                platform=platforms.format_platform(engine.platform))
