"""Which entry of a multi-platform index a host pulls, as containerd's platform matching decides."""
import pytest

from ansible_collections.patchops.docker.plugins.module_utils import platforms

AMD64, ARM64 = 'sha256:' + 'a' * 64, 'sha256:' + 'b' * 64
ARMV6, ARMV7, ATTEST = 'sha256:' + '6' * 64, 'sha256:' + '7' * 64, 'sha256:' + 'c' * 64


def entry(digest, os_name, arch, variant=None, attestation=False):
    descriptor = {'digest': digest, 'platform': {'os': os_name, 'architecture': arch}}
    if variant:
        descriptor['platform']['variant'] = variant
    if attestation:
        descriptor['annotations'] = {'vnd.docker.reference.type': 'attestation-manifest',
                                     'vnd.docker.reference.digest': AMD64}
    return descriptor


INDEX = {'manifests': [entry(ATTEST, 'unknown', 'unknown', attestation=True), entry(AMD64, 'linux', 'amd64'),
                       entry(ARM64, 'linux', 'arm64', 'v8'), entry(ARMV6, 'linux', 'arm', 'v6')]}


@pytest.mark.parametrize('text, expected', [
    ('linux/amd64', ('linux', 'amd64', None)),
    ('linux/x86_64', ('linux', 'amd64', None)),
    ('linux/aarch64', ('linux', 'arm64', 'v8')),
    ('linux/arm64', ('linux', 'arm64', 'v8')),
    ('linux/arm', ('linux', 'arm', 'v7')),
    ('linux/armv7l', ('linux', 'arm', 'v7')),
    ('linux/arm/6', ('linux', 'arm', 'v6')),
    ('Linux/AMD64', ('linux', 'amd64', None)),
])
def test_normalize_as_containerd_does(text, expected):
    assert tuple(platforms.parse(text)) == expected


@pytest.mark.parametrize('text', ['', 'linux', 'linux/', '/amd64', 'a/b/c/d'])
def test_a_platform_that_is_not_os_arch_is_refused(text):
    with pytest.raises(ValueError):
        platforms.parse(text)


def test_format():
    assert platforms.format_platform(platforms.parse('linux/arm64')) == 'linux/arm64/v8'
    assert platforms.format_platform(platforms.parse('linux/amd64')) == 'linux/amd64'


@pytest.mark.parametrize('platform, expected', [
    ('linux/amd64', AMD64),
    ('linux/arm64', ARM64),
    ('linux/arm64/v8', ARM64),
    ('linux/arm/v7', ARMV6),   # no v7 entry: the highest lower variant runs on v7
    ('linux/arm/v5', None),
    ('linux/s390x', None),
    ('windows/amd64', None),
])
def test_select_manifest(platform, expected):
    assert platforms.select_manifest(INDEX, platforms.parse(platform)) == expected


def test_an_exact_variant_wins_over_a_lower_one():
    index = {'manifests': [entry(ARMV6, 'linux', 'arm', 'v6'), entry(ARMV7, 'linux', 'arm', 'v7')]}
    assert platforms.select_manifest(index, platforms.parse('linux/arm/v7')) == ARMV7


def test_attestations_are_never_chosen_or_listed():
    index = {'manifests': [entry(ATTEST, 'unknown', 'unknown', attestation=True)]}
    assert platforms.select_manifest(index, platforms.parse('linux/amd64')) is None
    assert platforms.platforms_in(INDEX) == ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v6']


def test_index_or_manifest_by_media_type_or_shape():
    assert platforms.is_index(platforms.MEDIA_OCI_INDEX)
    assert platforms.is_index(platforms.MEDIA_DOCKER_LIST)
    assert not platforms.is_index(platforms.MEDIA_DOCKER_MANIFEST)
    assert platforms.is_index('', {'manifests': []})
    assert not platforms.is_index('', {'config': {}, 'layers': []})


def test_platform_of_an_image_inspect_and_of_a_daemon():
    assert platforms.of_image({'Os': 'linux', 'Architecture': 'arm64', 'Variant': 'v8'}) == ('linux', 'arm64', 'v8')
    assert platforms.of_image({}, 'fallback') == 'fallback'
    assert platforms.of_daemon({'OSType': 'linux', 'Architecture': 'x86_64'}) == ('linux', 'amd64', None)
    assert platforms.of_daemon({'OSType': 'linux', 'Architecture': 'aarch64'}) == ('linux', 'arm64', 'v8')
