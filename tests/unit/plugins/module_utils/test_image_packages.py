"""What image_packages_info makes of files it read: apt and apk sources, an rpm sqlite database."""
import sqlite3
import struct

import pytest

from ansible_collections.patchops.docker.plugins.module_utils.image_packages import (
    apk_sources,
    apt_sources,
    parse_rpm_sqlite,
)
from ansible_collections.patchops.docker.plugins.module_utils.package_db import PackageDatabaseError


class Files(object):
    """ImageFiles' read() over a dict of paths, as the archive API would answer."""

    def __init__(self, tree):
        self.tree = tree

    def read(self, path):
        found = dict((name[len(path) + 1:] or name.rsplit('/', 1)[-1], data) for name, data in self.tree.items()
                     if name == path or name.startswith(path + '/'))
        return found or None


def test_apt_sources_one_line_and_deb822():
    files = Files({
        'etc/apt/sources.list': b'# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm '
                                b'main\ndeb-src http://mirror.example/debian bookworm main\n',
        'etc/apt/sources.list.d/debian.sources': b'Types: deb\nURIs: http://mirror.example/debian\n'
                                                 b'Suites: bookworm bookworm-updates\nComponents: main\n\n'
                                                 b'Types: deb\nURIs: http://security.example/debian-security/\n'
                                                 b'Suites: bookworm-security\nComponents: main\n',
    })
    assert apt_sources(files) == dict(archive='http://mirror.example/debian',
                                      security='http://security.example/debian-security')


def test_apt_sources_of_an_image_without_any():
    assert apt_sources(Files({})) == dict(archive=None, security=None)


def test_apk_sources_take_the_root_above_the_release():
    assert apk_sources(b'# x\n@edge https://mirror.example/alpine/edge/testing\n'
                       b'https://mirror.example/alpine/v3.20/main\n') == dict(archive='https://mirror.example/alpine')
    assert apk_sources(None) == dict(archive=None)


def rpm_header(tags):
    """An rpm header blob (index count, data size, index entries, data) as rpmdb.sqlite stores it."""
    entries, data = b'', b''
    for tag, kind, value in tags:
        if kind == 4:
            while len(data) % 4:
                data += b'\0'
            entries += struct.pack('>iiii', tag, kind, len(data), 1)
            data += struct.pack('>i', value)
        else:
            entries += struct.pack('>iiii', tag, kind, len(data), 1)
            data += value.encode() + b'\0'
    return struct.pack('>ii', len(tags), len(data)) + entries + data


def test_rpm_sqlite_database(tmp_path):
    path = str(tmp_path / 'rpmdb.sqlite')
    connection = sqlite3.connect(path)
    connection.execute('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)')
    for blob in (rpm_header([(1000, 6, 'openssl-libs'), (1001, 6, '3.0.7'), (1002, 6, '27.el9'), (1003, 4, 1),
                             (1022, 6, 'x86_64'), (1044, 6, 'openssl-3.0.7-27.el9.src.rpm')]),
                 rpm_header([(1000, 6, 'tzdata'), (1001, 6, '2024a'), (1002, 6, '1.el9'), (1022, 6, 'noarch'),
                             (1044, 6, 'tzdata-2024a-1.el9.src.rpm')]),
                 rpm_header([(1000, 6, 'gpg-pubkey'), (1001, 6, 'fd431d51'), (1002, 6, '4ae0493b')])):
        connection.execute('INSERT INTO Packages (blob) VALUES (?)', (blob,))
    connection.commit()
    connection.close()
    with open(path, 'rb') as handle:
        packages = parse_rpm_sqlite(handle.read())
    assert packages == [
        dict(name='openssl-libs', version='1:3.0.7-27.el9', source='openssl', source_version='1:3.0.7-27.el9',
             arch='x86_64'),
        dict(name='tzdata', version='2024a-1.el9', source='tzdata', source_version='2024a-1.el9', arch='noarch'),
    ]


def test_an_rpm_database_that_is_not_sqlite_is_one_sentence():
    with pytest.raises(PackageDatabaseError) as caught:
        parse_rpm_sqlite(b'not a database at all' * 100)
    assert str(caught.value).startswith('The rpm database rpmdb.sqlite cannot be read: ')
    assert str(caught.value).endswith('.')
