# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read an image's package database and os-release without running it (``image_packages_info``).

For each image a container is created but never started (no network, a command that does not exist, a
label that marks it ours), the few files that matter are read through the archive API
(``GET /containers/{id}/archive``, symlinks followed as the daemon resolves them), and the container is
removed with the anonymous volumes its creation made. Nothing of the image runs and nothing is left.

Reading single files this way costs a few small requests per image, where ``docker export`` streams the
whole filesystem; the image's layers are never unpacked on the host.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import os
import posixpath
import re
import struct
import tarfile
import tempfile
import uuid

from ansible_collections.patchops.docker.plugins.module_utils.client import DockerException, RequestException, not_found
from ansible_collections.patchops.docker.plugins.module_utils.client import short_reason
from ansible_collections.patchops.docker.plugins.module_utils.package_db import (
    PackageDatabaseError,
    parse_apk_installed,
    parse_dpkg_status,
    parse_dpkg_status_d,
    parse_os_release,
)

TEMP_LABEL = 'patchops.docker.temporary'
NEVER_RUN = ['/patchops-docker-reads-files-only']
MAX_FILE = 256 * 1024 * 1024
MAX_LINKS = 8

OS_RELEASE = ('etc/os-release', 'usr/lib/os-release')
DPKG_STATUS = 'var/lib/dpkg/status'
DPKG_STATUS_D = 'var/lib/dpkg/status.d'
APK_INSTALLED = 'lib/apk/db/installed'
RPM_SQLITE = ('usr/lib/sysimage/rpm/rpmdb.sqlite', 'var/lib/rpm/rpmdb.sqlite')
RPM_OTHER = (('var/lib/rpm/Packages', 'Berkeley DB'), ('usr/lib/sysimage/rpm/Packages.db', 'ndb'),
             ('var/lib/rpm/Packages.db', 'ndb'))
APT_SOURCES = ('etc/apt/sources.list', 'etc/apt/sources.list.d')
APK_REPOSITORIES = 'etc/apk/repositories'

# rpm header tags and types (rpm's lib/rpmtag.h)
RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH, RPMTAG_ARCH, RPMTAG_SOURCERPM = 1000, 1001, 1002, 1003, \
    1022, 1044
RPM_INT32, RPM_STRING, RPM_I18NSTRING = 4, 6, 9


class ImageFiles(object):
    """Files of one image, read through a created, never started, container."""

    def __init__(self, api, container_id):
        self.api = api
        self.container_id = container_id

    def read(self, path, depth=0):
        """{relative name: bytes} of the regular files at ``path`` (a file or a directory, one level), or None when
        the image has nothing there."""
        try:
            stream, stat = self.api.get_archive(self.container_id, '/' + path)
        except DockerException as exc:
            if not_found(exc):
                return None
            raise
        target = (stat or {}).get('linkTarget')
        if target and depth < MAX_LINKS:
            target = target if target.startswith('/') else posixpath.join(posixpath.dirname('/' + path), target)
            return self.read(posixpath.normpath(target).lstrip('/'), depth + 1)
        data = io.BytesIO()
        for chunk in stream:
            data.write(chunk)
            if data.tell() > MAX_FILE:
                raise PackageDatabaseError('/%s is larger than %d MiB; it is not read.' % (path, MAX_FILE >> 20))
        data.seek(0)
        found = {}
        with tarfile.open(fileobj=data, mode='r:') as archive:
            for member in archive:
                if member.isfile():
                    found[member.name.split('/', 1)[1] if '/' in member.name else member.name] = \
                        archive.extractfile(member).read()
        return found

    def read_file(self, path):
        files = self.read(path)
        if not files:
            return None
        return next(iter(files.values()))


def read_image(api, image_id):
    """What an image holds: ``os``, ``package_manager``, ``packages``, ``sources``, ``error`` (one sentence)."""
    entry = dict(os=None, package_manager=None, packages=[], sources={}, error=None)
    try:
        container = api.create_container(image_id, command=NEVER_RUN, entrypoint=[], network_disabled=True,
                                         labels={TEMP_LABEL: 'image_packages_info'},
                                         name='patchops-read-%s' % uuid.uuid4().hex[:12],
                                         host_config=api.create_host_config(network_mode='none'))
    except (DockerException, RequestException) as exc:
        entry['error'] = 'A container to read the image from could not be created: %s.' % short_reason(exc)
        return entry
    try:
        files = ImageFiles(api, container['Id'])
        try:
            _read_into(entry, files)
        except PackageDatabaseError as exc:
            entry['error'] = str(exc)
            entry['packages'] = []
    except (DockerException, RequestException) as exc:
        entry['error'] = 'Reading the image failed: %s.' % short_reason(exc)
        entry['packages'] = []
    finally:
        try:
            api.remove_container(container['Id'], v=True, force=True)
        except (DockerException, RequestException):
            pass  # marked with TEMP_LABEL; the next run removes it (remove_leftovers)
    return entry


def _read_into(entry, files):
    for path in OS_RELEASE:
        data = files.read_file(path)
        if data is not None:
            entry['os'] = parse_os_release(data)
            break
    status = files.read_file(DPKG_STATUS)
    if status is not None:
        entry['package_manager'] = 'dpkg'
        entry['packages'] = parse_dpkg_status(status)
    else:
        status_d = files.read(DPKG_STATUS_D)
        if status_d:
            entry['package_manager'] = 'dpkg'
            entry['packages'] = parse_dpkg_status_d(status_d)
    if entry['package_manager'] is None:
        installed = files.read_file(APK_INSTALLED)
        if installed is not None:
            entry['package_manager'] = 'apk'
            entry['packages'] = parse_apk_installed(installed)
    if entry['package_manager'] is None:
        _read_rpm(entry, files)
    if entry['package_manager'] == 'dpkg':
        entry['sources'] = apt_sources(files)
    elif entry['package_manager'] == 'apk':
        entry['sources'] = apk_sources(files.read_file(APK_REPOSITORIES))
    for package in entry['packages']:
        package.setdefault('source', package['name'])


def _read_rpm(entry, files):
    for path in RPM_SQLITE:
        data = files.read_file(path)
        if data is not None:
            entry['package_manager'] = 'rpm'
            entry['packages'] = parse_rpm_sqlite(data)
            return
    for path, kind in RPM_OTHER:
        if files.read_file(path) is not None:
            entry['package_manager'] = 'rpm'
            raise PackageDatabaseError('The rpm database /%s is in %s format, which this module cannot read; only '
                                       'the sqlite database of current releases is read.' % (path, kind))


# --------------------------------------------------------------------------------------------- rpm

def _rpm_header(blob):
    """{tag: value} of the tags we need from one rpm header blob (rpm's on-disk header without its magic)."""
    if len(blob) < 8:
        raise ValueError('short header')
    count, size = struct.unpack('>ii', blob[:8])
    store = 8 + 16 * count
    if count < 0 or size < 0 or store + size > len(blob):
        raise ValueError('header sizes out of range')
    wanted = (RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH, RPMTAG_ARCH, RPMTAG_SOURCERPM)
    values = {}
    for index in range(count):
        tag, kind, offset, _count = struct.unpack('>iiii', blob[8 + 16 * index:24 + 16 * index])
        if tag not in wanted or offset < 0 or offset >= size:
            continue
        start = store + offset
        if kind in (RPM_STRING, RPM_I18NSTRING):
            end = blob.index(b'\0', start)
            values[tag] = blob[start:end].decode('utf-8', 'replace')
        elif kind == RPM_INT32:
            values[tag] = struct.unpack('>i', blob[start:start + 4])[0]
    return values


def parse_rpm_sqlite(data):
    """The packages of an rpm sqlite database (``rpmdb.sqlite``), as the other parsers return them."""
    try:
        # only rpm images need it
        import sqlite3  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise PackageDatabaseError('The rpm database is sqlite and this Python has no sqlite3 module to read it.')
    handle, path = tempfile.mkstemp(prefix='patchops-rpmdb-')
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(data)
        try:
            connection = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
            try:
                rows = connection.execute('SELECT blob FROM Packages').fetchall()
            finally:
                connection.close()
        except sqlite3.Error as exc:
            raise PackageDatabaseError('The rpm database rpmdb.sqlite cannot be read: %s.' % exc)
    finally:
        os.unlink(path)
    packages = []
    for (blob,) in rows:
        try:
            header = _rpm_header(bytes(blob))
        except (ValueError, struct.error):
            raise PackageDatabaseError('The rpm database rpmdb.sqlite holds a package header that is not in rpm\'s '
                                       'format.')
        name = header.get(RPMTAG_NAME)
        if not name or name == 'gpg-pubkey':
            continue
        version = '%s-%s' % (header.get(RPMTAG_VERSION), header.get(RPMTAG_RELEASE))
        if header.get(RPMTAG_EPOCH):
            version = '%d:%s' % (header[RPMTAG_EPOCH], version)
        source = header.get(RPMTAG_SOURCERPM) or ''
        source_name = re.sub(r'-[^-]+-[^-]+\.(no)?src\.rpm$', '', source) if source else name
        packages.append(dict(name=name, version=version, source=source_name or name, source_version=version,
                             arch=header.get(RPMTAG_ARCH)))
    return packages


# ----------------------------------------------------------------------------------------- sources

def _apt_entries(files):
    """(uri, suite) pairs of an image's apt sources: one-line ``deb`` entries and deb822 ``.sources`` files."""
    entries = []
    for name, data in sorted(files.items()):
        text = data.decode('utf-8', 'replace')
        if name.endswith('.sources'):
            for paragraph in re.split(r'\n\s*\n', text):
                fields = {}
                for line in paragraph.splitlines():
                    match = re.match(r'^([A-Za-z-]+):\s*(.*)$', line)
                    if match:
                        fields[match.group(1).lower()] = match.group(2)
                if 'deb' not in fields.get('types', '').split() or fields.get('enabled', 'yes').lower() == 'no':
                    continue
                for uri in fields.get('uris', '').split():
                    entries.extend((uri, suite) for suite in fields.get('suites', '').split())
        elif name.endswith('.list') or name == 'sources.list':
            for line in text.splitlines():
                line = re.sub(r'\[[^\]]*\]', ' ', line.split('#', 1)[0]).split()
                if len(line) >= 3 and line[0] == 'deb':
                    entries.append((line[1], line[2]))
    return entries


def apt_sources(files):
    """``{archive, security}``: the archive roots an image's apt sources name for its release and its security
    suite (``CODENAME-security``, or Debian's older ``CODENAME/updates``); None where it names none."""
    found = {}
    for path in APT_SOURCES:
        for name, data in (files.read(path) or {}).items():
            found[posixpath.basename(name) or name] = data
    archive = security = None
    for uri, suite in _apt_entries(found):
        uri = uri.rstrip('/')
        if suite.endswith('-security') or suite.endswith('/updates'):
            security = security or uri
        else:
            archive = archive or uri
    return dict(archive=archive, security=security)


def apk_sources(data):
    """``{archive}``: the root (above ``vX.Y/REPO``) of the first repository in ``/etc/apk/repositories``."""
    for line in (data or b'').decode('utf-8', 'replace').splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        line = re.sub(r'^@\S+\s+', '', line)
        match = re.match(r'^(\S+?)/(v\d+\.\d+|edge)/[^/]+/?$', line)
        if match:
            return dict(archive=match.group(1))
    return dict(archive=None)


def remove_leftovers(api):
    """Remove containers an earlier, killed, run created to read images (marked with TEMP_LABEL)."""
    try:
        leftovers = api.containers(all=True, filters={'label': TEMP_LABEL})
    except (DockerException, RequestException):
        return
    for summary in leftovers:
        try:
            api.remove_container(summary['Id'], v=True, force=True)
        except (DockerException, RequestException):
            continue
