"""Package indexes, and which installed packages have updates, exactly as apt and apk decide.

The oracle is apt itself: ``apt list --upgradable`` on this machine's own dpkg database and apt
lists, and, for generated scenarios (versions below, at and above the installed ones, in the
release, -updates and -security suites and a NotAutomatic one), apt run with a private
configuration on a lists folder and status file the test writes. When this machine has no apt
lists, the tests that would read them build the same input from its dpkg database instead.
Alpine: fixtures in the exact APKINDEX and secdb formats, an APKINDEX.tar.gz built as abuild
builds it, versions chosen to exercise apk's ordering rules.
"""
import glob
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ansible_collections.patchops.docker.plugins.module_utils.package_db import parse_dpkg_status
from ansible_collections.patchops.docker.plugins.module_utils.package_index import (
    Candidates, PackageIndexError, apkindex_from_tar_gz, arch_matches, decompress_index, parse_apkindex,
    parse_inrelease, parse_packages, parse_secfixes, pending_updates, strip_clearsign, verify_index)
from ansible_collections.patchops.docker.plugins.module_utils.versions import apk_compare, dpkg_compare

LISTS = '/var/lib/apt/lists'
APT_HELPER = '/usr/lib/apt/apt-helper'


def one_sentence(msg):
    assert msg and '\n' not in msg and msg.endswith('.') and msg[0].isupper(), msg


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------- InRelease

PACKAGES = b'''Package: bash
Version: 5.2.15-2+b7
Installed-Size: 7164
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Description: GNU Bourne Again SHell
Tag: implemented-in::c,
 interface::shell
Section: shells

Package: libssl3
Source: openssl (3.0.15-1~deb12u1)
Version: 3.0.15-1~deb12u1+b1
Architecture: amd64

Package: tzdata
Version: 2024b-0+deb12u1
Architecture: all

Package: bash
Version: 5.2.15-2+b8
Architecture: i386
'''


def release_text(files, suite='oldstable-security', codename='bookworm-security', extra=''):
    lines = ['Origin: Debian', 'Label: Debian-Security', 'Suite: %s' % suite, 'Version: 12',
             'Codename: %s' % codename, 'Date: Tue, 01 Dec 2026 01:33:13 UTC',
             'Valid-Until: Tue, 08 Dec 2026 01:33:13 UTC', 'Acquire-By-Hash: yes', 'Architectures: amd64 arm64',
             'Components: updates/main updates/contrib', 'Description: Debian 12 - Security Updates']
    if extra:
        lines.append(extra)
    lines.append('MD5Sum:')
    lines.extend(' %s %8d %s' % (hashlib.md5(d).hexdigest(), len(d), p) for p, d in files.items())  # nosec
    lines.append('SHA256:')
    lines.extend(' %s %8d %s' % (sha256(d), len(d), p) for p, d in files.items())
    return '\n'.join(lines) + '\n'


def clearsign(text):
    body = '\n'.join('- ' + line if line.startswith('-') else line for line in text.split('\n'))
    return ('-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n%s\n-----BEGIN PGP SIGNATURE-----\n\n'
            'iQIzBAEBCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n' % body.rstrip('\n')).encode()


def test_inrelease_fields_and_hashes():
    xz = lzma.compress(PACKAGES, format=lzma.FORMAT_XZ)
    files = {'main/binary-amd64/Packages': PACKAGES, 'main/binary-amd64/Packages.xz': xz}
    release = parse_inrelease(clearsign(release_text(files, extra='-Dashed: a line that starts with a dash')))
    assert release['suite'] == 'oldstable-security' and release['codename'] == 'bookworm-security'
    assert release['date'] == 'Tue, 01 Dec 2026 01:33:13 UTC'
    assert release['date_epoch'] == 1796088793 and release['valid_until_epoch'] == 1796088793 + 7 * 86400
    assert release['components'] == ['updates/main', 'updates/contrib']
    assert release['acquire_by_hash'] is True and release['priority'] == 500
    assert release['sha256']['main/binary-amd64/Packages.xz'] == (len(xz), sha256(xz))
    assert set(release['sha256']) == set(files)
    verify_index(release, 'main/binary-amd64/Packages.xz', xz)
    assert decompress_index('main/binary-amd64/Packages.xz', xz) == PACKAGES
    # the dash-escaped line is the signed text without its escape
    assert '\n-Dashed: a line' in strip_clearsign(clearsign(release_text(files, extra='-Dashed: a line')))


def test_a_plain_release_file_reads_the_same():
    files = {'main/binary-amd64/Packages': PACKAGES}
    assert parse_inrelease(release_text(files).encode()) == parse_inrelease(clearsign(release_text(files)))


@pytest.mark.parametrize('extra, priority', [
    ('NotAutomatic: yes', 1),
    ('NotAutomatic: yes\nButAutomaticUpgrades: yes', 100),
    ('NotAutomatic: no', 500),
])
def test_release_priority_as_apt_gives_it(extra, priority):
    assert parse_inrelease(release_text({'a': b''}, extra=extra))['priority'] == priority


def test_an_index_that_does_not_match_inrelease_is_refused_in_one_sentence():
    gz = gzip.compress(PACKAGES)
    release = parse_inrelease(clearsign(release_text({'main/binary-amd64/Packages.gz': gz})))
    for path, data, why in [
            ('main/binary-amd64/Packages.gz', gz[:-1] + b'x', 'SHA256'),
            ('main/binary-amd64/Packages.gz', gz + b'x', 'bytes'),
            ('main/binary-amd64/Packages.xz', gz, 'not listed')]:
        with pytest.raises(PackageIndexError) as info:
            verify_index(release, path, data)
        one_sentence(str(info.value))
        assert why in str(info.value) and 'bookworm-security' in str(info.value)


@pytest.mark.parametrize('data, why', [
    (b'-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: x\n', 'no signature block'),
    (b'Suite: stable\nCodename: bookworm\n', 'no SHA256'),
    (b'Suite: stable\nSHA256:\n abc 12 main/Packages\n', 'hash size path'),
    (b'', 'empty'),
    (b'<html><body>404 Not Found</body></html>\n', 'deb822'),
])
def test_bad_inrelease_is_one_sentence(data, why):
    with pytest.raises(PackageIndexError) as info:
        parse_inrelease(data)
    one_sentence(str(info.value))
    assert why in str(info.value)


@pytest.mark.parametrize('path', ['Packages.xz', 'Packages.gz', 'Packages.bz2', 'Packages.lzma'])
def test_a_corrupt_compressed_index_is_one_sentence(path):
    with pytest.raises(PackageIndexError) as info:
        decompress_index(path, b'not compressed at all')
    one_sentence(str(info.value))


# ------------------------------------------------------------------------------------- Packages

def test_packages_index():
    index = parse_packages(PACKAGES)
    assert index == {
        'bash': [('5.2.15-2+b7', 'amd64', 'bash'), ('5.2.15-2+b8', 'i386', 'bash')],
        'libssl3': [('3.0.15-1~deb12u1+b1', 'amd64', 'openssl')],
        'tzdata': [('2024b-0+deb12u1', 'all', 'tzdata')],
    }
    assert parse_packages(PACKAGES.decode().replace('\n\n', '\n  \n\n')) == index
    assert parse_packages(b'\n\n' + PACKAGES + b'\n\n\n') == index
    assert parse_packages(b'') == {}


@pytest.mark.parametrize('data, why', [
    (b'<!DOCTYPE html>\n<html><body>Not Found</body></html>\n', 'not in deb822 format near line 1'),
    (PACKAGES + b'\nVersion: 1.0\nArchitecture: all\n', 'without a Package field near line 24'),
    (b'Package: a\nArchitecture: all\n', 'without a Version field near line 1'),
    (b'Package: a\nVersion: 1\n\n continuation\n', 'near line 4'),
])
def test_corrupt_packages_index_is_one_sentence(data, why):
    with pytest.raises(PackageIndexError) as info:
        parse_packages(data)
    one_sentence(str(info.value))
    assert why in str(info.value)


def _list_files(lists=LISTS):
    """[(InRelease bytes, {suite-relative path of the uncompressed index: its bytes})] of this machine's
    apt lists; when it has none, a suite built from its dpkg database (every third package newer)."""
    suites = []
    for inrelease in sorted(glob.glob(os.path.join(lists, '*_InRelease'))):
        prefix = inrelease[:-len('InRelease')]
        indexes = {}
        for path in sorted(glob.glob(prefix + '*_Packages*')):
            rel = path[len(prefix):].replace('_', '/')
            for suffix in ('.lz4', '.gz', '.xz', '.bz2', '.zst', '.lzma'):
                if rel.endswith(suffix):
                    rel = rel[:-len(suffix)]
            indexes[rel] = subprocess.run([APT_HELPER, 'cat-file', path], capture_output=True, check=True).stdout
        if indexes:
            with open(inrelease, 'rb') as f:
                suites.append((f.read(), indexes))
    if suites:
        return suites
    files = {'main/binary-amd64/Packages': generated_packages_from_dpkg()}
    return [(clearsign(release_text(files, suite='stable', codename='bookworm')), files)]


def generated_packages_from_dpkg():
    """A Packages index of this machine's installed packages as the archive has them (their status
    paragraphs without what only dpkg's database holds), every third one at a newer version."""
    with open('/var/lib/dpkg/status') as f:
        paragraphs = f.read().split('\n\n')
    out = []
    for i, paragraph in enumerate(sorted(p.strip('\n') for p in paragraphs if p.strip())):
        lines, skip = [], False
        for line in paragraph.split('\n'):
            if line.startswith((' ', '\t')):
                if not skip:
                    lines.append(line)
                continue
            skip = line.split(':', 1)[0] in ('Status', 'Conffiles', 'Config-Version')
            if not skip:
                lines.append(line + ('+patchops1' if line.startswith('Version: ') and i % 3 == 0 else ''))
        status = [line for line in paragraph.split('\n') if line.startswith('Status: ')]
        if status and status[0].split()[-1] not in ('not-installed', 'config-files'):
            out.append('\n'.join(lines) + '\n')
    return '\n'.join(out).encode()


def test_real_indexes_match_their_inrelease_and_parse_completely():
    for inrelease, indexes in _list_files():
        release = parse_inrelease(inrelease)
        assert release['codename'] and release['sha256']
        for path, data in indexes.items():
            verify_index(release, path, data)  # apt's lists are the indexes InRelease lists
            index = parse_packages(data)
            assert sum(len(v) for v in index.values()) == data.count(b'\nPackage: ') + data.startswith(b'Package: ')
            assert all(isinstance(v, str) and a for entries in index.values() for v, a, _s in entries)


# -------------------------------------------------------------------------- apt's upgradable list

APT_SOURCES_HOST = 'patchops.invalid'


def apt_upgradable(tmp, status, suites):
    """``apt list --upgradable`` on a private lists folder: suites is [(dist, Release fields, Packages bytes)]."""
    lists = os.path.join(tmp, 'lists')
    os.makedirs(os.path.join(lists, 'partial'), exist_ok=True)
    os.makedirs(os.path.join(tmp, 'cache', 'archives', 'partial'), exist_ok=True)
    sources = []
    for dist, fields, packages in suites:
        base = '%s_debian_dists_%s_' % (APT_SOURCES_HOST, dist)
        with open(os.path.join(lists, base + 'Release'), 'w') as f:
            f.write('Suite: %s\nCodename: %s\nComponents: main\nArchitectures: amd64\n%s' % (dist, dist, fields))
        with open(os.path.join(lists, base + 'main_binary-amd64_Packages'), 'wb') as f:
            f.write(packages)
        sources.append('deb [trusted=yes] http://%s/debian %s main\n' % (APT_SOURCES_HOST, dist))
    with open(os.path.join(tmp, 'sources.list'), 'w') as f:
        f.writelines(sources)
    with open(os.path.join(tmp, 'status'), 'wb') as f:
        f.write(status)
    return run_apt_list(['-o', 'Dir::State::Lists=%s' % lists,
                         '-o', 'Dir::Etc::SourceList=%s' % os.path.join(tmp, 'sources.list'),
                         '-o', 'Dir::Etc::SourceParts=%s' % os.path.join(tmp, 'no-parts'),
                         '-o', 'Dir::Etc::Preferences=%s' % os.path.join(tmp, 'no-preferences'),
                         '-o', 'Dir::Etc::PreferencesParts=%s' % os.path.join(tmp, 'no-parts'),
                         '-o', 'Dir::State::status=%s' % os.path.join(tmp, 'status'),
                         '-o', 'Dir::Cache=%s' % os.path.join(tmp, 'cache'),
                         '-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache=',
                         '-o', 'APT::Architecture=amd64', '-o', 'APT::Architectures=amd64'])


def run_apt_list(options):
    """{(name, arch): (installed, available, frozenset(suites))} from ``apt list --upgradable``."""
    out = subprocess.run(['apt', 'list', '--upgradable'] + options, capture_output=True, text=True,
                         env=dict(os.environ, LC_ALL='C'), check=True).stdout
    result = {}
    for line in out.splitlines():
        if '/' not in line or '[upgradable from: ' not in line:
            continue
        head, installed = line.rstrip(']').split(' [upgradable from: ')
        name_suites, available, arch = head.split(' ')
        name, suites = name_suites.split('/', 1)
        result[(name, arch)] = (installed, available, frozenset(suites.split(',')))
    return result


def ours(updates, suite_names=None):
    suite_names = suite_names or {}
    return {(u['name'], u['arch']): (u['installed'], u['available'],
                                     frozenset(suite_names.get(s, s) for s in u['suites'])) for u in updates}


def check_against_apt(lists):
    """This machine's dpkg status and the apt lists in ``lists`` (or, without lists, generated ones) against apt."""
    with open('/var/lib/dpkg/status', 'rb') as f:
        status = f.read()
    installed = parse_dpkg_status(status)
    suites = _list_files(lists)
    indexes, names = [], {}
    for inrelease, files in suites:
        release = parse_inrelease(inrelease)
        names[release['codename']] = release['suite']
        for data in files.values():
            indexes.append({'suite': release['codename'], 'security': release['codename'].endswith('-security'),
                            'priority': release['priority'], 'packages': parse_packages(data)})
    updates = pending_updates(installed, indexes, dpkg_compare)
    if glob.glob(os.path.join(lists, '*_InRelease')):
        apt = run_apt_list(['-o', 'Dir::State::Lists=%s' % lists])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            apt = apt_upgradable(tmp, status, [(parse_inrelease(i)['suite'], '', list(f.values())[0])
                                               for i, f in suites])
    assert ours(updates, names) == apt
    for update in updates:
        assert update['security'] == any(s.endswith('-security') for s in update['suites'])
        assert update['suite'] == ([s for s in update['suites'] if s.endswith('-security')] or update['suites'])[0]
    return updates


def test_this_machines_upgradable_list_is_apts():
    """With this machine's apt lists where it has them: the same names, versions and suites as apt."""
    check_against_apt(LISTS)


def test_without_apt_lists_the_same_check_runs_on_lists_made_from_dpkg(tmp_path):
    """The branch a machine without apt lists takes: generated lists, apt on a private configuration."""
    updates = check_against_apt(str(tmp_path))
    assert len(updates) > 10 and all(u['available'].endswith('+patchops1') for u in updates)


_VERSION_STEP = st.sampled_from(['lower', 'equal', 'higher', 'tilde', 'plus', 'epoch', 'none', 'none'])
_BASES = ['1.0-1', '2.36-9+deb12u4', '3.0.11-1~deb12u2', '7.88.1-10+deb12u5', '1:2.3-4', '20230311', '0.9~rc1-2']


def _variant(base, step):
    if step == 'lower':
        return base + '~0'
    if step == 'equal':
        return base
    if step == 'higher':
        return base + '.1'
    if step == 'tilde':
        return base + '+1~rc1'
    if step == 'plus':
        return base + '+deb12u1'
    if step == 'epoch':
        return '9:' + base.split(':')[-1]
    return None


@st.composite
def scenarios(draw):
    """Installed packages and four suites, each offering some of them at versions around the installed ones."""
    count = draw(st.integers(min_value=1, max_value=25))
    installed = []
    for i in range(count):
        arch = draw(st.sampled_from(['amd64', 'amd64', 'all']))
        installed.append(('pkg%d' % i, draw(st.sampled_from(_BASES)), arch))
    # an arch:all package may become arch:any and back in a newer version; one version has one
    # architecture in every suite (as in the archive: apt takes the same version string built for
    # another architecture for another version)
    flips = {name: draw(st.booleans()) for name, _v, _a in installed}
    suites = []
    for dist, fields in (('bookworm', ''), ('bookworm-updates', ''), ('bookworm-security', ''),
                         ('bookworm-backports', 'NotAutomatic: yes\nButAutomaticUpgrades: yes\n')):
        entries = []
        for name, version, arch in installed:
            for _offer in range(draw(st.integers(min_value=0, max_value=2))):
                offered = _variant(version, draw(_VERSION_STEP))
                if offered:
                    flipped = flips[name] and offered != version
                    entries.append((name, offered, ('all' if arch == 'amd64' else 'amd64') if flipped else arch))
        suites.append((dist, fields, entries))
    return installed, suites


def _status_bytes(installed):
    return ''.join('Package: %s\nStatus: install ok installed\nPriority: optional\nArchitecture: %s\n'
                   'Version: %s\nMaintainer: t <t@example.org>\nDescription: test\n\n' % (n, a, v)
                   for n, v, a in installed).encode()


def _packages_bytes(entries):
    return ''.join('Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: t <t@example.org>\n'
                   'Description: test\n\n' % e for e in entries).encode()


@settings(max_examples=60, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(scenarios())
def test_generated_scenarios_are_upgraded_as_apt_upgrades_them(scenario):
    installed, suites = scenario
    status = _status_bytes(installed)
    apt_suites = [(dist, fields, _packages_bytes(entries)) for dist, fields, entries in suites]
    indexes = [{'suite': dist, 'security': dist.endswith('-security'),
                'priority': parse_inrelease(release_text({'x': b''}, extra=fields.strip()))['priority'],
                'packages': parse_packages(packages)}
               for dist, fields, packages in apt_suites]
    updates = pending_updates(parse_dpkg_status(status), indexes, dpkg_compare)
    tmp = tempfile.mkdtemp(prefix='patchops-apt-')
    try:
        apt = apt_upgradable(tmp, status, apt_suites)
    finally:
        shutil.rmtree(tmp)
    assert ours(updates) == apt


def _idx(suite, entries, security=False, priority=None):
    index = {'suite': suite, 'security': security, 'packages': {}}
    if priority is not None:
        index['priority'] = priority
    for name, version, arch in entries:
        index['packages'].setdefault(name, []).append((version, arch, name))
    return index


def _pkg(name, version, arch='amd64', source=None):
    return {'name': name, 'version': version, 'arch': arch, 'source': source or name, 'source_version': version}


def test_which_suite_an_update_comes_from():
    indexes = [
        _idx('bookworm', [('a', '1.0-2', 'amd64'), ('b', '1.0-1', 'amd64'), ('c', '1.0-2', 'amd64'),
                          ('d', '1.0-1', 'amd64'), ('e', '1:0.5-1', 'all')]),
        _idx('bookworm-updates', [('b', '1.0-2', 'amd64')]),
        _idx('bookworm-security', [('c', '1.0-2', 'amd64'), ('d', '1.0-1+deb12u1', 'amd64'),
                                   ('a', '1.0-1+deb12u1', 'amd64')], security=True),
    ]
    installed = [_pkg('a', '1.0-1'), _pkg('b', '1.0-1'), _pkg('c', '1.0-1'), _pkg('d', '1.0-1'),
                 _pkg('e', '1.0-1', 'amd64'), _pkg('f', '1.0-1'), _pkg('d', '1.0-1', 'i386')]
    updates = {u['name'] + ':' + u['arch']: u for u in pending_updates(installed, indexes, dpkg_compare)}
    # the newest version wins wherever it is: here the point release's, not the security suite's
    assert updates['a:amd64']['available'] == '1.0-2' and updates['a:amd64']['security'] is False
    assert updates['a:amd64']['suite'] == 'bookworm'
    assert updates['b:amd64']['suites'] == ['bookworm-updates'] and not updates['b:amd64']['security']
    # the same version in the archive and the security suite: a security update, as apt lists both
    assert updates['c:amd64']['suites'] == ['bookworm', 'bookworm-security']
    assert updates['c:amd64']['security'] is True and updates['c:amd64']['suite'] == 'bookworm-security'
    assert updates['d:amd64']['available'] == '1.0-1+deb12u1' and updates['d:amd64']['security'] is True
    # arch all can upgrade arch amd64, and the epoch counts
    assert updates['e:amd64']['available'] == '1:0.5-1'
    # not in any index; another architecture than the indexes carry
    assert 'f:amd64' not in updates and 'd:i386' not in updates


def test_no_downgrade_and_no_update_when_equal():
    indexes = [_idx('bookworm', [('a', '1.0-1', 'amd64'), ('b', '0.9-1', 'amd64')])]
    assert pending_updates([_pkg('a', '1.0-1'), _pkg('b', '1.0-1')], indexes, dpkg_compare) == []


def test_not_automatic_suites_are_not_candidates():
    indexes = [_idx('bookworm', [('a', '1.0-1', 'amd64')]),
               _idx('experimental', [('a', '3.0-1', 'amd64')], priority=1),
               _idx('bookworm-backports', [('a', '2.0-1~bpo12+1', 'amd64')], priority=100)]
    # installed from the release: experimental (1) and backports (100) lose to the installed version (100)
    assert pending_updates([_pkg('a', '1.0-1')], indexes, dpkg_compare) == []
    # installed from backports: its newer backport is the candidate (as apt upgrades backports)
    updates = pending_updates([_pkg('a', '2.0-0~bpo12+1')], indexes, dpkg_compare)
    assert [(u['available'], u['suite']) for u in updates] == [('2.0-1~bpo12+1', 'bookworm-backports')]


def test_candidates_remember_per_name_and_arch():
    calls = []

    def counting(a, b):
        calls.append((a, b))
        return dpkg_compare(a, b)

    versions = [('a', '1.%d-1' % i, 'amd64') for i in range(20)]
    candidates = Candidates([_idx('bookworm', versions)], counting)
    first = candidates.pending_updates([_pkg('a', '1.0-1')])
    n = len(calls)
    for _image in range(100):
        assert candidates.pending_updates([_pkg('a', '1.0-1')]) == first
    assert len(calls) - n <= 100 * 3  # the sorted offers are kept: a few comparisons per image
    assert first[0]['available'] == '1.19-1'


def test_arch_matching():
    assert arch_matches('amd64', 'amd64') and arch_matches('amd64', 'all') and arch_matches('all', 'amd64')
    assert arch_matches('x86_64', 'noarch') and arch_matches(None, 'amd64')
    assert not arch_matches('i386', 'amd64')


# ------------------------------------------------------------------------------------------ Alpine

APKINDEX = b'''C:Q1qKcZ+j23xssAXmgQhkOO8dHnbWw=
P:musl
V:1.2.4_git20230717-r5
A:x86_64
S:407278
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Ter\xc3\xa4s <timo.teras@iki.fi>
t:1709050826
c:8e5bd2a3dd2c9c5c2e70e8cc8aa4e7db9b1a7d54
p:so:libc.musl-x86_64.so.1=1

C:Q1Nc9Hw5AuDPpFpDdY8RQvG3Sx2cE=
P:libcrypto3
V:3.1.4-r6
A:x86_64
S:1803262
I:4886528
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1709800000
c:0a2f1e0e3b2c
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3

C:Q1abc=
P:busybox
V:1.36.1-r15
A:x86_64
o:busybox

C:Q1def=
P:curl
V:8.5.0-r0
A:x86_64
o:curl

C:Q1ghi=
P:ca-certificates-bundle
V:20240226-r0
A:x86_64
o:ca-certificates

C:Q1jkl=
P:py3-pkg
V:2.0_rc1-r0
A:noarch
o:py3-pkg
'''

SECDB = {
    'apkurl': '{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk',
    'archs': ['x86_64'], 'reponame': 'main', 'urlprefix': 'https://dl-cdn.alpinelinux.org/alpine',
    'distroversion': 'v3.19',
    'packages': [
        {'pkg': {'name': 'openssl', 'secfixes': {
            '3.1.4-r1': ['CVE-2023-5678'], '3.1.4-r5': ['CVE-2024-0727'], '3.1.4-r7': ['CVE-2024-2511'],
            '3.0.0-r0': ['CVE-2021-3711'], '0': ['CVE-2022-0000']}}},
        {'pkg': {'name': 'musl', 'secfixes': {'1.2.2_pre2-r0': ['CVE-2020-28928']}}},
        {'pkg': {'name': 'curl', 'secfixes': {'8.5.0-r0': ['CVE-2023-46218 CVE-2023-46219'],
                                              '8.4.0-r0': ['CVE-2023-38545 (curl SOCKS5)']}}},
    ],
}


def apkindex_tar_gz(index):
    """An APKINDEX.tar.gz as abuild writes it: the signature's tar segment without its end blocks, gzipped,
    then the index's tar (DESCRIPTION, APKINDEX), gzipped, one after the other."""
    def tar(members, cut):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w', format=tarfile.USTAR_FORMAT) as archive:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        data = buf.getvalue()
        if cut:
            data = data[:sum(512 + (len(d) + 511) // 512 * 512 for _n, d in members)]
        return data
    signature = tar([('.SIGN.RSA.alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub', b'\x01' * 512)], cut=True)
    return gzip.compress(signature) + gzip.compress(tar([('DESCRIPTION', b'v3.19.1-100-g0d3c1b8a9f'),
                                                         ('APKINDEX', index)], cut=False))


def test_apkindex_from_the_tar_gz_abuild_writes():
    assert apkindex_from_tar_gz(apkindex_tar_gz(APKINDEX)) == APKINDEX.decode()
    index = parse_apkindex(apkindex_from_tar_gz(apkindex_tar_gz(APKINDEX)))
    assert index['libcrypto3'] == [('3.1.4-r6', 'x86_64', 'openssl')]
    assert index['py3-pkg'] == [('2.0_rc1-r0', 'noarch', 'py3-pkg')]
    assert len(index) == 6


@pytest.mark.parametrize('data, why', [
    (b'not gzip', 'not a gzip-compressed tar archive'),
    (gzip.compress(b'not a tar'), 'not a gzip-compressed tar archive'),
    (None, 'no APKINDEX member'),
])
def test_bad_apkindex_tar_gz_is_one_sentence(data, why):
    if data is None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w:gz') as archive:
            info = tarfile.TarInfo('DESCRIPTION')
            archive.addfile(info, io.BytesIO(b''))
        data = buf.getvalue()
    with pytest.raises(PackageIndexError) as info:
        apkindex_from_tar_gz(data)
    one_sentence(str(info.value))
    assert why in str(info.value)


@pytest.mark.parametrize('data, why', [
    (b'<html>404</html>\n', 'near line 1'),
    (b'P:a\nV:1.0-r0\n\nP:b\n', 'V (version) line near line 4'),
])
def test_corrupt_apkindex_is_one_sentence(data, why):
    with pytest.raises(PackageIndexError) as info:
        parse_apkindex(data)
    one_sentence(str(info.value))
    assert why in str(info.value)


def test_secfixes():
    fixes = parse_secfixes(json.dumps(SECDB).encode())
    assert fixes['openssl'] == [('3.1.4-r1', ['CVE-2023-5678']), ('3.1.4-r5', ['CVE-2024-0727']),
                                ('3.1.4-r7', ['CVE-2024-2511']), ('3.0.0-r0', ['CVE-2021-3711'])]
    assert fixes['curl'] == [('8.5.0-r0', ['CVE-2023-46218', 'CVE-2023-46219']), ('8.4.0-r0', ['CVE-2023-38545'])]
    for bad, why in [(b'{', 'not JSON'), (b'[]', 'no "packages" list'), (b'{"packages": [{"pkg": {}}]}', 'name'),
                     (b'{"packages": [{"pkg": {"name": "a", "secfixes": ["x"]}}]}', 'mapping')]:
        with pytest.raises(PackageIndexError) as info:
            parse_secfixes(bad)
        one_sentence(str(info.value))
        assert why in str(info.value)


def test_alpine_updates_with_secfixes():
    index = {'suite': 'v3.19/main', 'security': False, 'packages': parse_apkindex(APKINDEX)}
    installed = [
        _pkg('libcrypto3', '3.1.4-r0', 'x86_64', 'openssl'),   # -r5 and -r1 fixed CVEs up to -r6: security
        _pkg('musl', '1.2.4_git20230717-r4', 'x86_64'),        # newer, but its fixes are older: not security
        _pkg('busybox', '1.36.1-r15', 'x86_64'),               # up to date
        _pkg('curl', '8.5.0_rc1-r0', 'x86_64'),                # _rc1 is before the release: 8.5.0-r0 fixes two
        _pkg('ca-certificates-bundle', '20240226-r1', 'x86_64', 'ca-certificates'),  # newer than the index
        _pkg('py3-pkg', '2.0_beta3-r0', 'x86_64'),             # noarch offers, _beta before _rc
    ]
    updates = {u['name']: u for u in pending_updates(installed, [index], apk_compare,
                                                     parse_secfixes(json.dumps(SECDB)))}
    assert sorted(updates) == ['curl', 'libcrypto3', 'musl', 'py3-pkg']
    assert updates['libcrypto3']['available'] == '3.1.4-r6'
    assert updates['libcrypto3']['fixes'] == ['CVE-2023-5678', 'CVE-2024-0727']
    assert updates['libcrypto3']['security'] is True
    assert updates['musl']['security'] is False and updates['musl']['fixes'] == []
    assert updates['curl']['fixes'] == ['CVE-2023-46218', 'CVE-2023-46219'] and updates['curl']['security']
    assert updates['py3-pkg']['available'] == '2.0_rc1-r0' and not updates['py3-pkg']['security']
    # without a secdb nothing is a security update
    assert not any(u['security'] for u in pending_updates(installed, [index], apk_compare))


# ------------------------------------------------------------------------------------- bad input

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_an_index_or_one_sentence(data):
    for parse in (parse_inrelease, parse_packages, parse_apkindex, parse_secfixes, apkindex_from_tar_gz):
        try:
            parse(data)
        except PackageIndexError as exc:
            one_sentence(str(exc))
