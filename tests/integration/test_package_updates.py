"""image_packages_info and package_updates_info against real package databases and real Debian indexes.

The sandbox's package mirror (sandbox.mirror_up(), tests/sandbox/README.md) serves the real, signed InRelease and
Packages files of Debian 12 (bookworm, bookworm-updates, bookworm-security) that `python3 tests/sandbox prepare`
fetched with apt, on 127.0.0.1:5118 in the archive's layout. The images carry this machine's own dpkg database
(and edited copies of it), a distroless-style status.d, an Alpine apk database; apt itself is the oracle: `apt
list --upgradable` with the same status file and the same lists must say what package_updates_info says.
Alpine has no mirror here: its APKINDEX.tar.gz and secdb are fixtures written below in their exact formats, with
versions chosen for apk's ordering rules.
"""
import base64
import gzip
import hashlib
import io
import json
import os
import tempfile
import re
import socket
import subprocess
import tarfile
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import _RESULT_START, ModuleRun, run_module, sandbox, target_python

from ansible_collections.patchops.docker.plugins.module_utils.package_index import (
    PackageIndexError, apkindex_from_tar_gz, parse_apkindex, parse_inrelease, parse_secfixes, verify_index)
from ansible_collections.patchops.docker.plugins.module_utils.versions import apk_compare

# The module side in detail, and the sandbox's mirror: run once, under the first controller. Reading an image's
# files goes through the engine (the image stores differ): those tests also run on the other engines.
pytestmark = pytest.mark.once

HOST_STATUS = '/var/lib/dpkg/status'
HOST_OS_RELEASE = '/etc/os-release'
DEBIAN_12_OS_RELEASE = '''PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
'''
ALPINE_OS_RELEASE = '''NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
'''
UNKNOWN_OS_RELEASE = '''NAME="Patchops Test OS"
ID=patchopstestos
VERSION_ID=7
VERSION_CODENAME=sevenish
PRETTY_NAME="Patchops Test OS 7"
'''
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
INDEX = 'main/binary-amd64/Packages'

# --------------------------------------------------------------------------------------------- Alpine fixtures

ALPINE_BRANCH = 'v3.20'
# (name, installed version, arch, origin): /lib/apk/db/installed
ALPINE_INSTALLED = [
    ('musl', '1.2.5-r0', 'x86_64', 'musl'),
    ('busybox', '1.36.1-r29', 'x86_64', 'busybox'),
    ('libcrypto3', '3.3.1-r0', 'x86_64', 'openssl'),
    ('libssl3', '3.3.1-r0', 'x86_64', 'openssl'),
    ('zlib', '1.3.1-r0', 'x86_64', 'zlib'),
    ('ca-certificates-bundle', '20240226-r0', 'x86_64', 'ca-certificates'),
    ('foo', '1.0_rc1-r0', 'x86_64', 'foo'),
    ('bar', '1.0-r0', 'x86_64', 'bar'),
    ('baz', '2.0_alpha2-r0', 'x86_64', 'baz'),
    ('qux', '1.2a-r0', 'x86_64', 'qux'),
    ('quux', '1.10-r0', 'x86_64', 'quux'),
    ('kept', '3.0-r0', 'x86_64', 'kept'),
    ('py3-foo', '1.0-r0', 'noarch', 'py3-foo'),
    ('local-thing', '0.1-r0', 'x86_64', 'local-thing'),
]
# (name, version, arch, origin): the main repository's APKINDEX
ALPINE_MAIN = [
    ('musl', '1.2.5-r1', 'x86_64', 'musl'),                   # -rN: a new build of the same version
    ('busybox', '1.36.1-r29', 'x86_64', 'busybox'),           # the same: no update
    ('libcrypto3', '3.3.2-r0', 'x86_64', 'openssl'),          # secdb: 3.3.2-r0 fixed CVE-2024-6119
    ('libssl3', '3.3.2-r0', 'x86_64', 'openssl'),
    ('zlib', '1.3.1-r1', 'x86_64', 'zlib'),                   # secdb lists only 1.3.1-r0 (installed): no fix
    ('ca-certificates-bundle', '20240705-r0', 'x86_64', 'ca-certificates'),
    ('foo', '1.0-r0', 'x86_64', 'foo'),                       # _rc1 < the release
    ('bar', '1.0_p1-r0', 'x86_64', 'bar'),                    # _p1 (a patch) > the release
    ('baz', '2.0_alpha10-r0', 'x86_64', 'baz'),               # _alpha10 > _alpha2: numbers, not strings
    ('qux', '1.2b-r0', 'x86_64', 'qux'),                      # letter b > a
    ('quux', '1.9-r5', 'x86_64', 'quux'),                     # 1.9 < 1.10: older, whatever its -r
    ('kept', '3.0_rc2-r9', 'x86_64', 'kept'),                 # _rc2 < 3.0, whatever its -r
    ('py3-foo', '1.0-r1', 'noarch', 'py3-foo'),               # noarch
    ('not-installed', '9.9-r0', 'x86_64', 'not-installed'),
]
ALPINE_COMMUNITY = [
    ('jq', '1.7.1-r0', 'x86_64', 'jq'),                       # nothing installed comes from community
]
ALPINE_SECDB_MAIN = {
    'openssl': {'3.3.2-r0': ['CVE-2024-6119'], '3.1.4-r1': ['CVE-2023-5363'], '0': ['CVE-2022-1234']},
    'zlib': {'1.3.1-r0': ['CVE-2023-45853']},
}
# what apk would upgrade: name -> (installed, available, security)
ALPINE_EXPECTED = {
    'musl': ('1.2.5-r0', '1.2.5-r1', False),
    'libcrypto3': ('3.3.1-r0', '3.3.2-r0', True),
    'libssl3': ('3.3.1-r0', '3.3.2-r0', True),
    'zlib': ('1.3.1-r0', '1.3.1-r1', False),
    'ca-certificates-bundle': ('20240226-r0', '20240705-r0', False),
    'foo': ('1.0_rc1-r0', '1.0-r0', False),
    'bar': ('1.0-r0', '1.0_p1-r0', False),
    'baz': ('2.0_alpha2-r0', '2.0_alpha10-r0', False),
    'qux': ('1.2a-r0', '1.2b-r0', False),
    'py3-foo': ('1.0-r0', '1.0-r1', False),
}


def _apk_checksum(*words):
    return 'Q1' + base64.b64encode(hashlib.sha1(' '.join(words).encode()).digest()).decode()


def _apk_block(name, version, arch, origin, installed=False):
    lines = ['C:' + _apk_checksum(name, version), 'P:' + name, 'V:' + version, 'A:' + arch,
             'S:%d' % (1000 + len(name) * 37), 'I:%d' % (4096 + len(name) * 512),
             'T:%s test package' % name, 'U:https://example.org/%s' % name, 'L:MIT', 'o:' + origin,
             'm:Patchops Tests <tests@example.org>', 't:1719000000', 'c:0123456789abcdef0123456789abcdef01234567']
    if name == 'libssl3':
        lines += ['D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3', 'p:so:libssl.so.3=3']
    if installed and name in ('musl', 'busybox'):
        lines += ['F:lib', 'R:ld-musl-x86_64.so.1' if name == 'musl' else 'R:busybox', 'a:0:0:755',
                  'Z:' + _apk_checksum('file', name)]
    return '\n'.join(lines) + '\n'


def alpine_installed_db():
    """/lib/apk/db/installed: one block per package, blocks separated by a blank line."""
    return '\n'.join(_apk_block(*entry, installed=True) for entry in ALPINE_INSTALLED) + '\n'


def _tar(members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1719000000, 0o644
            info.uname = info.gname = 'root'
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def apkindex_tar_gz(entries, description):
    """An APKINDEX.tar.gz as abuild-sign and apk index write it: the signature's tar segment without its
    end-of-archive blocks (abuild-tar --cut), gzipped, then the tar of DESCRIPTION and APKINDEX, gzipped."""
    text = '\n'.join(_apk_block(*entry) for entry in entries) + '\n'
    signature = b'\x5a' * 512  # an RSA signature's size; apk would check it, package_updates_info does not
    sig_tar = _tar([('.SIGN.RSA.alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub', signature)])
    cut = 512 + (len(signature) + 511) // 512 * 512
    index_tar = _tar([('DESCRIPTION', description.encode()), ('APKINDEX', text.encode())])
    return gzip.compress(sig_tar[:cut], mtime=0) + gzip.compress(index_tar, mtime=0)


def alpine_secdb(repo, packages):
    return json.dumps({
        'apkurl': '{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk',
        'archs': ['aarch64', 'armhf', 'armv7', 'ppc64le', 's390x', 'x86', 'x86_64'],
        'reponame': repo, 'urlprefix': 'https://dl-cdn.alpinelinux.org/alpine', 'distroversion': ALPINE_BRANCH,
        'packages': [{'pkg': {'name': name, 'secfixes': fixes}} for name, fixes in sorted(packages.items())],
    }, indent=2) + '\n'


def put_alpine_fixtures():
    for repo, entries in (('main', ALPINE_MAIN), ('community', ALPINE_COMMUNITY)):
        sandbox.mirror_put('alpine/%s/%s/x86_64/APKINDEX.tar.gz' % (ALPINE_BRANCH, repo),
                           apkindex_tar_gz(entries, '%s-0-g0123456 [%s/%s]' % (ALPINE_BRANCH, ALPINE_BRANCH, repo)))
    sandbox.mirror_put('alpine-secdb/%s/main.json' % ALPINE_BRANCH, alpine_secdb('main', ALPINE_SECDB_MAIN))
    sandbox.mirror_put('alpine-secdb/%s/community.json' % ALPINE_BRANCH, alpine_secdb('community', {}))


# --------------------------------------------------------------------------------------------- dpkg fixtures

def paragraphs(text):
    return [p for p in re.split(r'\n\s*\n', text) if p.strip()]


def field(paragraph, name):
    match = re.search(r'^%s:[ \t]*(.*)$' % re.escape(name), paragraph, re.M | re.I)
    return match.group(1).strip() if match else None


# what an index paragraph has that a status paragraph has not
INDEX_ONLY = ('Filename', 'Size', 'MD5sum', 'SHA1', 'SHA256', 'Description-md5', 'Tag')


def as_status(paragraph, status='install ok installed'):
    """An index paragraph as dpkg records the package once installed (apt merges an installed version with an
    index's only when their fields agree, else it offers the index's as an upgrade of the same version)."""
    lines, keeping = [], True
    for line in paragraph.strip('\n').splitlines():
        if line[:1] in (' ', '\t'):
            if keeping:
                lines.append(line)
            continue
        keeping = line.split(':', 1)[0] not in INDEX_ONLY
        if keeping:
            lines.append(line)
        if status and line.startswith('Package:'):
            lines.append('Status: ' + status)
    return '\n'.join(lines) + '\n'


def replace_paragraphs(status_text, replacements):
    """The status file with the paragraphs of the packages in ``replacements`` ({name: paragraph}) replaced."""
    out = []
    for paragraph in paragraphs(status_text):
        name = field(paragraph, 'Package')
        out.append(replacements.get(name, paragraph).strip('\n'))
    return '\n\n'.join(out) + '\n'


def index_entries(path):
    """{name: {version: paragraph}} of a Packages index."""
    found = {}
    with open(path, 'rb') as f:
        for paragraph in f.read().decode('utf-8', 'replace').split('\n\n'):
            name, version = field(paragraph, 'Package'), field(paragraph, 'Version')
            if name and version:
                found.setdefault(name, {})[version] = paragraph
    return found


def dpkg_lt(a, b):
    return subprocess.run(['dpkg', '--compare-versions', a, 'lt', b], check=False).returncode == 0


def dpkg_query_installed(status_path, tmp_path):
    """How many packages dpkg-query counts as installed (any state but not-installed and config-files)."""
    admin = tmp_path / ('admindir-%s' % uuid.uuid4().hex[:6])
    admin.mkdir()
    (admin / 'status').write_bytes(open(status_path, 'rb').read())
    out = subprocess.run(['dpkg-query', '--admindir=%s' % admin, '-W', '-f=${db:Status-Abbrev}\n'],
                         capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if len(line) > 1 and line[1] not in 'nc')


# ------------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope='module')
def mirror(sb):
    info = sandbox.mirror_up()
    sandbox.mirror_reset()
    put_alpine_fixtures()
    yield info
    sandbox.mirror_fault()
    sandbox.mirror_down()


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    return tmp_path_factory.mktemp('packages')


@pytest.fixture(scope='module')
def statuses(mirror, work):
    """The dpkg status files the images carry, as files for apt: the machine's own; the same with every update
    apt would make applied (nothing pending); and that with one package back at its release version, so a
    security update is pending for it."""
    host = open(HOST_STATUS, encoding='utf-8').read()
    suites = {suite: index_entries(os.path.join(mirror['root'], archive, 'dists', suite, INDEX))
              for archive, suite in sandbox.MIRROR_SUITES}

    def offered(name, version):
        return next(entries[name][version] for entries in suites.values() if version in entries.get(name, {}))

    upgradable = sandbox.mirror_apt_upgradable(HOST_STATUS, mirror)
    current = replace_paragraphs(host, {u['name']: as_status(offered(u['name'], u['available'])) for u in upgradable})
    installed = {field(p, 'Package'): field(p, 'Version') for p in paragraphs(current)
                 if (field(p, 'Status') or '').endswith(' installed')}
    security, release = suites['bookworm-security'], suites['bookworm']
    preferred = ['libssl3', 'openssl', 'libc6', 'libc-bin', 'apt', 'libsystemd0', 'tar', 'gzip']
    candidates = [n for n in preferred if n in installed] + sorted(n for n in installed if n not in preferred)
    pkg = next((n for n in candidates if installed[n] in security.get(n, {}) and len(release.get(n, {})) == 1
                and dpkg_lt(next(iter(release[n])), installed[n])), None)
    assert pkg, 'no installed package of this machine has a security update over its release version'
    old = next(iter(release[pkg]))
    downgraded = replace_paragraphs(current, {pkg: as_status(release[pkg][old])})
    files = {}
    for name, text in (('host', host), ('current', current), ('downgraded', downgraded)):
        files[name] = work / ('status-' + name)
        files[name].write_text(text, encoding='utf-8')
    # a distroless image's status.d: release versions from the bookworm index, one file per package
    distroless = [next(iter(release[n].values())) for n in ('base-files', 'libc6', 'libssl3', 'tzdata', 'netbase')]
    files['distroless'] = work / 'status-distroless'
    files['distroless'].write_text('\n'.join(as_status(p) for p in distroless), encoding='utf-8')
    return {'files': files, 'texts': {'host': host, 'current': current, 'downgraded': downgraded},
            'distroless': [as_status(p, None) for p in distroless], 'downgraded': (pkg, old, installed[pkg])}


@pytest.fixture(scope='module')
def images(sb, statuses):
    """name -> {'ref', 'id'}: local images (never pushed) that carry those databases, and the base image."""
    tag = uuid.uuid4().hex[:8]
    os_release = open(HOST_OS_RELEASE, encoding='utf-8').read()
    texts = statuses['texts']
    status_d = {}
    for number, paragraph in enumerate(statuses['distroless']):
        name = field(paragraph, 'Package')
        # distroless writes one file per package, without a Status field (older ones with it) and md5sums beside
        status_d['/var/lib/dpkg/status.d/' + name] = paragraph if number else re.sub(
            r'^(Package: .*)$', r'\1\nStatus: install ok installed', paragraph, count=1, flags=re.M)
        status_d['/var/lib/dpkg/status.d/%s.md5sums' % name] = '%s  usr/share/doc/%s/copyright\n' % (
            hashlib.md5(name.encode()).hexdigest(), name)
    contents = {
        'host': {'/var/lib/dpkg/status': texts['host'], '/etc/os-release': os_release},
        'current': {'/var/lib/dpkg/status': texts['current'], '/etc/os-release': os_release},
        'downgraded': {'/var/lib/dpkg/status': texts['downgraded'], '/etc/os-release': os_release},
        'distroless': dict(status_d, **{'/etc/os-release': DEBIAN_12_OS_RELEASE}),
        'alpine': {'/lib/apk/db/installed': alpine_installed_db(), '/etc/os-release': ALPINE_OS_RELEASE,
                   '/etc/apk/repositories': '%s/%s/main\n%s/%s/community\n' % (
                       sandbox.MIRROR_URL + '/alpine', ALPINE_BRANCH, sandbox.MIRROR_URL + '/alpine', ALPINE_BRANCH),
                   '/etc/alpine-release': '3.20.3\n'},
        'corrupt': {'/var/lib/dpkg/status': 'Package: ok\nVersion: 1.0\nStatus: install ok installed\n'
                                            'this line is no field of a deb822 paragraph\n',
                    '/etc/os-release': DEBIAN_12_OS_RELEASE},
        'unknown': {'/var/lib/dpkg/status': '\n\n'.join(paragraphs(texts['current'])[:5]) + '\n',
                    '/etc/os-release': UNKNOWN_OS_RELEASE},
    }
    made = {}
    try:
        for name, files in contents.items():
            ref = '%s/itest/pkgs-%s:%s' % (sb['registry'], name, tag)
            made[name] = {'ref': ref, 'id': sandbox.publish(ref, files=files, push=False)['id']}
        made['busybox'] = {'ref': sandbox.BASE_IMAGE,
                           'id': sandbox.docker('image', 'inspect', '--format', '{{.Id}}', sandbox.BASE_IMAGE).strip()}
        yield made
    finally:
        refs = [entry['ref'] for name, entry in made.items() if name != 'busybox']
        if refs:
            sandbox.docker('rmi', '-f', *refs, check=False)


def engine_containers():
    return sorted(sandbox.docker('ps', '-aq', '--no-trunc').split())


@pytest.fixture(scope='module')
def packages(docker_host, images):
    """One image_packages_info run over every image; the engine's containers before and after it."""
    before = engine_containers()
    result = run_module('image_packages_info', dict(docker_host=docker_host,
                                                    images=[entry['ref'] for entry in images.values()]))
    return {'result': result, 'before': before, 'after': engine_containers()}


def by_id(result, images):
    entries = {entry['image_id']: entry for entry in result['images']}
    return {name: entries.get(image['id']) for name, image in images.items()}


@pytest.fixture(scope='module')
def updates(packages, images, mirror, work):
    """One package_updates_info run over image_packages_info's images, against the mirror."""
    result = run_updates(dict(
        images=packages['result']['images'], mirrors=mirrors(mirror), cache_dir=str(work / 'cache-main')))
    return result


def run_updates(args):
    """package_updates_info through the ansible CLI as conftest.run_module runs modules, with ``images`` passed
    the way a playbook passes a registered result (``images: "{{ packages.images }}"``): a command line cannot
    carry thousands of packages."""
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
        json.dump({'pkg_images': args['images']}, f)
    try:
        module_args = dict(args, images='{{ pkg_images }}')
        cmd = ['ansible', 'localhost', '-c', 'local', '-i', 'localhost,', '-e', '@' + f.name,
               '-e', 'ansible_python_interpreter=%s' % target_python(),
               '-m', 'patchops.docker.package_updates_info', '-a', json.dumps(module_args)]
        env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_DEPRECATION_WARNINGS='0', ANSIBLE_LOCALHOST_WARNING='0',
                   ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    finally:
        os.unlink(f.name)
    match = _RESULT_START.search(proc.stdout)
    if not match:
        raise AssertionError('no module result in output:\n%s\n%s' % (proc.stdout[-5000:], proc.stderr[-5000:]))
    data = json.JSONDecoder().raw_decode(proc.stdout[match.end():])[0]
    return ModuleRun(data, match.group(1), proc.stdout, proc.stderr, proc.returncode)


def mirrors(mirror, debian=None):
    return {'debian': debian or {'archive': mirror['archive'], 'security': mirror['security']},
            'alpine': {'archive': mirror['alpine'], 'secdb': sandbox.MIRROR_URL + '/alpine-secdb'}}


def one_sentence(msg):
    assert isinstance(msg, str) and msg.strip(), msg
    assert '\n' not in msg, msg
    assert 'Traceback' not in msg and 'MODULE FAILURE' not in msg, msg
    assert len(msg) <= 1000, msg


def as_set(entries):
    return {(u['name'], u['installed'], u['available'], bool(u['security'])) for u in entries}


def http_get(url):
    try:
        with NO_PROXY.open(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the mirror and the oracle alone

def test_mirror_serves_inrelease_that_lists_the_packages_it_serves(mirror):
    assert mirror['running'] is True
    for archive, suite in sandbox.MIRROR_SUITES:
        base = '%s/%s/dists/%s/' % (sandbox.MIRROR_URL, archive, suite)
        status, inrelease = http_get(base + 'InRelease')
        assert status == 200
        assert inrelease.startswith(b'-----BEGIN PGP SIGNED MESSAGE-----')
        release = parse_inrelease(inrelease)
        assert release['codename'] == suite
        status, data = http_get(base + INDEX)
        assert status == 200
        verify_index(release, INDEX, data)  # size and SHA256 as InRelease lists them
        assert release['sha256'][INDEX][1] == mirror['indexes'][suite]['packages_sha256']
        assert http_get(base + 'main/binary-amd64/by-hash/SHA256/' + release['sha256'][INDEX][1]) == (200, data)
        # only the plain index is there: apt and the modules fall back to it
        assert http_get(base + INDEX + '.xz')[0] == 404
    assert mirror['indexes']['bookworm']['packages'] > 50000


def test_mirror_faults_and_request_log(mirror):
    base = '%s/debian-security/dists/bookworm-security/' % sandbox.MIRROR_URL
    release = parse_inrelease(http_get(base + 'InRelease')[1])
    before = len(sandbox.mirror_requests())
    try:
        sandbox.mirror_fault(missing=[r'/bookworm-security/InRelease$'], corrupt=[r'/binary-amd64/Packages$'],
                             status={r'/bookworm-updates/': 503})
        assert http_get(base + 'InRelease')[0] == 404
        status, data = http_get(base + INDEX)
        assert status == 200 and len(data) == mirror['indexes']['bookworm-security']['packages_bytes']
        with pytest.raises(PackageIndexError, match='does not match the SHA256'):
            verify_index(release, INDEX, data)
        assert http_get(sandbox.MIRROR_URL + '/debian/dists/bookworm-updates/InRelease')[0] == 503
    finally:
        sandbox.mirror_fault()
    assert http_get(base + 'InRelease')[0] == 200
    assert sandbox.mirror_requests()[before:] == [
        'GET /debian-security/dists/bookworm-security/InRelease 404',
        'GET /debian-security/dists/bookworm-security/%s 200' % INDEX,
        'GET /debian/dists/bookworm-updates/InRelease 503',
        'GET /debian-security/dists/bookworm-security/InRelease 200']
    assert sandbox.mirror_requests('/debian-security/')[-1].endswith('InRelease 200')


def test_apt_reads_the_mirror_and_agrees_with_the_cached_lists(mirror, tmp_path):
    """apt-get update against the loopback mirror (InRelease signatures checked with Debian's keyring, indexes
    against InRelease), then apt list --upgradable on those lists says what it says on the cached ones."""
    lists = tmp_path / 'lists'
    (lists / 'partial').mkdir(parents=True)
    sources = tmp_path / 'sources.list'
    sources.write_text(''.join('deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s/%s %s main\n'
                               % (sandbox.MIRROR_URL, archive, suite) for archive, suite in sandbox.MIRROR_SUITES))
    common = ['-o', 'Dir::Etc::sourcelist=%s' % sources, '-o', 'Dir::Etc::sourceparts=/dev/null',
              '-o', 'Dir::State::Lists=%s' % lists, '-o', 'Dir::Cache=%s' % (tmp_path / 'cache'),
              '-o', 'Dir::Etc::preferences=/dev/null', '-o', 'Dir::Etc::preferencesparts=/dev/null',
              '-o', 'APT::Architectures=amd64', '-o', 'Acquire::http::Proxy=DIRECT']
    proc = subprocess.run(['apt-get', '-q', '-o', 'Acquire::Languages=none', '-o', 'APT::Sandbox::User=root']
                          + common + ['update'], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and not re.search(r'^(E:|W:)', proc.stdout + proc.stderr, re.M), \
        proc.stdout + proc.stderr
    proc = subprocess.run(['apt', 'list', '--upgradable', '-o', 'Dir::State::status=' + HOST_STATUS] + common,
                          capture_output=True, text=True, timeout=300, check=True)
    loopback = sorted(line for line in proc.stdout.splitlines() if '[upgradable from:' in line)
    cached = sandbox.mirror_apt_upgradable(HOST_STATUS, mirror)
    assert len(loopback) == len(cached)
    line = '{name}/{suites} {available} {arch} [upgradable from: {installed}]'
    lines = [line.format(**dict(u, suites=','.join(u['suites']))) for u in cached]
    assert sorted(lines) == loopback


def test_oracle_fixtures(mirror, statuses):
    """apt itself says what the edited status files are: nothing pending, and one security update."""
    files = statuses['files']
    assert sandbox.mirror_apt_upgradable(str(files['current']), mirror) == []
    name, release, security = statuses['downgraded']
    assert sandbox.mirror_apt_upgradable(str(files['downgraded']), mirror) == [{
        'name': name, 'installed': release, 'available': security, 'arch': ANY_ARCH, 'security': True,
        'suites': ANY_SUITES}]
    assert sandbox.mirror_apt_upgradable(str(files['distroless']), mirror), 'release versions have updates'


class _Any:
    def __init__(self, test):
        self.test = test

    def __eq__(self, other):
        return self.test(other)

    def __repr__(self):
        return '<any>'


ANY_ARCH = _Any(lambda a: a in ('amd64', 'all'))
ANY_SUITES = _Any(lambda s: isinstance(s, list) and any(x.endswith('-security') for x in s))


def test_alpine_fixtures_are_what_apk_reads(mirror):
    """The fixtures' format (APKINDEX.tar.gz: two gzip streams, a signature segment then the index) and the
    order the expectations assume, with the collection's own readers."""
    status, data = http_get('%s/%s/main/x86_64/APKINDEX.tar.gz' % (mirror['alpine'], ALPINE_BRANCH))
    assert status == 200
    assert data.count(b'\x1f\x8b\x08') >= 2
    index = parse_apkindex(apkindex_from_tar_gz(data))
    assert {name: versions[0][0] for name, versions in index.items()} == {e[0]: e[1] for e in ALPINE_MAIN}
    for name, installed, _arch, _origin in ALPINE_INSTALLED:
        offered = index.get(name)
        newer = bool(offered) and apk_compare(offered[0][0], installed) > 0
        assert newer == (name in ALPINE_EXPECTED), name
    status, secdb = http_get('%s/alpine-secdb/%s/main.json' % (sandbox.MIRROR_URL, ALPINE_BRANCH))
    assert status == 200 and parse_secfixes(secdb)['openssl'][0] == ('3.3.2-r0', ['CVE-2024-6119'])


# ----------------------------------------------------------------------------------------- image_packages_info

@pytest.mark.engines
def test_image_packages_info_reads_every_kind_of_database(packages, images, statuses, work):
    result = packages['result']
    assert not result.failed, result
    assert result['changed'] is False
    entries = by_id(result, images)
    assert all(entries.values()), {n: bool(e) for n, e in entries.items()}

    host = entries['host']
    assert host['error'] is None
    assert host['package_manager'] == 'dpkg'
    assert len(host['packages']) == dpkg_query_installed(HOST_STATUS, work)
    assert host['os']['id'] == 'debian' and host['os']['version_codename'] == 'bookworm'
    assert images['host']['ref'] in host['references']
    dpkg = {p['name']: p for p in host['packages']}
    for paragraph in paragraphs(statuses['texts']['host'])[:50]:
        if (field(paragraph, 'Status') or '').endswith(' installed'):
            assert dpkg[field(paragraph, 'Package')]['version'] == field(paragraph, 'Version')

    assert entries['busybox']['package_manager'] is None
    assert entries['busybox']['error'] is None
    assert not entries['busybox']['packages']

    distroless = entries['distroless']
    assert distroless['error'] is None and distroless['package_manager'] == 'dpkg'
    assert sorted(p['name'] for p in distroless['packages']) == sorted(
        field(p, 'Package') for p in statuses['distroless'])
    libc = next(p for p in distroless['packages'] if p['name'] == 'libc6')
    assert libc['source'] == 'glibc' and libc['arch'] == 'amd64'

    alpine = entries['alpine']
    assert alpine['error'] is None and alpine['package_manager'] == 'apk'
    assert alpine['os']['id'] == 'alpine' and alpine['os']['version_id'] == '3.20.3'
    assert [(p['name'], p['version'], p['arch'], p['source']) for p in alpine['packages']] == ALPINE_INSTALLED


@pytest.mark.engines
def test_image_packages_info_a_corrupt_database_is_that_image_s_error(packages, images):
    result = packages['result']
    assert not result.failed, result
    entries = by_id(result, images)
    one_sentence(entries['corrupt']['error'])
    for name in ('host', 'current', 'downgraded', 'distroless', 'alpine', 'busybox', 'unknown'):
        assert entries[name]['error'] is None, (name, entries[name]['error'])
    assert result['summary']['images'] == len(images)
    assert result['summary']['errors'] == 1


def test_image_packages_info_leaves_nothing_behind(packages):
    assert packages['after'] == packages['before']
    assert packages['result']['changed'] is False


# ---------------------------------------------------------------------------------------- package_updates_info

@pytest.mark.parametrize('name', ['host', 'current', 'downgraded', 'distroless'])
def test_updates_are_what_apt_says(updates, images, statuses, mirror, name):
    assert not updates.failed, updates
    assert updates['changed'] is False
    entry = by_id(updates, images)[name]
    assert entry is not None and entry['error'] is None, entry
    apt = sandbox.mirror_apt_upgradable(str(statuses['files'][name]), mirror)
    assert as_set(entry['updates']) == as_set(apt)
    assert entry['package_updates'] == len(apt)
    assert entry['security_updates'] == sum(1 for u in apt if u['security'])
    for update in entry['updates']:
        assert update['suite'] in sandbox.mirror_info()['suites'], update
        assert update['security'] == update['suite'].endswith('-security'), update


def test_updates_nothing_pending_and_one_security_update(updates, images, statuses):
    entries = by_id(updates, images)
    assert entries['current']['updates'] == []
    assert entries['current']['security_updates'] == 0
    name, release, security = statuses['downgraded']
    assert [(u['name'], u['installed'], u['available'], u['security'], u['suite'])
            for u in entries['downgraded']['updates']] == [(name, release, security, True, 'bookworm-security')]


def test_alpine_updates_in_apk_order(updates, images):
    entry = by_id(updates, images)['alpine']
    assert entry['error'] is None, entry
    assert {u['name']: (u['installed'], u['available'], u['security']) for u in entry['updates']} == ALPINE_EXPECTED
    assert entry['security_updates'] == 2


def test_updates_unknown_distribution_and_no_database(updates, images):
    entries = by_id(updates, images)
    one_sentence(entries['unknown']['error'])
    assert 'patchopstestos' in entries['unknown']['error']
    assert entries['busybox']['error'] is None and entries['busybox']['updates'] == []
    summary = updates['summary']
    assert summary['images'] == len(updates['images'])
    assert summary['unknown'] == sum(1 for e in updates['images'] if e['error'])
    assert summary['security_updates'] == sum(e['security_updates'] or 0 for e in updates['images'])
    assert summary['with_security_updates'] == sum(1 for e in updates['images'] if e['security_updates'])


def test_indexes_are_fetched_once_per_run_and_cached(packages, images, mirror, tmp_path):
    chosen = [e for e in packages['result']['images']
              if e['image_id'] in {images[n]['id'] for n in ('host', 'current', 'downgraded', 'distroless')}]
    args = dict(images=chosen, mirrors=mirrors(mirror), cache_dir=str(tmp_path / 'cache'))
    start = len(sandbox.mirror_requests())
    first = run_updates(args)
    asked = sandbox.mirror_requests()[start:]
    assert not first.failed, first
    assert all(e['error'] is None for e in first['images']), first['images']
    for archive, suite in sandbox.MIRROR_SUITES:
        base = '/%s/dists/%s/' % (archive, suite)
        assert asked.count('GET %sInRelease 200' % base) == 1, asked
        fetched = [line for line in asked if line.startswith('GET ' + base + 'main/') and line.endswith(' 200')]
        assert len(fetched) == 1, asked
    second = run_updates(args)
    assert not second.failed, second
    assert sandbox.mirror_requests()[start + len(asked):] == []
    assert [e['updates'] for e in second['images']] == [e['updates'] for e in first['images']]


# ------------------------------------------------------------------------------------------------- bad input

def _pick(packages, images, names):
    ids = {images[n]['id'] for n in names}
    return [e for e in packages['result']['images'] if e['image_id'] in ids]


@pytest.mark.parametrize('fault', ['missing-inrelease', 'missing-packages', 'hash-mismatch', 'unreachable'])
def test_a_bad_debian_mirror_is_those_images_error(packages, images, mirror, tmp_path, fault):
    debian = None
    if fault == 'missing-inrelease':
        sandbox.mirror_fault(missing=[r'^/debian-security/dists/bookworm-security/InRelease$'])
    elif fault == 'missing-packages':
        sandbox.mirror_fault(missing=[r'^/debian/dists/bookworm/main/binary-amd64/'])
    elif fault == 'hash-mismatch':
        sandbox.mirror_fault(corrupt=[r'^/debian-security/dists/bookworm-security/main/binary-amd64/'])
    else:
        port = free_port()
        debian = {'archive': 'http://127.0.0.1:%d/debian' % port, 'security': 'http://127.0.0.1:%d/debian-security'
                  % port}
    try:
        result = run_updates(dict(
            images=_pick(packages, images, ['host', 'downgraded', 'alpine', 'busybox']),
            mirrors=mirrors(mirror, debian), cache_dir=str(tmp_path / 'cache'), timeout=20))
    finally:
        sandbox.mirror_fault()
    assert not result.failed, result
    assert result['changed'] is False
    entries = by_id(result, {n: images[n] for n in ('host', 'downgraded', 'alpine', 'busybox')})
    for name in ('host', 'downgraded'):
        one_sentence(entries[name]['error'])
        assert not entries[name]['updates']
    if fault == 'hash-mismatch':
        assert re.search(r'hash|SHA256|match', entries['host']['error']), entries['host']['error']
    assert entries['alpine']['error'] is None
    assert {u['name'] for u in entries['alpine']['updates']} == set(ALPINE_EXPECTED)
    assert entries['busybox']['error'] is None
    assert result['summary']['unknown'] == 2


def test_the_mirror_down_is_every_mirrored_image_s_error(packages, images, mirror, tmp_path):
    sandbox.mirror_down()
    try:
        result = run_updates(dict(
            images=_pick(packages, images, ['host', 'alpine', 'busybox']), mirrors=mirrors(mirror),
            cache_dir=str(tmp_path / 'cache'), timeout=20))
    finally:
        sandbox.mirror_up()
    assert not result.failed, result
    assert result['changed'] is False
    entries = by_id(result, {n: images[n] for n in ('host', 'alpine', 'busybox')})
    one_sentence(entries['host']['error'])
    one_sentence(entries['alpine']['error'])
    assert entries['busybox']['error'] is None


def test_the_role_reports_pending_security_updates_and_patches_only_those_with_security_only(
        sb, docker_host, mirror, statuses, work, containers, unique, tmp_path):
    """patch_containers_packages with patch_containers_security_only: two containers with newer images waiting;
    only the one whose image carries a pending security update is patched, the report says why the other is not."""
    os_release = open(HOST_OS_RELEASE, encoding='utf-8').read()
    texts = statuses['texts']
    repo = '%s/itest/pkgrole-%s' % (sb['registry'], unique)
    names = {}
    for kind in ('downgraded', 'current'):
        ref = '%s-%s:1' % (repo, kind)
        files = {'/var/lib/dpkg/status': texts[kind], '/etc/os-release': os_release}
        sandbox.publish(ref, files=files, cmd=['sleep', '86400'])
        names[kind] = containers.run('%s-%s' % (kind, unique), ref)
        # a newer image for the tag (the same packages: what the registry has is what matters to the update)
        sandbox.publish(ref, files=files, cmd=['sleep', '86401'])
    pkg, old, new = statuses['downgraded']
    requests_before = len(sandbox.mirror_requests())
    extra = dict(patch_containers_docker_host=docker_host, patch_containers_state_dir=str(tmp_path / 'state'),
                 patch_containers_include=['*-%s' % unique], patch_containers_hosts='localhost',
                 patch_containers_stable_seconds=1, patch_containers_packages=True,
                 patch_containers_security_only=True, patch_containers_package_mirrors=mirrors(mirror),
                 patch_containers_package_cache_dir=str(tmp_path / 'cache'),
                 patch_containers_report_dir=str(tmp_path / 'report'), ansible_python_interpreter=target_python())
    proc = subprocess.run(['ansible-playbook', '-i', 'localhost,', '-c', 'local', 'patchops.docker.patch_containers',
                           '-e', json.dumps(extra)], capture_output=True, text=True, timeout=900, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0'))

    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / 'report' / 'patch-report.json').read_text())
    (host,) = report['hosts']
    entries = dict((c['name'], c) for c in host['containers'])
    patched, left = entries[names['downgraded']], entries[names['current']]
    assert patched['action'] == 'updated' and patched['security_updates'] == 1
    assert {'name': pkg, 'installed': old, 'available': new, 'security': True} in patched['packages']
    assert left['action'] == 'excluded' and left['security_updates'] == 0
    assert left['message'] == 'no security updates pending in its image (patch_containers_security_only)'
    assert report['summary']['containers_with_security_updates'] == 1
    html = (tmp_path / 'report' / 'patch-report.html').read_text()
    assert '<h2>Pending security updates</h2>' in html and pkg in html
    # the indexes were asked for once for the run: three suites' InRelease and Packages
    asked = sandbox.mirror_requests()[requests_before:]
    assert len([line for line in asked if line.split()[1].endswith('/InRelease')]) == 3, asked


def test_image_rebuild_rebuilds_an_owned_image_only_when_security_updates_are_pending(
        sb, docker_host, mirror, statuses, unique, tmp_path):
    """image_rebuild when: security_updates, its packages read on the host and the indexes from the mirror."""
    os_release = open(HOST_OS_RELEASE, encoding='utf-8').read()
    texts = statuses['texts']
    made = []
    try:
        for kind in ('downgraded', 'current'):
            base = '%s/itest/pkgbase-%s-%s:1' % (sb['registry'], kind, unique)
            sandbox.publish(base, files={'/var/lib/dpkg/status': texts[kind], '/etc/os-release': os_release})
            context = tmp_path / kind
            context.mkdir()
            (context / 'Dockerfile').write_text('FROM %s\nLABEL owned=yes\n' % base)
            made += [base, 'itest/owned-%s-%s:1' % (kind, unique)]
            # the first run builds it (not on the host yet); the second decides by its packages
            images = [dict(name='itest/owned-%s-%s:1' % (kind, unique), context=str(context))]
            args = dict(docker_host=docker_host, images=images, when='security_updates', mirrors=mirrors(mirror),
                        cache_dir=str(tmp_path / 'cache'))
            first = run_module('image_rebuild', args)
            assert first['images'][0]['action'] == 'rebuilt', first
            second = run_module('image_rebuild', args)
            entry = second['images'][0]
            if kind == 'downgraded':
                pkg, old, new = statuses['downgraded']
                assert entry['action'] == 'rebuilt', entry
                assert entry['reason'] == 'Rebuilt: 1 security update pending in its packages (%s %s -> %s).' % (
                    pkg, old, new), entry['reason']
            else:
                assert entry['action'] == 'unchanged', entry
                assert entry['reason'].startswith('No security updates pending in its packages; image '), entry
    finally:
        sandbox.docker('rmi', '-f', *made, check=False)
