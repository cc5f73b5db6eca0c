"""Reading an image's os-release and package databases as the distribution's own tools read them.

os-release against the shell that the format is written for (/bin/sh sources generated files);
the dpkg status file against dpkg-query on this machine's own database; literal fixtures in the
exact formats of dpkg, distroless status.d and apk for the rest, and corrupt files.
"""
import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.patchops.docker.plugins.module_utils.package_db import (
    PackageDatabaseError, parse_apk_installed, parse_dpkg_status, parse_dpkg_status_d, parse_os_release,
    read_os_release_vars)


def one_sentence(msg):
    assert msg and '\n' not in msg and msg.endswith('.') and msg[0].isupper(), msg


# ---------------------------------------------------------------------------------- os-release

DEBIAN_12 = b'''PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
'''

UBUNTU_22_04 = b'''PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
'''

UBUNTU_14_04 = b'''NAME="Ubuntu"
VERSION="14.04.6 LTS, Trusty Tahr"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 14.04.6 LTS"
VERSION_ID="14.04"
'''

UBUNTU_16_04_NO_CODENAME = b'''NAME="Ubuntu"
VERSION="16.04.7 LTS (Xenial Xerus)"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 16.04.7 LTS"
VERSION_ID="16.04"
UBUNTU_CODENAME=xenial
'''

DEBIAN_8 = b'''PRETTY_NAME="Debian GNU/Linux 8 (jessie)"
NAME="Debian GNU/Linux"
VERSION_ID="8"
VERSION="8 (jessie)"
ID=debian
'''

DEBIAN_TESTING = b'''PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=trixie
ID=debian
'''

DEBIAN_OLD_SID = b'''PRETTY_NAME="Debian GNU/Linux bookworm/sid"
NAME="Debian GNU/Linux"
ID=debian
'''

ALPINE = b'''NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
'''


@pytest.mark.parametrize('text, expected', [
    (DEBIAN_12, ('debian', '12', 'bookworm', 'Debian GNU/Linux 12 (bookworm)', [])),
    (UBUNTU_22_04, ('ubuntu', '22.04', 'jammy', 'Ubuntu 22.04.4 LTS', ['debian'])),
    (UBUNTU_14_04, ('ubuntu', '14.04', 'trusty', 'Ubuntu 14.04.6 LTS', ['debian'])),
    (UBUNTU_16_04_NO_CODENAME, ('ubuntu', '16.04', 'xenial', 'Ubuntu 16.04.7 LTS', ['debian'])),
    (DEBIAN_8, ('debian', '8', 'jessie', 'Debian GNU/Linux 8 (jessie)', [])),
    (DEBIAN_TESTING, ('debian', None, 'trixie', 'Debian GNU/Linux trixie/sid', [])),
    (DEBIAN_OLD_SID, ('debian', None, 'bookworm', 'Debian GNU/Linux bookworm/sid', [])),
    (ALPINE, ('alpine', '3.19.1', None, 'Alpine Linux v3.19', [])),
    (b'', ('linux', None, None, 'Linux', [])),  # the defaults os-release(5) gives
])
def test_os_release_of_distributions(text, expected):
    os_ = parse_os_release(text)
    assert (os_['id'], os_['version_id'], os_['version_codename'], os_['pretty_name'], os_['id_like']) == expected


def test_os_release_quoting_comments_and_escapes():
    text = r'''# a comment
   # an indented comment

ID='my-os'
NAME="My \"Linux\" \$HOME \`x\` \\ \n"
PRETTY_NAME=My\ OS\ 1.0
VERSION_ID=1.0 # a comment after the value
ID_LIKE="debian ubuntu"
EMPTY=
CONCAT='a'"b"c
MULTI="line one
line two"
not a line at all
HASH=a#b
'''
    v = read_os_release_vars(text)
    assert v['ID'] == 'my-os'
    assert v['NAME'] == 'My "Linux" $HOME `x` \\ \\n'
    assert v['PRETTY_NAME'] == 'My OS 1.0'
    assert v['VERSION_ID'] == '1.0'
    assert v['EMPTY'] == ''
    assert v['CONCAT'] == 'abc'
    assert v['MULTI'] == 'line one\nline two'
    assert v['HASH'] == 'a#b'
    assert parse_os_release(text)['id_like'] == ['debian', 'ubuntu']


def test_os_release_with_an_unclosed_quote_is_an_error():
    with pytest.raises(PackageDatabaseError) as info:
        parse_os_release(b'ID=debian\nNAME="Debian\n')
    one_sentence(str(info.value))
    assert isinstance(info.value, ValueError)


def test_os_release_of_this_machine_as_the_shell_reads_it():
    with open('/etc/os-release', 'rb') as f:
        data = f.read()
    ours = read_os_release_vars(data)
    names = sorted(ours)
    out = subprocess.run(['sh', '-c', '. /etc/os-release; for n in "$@"; do eval "printf \'%s\\0\' \\"\\$$n\\""; done',
                          'sh'] + names, capture_output=True, check=True).stdout.decode()
    assert dict(zip(names, out.split('\0'))) == ours
    os_ = parse_os_release(data)
    assert os_['id'] == ours['ID'] and os_['version_id'] == ours.get('VERSION_ID')


_VALUE = st.text(st.sampled_from(list('abcAZ019 .-_/()"\'$`\\#;:=*?!~') + ['\n', '\t', '\u00e9', '\u4e2d']),
                 max_size=20)


def _double(value):
    return '"%s"' % ''.join('\\' + c if c in '\\"$`' else c for c in value)


def _single(value):
    return "'%s'" % value.replace("'", "'\\''")


def _escaped(value):
    if '\n' in value:  # an escaped newline is a line continuation: no way to write one unquoted
        return _double(value)
    return ''.join(c if c.isalnum() or c in '._-/' else '\\' + c for c in value) or "''"


@settings(max_examples=60, deadline=None)
@given(assignments=st.lists(st.tuples(_VALUE, st.sampled_from([_double, _single, _escaped])),
                            min_size=1, max_size=25))
def test_os_release_reads_values_as_the_shell_does(assignments, tmp_path_factory):
    path = tmp_path_factory.mktemp('osr') / 'os-release'
    lines = ['# generated']
    for i, (value, quote) in enumerate(assignments):
        lines.append('V%d=%s' % (i, quote(value)))
        if i % 3 == 0:
            lines.append('')
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    names = ['V%d' % i for i in range(len(assignments))]
    out = subprocess.run(['sh', '-c', '. "$1"; shift; for n in "$@"; do eval "printf \'%s\\0\' \\"\\$$n\\""; done',
                          'sh', str(path)] + names, capture_output=True, check=True).stdout.decode('utf-8')
    shell = dict(zip(names, out.split('\0')))
    ours = read_os_release_vars(path.read_bytes())
    assert ours == shell


# ---------------------------------------------------------------------------------------- dpkg

STATUS = b'''Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12980
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Depends: libgcc-s1
Conffiles:
 /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 A paragraph after an empty description line.

Package: libc6
Status: install ok installed
Architecture: i386
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4

Package: openssl
Status: hold ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u2

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2+b1

Package: removed-keeps-config
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: never-installed
Status: purge ok not-installed
Architecture: amd64

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: half-configured
Status: install ok half-configured
Architecture: amd64
Version: 2.0-1
'''


def test_dpkg_status_installed_packages():
    packages = parse_dpkg_status(STATUS)
    assert packages == [
        {'name': 'libc6', 'version': '2.36-9+deb12u4', 'source': 'glibc', 'source_version': '2.36-9+deb12u4',
         'arch': 'amd64'},
        {'name': 'libc6', 'version': '2.36-9+deb12u4', 'source': 'glibc', 'source_version': '2.36-9+deb12u4',
         'arch': 'i386'},
        {'name': 'openssl', 'version': '3.0.11-1~deb12u2', 'source': 'openssl', 'source_version': '3.0.11-1~deb12u2',
         'arch': 'amd64'},
        {'name': 'libssl3', 'version': '3.0.11-1~deb12u2+b1', 'source': 'openssl',
         'source_version': '3.0.11-1~deb12u2', 'arch': 'amd64'},
        {'name': 'tzdata', 'version': '2024a-0+deb12u1', 'source': 'tzdata', 'source_version': '2024a-0+deb12u1',
         'arch': 'all'},
        {'name': 'half-configured', 'version': '2.0-1', 'source': 'half-configured', 'source_version': '2.0-1',
         'arch': 'amd64'},
    ]


def test_dpkg_status_as_text_with_crlf_and_extra_blank_lines():
    text = STATUS.decode().replace('\n\n', '\n\n \n\t\n').replace('\n', '\r\n')
    assert parse_dpkg_status(text) == parse_dpkg_status(STATUS)
    assert parse_dpkg_status(b'') == []


@pytest.mark.parametrize('corrupt, where', [
    (b'Package: a\nStatus: install ok installed\nVersion: 1\nthis is not a field\n', 'line 4'),
    (b' continuation first\nPackage: a\n', 'line 1'),
    (b'\x89PNG\r\n\x1a\n\x00\x00binary', 'line 1'),
    (b'Status: install ok installed\nVersion: 1\n', 'without a Package field near line 1'),
    (b'Package: a\nStatus: install ok installed\n', 'no Version'),
    (b'Package: a\nStatus: installed\nVersion: 1\n', 'Status field'),
    (b'Package: a\nStatus: install ok installed\nVersion: 1\nSource: b (1) (2)\n', 'Source field'),
])
def test_corrupt_dpkg_status_is_one_sentence(corrupt, where):
    with pytest.raises(PackageDatabaseError) as info:
        parse_dpkg_status(corrupt)
    msg = str(info.value)
    one_sentence(msg)
    assert msg.startswith('The dpkg status file') and where in msg


def test_dpkg_status_of_this_machine_is_what_dpkg_query_says():
    with open('/var/lib/dpkg/status', 'rb') as f:
        ours = parse_dpkg_status(f.read())
    out = subprocess.run(['dpkg-query', '-W', '-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t'
                          '${source:Package}\t${source:Version}\n'],
                         capture_output=True, text=True, check=True).stdout
    theirs = []
    for line in out.splitlines():
        abbrev, name, version, arch, source, source_version = line.split('\t')
        if abbrev[1] not in 'nc':  # installed in apt's sense: not not-installed, not config-files
            theirs.append({'name': name, 'version': version, 'arch': arch, 'source': source,
                           'source_version': source_version})

    def key(package):
        return package['name'], package['arch']
    assert sorted(ours, key=key) == sorted(theirs, key=key)
    ii = subprocess.run("dpkg-query -W -f='${db:Status-Abbrev}\\n' | grep -c '^ii'", shell=True,
                        capture_output=True, text=True, check=True).stdout.strip()
    assert len(ours) >= int(ii) > 50


def test_distroless_status_d():
    files = {
        'var/lib/dpkg/status.d/base': b'Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n'
                                      b'Maintainer: Santiago Vila <sanvila@debian.org>\n',
        'var/lib/dpkg/status.d/base.md5sums': b'0a1b2c3d  etc/debian_version\n',
        'var/lib/dpkg/status.d/libssl3': b'Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n'
                                         b'Source: openssl\n\nPackage: openssl\nVersion: 3.0.11-1~deb12u2\n'
                                         b'Architecture: amd64\n',
        'var/lib/dpkg/status.d/gone': b'Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n',
    }
    packages = parse_dpkg_status_d(files)
    assert [(p['name'], p['version'], p['source']) for p in packages] == [
        ('base-files', '12.4+deb12u5', 'base-files'),
        ('libssl3', '3.0.11-1~deb12u2', 'openssl'),
        ('openssl', '3.0.11-1~deb12u2', 'openssl'),
    ]
    assert parse_dpkg_status_d(list(files.items())) == packages
    with pytest.raises(PackageDatabaseError) as info:
        parse_dpkg_status_d({'status.d/bad': b'garbage\n'})
    one_sentence(str(info.value))
    assert "status.d file 'bad'" in str(info.value)


# ----------------------------------------------------------------------------------------- apk

APK_INSTALLED = b'''C:Q1SBKJgYQ2zcEi0K+cvLYP9yRsTHs=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Ter\xc3\xa4s <timo.teras@iki.fi>
t:1703867474
c:3fd25b7bd6eb2aaa9b6a3ae8b5b2a4e7bd1f0d88
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1Kn2vL8ZT4Fm3J0Xk8o9h7YV2YI4=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1Nc9Hw5AuDPpFpDdY8RQvG3Sx2cE=
P:libcrypto3
V:3.1.4-r5
A:x86_64
o:openssl
D:so:libc.musl-x86_64.so.1
F:usr/lib
R:libcrypto.so.3

C:Q1abc=
P:alpine-baselayout-data
V:3.4.3-r2
A:x86_64
o:alpine-baselayout
'''


def test_apk_installed():
    assert parse_apk_installed(APK_INSTALLED) == [
        {'name': 'musl', 'version': '1.2.4_git20230717-r4', 'source': 'musl',
         'source_version': '1.2.4_git20230717-r4', 'arch': 'x86_64'},
        {'name': 'libcrypto3', 'version': '3.1.4-r5', 'source': 'openssl', 'source_version': '3.1.4-r5',
         'arch': 'x86_64'},
        {'name': 'alpine-baselayout-data', 'version': '3.4.3-r2', 'source': 'alpine-baselayout',
         'source_version': '3.4.3-r2', 'arch': 'x86_64'},
    ]
    assert parse_apk_installed(b'') == []


@pytest.mark.parametrize('corrupt, where', [
    (b'P:musl\nV:1.2.4-r4\nthis is not apk\n', 'line 3'),
    (b'P:musl\nA:x86_64\n', 'V (version)'),
    (b'V:1.0\n\nP:b\nV:1\n', 'P (name) line near line 1'),
    (b'\x1f\x8b\x08\x00gzip', 'line 1'),
])
def test_corrupt_apk_installed_is_one_sentence(corrupt, where):
    with pytest.raises(PackageDatabaseError) as info:
        parse_apk_installed(corrupt)
    msg = str(info.value)
    one_sentence(msg)
    assert msg.startswith('The apk installed database') and where in msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_packages_or_one_sentence(data):
    for parse in (parse_dpkg_status, parse_apk_installed, parse_os_release):
        try:
            parse(data)
        except PackageDatabaseError as exc:
            one_sentence(str(exc))
    try:
        parse_dpkg_status_d({'x': data})
    except PackageDatabaseError as exc:
        one_sentence(str(exc))


def test_real_files_are_read_where_image_packages_info_finds_them():
    # the paths the module reads, relative to the image's root
    from ansible_collections.patchops.docker.plugins.module_utils import package_db
    assert os.path.exists('/' + package_db.DPKG_STATUS)
    assert any(os.path.exists('/' + p) for p in package_db.OS_RELEASE)
    assert package_db.APK_INSTALLED == 'lib/apk/db/installed'
