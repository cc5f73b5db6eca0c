"""The sandbox's multi-platform indexes (sandbox.publish_index) on the engine this run uses.

What the product's tests build on: the sandbox engine pulls the tag's linux/amd64 image out of an OCI index or
a Docker manifest list and runs it; re-publishing one platform leaves the other platform's manifest
byte-identical; a tag turns into a plain manifest and back; an index without linux/amd64 cannot be pulled
here; attestation entries are ignored by the pull; registry_requests() still tells HEAD from GET.
"""
import json

import pytest

from conftest import sandbox

# Not the product: run once, under the first controller, on every engine kind.
pytestmark = [pytest.mark.once, pytest.mark.engines]


def pulled(ref):
    """Pull ref on the sandbox engine, run it: (its image inspect, what /marker holds)."""
    sandbox.docker('pull', '-q', ref)
    image = json.loads(sandbox.docker('image', 'inspect', ref))[0]
    return image, sandbox.docker('run', '--rm', ref, 'cat', '/marker').strip()


def manifest_of(ref, digest):
    return sandbox.registry_manifest('%s@%s' % (ref.rsplit(':', 1)[0], digest))


@pytest.mark.parametrize('media_type', ['oci', 'docker'])
def test_index_platform_moves(sb, unique, media_type):
    ref = '%s/itest/index-%s:1' % (sb['registry'], unique)
    first = sandbox.publish_index(ref, media_type=media_type, files={'/marker': 'one'})
    assert sandbox.registry_digest(ref) == first['digest']
    served = sandbox.registry_manifest(ref)
    assert served['media_type'] == sandbox.INDEX_TYPES[media_type]
    assert [m['platform'] for m in served['manifest']['manifests']] == [
        {'architecture': 'amd64', 'os': 'linux'}, {'architecture': 'arm64', 'os': 'linux', 'variant': 'v8'}]
    amd64, arm64 = first['manifests']['linux/amd64'], first['manifests']['linux/arm64']
    sandbox.docker('rmi', ref)
    image, marker = pulled(ref)
    assert (marker, image['Architecture']) == ('one', 'amd64')

    # only arm64 moves: the index digest moves, this host's manifest stays byte for byte
    amd64_raw = manifest_of(ref, amd64['digest'])['raw']
    second = sandbox.publish_index(ref, push_only=['linux/arm64'], media_type=media_type)
    assert second['digest'] != first['digest'] and sandbox.registry_digest(ref) == second['digest']
    assert second['manifests']['linux/amd64']['digest'] == amd64['digest']
    assert second['manifests']['linux/arm64']['digest'] != arm64['digest']
    assert manifest_of(ref, amd64['digest'])['raw'] == amd64_raw
    assert pulled(ref)[1] == 'one'

    # amd64 moves
    third = sandbox.publish_index(ref, push_only=['linux/amd64'], media_type=media_type, files={'/marker': 'three'})
    assert third['manifests']['linux/arm64']['digest'] == second['manifests']['linux/arm64']['digest']
    assert third['manifests']['linux/amd64']['digest'] != amd64['digest']
    assert pulled(ref)[1] == 'three'

    # the tag becomes the plain amd64 manifest, then an index over that same image again
    plain = sandbox.registry_tag(ref, third['manifests']['linux/amd64']['digest'])
    assert sandbox.registry_digest(ref) == plain
    assert sandbox.registry_manifest(ref)['manifest'].get('manifests') is None
    assert pulled(ref)[1] == 'three'
    again = sandbox.publish_index(ref, push_only=['linux/arm64'], media_type=media_type)
    assert again['manifests']['linux/amd64']['digest'] == plain and sandbox.registry_digest(ref) == again['digest']
    assert pulled(ref)[1] == 'three'

    # publish() over an index: a plain manifest
    newest = sandbox.publish(ref, files={'/marker': 'plain'})
    assert sandbox.registry_digest(ref) == newest['digest']
    assert pulled(ref)[1] == 'plain'


def test_index_without_this_platform(sb, unique):
    ref = '%s/itest/index-foreign-%s:1' % (sb['registry'], unique)
    published = sandbox.publish_index(ref, platforms=('linux/arm64', 'linux/s390x'))
    assert published['id'] is None and set(published['manifests']) == {'linux/arm64', 'linux/s390x'}
    with pytest.raises(sandbox.SandboxError) as failed:
        sandbox.docker('pull', ref)
    assert 'no match' in failed.value.stderr


def test_index_with_attestations(sb, unique):
    ref = '%s/itest/index-att-%s:1' % (sb['registry'], unique)
    published = sandbox.publish_index(ref, attestation=True, files={'/marker': 'att'})
    entries = sandbox.registry_manifest(ref)['manifest']['manifests']
    attestations = [e for e in entries if e['platform'] == {'architecture': 'unknown', 'os': 'unknown'}]
    assert [e['annotations']['vnd.docker.reference.type'] for e in attestations] == ['attestation-manifest'] * 2
    assert {e['annotations']['vnd.docker.reference.digest'] for e in attestations} == {
        m['digest'] for m in published['manifests'].values()}
    assert pulled(ref)[1] == 'att'
    before = len(sandbox.registry_requests('itest/index-att-' + unique))
    sandbox.registry_digest(ref)
    assert sandbox.registry_requests('itest/index-att-' + unique)[before:] == [
        'HEAD /v2/itest/index-att-%s/manifests/1' % unique]
