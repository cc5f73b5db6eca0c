"""Multi-platform tags (image indexes and manifest lists) and the containerd image store, on every engine.

What a host of this platform (linux/amd64) pulls from a tag is one entry of the tag's index. The
index moves whenever any platform is re-pushed (an arm64 build that lands hours later, attestations
re-pushed); only a move of this platform's image is an update. ``sandbox.publish_index`` pushes a
real index to the real registry: the amd64 image is built by the engine, the arm64 one is the base's
layers under an arm64 config (never run here).

The same tests run on Engine 20.10, 26 with the classic store and 26 with the containerd image store
(where an image ID is the digest of the index, and an image whose tag moved on is gone from the store).
"""
import json

import pytest

from conftest import SLEEPER, run_module, sandbox

pytestmark = [pytest.mark.once, pytest.mark.engines]


def by_name(result):
    return {entry['name']: entry for entry in result['containers']}


def inspect(name):
    return json.loads(sandbox.docker('inspect', name))[0]


@pytest.fixture
def repo(sb, unique):
    return '%s/itest/multi-%s' % (sb['registry'], unique)


@pytest.fixture
def running(containers, repo, unique):
    """A container on a two-platform tag (OCI index: linux/amd64 and linux/arm64), pulled as users pull it."""
    first = sandbox.publish_index(repo + ':1', labels={'version': '1'}, env={'APP_MODE': 'v1'}, cmd=SLEEPER)
    name = containers.run('multi-' + unique, repo + ':1')
    return dict(name=name, first=first, ref=repo + ':1', id=inspect(name)['Id'])


def test_the_index_moved_for_other_platforms_only(docker_host, running):
    path = running['ref'].split('/', 1)[1].rsplit(':', 1)[0]
    before = len(sandbox.registry_requests(path))
    moved = sandbox.publish_index(running['ref'], push_only=['linux/arm64'], labels={'version': '1'},
                                  env={'APP_MODE': 'v1'}, cmd=SLEEPER)
    assert moved['digest'] != running['first']['digest'], 'the index moved'
    assert moved['manifests']['linux/amd64']['digest'] == running['first']['manifests']['linux/amd64']['digest']
    asked = len(sandbox.registry_requests(path))

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[running['name']]))

    assert not result.failed, result
    entry = by_name(result)[running['name']]
    assert entry['update_available'] is False, entry
    assert entry['reason'] == 'tag 1 moved for other platforms only; the linux/amd64 image is unchanged'
    assert entry['remote_digest'] == moved['digest'], 'remote_digest stays what the tag resolves to'
    assert entry['platform'] == 'linux/amd64'
    assert result['summary']['updates_available'] == 0
    # One HEAD of the tag, then the new and the old index by digest; no pull.
    made = sandbox.registry_requests(path)[asked:]
    manifests = [r for r in made if '/manifests/' in r]
    assert [r.split()[0] for r in manifests].count('HEAD') == 1, manifests
    assert sorted(r.split()[1].rsplit('/', 1)[1] for r in manifests if r.startswith('GET')) == \
        sorted([moved['digest'], running['first']['digest']]), manifests
    assert len(sandbox.registry_requests(path)) >= before

    checked = run_module('container_update', dict(docker_host=docker_host, containers=[running['name']]),
                         check=True)
    assert [c['action'] for c in checked['containers']] == ['unchanged'], checked
    updated = run_module('container_update', dict(docker_host=docker_host, containers=[running['name']]))
    assert not updated.failed, updated
    assert [c['action'] for c in updated['containers']] == ['unchanged'], updated
    assert updated['changed'] is False
    assert inspect(running['name'])['Id'] == running['id'], 'the container was left alone'

    again = run_module('image_age_info', dict(docker_host=docker_host, containers=[running['name']]))
    entry = by_name(again)[running['name']]
    assert entry['update_available'] is False, ('still no update after the pull', entry)


def test_this_platform_s_image_moved(docker_host, running):
    moved = sandbox.publish_index(running['ref'], push_only=['linux/amd64'], labels={'version': '2'},
                                  env={'APP_MODE': 'v2'}, cmd=SLEEPER)
    assert moved['manifests']['linux/arm64']['digest'] == running['first']['manifests']['linux/arm64']['digest']

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[running['name']]))
    entry = by_name(result)[running['name']]
    assert entry['update_available'] is True, entry
    assert entry['reason'] == 'registry has a newer image for tag 1'
    assert entry['remote_digest'] == moved['digest']

    updated = run_module('container_update', dict(docker_host=docker_host, containers=[running['name']]))
    assert not updated.failed, updated
    assert [c['action'] for c in updated['containers']] == ['updated'], updated
    new = inspect(running['name'])
    assert new['Id'] != running['id']
    assert new['Config']['Labels']['version'] == '2', 'the new container runs the new image'
    assert 'APP_MODE=v2' in new['Config']['Env'], 'an inherited default follows the new image'
    assert 'APP_MODE=v1' not in new['Config']['Env']
    assert sandbox.docker('exec', running['name'], 'sh', '-c', 'echo $APP_MODE').strip() == 'v2'


@pytest.mark.parametrize('media_type', ['oci', 'docker'])
def test_an_index_without_this_platform_is_that_container_s_answer(docker_host, containers, repo, unique,
                                                                   running, media_type):
    other = containers.run('other-' + unique, sandbox.BASE_IMAGE, command=SLEEPER)
    sandbox.publish_index(running['ref'], platforms=('linux/arm64', 'linux/s390x'), media_type=media_type)

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[running['name'], other]))

    assert not result.failed, result
    entry = by_name(result)[running['name']]
    assert entry['update_available'] is None
    assert entry['reason'] == ('registry error: %s: tag 1 has no image for linux/amd64 (it has linux/arm64/v8, '
                               'linux/s390x)' % sandbox.REGISTRY), entry['reason']
    assert by_name(result)[other]['update_available'] is False, 'the other container is answered'

    updated = run_module('container_update', dict(docker_host=docker_host, containers=[running['name']]))
    assert updated.failed and updated['containers'][0]['action'] == 'failed'
    assert inspect(running['name'])['Id'] == running['id'], 'nothing changed'


def test_a_tag_that_became_a_plain_manifest_of_the_same_image(docker_host, running):
    amd64 = running['first']['manifests']['linux/amd64']['digest']
    sandbox.registry_tag(running['ref'], amd64)

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[running['name']]))

    entry = by_name(result)[running['name']]
    assert entry['update_available'] is False, entry
    assert entry['remote_digest'] == amd64


def test_a_plain_tag_that_became_an_index_over_the_same_image(docker_host, containers, repo, unique):
    sandbox.publish(repo + ':2', cmd=SLEEPER)
    name = containers.run('plain-' + unique, repo + ':2')
    index = sandbox.publish_index(repo + ':2', push_only=['linux/arm64'])
    assert index['manifests']['linux/amd64']['new'] is False

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[name]))

    entry = by_name(result)[name]
    assert entry['update_available'] is False, entry
    assert entry['remote_digest'] == index['digest']


def test_attestations_in_the_index_change_nothing(docker_host, running):
    sandbox.publish_index(running['ref'], push_only=[], attestation=True)

    result = run_module('image_age_info', dict(docker_host=docker_host, containers=[running['name']]))

    entry = by_name(result)[running['name']]
    assert entry['update_available'] is False, entry


def test_a_container_whose_image_left_the_store_is_its_own_answer(docker_host, containers, repo, unique):
    """Under the containerd image store a pull that moves a tag takes the old image out of the store while a
    container still runs it; on the classic store the old image stays (dangling). Either way the host is
    answered and the update recreates the container with the new image's defaults."""
    sandbox.publish(repo + ':1', labels={'version': '1'}, env={'APP_MODE': 'v1'}, cmd=SLEEPER)
    name = containers.run('gone-' + unique, repo + ':1')
    other = containers.run('other-' + unique, sandbox.BASE_IMAGE, command=SLEEPER)
    old_id = inspect(name)['Image']
    sandbox.publish(repo + ':1', labels={'version': '2'}, env={'APP_MODE': 'v2'}, cmd=SLEEPER)
    sandbox.docker('pull', repo + ':1')

    result = run_module('image_age_info', dict(docker_host=docker_host))

    assert not result.failed, result
    entry = by_name(result)[name]
    assert entry['update_available'] is True
    assert entry['reason'] == 'running image is older than local tag'
    assert entry['image_id'] == old_id
    assert by_name(result)[other]['update_available'] is False

    updated = run_module('container_update', dict(docker_host=docker_host, containers=[name]))
    assert not updated.failed, updated
    assert [c['action'] for c in updated['containers']] == ['updated']
    new = inspect(name)
    assert new['Config']['Labels']['version'] == '2'
    assert 'APP_MODE=v2' in new['Config']['Env'] and 'APP_MODE=v1' not in new['Config']['Env']


def test_engine_is_reported(docker_host, sb):
    result = run_module('image_age_info', dict(docker_host=docker_host))
    engine = result['engine']
    expected = sb['engine']
    assert engine['version'].startswith(expected['version'].split('+')[0]), (engine, expected)
    assert engine['api_version'] == expected['api_version']
    assert engine['image_store'] == expected['image_store']
    assert engine['platform'] == 'linux/amd64'
