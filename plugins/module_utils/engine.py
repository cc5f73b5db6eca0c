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


# --------------------------------------------------------------------------- Podman

PROBE_PREFIX = 'patchops-probe-'

# What Podman fills in by itself at create, read from a probe container (see :func:`podman_defaults`):
# ``config`` and ``host_config`` as its Docker-compatible inspect shows them; ``healthcheck``: the values Podman
# gives a health check field that neither the user nor the image set (its documented defaults, in nanoseconds).
EngineDefaults = namedtuple('EngineDefaults', ['config', 'host_config', 'healthcheck'])
PODMAN_HEALTHCHECK_DEFAULTS = {'Interval': 30 * 10 ** 9, 'Timeout': 30 * 10 ** 9, 'Retries': 3}
# Fields of an image's config that Podman 4.3's Docker-compatible image inspect leaves out or empties, and its
# libpod inspect has (the OCI image config, and the health check beside it).
_PODMAN_IMAGE_FIELDS = ('User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels',
                        'StopSignal')


def is_podman(facts):
    return facts is not None and facts.image_store == STORE_PODMAN


def podman_defaults(api, image_id, token):
    """What Podman sets on a container nobody configured: a probe container's inspect, created and removed.

    Podman's inspect shows its own defaults among the user's settings (``default_ulimits`` of
    containers.conf as ``RLIMIT_NOFILE=1024:1024``, ``IpcMode: shareable``, ``Runtime: oci``,
    ``TERM=xterm`` and ``container=podman`` in the environment, ...), some of them in a form its own
    create refuses. A container created from the same image with nothing set, never started, shows exactly
    those; it is removed at once. ``token`` makes its name unique (``patchops-probe-<token>``).
    """
    name = PROBE_PREFIX + token
    created = api.create_container_from_config({'Image': image_id, 'Cmd': ['true']}, name)
    try:
        probe = api.inspect_container(created['Id'])
    finally:
        api.remove_container(created['Id'], force=True, v=True)
    return EngineDefaults(config=probe.get('Config') or {}, host_config=probe.get('HostConfig') or {},
                          healthcheck=dict(PODMAN_HEALTHCHECK_DEFAULTS))


def _libpod_get(api, path, *args):
    response = api.get(api._url(path, *args))  # pylint: disable=protected-access
    if response.status_code != 200:
        return None
    data = response.json()
    return data if isinstance(data, dict) else None


def podman_image(api, reference, inspect):
    """An image's Docker-compatible ``inspect`` completed from Podman's own (libpod) image inspect.

    Podman 4.3's Docker-compatible image inspect shows no health check (and may leave out other parts of the
    image's config), so what a container inherited from its image could not be told from what the user set.
    Returns ``inspect`` with ``Config`` completed; unchanged when libpod does not answer.
    """
    if inspect is None:
        return None
    libpod = _libpod_get(api, '/libpod/images/{0}/json', reference)
    if libpod is None:
        return inspect
    config = dict(inspect.get('Config') or {})
    oci = libpod.get('Config') or {}
    for key in _PODMAN_IMAGE_FIELDS:
        if oci.get(key) and not config.get(key):
            config[key] = oci[key]
    if libpod.get('Healthcheck') and not config.get('Healthcheck'):
        config['Healthcheck'] = libpod['Healthcheck']
    return dict(inspect, Config=config)


def podman_pod(api, container_id):
    """The pod a Podman container belongs to (libpod's own inspect: the Docker-compatible one does not say), or None."""
    return (_libpod_get(api, '/libpod/containers/{0}/json', container_id) or {}).get('Pod') or None


def podman_pod_name(api, pod_id):
    """A pod's name, for messages; its short ID when Podman does not say."""
    return (_libpod_get(api, '/libpod/pods/{0}/json', pod_id) or {}).get('Name') or pod_id[:12]
