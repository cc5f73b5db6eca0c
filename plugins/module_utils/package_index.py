# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A distribution's package indexes, and which installed packages they have newer versions of.

package_updates_info fetches the indexes (once per run, on the controller) and
compares each image's packages (from image_packages_info) with them here:

* Debian and Ubuntu: ``parse_inrelease`` reads a suite's ``InRelease`` (or
  ``Release``) file: suite, codename, dates, whether apt would upgrade from it
  on its own, and the SHA256 of every index it lists; ``verify_index`` checks a
  fetched index against it and ``decompress_index`` unpacks it;
  ``parse_packages`` reads a ``Packages`` index. The signature of InRelease is
  verified elsewhere (with gpgv): here its armour is only taken off.
* Alpine: ``apkindex_from_tar_gz`` takes the ``APKINDEX`` out of a repository's
  ``APKINDEX.tar.gz``, ``parse_apkindex`` reads it; ``parse_secfixes`` reads the
  security database (secdb JSON) that says which version fixed which CVEs.
* ``pending_updates(packages, indexes, compare)``: for each installed package,
  the version apt (or apk) would upgrade it to, and whether that is a security
  update. ``Candidates`` does the same but remembers, across the images of a run,
  what it worked out for each package name and architecture.

How apt decides, and so how we do (apt's ``pkgPolicy::GetCandidateVer``): every
version of the package in any index, and the installed one, is given a
priority: 500 for an index (1 if its Release says ``NotAutomatic: yes``, 100
with ``ButAutomaticUpgrades: yes``), 100 for the installed version unless an
index also offers it. Walking the versions from the newest down, the candidate
is the first with the highest priority seen so far, and the walk stops at the
installed version (no downgrades below priority 1000). A package is upgradable
when its candidate is newer than what is installed. With the default indexes
(all at 500) that is simply the newest version there is, when it is newer. An
index entry counts for an installed package of the same name when their
architectures are equal or either is ``all`` (``noarch`` for apk).

Security: a Debian or Ubuntu update is a security update when an index marked
``security`` (the ``CODENAME-security`` suite) offers the candidate version,
also when the main archive offers the same version too (``apt list
--upgradable`` then names both suites). Alpine has no security repository:
an update is a security update when the secdb lists CVEs for a version after the
installed one, up to and including the candidate.

Pure logic, no network: runs on the controller (standard library).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import bz2
import gzip
import hashlib
import io
import json
import lzma
import re
import tarfile
import zlib
from email.utils import mktime_tz, parsedate_tz
from functools import cmp_to_key

from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.package_db import PackageDatabaseError, deb822_paragraphs
from ansible_collections.patchops.docker.plugins.module_utils.package_db import _text

PRIORITY_DEFAULT = 500
PRIORITY_INSTALLED = 100
PRIORITY_NOT_AUTOMATIC = 1
PRIORITY_BUT_AUTOMATIC_UPGRADES = 100
ARCH_INDEPENDENT = frozenset(('all', 'noarch'))

_ARMOUR_BEGIN = '-----BEGIN PGP SIGNED MESSAGE-----'
_SIGNATURE_BEGIN = '-----BEGIN PGP SIGNATURE-----'
_BLANK_LINE = re.compile(br'\n[ \t]+(?=\n)')
_FIELD_START = re.compile(br'[^\s:#][^\s:]*:')
_PACKAGES_FIELD = re.compile(br'^(Package|Version|Architecture|Source):[ \t]*([^\n]*)', re.M)
_SOURCE_NAME = re.compile(br'^(\S+)')
_APK_LINE = re.compile(r'^([A-Za-z]):(.*)$')


class PackageIndexError(PatchopsError, ValueError):
    """A package index or release file is not what it should be."""


# ------------------------------------------------------------------------------------- Release

def strip_clearsign(data, what='The InRelease file'):
    """The signed text of an OpenPGP clear-signed message (a plain Release file as it is).

    Takes off the armour header lines and the signature block and undoes dash escaping
    (RFC 4880, 7.1). Does not verify anything.
    """
    text = _text(data).replace('\r\n', '\n')
    if not text.lstrip().startswith(_ARMOUR_BEGIN):
        return text
    lines = text.lstrip().split('\n')
    i = 1
    while i < len(lines) and lines[i].strip():  # armour headers ("Hash: SHA512") up to a blank line
        i += 1
    body = []
    for line in lines[i + 1:]:
        if line.startswith(_SIGNATURE_BEGIN):
            return '\n'.join(body) + '\n'
        body.append(line[2:] if line.startswith('- ') else line)
    raise PackageIndexError('%s is clear-signed but has no signature block.' % what)


def _epoch(value):
    if not value:
        return None
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    if parsed[9] is None:
        parsed = parsed[:9] + (0,)
    return mktime_tz(parsed)


def _yes(value):
    return (value or '').strip().lower() == 'yes'


def parse_inrelease(data, what='The InRelease file'):
    """A suite's InRelease (or Release) file as a dict.

    Keys: ``origin``, ``label``, ``suite``, ``codename``, ``version``, ``date`` and
    ``valid_until`` (as written), ``date_epoch`` and ``valid_until_epoch`` (seconds, or
    None), ``architectures`` and ``components`` (lists), ``not_automatic``,
    ``but_automatic_upgrades``, ``acquire_by_hash`` (booleans), ``priority`` (what apt
    gives its indexes) and ``sha256``: {path: (size, hex digest)}.
    """
    text = strip_clearsign(data, what)
    try:
        paragraphs = deb822_paragraphs(text, what)
    except PackageDatabaseError as exc:
        raise PackageIndexError(str(exc))
    if not paragraphs:
        raise PackageIndexError('%s is empty.' % what)
    fields = paragraphs[0][1]
    if 'sha256' not in fields:
        raise PackageIndexError('%s has no SHA256 list of the indexes.' % what)
    sha256 = {}
    for line in fields['sha256'].split('\n'):
        if not line.strip():
            continue
        words = line.split()
        if len(words) != 3 or not re.match(r'^[0-9a-fA-F]{64}$', words[0]) or not words[1].isdigit():
            raise PackageIndexError('%s has a SHA256 line that is not "hash size path": %r.' % (what, line.strip()))
        sha256[words[2]] = (int(words[1]), words[0].lower())
    not_automatic = _yes(fields.get('notautomatic'))
    but_automatic = _yes(fields.get('butautomaticupgrades'))
    if not_automatic:
        priority = PRIORITY_BUT_AUTOMATIC_UPGRADES if but_automatic else PRIORITY_NOT_AUTOMATIC
    else:
        priority = PRIORITY_DEFAULT
    return {
        'origin': fields.get('origin'),
        'label': fields.get('label'),
        'suite': fields.get('suite'),
        'codename': fields.get('codename'),
        'version': fields.get('version'),
        'date': fields.get('date'),
        'date_epoch': _epoch(fields.get('date')),
        'valid_until': fields.get('valid-until'),
        'valid_until_epoch': _epoch(fields.get('valid-until')),
        'architectures': fields.get('architectures', '').split(),
        'components': fields.get('components', '').split(),
        'not_automatic': not_automatic,
        'but_automatic_upgrades': but_automatic,
        'acquire_by_hash': _yes(fields.get('acquire-by-hash')),
        'priority': priority,
        'sha256': sha256,
    }


def verify_index(release, path, data, what=None):
    """Check a fetched index (``path`` relative to the suite, e.g. ``main/binary-amd64/Packages.xz``)
    against the size and SHA256 its InRelease lists; PackageIndexError when it does not match."""
    suite = release.get('codename') or release.get('suite') or 'the suite'
    what = what or 'The index %s of %s' % (path, suite)
    if path not in release['sha256']:
        raise PackageIndexError('%s is not listed in the InRelease file of %s.' % (what, suite))
    size, digest = release['sha256'][path]
    if len(data) != size:
        raise PackageIndexError('%s has %d bytes where InRelease says %d: it does not match InRelease.'
                                % (what, len(data), size))
    if hashlib.sha256(data).hexdigest() != digest:
        raise PackageIndexError('%s does not match the SHA256 hash in the InRelease file of %s.' % (what, suite))


def decompress_index(path, data):
    """An index's bytes, unpacked by the name's suffix (``.xz``, ``.gz``, ``.bz2``, ``.lzma`` or none)."""
    try:
        if path.endswith('.xz'):
            return lzma.decompress(data, format=lzma.FORMAT_XZ)
        if path.endswith('.lzma'):
            return lzma.decompress(data, format=lzma.FORMAT_ALONE)
        if path.endswith('.gz'):
            return gzip.decompress(data)
        if path.endswith('.bz2'):
            return bz2.decompress(data)
    except (lzma.LZMAError, OSError, EOFError, ValueError) as exc:
        raise PackageIndexError('The index %s cannot be unpacked: %s.' % (path, str(exc).rstrip('.')))
    return data


# ------------------------------------------------------------------------------------ Packages

def parse_packages(data, what='The Packages index'):
    """A Debian ``Packages`` index as {name: [(version, arch, source name), ...]} in file order.

    Reads the bytes as they are (the fields it needs are ASCII; values are decoded as
    UTF-8): a 50 MB index of a release takes about half a second.
    """
    raw = bytes(data) if isinstance(data, (bytes, bytearray)) else data.encode('utf-8')
    if b'\r' in raw:
        raw = raw.replace(b'\r\n', b'\n')
    if _BLANK_LINE.search(raw):
        raw = _BLANK_LINE.sub(b'\n', raw)  # a line of blanks separates paragraphs too
    index = {}
    line = 1
    for paragraph in raw.split(b'\n\n'):
        start = line
        line += paragraph.count(b'\n') + 2
        stripped = paragraph.lstrip(b'\n')
        if not stripped:
            continue
        start += len(paragraph) - len(stripped)
        if _FIELD_START.match(stripped) is None:
            raise PackageIndexError('%s is not in deb822 format near line %d.' % (what, start))
        fields = dict(_PACKAGES_FIELD.findall(stripped))
        name, version = fields.get(b'Package', b'').rstrip(), fields.get(b'Version', b'').rstrip()
        if not name or not version:
            raise PackageIndexError('%s has a paragraph without %s near line %d.'
                                    % (what, 'a Package field' if not name else 'a Version field', start))
        source = fields.get(b'Source')
        source = _SOURCE_NAME.match(source).group(1) if source else name
        arch = fields.get(b'Architecture', b'').rstrip()
        index.setdefault(name.decode('utf-8', 'replace'), []).append(
            (version.decode('utf-8', 'replace'), arch.decode('utf-8', 'replace') if arch else None,
             source.decode('utf-8', 'replace')))
    return index


# ------------------------------------------------------------------------------------- APKINDEX

def apkindex_from_tar_gz(data, what='The APKINDEX.tar.gz'):
    """The text of the ``APKINDEX`` member of a repository's APKINDEX.tar.gz.

    That file is two gzip streams one after the other (the signature's tar segment,
    then the index's), which read as one tar archive.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as archive:
            for member in archive:
                if member.isfile() and member.name == 'APKINDEX':
                    return _text(archive.extractfile(member).read())
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise PackageIndexError('%s is not a gzip-compressed tar archive: %s.' % (what, str(exc).rstrip('.')))
    raise PackageIndexError('%s has no APKINDEX member.' % what)


def parse_apkindex(data, what='The APKINDEX'):
    """An Alpine ``APKINDEX`` as {name: [(version, arch, origin), ...]}: ``X:value`` blocks
    (``P`` name, ``V`` version, ``A`` architecture, ``o`` origin) separated by blank lines."""
    index = {}
    current = {}
    start = 0

    def finish():
        if not current:
            return
        if not current.get('P') or not current.get('V'):
            raise PackageIndexError('%s has a package without a %s line near line %d.'
                                    % (what, 'P (name)' if not current.get('P') else 'V (version)', start))
        index.setdefault(current['P'], []).append((current['V'], current.get('A') or None,
                                                   current.get('o') or current['P']))

    for number, line in enumerate(_text(data).splitlines(), 1):
        if not line.strip():
            finish()
            current = {}
            continue
        match = _APK_LINE.match(line)
        if match is None:
            raise PackageIndexError('%s is not in its "X:value" format near line %d.' % (what, number))
        if not current:
            start = number
        current.setdefault(match.group(1), match.group(2))
    finish()
    return index


def parse_secfixes(data, what='The Alpine secdb file'):
    """Alpine's security database (``secdb.alpinelinux.org/vX.Y/main.json``) as
    {origin name: [(version, [CVE, ...]), ...]}.

    The JSON is ``{"packages": [{"pkg": {"name": ..., "secfixes": {version: [CVE ...]}}}]}``;
    the version ``0`` lists issues that never affected Alpine's package and is left out.
    A secfixes entry may carry more than the CVE ("CVE-2023-1234 CVE-2023-1235", or a
    note): every word of it that names an issue is kept.
    """
    try:
        document = json.loads(_text(data))
    except ValueError as exc:
        raise PackageIndexError('%s is not JSON: %s.' % (what, str(exc).rstrip('.')))
    if not isinstance(document, dict) or not isinstance(document.get('packages'), list):
        raise PackageIndexError('%s has no "packages" list.' % what)
    fixes = {}
    for item in document['packages']:
        pkg = item.get('pkg') if isinstance(item, dict) else None
        if not isinstance(pkg, dict) or not isinstance(pkg.get('name'), str):
            raise PackageIndexError('%s has a package entry without a "pkg" name.' % what)
        secfixes = pkg.get('secfixes') or {}
        if not isinstance(secfixes, dict):
            raise PackageIndexError('%s has secfixes of %s that are not a mapping of versions.' % (what, pkg['name']))
        entries = fixes.setdefault(pkg['name'], [])
        for version, issues in secfixes.items():
            if str(version) == '0':
                continue
            ids = []
            for issue in issues or ():
                ids.extend(word for word in str(issue).split() if re.match(r'^[A-Z][A-Z0-9]*-[0-9][0-9-]*', word))
            if ids:
                entries.append((str(version), ids))
    return fixes


# ---------------------------------------------------------------------------------- comparison

def arch_matches(installed, offered):
    """Whether an index entry of architecture ``offered`` can upgrade a package installed as ``installed``."""
    return not installed or not offered or installed == offered or \
        installed in ARCH_INDEPENDENT or offered in ARCH_INDEPENDENT


class Candidates(object):
    """The indexes of one release and what apt (or apk) would upgrade each package to.

    ``indexes``: a list of {``suite``, ``security`` (bool), ``packages`` (as
    ``parse_packages`` or ``parse_apkindex`` return), ``priority`` (optional, 500)}.
    ``compare``: ``versions.dpkg_compare`` or ``versions.apk_compare``.
    ``secfixes``: as ``parse_secfixes`` returns, for Alpine (optional).
    What is worked out per (name, architecture) is kept, so one instance serves every
    image of a release in a run.
    """

    def __init__(self, indexes, compare, secfixes=None):
        self.indexes = list(indexes)
        self.compare = compare
        self.secfixes = secfixes
        self._offers = {}
        self._candidates = {}

    def offers(self, name, arch):
        """[(version, priority, [(suite, security), ...])] newest first, each version once."""
        key = (name, arch)
        cached = self._offers.get(key)
        if cached is not None:
            return cached
        compare = self.compare
        found = []
        for index in self.indexes:
            priority = index.get('priority', PRIORITY_DEFAULT)
            source = (index['suite'], bool(index.get('security')))
            for version, offered_arch, _source in index['packages'].get(name, ()):
                if not arch_matches(arch, offered_arch):
                    continue
                for entry in found:
                    if compare(entry[0], version) == 0:
                        entry[1] = max(entry[1], priority)
                        if source not in entry[2]:
                            entry[2].append(source)
                        break
                else:
                    found.append([version, priority, [source]])
        if len(found) > 1:
            found.sort(key=_cmp_key(compare), reverse=True)
        result = [(v, p, tuple(s)) for v, p, s in found]
        self._offers[key] = result
        return result

    def candidate(self, name, arch, installed):
        """apt's candidate for a package installed at ``installed`` when it is newer:
        (version, ((suite, security), ...)), else None."""
        key = (name, arch, installed)
        if key not in self._candidates:
            self._candidates[key] = self._candidate(name, arch, installed)
        return self._candidates[key]

    def _candidate(self, name, arch, installed):
        offers = self.offers(name, arch)
        if not offers:
            return None
        if all(priority == offers[0][1] for _v, priority, _s in offers) and offers[0][1] >= PRIORITY_INSTALLED:
            # the usual case, every index at the same priority: the newest version, if it is newer
            version, _priority, sources = offers[0]
            return (version, sources) if self.compare(version, installed) > 0 else None
        compare = self.compare
        versions = []  # (version, priority, sources, is the installed one), newest first
        placed = False
        for version, priority, sources in offers:
            if not placed:
                order = compare(version, installed)
                if order == 0:
                    versions.append((version, max(priority, PRIORITY_INSTALLED), sources, True))
                    placed = True
                    continue
                if order < 0:
                    versions.append((installed, PRIORITY_INSTALLED, (), True))
                    placed = True
            versions.append((version, priority, sources, False))
        if not placed:
            versions.append((installed, PRIORITY_INSTALLED, (), True))
        best = None
        for entry in versions:
            if best is None or entry[1] > best[1]:
                best = entry
            if entry[3] and best[1] < 1000:
                break  # no downgrades below priority 1000
        if best[3] or compare(best[0], installed) <= 0:
            return None
        return best[0], best[2]

    def security_fixes(self, package, available):
        """The issues (CVE ids) the secdb lists for versions after the installed one up to ``available``."""
        if not self.secfixes:
            return []
        compare = self.compare
        entries = self.secfixes.get(package.get('source') or package['name']) or \
            self.secfixes.get(package['name']) or ()
        issues = []
        for version, ids in entries:
            try:
                if compare(version, package['version']) > 0 and compare(version, available) <= 0:
                    issues.extend(i for i in ids if i not in issues)
            except ValueError:
                continue
        return issues

    def pending_updates(self, packages):
        """The installed packages that have an update, each as {``name``, ``arch``, ``installed``,
        ``available``, ``security``, ``suite``, ``suites``} (``fixes``, the CVE ids, where a
        secdb was given), in the order of ``packages``.

        ``suite`` is the security suite when one offers the version, else the first index
        that does; ``suites`` every index that offers it, in the order of the indexes.
        """
        updates = []
        for package in packages:
            found = self.candidate(package['name'], package.get('arch'), package['version'])
            if found is None:
                continue
            available, sources = found
            suites = [suite for suite, _security in sources]
            security_suites = [suite for suite, security in sources if security]
            update = {
                'name': package['name'],
                'arch': package.get('arch'),
                'installed': package['version'],
                'available': available,
                'security': bool(security_suites),
                'suite': security_suites[0] if security_suites else suites[0],
                'suites': suites,
            }
            if self.secfixes is not None:
                update['fixes'] = self.security_fixes(package, available)
                update['security'] = update['security'] or bool(update['fixes'])
            updates.append(update)
        return updates


def _cmp_key(compare):
    return cmp_to_key(lambda a, b: compare(a[0], b[0]))


def pending_updates(packages, indexes, compare, secfixes=None):
    """The packages of one image that have an update in ``indexes`` (see ``Candidates``)."""
    return Candidates(indexes, compare, secfixes).pending_updates(packages)
