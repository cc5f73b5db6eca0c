# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an image's files say about its operating system and its packages.

image_packages_info reads these files out of an image (as bytes) and hands
them here:

* ``/etc/os-release`` (else ``/usr/lib/os-release``): ``parse_os_release``
  reads it as os-release(5) documents it, a list of shell variable
  assignments: comments, blank lines, single and double quotes, backslash
  escapes (and, as the shell would, quoted values over several lines);
* ``/var/lib/dpkg/status``: ``parse_dpkg_status``, the packages dpkg has
  installed (deb822 paragraphs);
* ``/var/lib/dpkg/status.d/*`` of distroless images: ``parse_dpkg_status_d``,
  one or more paragraphs per file, without a ``Status`` field;
* ``/lib/apk/db/installed``: ``parse_apk_installed``.

Each package parser returns a list of ``{name, version, source,
source_version, arch}`` in the order of the file. A file that is not in its
format raises ``PackageDatabaseError`` (a ``ValueError``) with one sentence
that says which file and where.

Pure logic, no Docker: runs on managed nodes (Python 3.9, standard library).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError

DPKG_STATUS = 'var/lib/dpkg/status'
DPKG_STATUS_D = 'var/lib/dpkg/status.d'
APK_INSTALLED = 'lib/apk/db/installed'
OS_RELEASE = ('etc/os-release', 'usr/lib/os-release')

# dpkg's package states in which the package's files are on disk and dpkg records a version:
# apt gives such a package a current version (everything but not-installed and config-files)
DPKG_INSTALLED_STATES = frozenset(('installed', 'half-installed', 'unpacked', 'half-configured',
                                   'triggers-awaited', 'triggers-pending'))

_FIELD = re.compile(r'^([^\s:#][^\s:]*):[ \t]*(.*)$')
_SOURCE = re.compile(r'^(\S+)(?:\s*\(\s*([^()\s]+)\s*\))?\s*$')
_VAR_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_APK_LINE = re.compile(r'^([A-Za-z]):(.*)$')


class PackageDatabaseError(PatchopsError, ValueError):
    """A package database or os-release file is not in its format."""


def _text(data):
    """File contents as text: bytes are decoded as UTF-8 (a stray byte becomes U+FFFD)."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode('utf-8', 'replace')
    return data


# ---------------------------------------------------------------------------------- os-release

def _shell_value(text, pos):
    """The value of an assignment starting at ``pos``, read as the shell reads one word.

    Returns (value, position after the line). Unquoted text: a backslash takes the next
    character literally (and with a newline joins the lines); single quotes keep
    everything up to the next one; double quotes keep everything up to the next
    unescaped one, where a backslash escapes only $, `, ", \\ and the newline. Blanks
    outside quotes end the word; what follows on the line is ignored, but an
    assignment written without the quotes it needs (``NAME=Foo Linux``) keeps its words
    (with single blanks between them), as systemd reads it.
    """
    out = []
    words = []
    n = len(text)
    while pos < n:
        c = text[pos]
        if c == '\n':
            break
        if c in ' \t':
            # end of this word; a comment, the end of the line, or more words
            while pos < n and text[pos] in ' \t':
                pos += 1
            if pos >= n or text[pos] in '\n#':
                break
            words.append(''.join(out))
            out = []
            continue
        if c == '\\':
            if pos + 1 < n:
                if text[pos + 1] != '\n':
                    out.append(text[pos + 1])
                pos += 2
            else:
                pos += 1
            continue
        if c == "'":
            end = text.find("'", pos + 1)
            if end < 0:
                raise PackageDatabaseError('The os-release file has a single quote that is never closed.')
            out.append(text[pos + 1:end])
            pos = end + 1
            continue
        if c == '"':
            pos += 1
            while True:
                if pos >= n:
                    raise PackageDatabaseError('The os-release file has a double quote that is never closed.')
                c = text[pos]
                if c == '"':
                    pos += 1
                    break
                if c == '\\' and pos + 1 < n and text[pos + 1] in '$`"\\\n':
                    if text[pos + 1] != '\n':
                        out.append(text[pos + 1])
                    pos += 2
                    continue
                out.append(c)
                pos += 1
            continue
        out.append(c)
        pos += 1
    words.append(''.join(out))
    # skip to the end of the line (a comment or nothing)
    end = text.find('\n', pos)
    return ' '.join(w for w in words if w != '') if len(words) > 1 else words[0], (n if end < 0 else end + 1)


def read_os_release_vars(data):
    """Every variable an os-release file assigns, as {NAME: value}.

    Lines that are not an assignment (the documented example skips them) are ignored;
    a quote that is never closed raises PackageDatabaseError.
    """
    text = _text(data)
    variables = {}
    pos, n = 0, len(text)
    while pos < n:
        while pos < n and text[pos] in ' \t':
            pos += 1
        match = _VAR_NAME.match(text, pos)
        if match and match.end() < n and text[match.end()] == '=':
            value, pos = _shell_value(text, match.end() + 1)
            variables[match.group(0)] = value
            continue
        end = text.find('\n', pos)
        pos = n if end < 0 else end + 1
    return variables


def _codename(variables, os_id, id_like):
    """VERSION_CODENAME, else what older and unreleased Debian and Ubuntu files say instead."""
    if variables.get('VERSION_CODENAME'):
        return variables['VERSION_CODENAME']
    ubuntu = os_id == 'ubuntu' or 'ubuntu' in id_like
    if ubuntu and variables.get('UBUNTU_CODENAME'):
        return variables['UBUNTU_CODENAME']
    version = variables.get('VERSION', '')
    # Debian 8 "8 (jessie)"; Ubuntu 14.04 "14.04.6 LTS, Trusty Tahr", 16.04 "16.04.7 LTS (Xenial Xerus)"
    match = re.search(r'\(\s*([A-Za-z]+)[^)]*\)', version)
    if match is None and ubuntu:
        match = re.search(r',\s*([A-Za-z]+)', version)
    if match:
        return match.group(1).lower()
    # Debian testing and unstable without VERSION_CODENAME: PRETTY_NAME "Debian GNU/Linux bookworm/sid"
    if os_id == 'debian' or 'debian' in id_like:
        match = re.search(r'\b([a-z]+)/sid\b', variables.get('PRETTY_NAME', ''))
        if match:
            return match.group(1)
    return None


def parse_os_release(data):
    """os-release contents as {id, id_like, version_id, version_codename, pretty_name}.

    Defaults as os-release(5) gives them (``ID=linux``, ``PRETTY_NAME=Linux``); absent
    ``VERSION_ID`` and codename are None (Debian testing and unstable have no VERSION_ID).
    """
    variables = read_os_release_vars(data)
    os_id = variables.get('ID') or 'linux'
    id_like = variables.get('ID_LIKE', '').split()
    return {
        'id': os_id,
        'id_like': id_like,
        'version_id': variables.get('VERSION_ID') or None,
        'version_codename': _codename(variables, os_id, id_like),
        'pretty_name': variables.get('PRETTY_NAME') or 'Linux',
    }


# ---------------------------------------------------------------------------------------- dpkg

def deb822_paragraphs(data, what):
    """The paragraphs of a deb822 file as [(line number, {lower-case field: value})].

    A continuation line (starting with a blank) adds a line to the field before it;
    blank lines separate paragraphs; ``#`` lines are comments. ``what`` names the file
    in the one-sentence error for anything else.
    """
    paragraphs = []
    fields = None
    last = None
    start = 0
    for number, line in enumerate(_text(data).splitlines(), 1):
        if not line.strip(' \t'):
            if fields:
                paragraphs.append((start, fields))
            fields, last = None, None
            continue
        if line[0] in ' \t':
            if last is None:
                raise PackageDatabaseError('%s is not in deb822 format near line %d: a continuation line '
                                           'without a field before it.' % (what, number))
            fields[last] += '\n' + line.strip(' \t')
            continue
        if line[0] == '#':
            continue
        match = _FIELD.match(line)
        if match is None:
            raise PackageDatabaseError('%s is not in deb822 format near line %d.' % (what, number))
        if fields is None:
            fields, start = {}, number
        last = match.group(1).lower()
        fields[last] = match.group(2).rstrip(' \t')
    if fields:
        paragraphs.append((start, fields))
    return paragraphs


def _dpkg_package(fields, line, what):
    name = fields.get('package')
    if not name:
        raise PackageDatabaseError('%s has a paragraph without a Package field near line %d.' % (what, line))
    version = fields.get('version')
    if not version:
        raise PackageDatabaseError('%s has no Version for the installed package %s near line %d.'
                                   % (what, name, line))
    source, source_version = name, version
    if fields.get('source'):
        match = _SOURCE.match(fields['source'])
        if match is None:
            raise PackageDatabaseError('%s has a Source field that is not "name (version)" for the package %s '
                                       'near line %d.' % (what, name, line))
        source = match.group(1)
        source_version = match.group(2) or version
    return {
        'name': name,
        'version': version,
        'source': source,
        'source_version': source_version,
        'arch': fields.get('architecture') or None,
    }


def _dpkg_installed(fields, line, what, default):
    status = fields.get('status')
    if status is None:
        return default
    words = status.split()
    if len(words) != 3:
        raise PackageDatabaseError('%s has a Status field that is not "want flag state" for the package %s '
                                   'near line %d.' % (what, fields.get('package'), line))
    return words[2] in DPKG_INSTALLED_STATES


def parse_dpkg_status(data, what='The dpkg status file'):
    """The installed packages of a dpkg status file (``/var/lib/dpkg/status``).

    Installed means what apt counts as installed: dpkg's state is neither
    ``not-installed`` nor ``config-files`` (``install ok installed``, ``hold ok
    installed``, also half-configured and trigger-pending packages, whose files are there).
    """
    packages = []
    for line, fields in deb822_paragraphs(data, what):
        if _dpkg_installed(fields, line, what, default=False):
            packages.append(_dpkg_package(fields, line, what))
    return packages


def parse_dpkg_status_d(files):
    """The packages of a distroless image's ``/var/lib/dpkg/status.d/``.

    ``files``: {file name: contents} (or pairs). Each file holds one or more paragraphs in
    the status file's format, usually without a Status field (then the package counts as
    installed); the ``*.md5sums`` files beside them are skipped. Files in name order.
    """
    items = sorted(files.items() if hasattr(files, 'items') else files)
    packages = []
    for name, data in items:
        base = name.rsplit('/', 1)[-1]
        if not base or base.endswith('.md5sums'):
            continue
        what = "The dpkg status.d file '%s'" % base
        for line, fields in deb822_paragraphs(data, what):
            if _dpkg_installed(fields, line, what, default=True):
                packages.append(_dpkg_package(fields, line, what))
    return packages


# ----------------------------------------------------------------------------------------- apk

def parse_apk_installed(data, what='The apk installed database'):
    """The packages of apk's installed database (``/lib/apk/db/installed``).

    One block of ``X:value`` lines per package, blocks separated by blank lines:
    ``P`` the name, ``V`` the version, ``A`` the architecture, ``o`` the origin (the
    source package, built at the same version).
    """
    packages = []
    current = None
    start = 0

    def finish():
        if not current:
            return
        if not current.get('P') or not current.get('V'):
            raise PackageDatabaseError('%s has a package without a %s line near line %d.'
                                       % (what, 'P (name)' if not current.get('P') else 'V (version)', start))
        packages.append({
            'name': current['P'],
            'version': current['V'],
            'source': current.get('o') or current['P'],
            'source_version': current['V'],
            'arch': current.get('A') or None,
        })

    for number, line in enumerate(_text(data).splitlines(), 1):
        if not line.strip():
            finish()
            current = None
            continue
        match = _APK_LINE.match(line)
        if match is None:
            raise PackageDatabaseError('%s is not in its "X:value" format near line %d.' % (what, number))
        if current is None:
            current, start = {}, number
        key = match.group(1)
        if key not in current:
            current[key] = match.group(2)
    finish()
    return packages
