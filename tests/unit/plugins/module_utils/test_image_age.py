"""The rules of image_age: small literal fixtures, no daemon."""
import pytest

from ansible_collections.patchops.docker.plugins.module_utils import image_age, registry
from ansible_collections.patchops.docker.plugins.module_utils.image_ref import parse
from ansible_collections.patchops.docker.plugins.module_utils.registry import RemoteDigest

NOW = 1_800_000_000.0
DAY = 86400.0
D1 = 'sha256:' + '1' * 64
D2 = 'sha256:' + '2' * 64
IMG_OLD = 'sha256:' + 'a' * 64
IMG_NEW = 'sha256:' + 'b' * 64
REPO = 'registry.example.com:5000/shop/web'


def image(image_id, days_old=1, digests=(), tags=(), labels=None):
    return dict(id=image_id, created=NOW - days_old * DAY, repo_digests=list(digests), repo_tags=list(tags),
                labels=labels or {})


def record(name='web', reference=REPO + ':1.25', image_id=IMG_OLD, **extra):
    base = dict(id='c' * 64, name=name, state='running', reference=reference, image_id=image_id, labels={},
                ports=[], port_bindings=None, network_mode='default')
    base.update(extra)
    return base


def assess(rec, img, local_tags=None, remote=None, check_registry=True, max_age=30, max_exposed=7):
    return image_age.assess_container(rec, img, local_tags or {}, remote or {}, NOW, max_age, max_exposed,
                                      check_registry)


class TestClassify:
    def test_registry_digest_matches_running_image(self):
        ref = REPO + ':1.25'
        entry = assess(record(), image(IMG_OLD, digests=[REPO + '@' + D1]),
                       {ref: IMG_OLD}, {ref: RemoteDigest(ref, D1, None)})
        assert (entry['update_available'], entry['reason']) == (False, 'running image matches the registry for tag 1.25')
        assert entry['remote_digest'] == D1

    def test_registry_has_a_newer_digest(self):
        ref = REPO + ':1.25'
        entry = assess(record(), image(IMG_OLD, digests=[REPO + '@' + D1]),
                       {ref: IMG_OLD}, {ref: RemoteDigest(ref, D2, None)})
        assert (entry['update_available'], entry['reason']) == (True, 'registry has a newer image for tag 1.25')
        assert entry['remote_digest'] == D2

    def test_same_digest_in_another_repository_does_not_count(self):
        ref = REPO + ':1.25'
        entry = assess(record(), image(IMG_OLD, digests=['other.example.com/shop/web@' + D2]),
                       {ref: IMG_OLD}, {ref: RemoteDigest(ref, D2, None)})
        assert entry['update_available'] is True

    def test_local_tag_newer_wins_over_registry(self):
        ref = REPO + ':1.25'
        entry = assess(record(), image(IMG_OLD, digests=[REPO + '@' + D1]),
                       {ref: IMG_NEW}, {ref: RemoteDigest(ref, D1, None)})
        assert (entry['update_available'], entry['reason']) == (True, 'running image is older than local tag')

    def test_pinned_by_digest(self):
        entry = assess(record(reference=REPO + '@' + D1), image(IMG_OLD, digests=[REPO + '@' + D1]))
        assert (entry['update_available'], entry['reason']) == (False, 'pinned by digest')

    def test_built_locally_has_no_repo_digest(self):
        entry = assess(record(reference='shop/web:dev'), image(IMG_OLD), {'docker.io/shop/web:dev': IMG_OLD})
        assert (entry['update_available'], entry['reason']) == (False, 'image built locally')

    def test_created_from_image_id(self):
        for reference in (IMG_OLD, 'a' * 64, 'aaaaaaaaaaaa'):
            entry = assess(record(reference=reference), image(IMG_OLD))
            assert entry['reason'] == 'created from an image ID, no tag to follow', reference

    def test_registry_error_is_unknown(self):
        ref = REPO + ':1.25'
        entry = assess(record(), image(IMG_OLD, digests=[REPO + '@' + D1]), {ref: IMG_OLD},
                       {ref: RemoteDigest(ref, None, 'registry.example.com:5000: connection refused')})
        assert entry['update_available'] is None
        assert entry['reason'] == 'registry error: registry.example.com:5000: connection refused'
        assert entry['error'] == 'registry.example.com:5000: connection refused'

    def test_registry_not_checked(self):
        entry = assess(record(), image(IMG_OLD, digests=[REPO + '@' + D1]), {}, {}, check_registry=False)
        assert (entry['update_available'], entry['reason']) == (None, 'registry not checked')

    def test_implicit_docker_hub_reference(self):
        ref = 'docker.io/library/nginx:latest'
        entry = assess(record(reference='nginx'), image(IMG_OLD, digests=['nginx@' + D1]),
                       {ref: IMG_OLD}, {ref: RemoteDigest(ref, D1, None)})
        assert entry['update_available'] is False
        assert entry['reason'] == 'running image matches the registry for tag latest'


class TestAgeAndExposure:
    def test_age_in_days_and_staleness(self):
        entry = assess(record(), image(IMG_OLD, days_old=200, digests=[REPO + '@' + D1]))
        assert entry['image_age_days'] == 200.0
        assert entry['stale'] is True
        assert entry['image_created'] == image_age.iso8601(NOW - 200 * DAY)

    def test_at_the_limit_is_not_stale(self):
        assert assess(record(), image(IMG_OLD, days_old=30))['stale'] is False

    def test_future_creation_time_is_age_zero(self):
        assert image_age.age_days(NOW + DAY, NOW) == 0.0

    @pytest.mark.parametrize('ports, network_mode, bindings, exposed', [
        ([], 'default', None, False),
        ([{'IP': '127.0.0.1', 'PrivatePort': 80, 'PublicPort': 8080, 'Type': 'tcp'}], 'default', None, False),
        ([{'IP': '::1', 'PrivatePort': 80, 'PublicPort': 8080, 'Type': 'tcp'}], 'default', None, False),
        ([{'IP': '0.0.0.0', 'PrivatePort': 80, 'PublicPort': 8080, 'Type': 'tcp'}], 'default', None, True),
        ([{'IP': '::', 'PrivatePort': 80, 'PublicPort': 8080, 'Type': 'tcp'}], 'default', None, True),
        ([{'IP': '192.0.2.10', 'PrivatePort': 53, 'PublicPort': 53, 'Type': 'udp'}], 'default', None, True),
        ([{'PrivatePort': 80, 'Type': 'tcp'}], 'default', None, False),  # exposed in the image, not published
        ([], 'host', None, True),
        ([], 'default', {'80/tcp': [{'HostIp': '', 'HostPort': '8080'}]}, True),
        ([], 'default', {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '8080'}]}, False),
    ])
    def test_exposure(self, ports, network_mode, bindings, exposed):
        rec = record(ports=ports, network_mode=network_mode, port_bindings=bindings)
        assert image_age.is_exposed(rec) is exposed

    def test_exposed_containers_use_the_stricter_limit(self):
        rec = record(network_mode='host')
        entry = assess(rec, image(IMG_OLD, days_old=10), max_age=30, max_exposed=7)
        assert (entry['exposed'], entry['max_age_days'], entry['stale']) == (True, 7, True)


class TestLabels:
    def test_compose_build_context_and_exclusion(self):
        rec = record(labels={'com.docker.compose.project': 'shop', 'com.docker.compose.service': 'web',
                             'patchops.docker.enable': 'False'})
        entry = assess(rec, image(IMG_OLD, labels={'patchops.docker.build-context': '/srv/app'}))
        assert entry['compose_project'] == 'shop'
        assert entry['compose_service'] == 'web'
        assert entry['build_context'] == '/srv/app'
        assert entry['excluded'] is True

    def test_enable_true_is_not_excluded(self):
        assert assess(record(labels={'patchops.docker.enable': 'true'}), image(IMG_OLD))['excluded'] is False


class TestPlanAndSummaries:
    def test_plan_looks_up_each_reference_once_and_skips_what_a_registry_cannot_know(self):
        images = {IMG_OLD: image(IMG_OLD, digests=[REPO + '@' + D1]), IMG_NEW: image(IMG_NEW)}
        records = [record(name='a'), record(name='b'), record(name='c', reference=REPO + ':2'),
                   record(name='pinned', reference=REPO + '@' + D1),
                   record(name='local', reference='shop/web:dev', image_id=IMG_NEW),
                   record(name='by-id', reference=IMG_OLD)]
        assert image_age.plan_lookups(records, images) == {REPO + ':1.25', REPO + ':2'}

    def test_summary_counts(self):
        entries = [
            dict(update_available=True, stale=True, error=None, image_age_days=200.0),
            dict(update_available=None, stale=False, error='boom', image_age_days=3.5),
            dict(update_available=False, stale=False, error=None, image_age_days=None),
        ]
        assert image_age.summarize(entries) == dict(containers=3, updates_available=1, stale=1, unknown=1,
                                                    errors=1, oldest_image_age_days=200.0)

    def test_summary_of_nothing(self):
        assert image_age.summarize([])['oldest_image_age_days'] is None

    def test_images_group_containers_by_reference_and_list_unused_images(self):
        images = {IMG_OLD: image(IMG_OLD, digests=[REPO + '@' + D1]),
                  IMG_NEW: image(IMG_NEW, days_old=40, tags=[REPO + ':old'])}
        entries = [assess(record(name=n), images[IMG_OLD]) for n in ('b', 'a')]
        items = image_age.summarize_images(entries, images, {}, NOW, 30, include_unused=True)
        assert [(i['reference'], i['in_use'], i['containers']) for i in items] == [
            (REPO + ':1.25', True, ['b', 'a']), (REPO + ':old', False, [])]
        assert items[1]['stale'] is True
        assert items[1]['image_age_days'] == 40.0

    def test_parse_reference_accepts_names_and_refuses_ids(self):
        assert image_age.parse_reference('nginx', IMG_OLD) == parse('nginx')
        assert image_age.parse_reference(IMG_OLD, IMG_OLD) is None
        assert image_age.parse_reference('', IMG_OLD) is None


class TestPlatforms:
    """A multi-platform tag: the registry's answer for the container's platform decides."""

    REF = REPO + ':1.25'
    AMD64 = ('linux', 'amd64', None)

    def entry(self, check):
        img = image(IMG_OLD, digests=[REPO + '@' + D1])
        return image_age.assess_container(record(), img, {self.REF: IMG_OLD},
                                          {self.REF: RemoteDigest(self.REF, D2, None)}, NOW, 30, 7, True,
                                          {(self.REF, IMG_OLD): check}, 'linux/amd64')

    def test_moved_for_other_platforms_only(self):
        entry = self.entry(registry.PlatformCheck(False, D1, 'only other platforms changed', None))
        assert (entry['update_available'], entry['reason']) == (
            False, 'tag 1.25 moved for other platforms only; the linux/amd64 image is unchanged')
        assert entry['remote_digest'] == D2 and entry['platform'] == 'linux/amd64'

    def test_this_platform_moved(self):
        entry = self.entry(registry.PlatformCheck(True, D2, 'the linux/amd64 image changed', None))
        assert (entry['update_available'], entry['reason']) == (True, 'registry has a newer image for tag 1.25')

    def test_no_image_for_this_platform_is_unknown_with_the_sentence(self):
        error = 'registry.example.com:5000: tag 1.25 has no image for linux/amd64 (it has linux/arm64/v8)'
        entry = self.entry(registry.PlatformCheck(None, None, None, error))
        assert entry['update_available'] is None
        assert entry['reason'] == 'registry error: ' + error and entry['error'] == error

    def test_an_image_gone_from_the_store_is_reported_without_an_age(self):
        rec = record()
        entry = image_age.assess_container(rec, None, {self.REF: IMG_NEW}, {}, NOW, 30, 7, False)
        assert (entry['update_available'], entry['reason']) == (True, 'running image is older than local tag')
        assert entry['image_age_days'] is None and entry['image_created'] is None
        alone = image_age.assess_container(rec, None, {}, {}, NOW, 30, 7, False)
        assert alone['update_available'] is None
        assert alone['reason'] == 'the image it runs is no longer in the image store, and tag 1.25 names no other image here'

    def test_gone_from_the_store_but_the_same_image_for_this_platform(self):
        check = registry.PlatformCheck(False, D1, 'only other platforms changed', None)
        entry = image_age.assess_container(record(), None, {self.REF: IMG_NEW},
                                           {self.REF: RemoteDigest(self.REF, D2, None)}, NOW, 30, 7, True,
                                           {(self.REF, IMG_OLD): check}, 'linux/amd64')
        assert entry['update_available'] is False

    def test_only_containers_whose_tag_moved_are_checked_and_a_config_id_is_never_asked_for(self):
        moved = record(name='moved')
        current = record(name='current', reference=REPO + ':2', image_id=IMG_NEW)
        images = {IMG_OLD: image(IMG_OLD, digests=[REPO + '@' + D1]),
                  IMG_NEW: image(IMG_NEW, digests=[REPO + '@' + D2])}
        remote = {self.REF: RemoteDigest(self.REF, D2, None), REPO + ':2': RemoteDigest(REPO + ':2', D2, None)}
        pending = image_age.plan_platform_checks([moved, current], images, remote, lambda _id: self.AMD64, True)
        assert list(pending) == [(self.REF, IMG_OLD)]
        ref, digest, known, platform, config_id = pending[(self.REF, IMG_OLD)]
        assert (str(ref), digest, known, platform, config_id) == (self.REF, D2, frozenset([D1]), self.AMD64, IMG_OLD)
        digest_ids = image_age.plan_platform_checks([moved], images, remote, lambda _id: self.AMD64, False)
        assert digest_ids[(self.REF, IMG_OLD)][2] == frozenset([D1, IMG_OLD]), 'containerd store: the ID is a digest'


def test_a_tag_its_registry_does_not_have_is_a_local_build_only_under_the_containerd_store():
    ref = REPO + ':dev'
    missing = RemoteDigest(ref, None, 'registry.example.com:5000: HTTP 404: the registry has no tag dev', None, True)
    img = image(IMG_OLD, digests=[REPO + '@' + IMG_OLD])
    rec = record(reference=ref)
    containerd = image_age.assess_container(rec, img, {}, {ref: missing}, NOW, 30, 7, True, None, 'linux/amd64', True)
    assert (containerd['update_available'], containerd['reason'], containerd['error']) == (False, 'image built locally', None)
    classic = image_age.assess_container(rec, img, {}, {ref: missing}, NOW, 30, 7, True, None, 'linux/amd64', False)
    assert classic['update_available'] is None and classic['reason'].startswith('registry error: ')
    down = RemoteDigest(ref, None, 'registry.example.com:5000: connection refused')
    unknown = image_age.assess_container(rec, img, {}, {ref: down}, NOW, 30, 7, True, None, 'linux/amd64', True)
    assert unknown['update_available'] is None, 'an unreachable registry says nothing about where the image came from'


def test_an_image_image_rebuild_built_is_never_looked_up_whatever_its_repo_digests():
    ref = REPO + ':1'
    owned = image(IMG_OLD, digests=[REPO + '@' + IMG_OLD], labels={image_age.LABEL_BUILD_CONTEXT: '/srv/app'})
    rec = record(reference=ref)
    assert image_age.plan_lookups([rec], {IMG_OLD: owned}) == set()
    entry = assess(rec, owned)
    assert (entry['update_available'], entry['reason']) == (False, 'image built locally')
