# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshots of a container's volume data, taken before a swap and put back on rollback.

A snapshot is a copy of each local-driver volume's data directory under
``state_dir/snapshots/<container>/<UTC time>-<old container ID>/<volume>/``, made with GNU ``cp -a``
(owners, modes, hard and symbolic links, timestamps, ACLs and xattrs kept; ``--reflink=auto`` where
the filesystem can share blocks). We use cp rather than copying in Python because it is the tool every
Docker host has that keeps all of those, and it is as fast as a copy gets (the floor the benchmark
compares with). A ``snapshot.json`` written after the last volume is copied marks the snapshot
complete; a directory without it is a partial copy that the next run removes.

The checks that can refuse (a volume whose data is not a directory on this host, too little room) run
before anything is touched; the copy itself runs once the old container has stopped, so that nothing
writes to the data while it is copied.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import time

from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError

LABEL_SNAPSHOT = 'patchops.docker.snapshot'
MODES = ('none', 'volumes')
SNAPSHOT_DIR = 'snapshots'
MANIFEST = 'snapshot.json'
# Room kept free on the state directory's filesystem beyond the data itself.
MARGIN_BYTES = 1024 * 1024
MARGIN_RATIO = 0.01


class SnapshotError(PatchopsError):
    """A snapshot cannot be taken or put back; the message is one sentence."""


def wanted(mode, labels):
    """Whether a container's volumes are snapshotted: by the option, or by its own label."""
    return mode == 'volumes' or (labels or {}).get(LABEL_SNAPSHOT) == 'volumes'


def _size_text(size):
    for unit, scale in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if size >= scale:
            return '%.1f %s' % (float(size) / scale, unit)
    return '%d bytes' % size


def _cp(run_command):
    """GNU cp, or a one-sentence refusal: busybox's cp keeps neither xattrs nor ACLs. ``run_command`` is
    AnsibleModule.run_command (a list, no shell; returns rc, stdout, stderr)."""
    if run_command is None:
        raise SnapshotError('Snapshots need a module to run cp with.')
    path = shutil.which('cp')
    if path is None:
        raise SnapshotError('No cp command on this host, so the volumes cannot be copied.')
    rc, version, _err = run_command([path, '--version'])
    if rc != 0 or 'GNU coreutils' not in version:
        raise SnapshotError('The cp on this host is not GNU cp, which a snapshot needs to keep owners, links and '
                            'xattrs.')
    return path


def volumes_of(api, inspect):
    """The container's volumes as ``name``, ``destination``, ``mountpoint``; refuses what cannot be copied here."""
    found = []
    for mount in inspect.get('Mounts') or []:
        if mount.get('Type') != 'volume':
            continue
        name = mount.get('Name')
        volume = api.inspect_volume(name)
        driver = volume.get('Driver') or mount.get('Driver')
        if driver != 'local':
            raise SnapshotError('Volume %s uses the volume driver %s; only local volumes can be snapshotted.'
                                % (name, driver))
        options = volume.get('Options') or {}
        if options.get('type') or options.get('device'):
            raise SnapshotError('Volume %s mounts %s (type %s); only data a local volume keeps on this host\'s '
                                'disk can be snapshotted.' % (name, options.get('device') or 'a filesystem',
                                                              options.get('type') or 'bind'))
        mountpoint = volume.get('Mountpoint') or mount.get('Source')
        if not mountpoint or not os.path.isdir(mountpoint):
            raise SnapshotError('The data of volume %s (%s) is not on the host this module runs on; run it on the '
                                'Docker host, as root.' % (name, mountpoint))
        found.append(dict(name=name, destination=mount.get('Destination'), mountpoint=mountpoint))
    return found


def preflight(api, snapshots, inspect):
    """The volumes a snapshot of the container ``inspect`` copies, or SnapshotError (one sentence) when one cannot
    be copied here, when there is no room, or no GNU cp. Reads only."""
    volumes = volumes_of(api, inspect)
    if volumes:
        _cp(snapshots.run_command)
        snapshots.check_room((inspect.get('Name') or '').lstrip('/'), volumes)
    return volumes


def measure(paths):
    """Bytes (allocated, each inode once) and files under ``paths``, as ``du`` counts them."""
    seen = set()
    total = files = 0
    for top in paths:
        for root, dirs, names in os.walk(top):
            for entry in dirs + names + ([] if root != top else ['.']):
                try:
                    st = os.lstat(os.path.join(root, entry))
                except OSError:
                    continue
                files += 1
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total, files


def _rmtree(path):
    if os.path.lexists(path):
        shutil.rmtree(path)


def _empty(directory):
    """Remove everything inside ``directory``, keeping the directory (a volume's mount point)."""
    for entry in os.listdir(directory):
        path = os.path.join(directory, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def _copy(run_command, cp, source, destination, what):
    """``cp -a source/. destination``: the contents and the top directory's own owner, mode and times."""
    rc, _out, err = run_command([cp, '-a', '--reflink=auto', '--', source.rstrip('/') + '/.', destination])
    if rc != 0:
        lines = (err or '').strip().splitlines()
        reason = lines[-1].split(': ')[-1] if lines else 'cp exited with %d' % rc
        raise SnapshotError('%s failed: %s.' % (what, reason.rstrip('.')))


class Snapshots(object):
    """The snapshots of one host, under ``state_dir/snapshots``; ``run_command`` runs cp (AnsibleModule's)."""

    def __init__(self, state_dir, run_command):
        self.root = os.path.join(state_dir, SNAPSHOT_DIR)
        self.run_command = run_command

    def container_dir(self, name):
        return os.path.join(self.root, name)

    def check_room(self, name, volumes):
        """Refuse, before anything is touched, when the state directory's filesystem cannot hold the data.
        Sets each volume's ``bytes`` (what the snapshot reports, without walking the copy again)."""
        size = files = 0
        for volume in volumes:
            volume['bytes'], count = measure([volume['mountpoint']])
            size += volume['bytes']
            files += count
        probe = self.root
        while not os.path.isdir(probe):
            probe = os.path.dirname(probe) or '/'
        st = os.statvfs(probe)
        free = st.f_bavail * st.f_frsize
        need = size + max(MARGIN_BYTES, int(size * MARGIN_RATIO))
        if need > free:
            raise SnapshotError('Not enough room for a snapshot of the volumes of %s: they hold %s and %s has %s free.'
                                % (name, _size_text(size), probe, _size_text(free)))
        if st.f_files and files + 16 > st.f_favail:
            raise SnapshotError('Not enough inodes for a snapshot of the volumes of %s: they hold %d files and %s has '
                                'room for %d more.' % (name, files, probe, st.f_favail))
        return size, files

    def new_path(self, name, old_id):
        stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
        return os.path.join(self.container_dir(name), '%s-%s' % (stamp, old_id[:12]))

    def take(self, path, name, old_id, volumes, between=None):
        """Copy every volume into ``path`` and mark the snapshot complete; a failure removes the partial copy."""
        began = time.time()
        cp = _cp(self.run_command)
        for directory in (os.path.dirname(os.path.dirname(path)), os.path.dirname(path)):
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            os.chmod(directory, 0o700)
        try:
            os.mkdir(path, 0o700)
            for index, volume in enumerate(volumes):
                if index and between is not None:
                    between()
                _copy(self.run_command, cp, volume['mountpoint'], os.path.join(path, volume['name']),
                      'The snapshot of volume %s' % volume['name'])
            size = sum(v['bytes'] for v in volumes) if all('bytes' in v for v in volumes) else \
                measure([os.path.join(path, v['name']) for v in volumes])[0]
            manifest = dict(container=name, old_id=old_id, created=began, bytes=size,
                            volumes=[dict(name=v['name'], destination=v['destination']) for v in volumes])
            _write(os.path.join(path, MANIFEST), manifest)
        except (SnapshotError, OSError) as exc:
            _rmtree(path)
            if isinstance(exc, SnapshotError):
                raise
            raise SnapshotError('The snapshot of the volumes of %s failed: %s.' % (name, exc.strerror or exc))
        return dict(path=path, bytes=size, seconds=round(time.time() - began, 3))

    def restore(self, path, volumes, between=None):
        """Make each volume's data what the snapshot holds, byte for byte."""
        cp = _cp(self.run_command)
        manifest = read_manifest(path)
        if manifest is None:
            raise SnapshotError('The snapshot %s is incomplete or gone, so the data cannot be put back.' % path)
        have = set(v['name'] for v in manifest['volumes'])
        missing = [v['name'] for v in volumes if v['name'] not in have]
        if missing:
            raise SnapshotError('The snapshot %s holds no copy of volume %s.' % (path, ', '.join(missing)))
        for index, volume in enumerate(volumes):
            if index and between is not None:
                between()
            try:
                _empty(volume['mountpoint'])
            except OSError as exc:
                raise SnapshotError('Emptying volume %s before putting its data back failed: %s.'
                                    % (volume['name'], exc.strerror or exc))
            _copy(self.run_command, cp, os.path.join(path, volume['name']), volume['mountpoint'],
                  'Putting back the data of volume %s' % volume['name'])

    def remove(self, path):
        _rmtree(path)

    def complete(self, name):
        """The container's complete snapshots, oldest first."""
        directory = self.container_dir(name)
        if not os.path.isdir(directory):
            return []
        return [os.path.join(directory, entry) for entry in sorted(os.listdir(directory))
                if read_manifest(os.path.join(directory, entry)) is not None]

    def prune(self, name, keep, protect=()):
        """Keep the newest ``keep`` complete snapshots of a container, and those in ``protect`` (the last run's,
        which rollback_containers may put back); remove older ones and partial copies."""
        directory = self.container_dir(name)
        if not os.path.isdir(directory):
            return []
        complete = self.complete(name)
        removed = []
        for entry in sorted(os.listdir(directory)):
            path = os.path.join(directory, entry)
            if path in protect:
                continue
            if path not in complete or path in complete[:max(0, len(complete) - keep)]:
                _rmtree(path)
                removed.append(path)
        return removed


def read_manifest(path):
    try:
        with open(os.path.join(path, MANIFEST)) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def _write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(data, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
