# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The work of ``package_updates_info``: fetch each release's indexes once, compare every image with them.

Where the indexes come from, per os-release ``id``: the ``mirrors`` option, else the sources the image's own
package manager names (``image_packages_info`` returns them). Debian and Ubuntu: for release CODENAME the
suites ``CODENAME`` and ``CODENAME-updates`` of the archive and ``CODENAME-security`` of the security archive,
each ``dists/SUITE/InRelease`` (signature checked with ``gpgv`` where it and the keyring are present), then
``dists/SUITE/COMPONENT/binary-ARCH/Packages.xz`` (else ``.gz``, else plain) checked against the SHA256
InRelease lists for it. Alpine: ``vX.Y/REPO/ARCH/APKINDEX.tar.gz`` and, where given, the secdb.

Cache: an InRelease (or APKINDEX) is kept in ``cache_dir`` for ``cache_max_age`` seconds; a Packages index
is kept by the hash InRelease names for it, so a suite that did not move costs one small request and
none at all within ``cache_max_age``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import hashlib
import os
import re
import shutil
import tempfile
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, open_url

from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.package_index import (
    PackageIndexError,
    apkindex_from_tar_gz,
    Candidates,
    decompress_index,
    parse_apkindex,
    parse_inrelease,
    parse_packages,
    parse_secfixes,
    verify_index,
)
from ansible_collections.patchops.docker.plugins.module_utils.versions import apk_compare, dpkg_compare

DPKG_DISTRIBUTIONS = ('debian', 'ubuntu')
DEFAULT_COMPONENTS = {'debian': ['main'], 'ubuntu': ['main', 'universe']}
KEYRINGS = {'debian': '/usr/share/keyrings/debian-archive-keyring.gpg',
            'ubuntu': '/usr/share/keyrings/ubuntu-archive-keyring.gpg'}
ALPINE_REPOSITORIES = ('main', 'community')
COMPRESSIONS = ('.xz', '.gz', '')
USER_AGENT = 'patchops.docker package_updates_info'
DEFAULT_CACHE_DIR = '~/.cache/patchops-docker/indexes'


class FetchError(PatchopsError):
    """An index could not be fetched or trusted; one sentence."""


class Fetcher(object):
    """HTTP GETs through a cache directory; counts the requests it really makes."""

    def __init__(self, cache_dir, max_age, timeout):
        self.cache_dir = cache_dir
        self.max_age = max_age
        self.timeout = timeout
        self.requests = 0
        self.fetched = []

    def _path(self, key):
        return os.path.join(self.cache_dir, hashlib.sha256(key.encode('utf-8')).hexdigest())

    def cached(self, key, max_age=None):
        path = self._path(key)
        try:
            if max_age is not None and time.time() - os.path.getmtime(path) > max_age:
                return None
            with open(path, 'rb') as handle:
                return handle.read()
        except (IOError, OSError):
            return None

    def store(self, key, data):
        try:
            if not os.path.isdir(self.cache_dir):
                os.makedirs(self.cache_dir, 0o700)
            handle, tmp = tempfile.mkstemp(dir=self.cache_dir)
            with os.fdopen(handle, 'wb') as out:
                out.write(data)
            os.rename(tmp, self._path(key))
        except (IOError, OSError):
            pass  # a cache that cannot be written only costs the next run a request

    def get(self, url, missing_ok=False):
        """The body of ``url``; None for a 404 when ``missing_ok``; FetchError otherwise."""
        self.requests += 1
        self.fetched.append(url)
        try:
            response = open_url(url, timeout=self.timeout, http_agent=USER_AGENT, follow_redirects='safe')
            try:
                return response.read()
            finally:
                response.close()
        except HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            raise FetchError('%s answered HTTP %d (%s).' % (url, exc.code, exc.reason))
        except URLError as exc:
            reason = getattr(exc, 'reason', exc)
            if missing_ok and isinstance(reason, (IOError, OSError)) and getattr(reason, 'errno', None) == errno.ENOENT:
                return None  # a file:// mirror without that file
            raise FetchError('%s cannot be reached: %s.' % (url, reason))
        except (UrlsConnectionError, IOError, OSError, ValueError) as exc:
            raise FetchError('%s cannot be fetched: %s.' % (url, exc))


def _gpgv_verify(data, keyring, run_command):
    """True when ``gpgv`` verifies the clear-signed ``data`` with ``keyring``; None when either is missing (or no
    ``run_command``, AnsibleModule's, to run it with)."""
    gpgv = shutil.which('gpgv')
    if not gpgv or not keyring or not os.path.isfile(keyring) or run_command is None:
        return None
    handle, path = tempfile.mkstemp(prefix='patchops-inrelease-')
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(data)
        rc = run_command([gpgv, '--keyring', keyring, path])[0]
        return rc == 0
    finally:
        os.unlink(path)


class Indexes(object):
    """Each release's indexes, fetched once per run (through the cache) and shared by every image."""

    def __init__(self, fetcher, mirrors, components, run_command=None):
        self.fetcher = fetcher
        self.run_command = run_command
        self.mirrors = mirrors or {}
        self.components = components
        self._releases = {}
        self.suites = []  # what was read: url, suite, signature

    def mirror_for(self, image):
        os_id = image['os']['id']
        given = self.mirrors.get(os_id)
        if given:
            return given
        sources = image.get('sources') or {}
        if sources.get('archive'):
            return sources
        raise FetchError('No mirror for %s: the image names no package sources and mirrors.%s is not set.'
                         % (os_id, os_id))

    def candidates(self, image):
        """The Candidates of an image's release (and architectures), built once per run."""
        os_id = image['os']['id']
        mirror = self.mirror_for(image)
        if os_id in DPKG_DISTRIBUTIONS:
            codename = image['os'].get('version_codename')
            if not codename:
                raise FetchError('The image\'s os-release names no release codename, so its %s suites are unknown.'
                                 % os_id)
            arches = _arches(image['packages'], ('all',))
            key = (os_id, codename, mirror.get('archive'), mirror.get('security'), tuple(arches))
            if key not in self._releases:
                self._releases[key] = self._dpkg_release(os_id, codename, mirror, arches)
        else:
            version = image['os'].get('version_id') or ''
            match = re.match(r'^(\d+)\.(\d+)', version)
            if not match:
                raise FetchError('The image\'s os-release version %r names no Alpine release.' % version)
            branch = 'v%s.%s' % match.groups()
            arches = _arches(image['packages'], ('noarch',))
            key = (os_id, branch, mirror.get('archive'), mirror.get('secdb'), tuple(arches))
            if key not in self._releases:
                self._releases[key] = self._apk_release(branch, mirror, arches)
        found = self._releases[key]
        if isinstance(found, PatchopsError):
            raise found
        return found

    def _dpkg_release(self, os_id, codename, mirror, arches):
        if not mirror.get('security'):
            return FetchError('No security archive for %s: mirrors.%s.security is not set and the image names none.'
                              % (os_id, os_id))
        components = self.components or DEFAULT_COMPONENTS[os_id]
        keyring = mirror.get('keyring') or KEYRINGS.get(os_id)
        indexes = []
        try:
            for root, suite, security in ((mirror['archive'], codename, False),
                                          (mirror['archive'], codename + '-updates', False),
                                          (mirror['security'], codename + '-security', True)):
                release, signature = self._inrelease(root.rstrip('/'), suite, keyring)
                packages = {}
                for component in components:
                    for arch in arches:
                        for name, entries in self._packages(root.rstrip('/'), suite, release, component,
                                                            arch).items():
                            packages.setdefault(name, []).extend(entries)
                indexes.append(dict(suite=suite, security=security, packages=packages, priority=release['priority']))
                self.suites.append(dict(url='%s/dists/%s' % (root.rstrip('/'), suite), suite=suite,
                                        signature=signature))
        except (FetchError, PackageIndexError) as exc:
            return FetchError(str(exc))
        return Candidates(indexes, dpkg_compare)

    def _inrelease(self, root, suite, keyring):
        url = '%s/dists/%s/InRelease' % (root, suite)
        data = self.fetcher.cached(url, self.fetcher.max_age)
        if data is None:
            data = self.fetcher.get(url)
            self.fetcher.store(url, data)
        release = parse_inrelease(data, 'The InRelease file of %s' % suite)
        if release['valid_until_epoch'] and release['valid_until_epoch'] < time.time():
            raise FetchError('The InRelease file of %s at %s expired on %s (Valid-Until): the mirror is stale.'
                             % (suite, root, release['valid_until']))
        verified = _gpgv_verify(data, keyring, self.run_command)
        if verified is False:
            raise FetchError('The InRelease file of %s at %s has no valid signature from %s.' % (suite, root, keyring))
        return release, 'verified' if verified else 'not checked'

    def _packages(self, root, suite, release, component, arch):
        base = '%s/binary-%s/Packages' % (component, arch)
        listed = [base + suffix for suffix in COMPRESSIONS if base + suffix in release['sha256']]
        what = 'The index %%s of %s' % suite
        for path in listed:  # one the cache holds at the hash InRelease names: no request at all
            data = self.fetcher.cached('sha256:' + release['sha256'][path][1])
            if data is not None:
                return parse_packages(decompress_index(path, data), what % path)
        for path in listed:  # else the first the mirror serves
            data = self.fetcher.get('%s/dists/%s/%s' % (root, suite, path), missing_ok=True)
            if data is None:
                continue
            verify_index(release, path, data, 'The index %s of %s at %s' % (path, suite, root))
            self.fetcher.store('sha256:' + release['sha256'][path][1], data)
            return parse_packages(decompress_index(path, data), what % path)
        raise FetchError('The mirror %s serves no index %s of %s that its InRelease lists.' % (root, base, suite))

    def _apk_release(self, branch, mirror, arches):
        indexes = []
        try:
            for repository in ALPINE_REPOSITORIES:
                packages = {}
                for arch in arches:
                    url = '%s/%s/%s/%s/APKINDEX.tar.gz' % (mirror['archive'].rstrip('/'), branch, repository, arch)
                    data = self.fetcher.cached(url, self.fetcher.max_age)
                    if data is None:
                        data = self.fetcher.get(url, missing_ok=repository != 'main')
                        if data is None:
                            continue
                        self.fetcher.store(url, data)
                    where = '%s/%s' % (branch, repository)
                    parsed = parse_apkindex(apkindex_from_tar_gz(data, 'The APKINDEX.tar.gz of %s' % where))
                    for name, entries in parsed.items():
                        packages.setdefault(name, []).extend(entries)
                    self.suites.append(dict(url=url, suite='%s/%s' % (branch, repository), signature='not checked'))
                indexes.append(dict(suite='%s/%s' % (branch, repository), security=False, packages=packages))
            secfixes = None
            if mirror.get('secdb'):
                secfixes = {}
                for repository in ALPINE_REPOSITORIES:
                    url = '%s/%s/%s.json' % (mirror['secdb'].rstrip('/'), branch, repository)
                    data = self.fetcher.cached(url, self.fetcher.max_age)
                    if data is None:
                        data = self.fetcher.get(url, missing_ok=True)
                        if data is None:
                            continue
                        self.fetcher.store(url, data)
                    for name, entries in parse_secfixes(data).items():
                        secfixes.setdefault(name, []).extend(entries)
        except (FetchError, PackageIndexError) as exc:
            return FetchError(str(exc))
        return Candidates(indexes, apk_compare, secfixes)


def _arches(packages, independent):
    arches = sorted(set(p.get('arch') for p in packages if p.get('arch') and p.get('arch') not in independent))
    return arches or ['amd64']


def compare_image(indexes, image):
    """One image's entry: ``updates``, ``package_updates``, ``security_updates``, ``error``."""
    entry = dict(image_id=image.get('image_id'), os=image.get('os'), updates=[], package_updates=None,
                 security_updates=None, error=None)
    if image.get('error'):
        entry['error'] = image['error']  # its packages were not read
        return entry
    manager = image.get('package_manager')
    if manager is None:
        entry.update(package_updates=0, security_updates=0)
        return entry  # nothing a package manager installed, so nothing to update
    os_id = (image.get('os') or {}).get('id')
    supported = {'dpkg': DPKG_DISTRIBUTIONS, 'apk': ('alpine',)}.get(manager, ())
    if os_id not in supported:
        entry['error'] = ('Comparing %s packages of %s is not supported; Debian and Ubuntu (dpkg) and Alpine (apk) '
                          'are.' % (manager, os_id or 'an unknown distribution'))
        return entry
    try:
        candidates = indexes.candidates(image)
    except PatchopsError as exc:
        entry['error'] = str(exc)
        return entry
    updates = candidates.pending_updates(image.get('packages') or [])
    unknown_security = manager == 'apk' and candidates.secfixes is None
    for update in updates:
        update.pop('suites', None)
        if unknown_security:
            update['security'] = None
    entry['updates'] = updates
    entry['package_updates'] = len(updates)
    entry['security_updates'] = None if unknown_security else sum(1 for u in updates if u['security'])
    return entry


def summarize(images):
    return dict(images=len(images),
                with_security_updates=sum(1 for i in images if i['security_updates']),
                security_updates=sum(i['security_updates'] or 0 for i in images),
                unknown=sum(1 for i in images if i['error']))


def distinct_images(images):
    """The images of one or more image_packages_info results, each image ID once (the first entry wins)."""
    seen, found = set(), []
    for image in images:
        if not isinstance(image, dict) or not image.get('image_id') and not image.get('os'):
            raise PatchopsError('images must be the images list of image_packages_info results (dicts with '
                                'image_id, os, package_manager and packages).')
        if image.get('image_id') in seen:
            continue
        seen.add(image.get('image_id'))
        if image.get('os') is None and image.get('package_manager') and not image.get('error'):
            image = dict(image, error='The image has no os-release file, so its distribution is unknown.')
        found.append(image)
    return found
