# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recreating a container on a newer image: the create request that keeps everything.

``docker inspect`` shows a container's configuration *after* Docker merged the
image's defaults into it, so an inspect cannot simply be sent back to
``POST /containers/create``: every value the container only inherited from the
old image would be pinned, and the new image's env defaults, command, labels,
healthcheck, ... would never apply. Each ``Config`` concern below therefore has
one small rule that splits the container's value into what the user set (sent
to the new create) and what came from the old image (left out, so that the new
image provides it). Each rule is used twice, by :func:`plan_recreate` and by
:func:`diff_config`, so "what we send" and "what we check" cannot drift apart.

``HostConfig`` holds no image defaults: it is copied whole, then the few values
inspect returns in a form create does not take are fixed (legacy links,
``--mount`` volumes without a name, references to containers recreated earlier
in the same run). Anonymous volumes are mounted again by name at the same
place, so their data survives. The new container joins exactly the networks
the old one is on: API 1.44+ takes them all at create; below 1.44 create takes
one endpoint and the rest are connected before the start.

A few values name the image itself rather than the container's configuration
(Compose v2's record of the image it created the container from): they follow
the new image, by one rule used for the plan and the check alike.

Where inspect cannot tell a user-set value from an inherited one (the user set
exactly the old image's value), the value counts as inherited: the new image's
value applies, which is what the user gets from ``docker run`` on the new image.

Podman's inspect also shows what Podman filled in by itself (containers.conf's
default ulimits, ``IpcMode: shareable``, ``Runtime: oci``, ``TERM`` and
``container`` in the environment, its stop signal and timeout), some of it in a
form its own create refuses (``RLIMIT_NOFILE``). Those defaults come from a
probe container (``engine.podman_defaults``): a value equal to the probe's is
Podman's, left out so that Podman fills it in again, by the same rule for the
plan and the check; a ulimit the user set is sent under the name create takes
(``nofile``). Podman 4.3 does not report which IP and MAC addresses were asked
for: the addresses a running container holds on each network are kept.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import posixpath
import re
from collections import namedtuple

from ansible_collections.patchops.docker.plugins.module_utils.client import (
    DockerException,
    RequestException,
    short_reason,
)
from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError

RecreatePlan = namedtuple('RecreatePlan', [
    'name',            # container name, no leading slash
    'create_body',     # raw Engine API body for POST /containers/create
    'extra_networks',  # [(network name, endpoint config)] to connect after create, before start (API < 1.44)
    'start',           # the old container was running: start the new one
    'inherited',       # {field: old value} that came from the old image and now comes from the new one
    'kept_volumes',    # [{'name', 'destination', 'anonymous'}] every volume mount carried over
    'image_id',        # the image the new container must run (new_image['Id'])
])

# Networks whose endpoints take no aliases, static addresses or links.
_BUILTIN_NETWORKS = ('bridge', 'host', 'none', 'default')
# Compose v2 labels: the project, and the ID of the image its service's tag named when it made the container.
COMPOSE_PROJECT_LABEL = 'com.docker.compose.project'
COMPOSE_IMAGE_LABEL = 'com.docker.compose.image'
_HEX_ID = re.compile(r'^[0-9a-f]{12,64}$')
# Docker names an anonymous volume with 64 random hex digits.
_ANONYMOUS_VOLUME = re.compile(r'^[0-9a-f]{64}$')
_ENDPOINT_KEYS = ('Aliases', 'IPAMConfig', 'Links', 'DriverOpts', 'MacAddress')
# Config fields that describe the image, not the container: never sent, never compared.
_IMAGE_ONLY_FIELDS = ('Image', 'OnBuild', 'ArgsEscaped')


class RecreateError(PatchopsError):
    """The new container could not be created exactly like the old one."""


# --------------------------------------------------------------------------- small helpers

def _config(inspect):
    return inspect.get('Config') or {}


def _host_config(inspect):
    return inspect.get('HostConfig') or {}


def _empty(value):
    return value is None or value == [] or value == {} or value == ''


def _network_mode(inspect):
    return _host_config(inspect).get('NetworkMode') or 'default'


def _is_container_mode(mode):
    return (mode or '').startswith('container:')


def _path(path):
    return posixpath.normpath(path) if path else path


def _follow(ref, renamed):
    """The container that now stands for ``ref`` (a name or an ID, maybe a prefix)."""
    if not ref or not renamed:
        return ref
    key = ref.lstrip('/')
    if key in renamed:
        return renamed[key]
    if _HEX_ID.match(key):
        matches = [new for old, new in renamed.items() if _HEX_ID.match(old) and old.startswith(key)]
        if len(matches) == 1:
            return matches[0]
    return ref


def _follow_mode(mode, renamed):
    """``container:<id>`` modes (network, IPC, PID) follow a container recreated earlier."""
    if _is_container_mode(mode):
        return 'container:' + _follow(mode.split(':', 1)[1], renamed)
    return mode


def _reason(exc):
    """Docker's own explanation of a failed call, else the SDK's last clause; no final period."""
    explanation = getattr(exc, 'explanation', None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode('utf-8', 'replace')
    return (explanation or short_reason(exc)).strip().rstrip('.')


# --------------------------------------------------------------------------- Config: one rule per concern
#
# Each rule takes (container inspect, old image's Config) and returns
# (fields for the create body, {field: value inherited from the image}).

def _hostname(container, image_config):
    """Hostname and domain name, only when set explicitly.

    Docker names a container after its short ID when no hostname was given; in
    network mode ``container:X`` it takes X's names and refuses any of its own;
    with ``--uts host`` it refuses a hostname too. In ``host`` network mode Docker
    fills in the host's name, which cannot be told from an explicit one: it is
    kept, which gives the new container the same name either way.
    """
    config = _config(container)
    if _is_container_mode(_network_mode(container)):
        return {'Hostname': None, 'Domainname': None}, {}
    hostname = config.get('Hostname') or None
    if hostname == (container.get('Id') or '')[:12] or _host_config(container).get('UTSMode') == 'host':
        hostname = None
    return {'Hostname': hostname, 'Domainname': config.get('Domainname') or None}, {}


def _env(container, image_config):
    """Env entries the image also has, with the same value, are inherited (reported by name only)."""
    image_env = set(image_config.get('Env') or [])
    user, inherited = [], []
    for entry in _config(container).get('Env') or []:
        if entry in image_env:
            inherited.append(entry.split('=', 1)[0])
        else:
            user.append(entry)
    return {'Env': user or None}, ({'Env': inherited} if inherited else {})


def _command(container, image_config):
    """Entrypoint and cmd, by Docker's rule: a user-set entrypoint resets the image's cmd.

    So the cmd is inherited only when the entrypoint is. An entrypoint equal to
    the image's with an empty cmd although the image has one can only come from
    the user (Docker would have filled in the image's cmd otherwise).
    """
    config = _config(container)
    entrypoint, cmd = config.get('Entrypoint'), config.get('Cmd')
    image_entrypoint, image_cmd = image_config.get('Entrypoint'), image_config.get('Cmd')
    entrypoint_set = (entrypoint or None) != (image_entrypoint or None) or (not cmd and bool(image_cmd))
    if entrypoint_set:
        return {'Entrypoint': entrypoint, 'Cmd': cmd or None}, {}
    inherited = {'Entrypoint': entrypoint} if entrypoint else {}
    if (cmd or None) == (image_cmd or None):
        if cmd:
            inherited['Cmd'] = cmd
        cmd = None
    return {'Entrypoint': None, 'Cmd': cmd}, inherited


def _inherited_if_same(container, image_config, field):
    value = _config(container).get(field)
    if not _empty(value) and value == image_config.get(field):
        return {field: None}, {field: value}
    return {field: None if _empty(value) else value}, {}


def _user(container, image_config):
    return _inherited_if_same(container, image_config, 'User')


def _working_dir(container, image_config):
    return _inherited_if_same(container, image_config, 'WorkingDir')


def _stop_signal(container, image_config):
    return _inherited_if_same(container, image_config, 'StopSignal')


def _shell(container, image_config):
    return _inherited_if_same(container, image_config, 'Shell')


def _labels(container, image_config):
    """Labels the image also has, with the same value, are inherited."""
    image_labels = image_config.get('Labels') or {}
    user, inherited = {}, {}
    for key, value in (_config(container).get('Labels') or {}).items():
        if key in image_labels and image_labels[key] == value:
            inherited[key] = value
        else:
            user[key] = value
    return {'Labels': user or None}, ({'Labels': inherited} if inherited else {})


def _healthcheck(container, image_config):
    """Field by field, as Docker merges it: test, interval, timeout, start period, retries."""
    check = _config(container).get('Healthcheck') or {}
    image_check = image_config.get('Healthcheck') or {}
    user, inherited = {}, {}
    for key, value in check.items():
        if _empty(value) or value == 0:
            continue
        if image_check.get(key) == value:
            inherited[key] = value
        else:
            user[key] = value
    return {'Healthcheck': user or None}, ({'Healthcheck': inherited} if inherited else {})


def _exposed_ports(container, image_config):
    """Ports the image exposes are inherited, unless published: Docker 20.10 publishes only exposed ports."""
    ports = _config(container).get('ExposedPorts') or {}
    if _is_container_mode(_network_mode(container)):
        # Docker refuses exposed ports in this mode; these came from the image
        return {'ExposedPorts': None}, ({'ExposedPorts': sorted(ports)} if ports else {})
    image_ports = image_config.get('ExposedPorts') or {}
    published = _host_config(container).get('PortBindings') or {}
    user = dict((port, {}) for port in ports if port not in image_ports or port in published)
    inherited = sorted(port for port in ports if port not in user)
    return {'ExposedPorts': user or None}, ({'ExposedPorts': inherited} if inherited else {})


def _declared_volumes(container, image_config):
    """``VOLUME`` paths of the image are inherited; ``-v /path`` ones are the user's.

    Either way the anonymous volume itself is mounted again by name (see
    :func:`_anonymous_binds`), so its data stays.
    """
    volumes = _config(container).get('Volumes') or {}
    image_volumes = image_config.get('Volumes') or {}
    user = dict((path, {}) for path in volumes if path not in image_volumes)
    inherited = sorted(path for path in volumes if path in image_volumes)
    return {'Volumes': user or None}, ({'Volumes': inherited} if inherited else {})


def _mac_address(container, image_config):
    """The fixed MAC address of the primary network, below API 1.44 only.

    API 1.44 deprecated the container-wide field: there each endpoint carries its
    own (:func:`_endpoint_mac`), and this field is neither read nor sent.
    """
    if _inspect_is_api_144(container):
        return {'MacAddress': None}, {}
    return {'MacAddress': _config(container).get('MacAddress') or None}, {}


_CONFIG_RULES = (_hostname, _env, _command, _user, _working_dir, _stop_signal, _shell, _labels,
                 _healthcheck, _exposed_ports, _declared_volumes, _mac_address)


# --------------------------------------------------------------------------- values that follow the image
#
# Each rule takes (container inspect, the image the container is meant to run)
# and returns {Config field: value} to put over the user's fields: used on the
# old container with the new image, both to build the create body and to say
# what the new container must show.

def _compose_image_label(container, image):
    """Compose v2's ``com.docker.compose.image``: the ID of the image the service's tag names.

    ``docker compose up`` (v2) recreates a container whose label differs from
    the ID of the image its service's tag names on the host now (``ImageInspect``
    of that tag: the config digest with the classic store, the manifest or index
    digest with the containerd store). After an update the tag names the new
    image, so the label is that image's ID; kept as it was, the next ``up``
    would recreate the container again. Only containers that carry the label
    (Compose v2 made them) get it; Compose v1 sets no such label.
    """
    labels = _config(container).get('Labels') or {}
    if COMPOSE_PROJECT_LABEL in labels and COMPOSE_IMAGE_LABEL in labels and image.get('Id'):
        return {'Labels': {COMPOSE_IMAGE_LABEL: image['Id']}}
    return {}


_IMAGE_RULES = (_compose_image_label,)


def _follow_the_image(fields, container, image):
    """``fields`` (the user's Config fields) with every value that names the image set for ``image``."""
    for rule in _IMAGE_RULES:
        for key, value in rule(container, image).items():
            if isinstance(value, dict):
                fields[key] = dict(fields.get(key) or {}, **value)
            else:
                fields[key] = value
    return fields


def _config_fields(container, image_config, defaults=None):
    """(the user's Config fields, what was inherited) by all rules; other fields are copied as they are."""
    fields = dict((key, value) for key, value in _config(container).items() if key not in _IMAGE_ONLY_FIELDS)
    inherited = {}
    for rule in _CONFIG_RULES:
        own, from_image = rule(container, image_config)
        fields.update(own)
        inherited.update(from_image)
    if defaults is not None:
        fields = _without_podman_config_defaults(fields, container, image_config, defaults)
    return fields, inherited


# --------------------------------------------------------------------------- what Podman fills in by itself

# Podman's stop settings: inspect shows them whether set or not (``StopSignal: "15"``, ``StopTimeout: 0``).
_PODMAN_STOP_FIELDS = ('StopSignal', 'StopTimeout')


def _without_podman_config_defaults(fields, container, image_config, defaults):
    """The user's Config fields without what Podman adds to every container.

    Env entries the probe container has and the image does not (``TERM=xterm``, ``container=podman``) and
    ``HOSTNAME=<its own hostname>`` are Podman's; stop signal and timeout equal to the probe's are too, and so
    is a health check value the image does not set that equals Podman's default (30 s, 3 retries).
    """
    fields = dict(fields)
    probe_env = set(defaults.config.get('Env') or []) - set(image_config.get('Env') or [])
    own_hostname = 'HOSTNAME=%s' % (_config(container).get('Hostname') or '')
    env = [entry for entry in fields.get('Env') or [] if entry not in probe_env and entry != own_hostname]
    fields['Env'] = env or None
    for key in _PODMAN_STOP_FIELDS:
        if key in fields and fields[key] == defaults.config.get(key):
            fields[key] = None
    if fields.get('Healthcheck'):
        image_check = image_config.get('Healthcheck') or {}
        check = dict((key, value) for key, value in fields['Healthcheck'].items()
                     if key in image_check or defaults.healthcheck.get(key) != value)
        fields['Healthcheck'] = check or None
    return fields


def _ulimit_name(name):
    """``RLIMIT_NOFILE`` (Podman's inspect) -> ``nofile`` (what create takes)."""
    return name[len('RLIMIT_'):].lower() if (name or '').upper().startswith('RLIMIT_') else name


def _sorted_ulimits(ulimits):
    return sorted((dict(u, Name=_ulimit_name(u.get('Name'))) for u in ulimits or []), key=lambda u: u['Name'])


def _without_podman_host_defaults(host_config, defaults):
    """HostConfig without the values Podman fills in by itself; the user's ulimits under create's names."""
    result = {}
    for key, value in host_config.items():
        default = defaults.host_config.get(key)
        if key == 'Ulimits':
            # all or nothing: once create names one ulimit, Podman applies none of its defaults (and sets nproc
            # to its own maximum), so a user's set is sent whole, the defaults among it too
            if _sorted_ulimits(value) != _sorted_ulimits(default):
                result[key] = _sorted_ulimits(value) or None
        elif key == 'NetworkMode' and value == default:
            continue  # Podman reports every bridge network as 'bridge': the endpoints say which
        elif value != default or key in ('Binds', 'Mounts', 'Links', 'VolumesFrom'):
            result[key] = value
    return result


# --------------------------------------------------------------------------- HostConfig

def _legacy_links(links, renamed):
    """``/db:/web/db`` (child's current name : parent/alias) -> ``db:db``.

    Docker reports the child under the name it has now, which is the backup name
    when the child was recreated earlier in the run: ``renamed`` maps it back.
    """
    result = []
    for link in links or []:
        child, alias = link.split(':', 1) if ':' in link else (link, '')
        child = _follow(child.lstrip('/'), renamed)
        alias = posixpath.basename(alias) if alias else child
        result.append('%s:%s' % (child, alias))
    return result or None


def _volumes_from(entries, renamed):
    result = []
    for entry in entries or []:
        ref, sep, mode = entry.rpartition(':')
        if not sep or mode not in ('ro', 'rw'):
            ref, mode = entry, ''
        result.append(_follow(ref, renamed) + (':' + mode if mode else ''))
    return result or None


def _named_mounts(container):
    """``--mount type=volume`` without a source got an anonymous volume: name it, so it is mounted again."""
    mounts = copy.deepcopy(_host_config(container).get('Mounts'))
    if not mounts:
        return mounts
    by_destination = dict((_path(m.get('Destination')), m) for m in container.get('Mounts') or [])
    for mount in mounts:
        if mount.get('Type') == 'volume' and not mount.get('Source'):
            actual = by_destination.get(_path(mount.get('Target')))
            if actual and actual.get('Name'):
                mount['Source'] = actual['Name']
    return mounts


def _carried_host_config(container, renamed, defaults=None):
    """HostConfig copied whole, with what inspect returns in a form create does not take fixed."""
    host_config = copy.deepcopy(_host_config(container))
    if defaults is not None:
        host_config = _without_podman_host_defaults(host_config, defaults)
    host_config['Links'] = _legacy_links(host_config.get('Links'), renamed)
    host_config['VolumesFrom'] = _volumes_from(host_config.get('VolumesFrom'), renamed)
    for key in ('NetworkMode', 'IpcMode', 'PidMode'):
        if host_config.get(key):
            host_config[key] = _follow_mode(host_config[key], renamed)
    if host_config.get('Mounts'):
        host_config['Mounts'] = _named_mounts(container)
    return host_config


def _user_mount_destinations(container):
    """Destinations the user mounted something at (binds, named volumes, ``--mount``)."""
    host_config = _host_config(container)
    destinations = set()
    for bind in host_config.get('Binds') or []:
        parts = bind.split(':')
        if len(parts) >= 2:
            destinations.add(_path(parts[1]))
    for mount in host_config.get('Mounts') or []:
        destinations.add(_path(mount.get('Target')))
    return destinations


def _user_volume_names(container):
    """Volumes the user named in binds or ``--mount``: not anonymous."""
    host_config = _host_config(container)
    names = set()
    for bind in host_config.get('Binds') or []:
        source = bind.split(':')[0]
        if source and not source.startswith('/'):
            names.add(source)
    for mount in host_config.get('Mounts') or []:
        if mount.get('Type') == 'volume' and mount.get('Source'):
            names.add(mount['Source'])
    return names


def _anonymous_binds(container):
    """``name:/path[:ro]`` for each anonymous volume Docker made for a declared path (image ``VOLUME``, ``-v /path``)."""
    declared = set(_path(path) for path in _config(container).get('Volumes') or {})
    # Podman shows no Config.Volumes: an anonymous volume there is known by its name alone
    declared.update(_path(m.get('Destination')) for m in container.get('Mounts') or []
                    if m.get('Type') == 'volume' and _ANONYMOUS_VOLUME.match(m.get('Name') or ''))
    taken = _user_mount_destinations(container)
    binds = []
    for mount in container.get('Mounts') or []:
        destination = _path(mount.get('Destination'))
        if mount.get('Type') != 'volume' or not mount.get('Name'):
            continue
        if destination in declared and destination not in taken:
            binds.append('%s:%s%s' % (mount['Name'], destination, '' if mount.get('RW', True) else ':ro'))
    return binds


def _kept_volumes(container):
    """Every volume mount; anonymous when Docker made it (also when an earlier recreate mounted it by name)."""
    named = _user_volume_names(container)
    return [dict(name=m['Name'], destination=m.get('Destination'),
                 anonymous=m['Name'] not in named or bool(_ANONYMOUS_VOLUME.match(m['Name'])))
            for m in container.get('Mounts') or [] if m.get('Type') == 'volume' and m.get('Name')]


# --------------------------------------------------------------------------- networks

def _inspect_is_api_144(container):
    """True for inspect output of API 1.44+ (Docker 25+): its endpoints carry ``DNSNames`` (null before the start).

    The plan follows the API version its inspect was read with, which is the
    version the same client then creates with.
    """
    networks = (container.get('NetworkSettings') or {}).get('Networks') or {}
    return any('DNSNames' in (endpoint or {}) for endpoint in networks.values())


def _short_id_alias(container):
    """The alias Docker adds by itself on user-defined networks: the short container ID.

    Docker 20.10 also adds the hostname; that one is kept, since Docker adds it
    only when missing and an alias equal to the hostname may be the user's.
    """
    return (container.get('Id') or '')[:12]


def _generated_mac(ip_address):
    """The MAC address Docker (up to 26) makes for an endpoint from its IPv4 address: 02:42 and its four bytes."""
    parts = (ip_address or '').split('.')
    if len(parts) != 4 or not all(part.isdigit() and int(part) < 256 for part in parts):
        return None
    return '02:42:' + ':'.join('%02x' % int(part) for part in parts)


def _endpoint_mac(endpoint):
    """The MAC address set for one endpoint, read from an API 1.44+ inspect; None below 1.44.

    From API 1.44 each endpoint takes its own MAC address and the container-wide
    ``Config.MacAddress`` is deprecated, so the endpoint is the only source: a
    created container shows the address asked for, a running one the address in
    use. An address Docker made itself from the endpoint's IPv4 address is not
    the user's: it is left out, and the new container gets one of its own. A
    stopped container's endpoints show no MAC address on Docker 25/26, so none
    can be kept for it. Below 1.44 the MAC address is ``Config.MacAddress``
    (:func:`_mac_address`).
    """
    if 'DNSNames' not in endpoint:
        return None
    mac = endpoint.get('MacAddress') or None
    if mac and mac.lower() == _generated_mac(endpoint.get('IPAddress')):
        return None
    return mac


def _endpoint_link(link, renamed):
    """``name:alias`` on a user-defined network; Docker keeps the name as given, so it only follows ``renamed``."""
    child, sep, alias = link.partition(':')
    return _follow(child, renamed) + sep + alias


def _held_addresses(endpoint):
    """Podman: the addresses an endpoint holds now, as the static addresses and MAC address to ask for.

    Podman 4.3 reports neither ``IPAMConfig`` nor the MAC address asked for, only those in use: keeping what
    the container holds keeps what the user set (and pins what Podman chose, which no one else holds while the
    container is on the network). A stopped container holds none.
    """
    ipam = {}
    if endpoint.get('IPAddress'):
        ipam['IPv4Address'] = endpoint['IPAddress']
    if endpoint.get('GlobalIPv6Address'):
        ipam['IPv6Address'] = endpoint['GlobalIPv6Address']
    return ipam, endpoint.get('MacAddress') or None


def _endpoint_config(container, network, endpoint, renamed, podman=False):
    """The user's part of one endpoint: aliases, static addresses, links, driver options (MAC on 1.44+)."""
    config = {}
    if podman:
        ipam, mac = _held_addresses(endpoint)
        aliases = [a for a in endpoint.get('Aliases') or [] if a != _short_id_alias(container)]
        config.update((key, value) for key, value in (('Aliases', aliases), ('IPAMConfig', ipam), ('MacAddress', mac))
                      if value)
        if endpoint.get('DriverOpts'):
            config['DriverOpts'] = dict(endpoint['DriverOpts'])
        return config
    if network not in _BUILTIN_NETWORKS:
        short_id = _short_id_alias(container)
        aliases = [a for a in endpoint.get('Aliases') or [] if a != short_id]
        if aliases:
            config['Aliases'] = aliases
        ipam = dict((k, v) for k, v in (endpoint.get('IPAMConfig') or {}).items() if not _empty(v))
        if ipam:
            config['IPAMConfig'] = ipam
        links = [_endpoint_link(link, renamed) for link in endpoint.get('Links') or []]
        if links:
            config['Links'] = links
    if endpoint.get('DriverOpts'):
        config['DriverOpts'] = dict(endpoint['DriverOpts'])
    mac = _endpoint_mac(endpoint)
    if mac:
        config['MacAddress'] = mac
    return config


def _primary_network(container):
    """The network its network mode names (``default`` is ``bridge``); None in host/none/container modes."""
    mode = _network_mode(container)
    if mode in ('host', 'none') or _is_container_mode(mode):
        return None
    if mode == 'default':
        return 'bridge'
    networks = (container.get('NetworkSettings') or {}).get('Networks') or {}
    if mode not in networks:
        for name, endpoint in networks.items():
            if (endpoint or {}).get('NetworkID', '').startswith(mode):
                return name
    return mode


def _network_endpoints(container, renamed, podman=False):
    """{network name: endpoint config} of every network the container is on; none in host/none/container modes."""
    if _primary_network(container) is None:
        return {}
    networks = (container.get('NetworkSettings') or {}).get('Networks') or {}
    return dict((name, _endpoint_config(container, name, endpoint or {}, renamed, podman))
                for name, endpoint in networks.items())


def _split_networks(container, renamed, podman=False):
    """(EndpointsConfig for create, [(name, endpoint config)] to connect afterwards): its networks, no more.

    Docker (20.10 and 26 alike) puts a new container on the networks of its
    create request's EndpointsConfig only, also when its network mode names
    another one: a container made with NetworkMode ``default`` and an endpoint
    on one user-defined network is on that network alone. So the create never
    leaves the choice to the network mode. API 1.44+ takes every network at
    create, in one request. Below 1.44 create takes one endpoint: the network
    mode's when the container is on it, else the first of its networks; the
    rest are connected before the start.
    """
    endpoints = _network_endpoints(container, renamed, podman)
    if _inspect_is_api_144(container) or podman:  # Podman takes every network at create, whatever the API version
        return endpoints, []
    primary = _primary_network(container)
    if primary not in endpoints:
        primary = min(endpoints) if endpoints else None
    at_create = {primary: endpoints[primary]} if primary else {}
    extra = [(name, endpoints[name]) for name in sorted(endpoints) if name != primary]
    return at_create, extra


# --------------------------------------------------------------------------- the plan

def _image_reference(old, old_image, new_image):
    """Create from the reference the old container was made from, unless that was an image ID."""
    reference = _config(old).get('Image') or ''
    old_id = (old_image.get('Id') or '').split(':')[-1]
    bare = reference.split(':')[-1] if reference.startswith('sha256:') else reference
    if not reference or (_HEX_ID.match(bare) and old_id.startswith(bare)):
        return new_image.get('Id')
    return reference


def plan_recreate(old, old_image, new_image, renamed_ids=None, defaults=None):
    """The create request for the same container as ``old`` on ``new_image``.

    ``old`` is the container's inspect (``APIClient.inspect_container``),
    ``old_image``/``new_image`` image inspects (``APIClient.inspect_image``).
    ``renamed_ids`` maps containers recreated earlier in the same run to their
    successors, ``{old container id: new container id}``, for network, IPC and
    PID modes ``container:X`` and ``volumes_from``. Legacy links (default bridge)
    are reported by Docker under the child's *current* name, which is its backup
    name once the child was recreated, so for those the map also takes
    ``{backup name: name}``. Keys may be full IDs or unique ID prefixes.
    ``defaults`` (``engine.EngineDefaults``, Podman only) is what the engine fills in by itself.
    """
    renamed = renamed_ids or {}
    fields, inherited = _config_fields(old, old_image.get('Config') or {}, defaults)
    fields = _follow_the_image(fields, old, new_image)
    body = dict((key, value) for key, value in fields.items() if value is not None)
    body['Image'] = _image_reference(old, old_image, new_image)

    host_config = _carried_host_config(old, renamed, defaults)
    anonymous = _anonymous_binds(old)
    if anonymous:
        host_config['Binds'] = list(host_config.get('Binds') or []) + anonymous
    body['HostConfig'] = host_config

    at_create, extra = _split_networks(old, renamed, defaults is not None)
    if at_create:
        body['NetworkingConfig'] = {'EndpointsConfig': at_create}

    return RecreatePlan(
        name=(old.get('Name') or '').lstrip('/'),
        create_body=body,
        extra_networks=extra,
        start=bool((old.get('State') or {}).get('Running')),
        inherited=inherited,
        kept_volumes=_kept_volumes(old),
        image_id=new_image.get('Id'),
    )


def _connect_arguments(endpoint):
    """Keyword arguments of ``APIClient.connect_container_to_network`` for one endpoint config.

    Only below API 1.44 are networks connected after the create, and there an
    endpoint has no MAC address of its own (the primary's is ``Config.MacAddress``).
    """
    ipam = endpoint.get('IPAMConfig') or {}
    return dict(
        aliases=endpoint.get('Aliases'),
        links=[tuple(link.split(':', 1)) for link in endpoint.get('Links') or []] or None,
        ipv4_address=ipam.get('IPv4Address'),
        ipv6_address=ipam.get('IPv6Address'),
        link_local_ips=ipam.get('LinkLocalIPs'),
        driver_opt=endpoint.get('DriverOpts'),
    )


def _without_env_values(text, body):
    """Docker's error text with any env value of the create body masked: values never reach a message."""
    for entry in body.get('Env') or []:
        value = entry.split('=', 1)[1] if '=' in entry else ''
        if len(value) >= 3:
            text = text.replace(value, '<hidden>')
    return text


def _create(api, plan):
    try:
        return api.create_container_from_config(plan.create_body, plan.name)['Id']
    except (DockerException, RequestException) as exc:
        reason = _without_env_values(_reason(exc), plan.create_body)
        raise RecreateError("Could not create container '%s' on the new image: %s." % (plan.name, reason))


def _plan_networks(plan):
    """Every user-defined network the plan names: its network mode's, then those it joins at create and after."""
    mode = (plan.create_body.get('HostConfig') or {}).get('NetworkMode') or 'default'
    at_create = (plan.create_body.get('NetworkingConfig') or {}).get('EndpointsConfig') or {}
    names = ([] if _is_container_mode(mode) else [mode]) + sorted(at_create, key=lambda name: name != mode)
    names += [network for network, _endpoint in plan.extra_networks]
    result = []
    for name in names:
        if name not in _BUILTIN_NETWORKS and name not in result:
            result.append(name)
    return result


def _check_networks(api, plan):
    """Docker 20.10 creates a container on, and connects a created one to, a network that does not
    exist (it fails only at start), so the networks are looked up before anything is created."""
    for network in _plan_networks(plan):
        try:
            api.inspect_network(network)
        except (DockerException, RequestException) as exc:
            raise RecreateError("Network '%s' of container '%s' cannot be used: %s; create the network "
                                "again, then rerun the update." % (network, plan.name, _reason(exc)))


def _connect_extra_networks(api, container_id, plan):
    for network, endpoint in plan.extra_networks:
        try:
            api.connect_container_to_network(container_id, network, **_connect_arguments(endpoint))
        except (DockerException, RequestException) as exc:
            raise RecreateError("Could not connect container '%s' to network '%s': %s."
                                % (plan.name, network, _reason(exc)))


def _check_image(api, container_id, plan):
    """The reference must still name the pulled image: a tag moved since the pull is refused."""
    try:
        running = api.inspect_container(container_id).get('Image')
    except (DockerException, RequestException) as exc:
        raise RecreateError("Could not inspect the new container '%s': %s." % (plan.name, _reason(exc)))
    if plan.image_id and running != plan.image_id:
        raise RecreateError("Container '%s' was created from image %s instead of %s because the tag moved "
                            "during the update; run the update again." % (plan.name, running, plan.image_id))


def _remove_quietly(api, container_id):
    """Remove a half-made container, never its volumes: anonymous ones still belong to the old container."""
    try:
        api.remove_container(container_id, force=True)
    except (DockerException, RequestException):
        pass


def apply_plan(api, plan):
    """Create the new container and connect its other networks; return its ID. It is not started.

    On any failure the half-made container is removed and RecreateError raised,
    so that the old container can take its name back.
    """
    _check_networks(api, plan)
    container_id = _create(api, plan)
    try:
        _connect_extra_networks(api, container_id, plan)
        _check_image(api, container_id, plan)
    except RecreateError:
        _remove_quietly(api, container_id)
        raise
    return container_id


# --------------------------------------------------------------------------- proving nothing was lost

def _hidden(value):
    return None if value is None else '<hidden>'


def _diff_env(old_env, new_env):
    """Env differences by variable name; values never leave this function."""
    old_vars = dict(entry.split('=', 1) if '=' in entry else (entry, '') for entry in old_env or [])
    new_vars = dict(entry.split('=', 1) if '=' in entry else (entry, '') for entry in new_env or [])
    return [('Config.Env.%s' % name, _hidden(old_vars.get(name)), _hidden(new_vars.get(name)))
            for name in sorted(set(old_vars) | set(new_vars)) if old_vars.get(name) != new_vars.get(name)]


def _diff_values(prefix, old, new):
    differences = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before != after and not (_empty(before) and _empty(after)):
            differences.append(('%s.%s' % (prefix, key), before, after))
    return differences


def _diff_config_fields(old, new, old_image, new_image, defaults=None):
    old_fields = _follow_the_image(_config_fields(old, old_image.get('Config') or {}, defaults)[0], old, new_image)
    new_fields = _config_fields(new, new_image.get('Config') or {}, defaults)[0]
    differences = _diff_env(old_fields.pop('Env', None), new_fields.pop('Env', None))
    return differences + _diff_values('Config', old_fields, new_fields)


def _diff_host_config(old, new, renamed, defaults=None):
    old_host_config = _carried_host_config(old, renamed, defaults)
    old_host_config['Binds'] = sorted(old_host_config.get('Binds') or [])
    new_host_config = _carried_host_config(new, {}, defaults)
    kept = set(_anonymous_binds(old))
    new_host_config['Binds'] = sorted(b for b in new_host_config.get('Binds') or [] if b not in kept)
    # Docker 26 stores the network mode 'default' as what it means, 'bridge'
    for host_config in (old_host_config, new_host_config):
        if host_config.get('NetworkMode') == 'default':
            host_config['NetworkMode'] = 'bridge'
    return _diff_values('HostConfig', old_host_config, new_host_config)


def _diff_networks(old, new, renamed, podman=False):
    old_endpoints = _network_endpoints(old, renamed, podman)
    new_endpoints = _network_endpoints(new, {}, podman)
    differences = []
    for name in sorted(set(old_endpoints) | set(new_endpoints)):
        if name not in new_endpoints or name not in old_endpoints:
            differences.append(('Networks.%s' % name, old_endpoints.get(name), new_endpoints.get(name)))
            continue
        for key in _ENDPOINT_KEYS:
            before, after = old_endpoints[name].get(key), new_endpoints[name].get(key)
            if isinstance(before, list) and isinstance(after, list):
                before, after = sorted(before), sorted(after)
            if before != after:
                differences.append(('Networks.%s.%s' % (name, key), before, after))
    return differences


def _mounted(container):
    """{destination: (type, volume name or source path, read-write)}."""
    return dict((_path(m.get('Destination')),
                 (m.get('Type'), m.get('Name') if m.get('Type') == 'volume' else m.get('Source'), m.get('RW')))
                for m in container.get('Mounts') or [])


def _diff_volumes(old, new, new_image):
    """Every mount is back at its place, the same volume; a path only the new image declares gets a fresh one."""
    before, after = _mounted(old), _mounted(new)
    newly_declared = set(_path(p) for p in (new_image.get('Config') or {}).get('Volumes') or {})
    differences = []
    for destination in sorted(set(before) | set(after)):
        if destination not in before and destination in newly_declared and after[destination][0] == 'volume':
            continue
        if before.get(destination) != after.get(destination):
            differences.append(('Mounts.%s' % destination, before.get(destination), after.get(destination)))
    return differences


def diff_config(old_inspect, new_inspect, old_image, new_image, renamed_ids=None, defaults=None):
    """[(field, old, new)] differences between two containers that the image change does not explain.

    Empty when ``new_inspect`` is ``old_inspect`` recreated on ``new_image``
    with nothing lost. The same rules as :func:`plan_recreate` decide what is
    the user's (``defaults``: what Podman fills in, as there); env values are shown as ``<hidden>``.
    """
    renamed = renamed_ids or {}
    differences = []
    if (old_inspect.get('Name') or '') != (new_inspect.get('Name') or ''):
        differences.append(('Name', old_inspect.get('Name'), new_inspect.get('Name')))
    differences += _diff_config_fields(old_inspect, new_inspect, old_image, new_image, defaults)
    differences += _diff_host_config(old_inspect, new_inspect, renamed, defaults)
    differences += _diff_networks(old_inspect, new_inspect, renamed, defaults is not None)
    differences += _diff_volumes(old_inspect, new_inspect, new_image)
    return differences
