"""image_rebuild's decisions and input checks, without Docker."""
import json
import time

import pytest

from ansible_collections.patchops.docker.plugins.module_utils import rebuild
from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError

NOW = 1_800_000_000.0
DAY = 86400.0
BASE = '127.0.0.1:5115/base/busybox:1'


def created(days_ago):
    return time.strftime('%Y-%m-%dT%H:%M:%S.123456789Z', time.gmtime(NOW - days_ago * DAY))


def image(days_ago=1, recorded=None):
    label = {} if recorded is None else {rebuild.BASE_IMAGES_LABEL: json.dumps(recorded)}
    return {'Id': 'sha256:old', 'Created': created(days_ago), 'Config': {'Labels': label}}


def registry_base(previous, current, error=None):
    recorded = None if previous is None else {'digest': previous, 'id': 'sha256:x'}
    return rebuild.compare_base(BASE, rebuild.REGISTRY, recorded, current, error)


def test_a_missing_image_is_always_built():
    for when in rebuild.WHEN_CHOICES:
        assert rebuild.decide(when, 30, NOW, None, []) == (True, 'the image is not on the host')


def test_base_changed_rebuilds_when_the_registry_moved():
    bases = [registry_base('sha256:a', 'sha256:b')]
    assert bases[0]['moved'] is True
    assert rebuild.decide('base_changed', 30, NOW, image(recorded={BASE: {}}), bases) == (
        True, 'registry has a newer image for base %s' % BASE)


def test_base_changed_leaves_an_image_alone_when_nothing_moved():
    bases = [registry_base('sha256:a', 'sha256:a')]
    assert rebuild.decide('base_changed', 30, NOW, image(2, recorded={BASE: {}}), bases) == (
        False, 'base images unchanged, image 2.0 days old (max_age_days 30)')


def test_age_rebuilds_under_base_changed_and_older_than():
    bases = [registry_base('sha256:a', 'sha256:a')]
    old = image(45, recorded={BASE: {}})
    reason = 'the image is 45.0 days old, older than max_age_days 30'
    assert rebuild.decide('base_changed', 30, NOW, old, bases) == (True, reason)
    assert rebuild.decide('older_than', 30, NOW, old, bases) == (True, reason)
    assert rebuild.decide('older_than', 60, NOW, old, [registry_base('sha256:a', 'sha256:b')]) == (
        False, 'image 45.0 days old, not older than max_age_days 60')


def test_security_updates_rebuild_only_an_image_with_security_fixes_waiting():
    pending = dict(security_updates=4, error=None, updates=[
        dict(name='libssl3', installed='3.0.11-1', available='3.0.15-1', security=True),
        dict(name='tzdata', installed='2024a-0', available='2025b-0', security=False),
        dict(name='zlib1g', installed='1:1.2.13-1', available='1:1.2.13-1+deb12u1', security=True),
        dict(name='libc6', installed='2.36-9', available='2.36-9+deb12u9', security=True),
        dict(name='perl-base', installed='5.36.0-7', available='5.36.0-7+deb12u1', security=True)])
    assert rebuild.decide('security_updates', 30, NOW, image(2), [], pending) == (
        True, '4 security updates pending in its packages (libssl3 3.0.11-1 -> 3.0.15-1, zlib1g 1:1.2.13-1 -> '
              '1:1.2.13-1+deb12u1, libc6 2.36-9 -> 2.36-9+deb12u9, ...)')
    assert rebuild.decide('security_updates', 30, NOW, image(2), [], dict(security_updates=0, updates=[])) == (
        False, 'no security updates pending in its packages; image 2.0 days old, not older than max_age_days 30')
    assert rebuild.decide('security_updates', 30, NOW, image(2), [], dict(error='No mirror for alpine.')) == (
        False, 'could not tell whether security updates are pending: No mirror for alpine; image 2.0 days old, not '
               'older than max_age_days 30')
    assert rebuild.decide('security_updates', 30, NOW, image(40), [], dict(security_updates=0))[0] is True


def test_always_rebuilds():
    assert rebuild.decide('always', 30, NOW, image(0), []) == (True, 'when is always')


def test_an_image_without_a_record_is_rebuilt_once():
    assert rebuild.decide('base_changed', 30, NOW, image(1), [registry_base(None, 'sha256:a')]) == (
        True, 'no record of the base images it was built from')


def test_a_registry_error_leaves_the_base_unjudged_and_says_so():
    bases = [registry_base('sha256:a', None, '127.0.0.1:5115: connection refused')]
    assert bases[0]['moved'] is None
    rebuilt, reason = rebuild.decide('base_changed', 30, NOW, image(1, recorded={BASE: {}}), bases)
    assert rebuilt is False
    assert reason.startswith('could not ask the registry about base %s: 127.0.0.1:5115: connection refused; ' % BASE)


def test_local_bases_compare_image_ids():
    moved = rebuild.compare_base('shop/base:1', rebuild.LOCAL, {'digest': None, 'id': 'sha256:1'}, 'sha256:2')
    same = rebuild.compare_base('shop/base:1', rebuild.LOCAL, {'digest': 'sha256:d', 'id': 'sha256:1'}, 'sha256:1')
    gone = rebuild.compare_base('shop/base:1', rebuild.LOCAL, {'digest': None, 'id': 'sha256:1'}, None)
    assert (moved['moved'], same['moved'], gone['moved']) == (True, False, True)
    recorded = image(1, recorded={'docker.io/shop/base:1': {}})
    assert rebuild.decide('base_changed', 30, NOW, recorded, [moved])[1] == \
        'base shop/base:1 names a different image on the host'
    assert rebuild.decide('base_changed', 30, NOW, recorded, [gone])[1] == 'base shop/base:1 is not on the host'


def test_a_base_new_to_the_dockerfile_counts_as_moved():
    base = rebuild.compare_base(BASE, rebuild.REGISTRY, None, 'sha256:a')
    assert base['moved'] is True
    assert rebuild.decide('base_changed', 30, NOW, image(1, recorded={'other:1': {}}), [base])[1] == \
        'no record of which image of base %s it was built from' % BASE


def test_labels_round_trip_and_bad_labels_are_no_record():
    used = {BASE: {'digest': 'sha256:a', 'id': 'sha256:i'}}
    assert rebuild.recorded_bases({rebuild.BASE_IMAGES_LABEL: rebuild.base_label(used)}) == used
    assert rebuild.recorded_bases({rebuild.BASE_IMAGES_LABEL: 'not json'}) is None
    assert rebuild.recorded_bases({rebuild.BASE_IMAGES_LABEL: '[1]'}) is None
    assert rebuild.recorded_bases(None) is None


@pytest.fixture
def ctx(tmp_path):
    def make(name, text):
        path = tmp_path / name
        path.mkdir()
        (path / 'Dockerfile').write_text(text)
        return str(path)
    return make


def test_builds_are_ordered_bases_first(ctx):
    images = [dict(name='shop/app:1', context=ctx('app', 'FROM shop/base:1\n')),
              dict(name='shop/base:1', context=ctx('base', 'FROM busybox\n'))]
    assert [b.reference for b in rebuild.prepare(images)] == ['docker.io/shop/base:1', 'docker.io/shop/app:1']


def test_a_circle_of_builds_is_refused(ctx):
    images = [dict(name='shop/a:1', context=ctx('a', 'FROM shop/b:1\n')),
              dict(name='shop/b:1', context=ctx('b', 'FROM shop/a:1\n'))]
    with pytest.raises(PatchopsError, match='build from each other in a circle: docker.io/shop/a:1 -> '
                                            'docker.io/shop/b:1 -> docker.io/shop/a:1'):
        rebuild.prepare(images)


@pytest.mark.parametrize('entry, words', [
    (dict(name='shop/a@sha256:' + 'a' * 64), 'is pinned by digest'),
    (dict(name='sha256:' + 'a' * 64), 'is an image ID'),
    (dict(name=''), 'needs a name'),
    (dict(name='shop/a:1', context=''), 'needs a context'),
])
def test_bad_names_and_contexts(ctx, entry, words):
    entry.setdefault('context', ctx('c', 'FROM busybox\n'))
    with pytest.raises(PatchopsError, match=words):
        rebuild.prepare([entry])


def test_the_same_image_twice_is_refused(ctx):
    path = ctx('c', 'FROM busybox\n')
    with pytest.raises(PatchopsError, match='listed twice'):
        rebuild.prepare([dict(name='shop/a', context=path), dict(name='docker.io/shop/a:latest', context=path)])


def test_failure_message_has_one_sentence_per_image_then_the_log():
    results = [dict(name='a', action='rebuilt'),
               dict(name='b', action='failed', reason='The build failed: boom.', build_log=['Step 1/2', 'boom'])]
    assert rebuild.failure_message(results) == ('1 of 2 images were not rebuilt.\nb: The build failed: boom.\n'
                                                'Last lines of the build log of b:\nStep 1/2\nboom')
    assert rebuild.failure_message(results[:1]) is None
