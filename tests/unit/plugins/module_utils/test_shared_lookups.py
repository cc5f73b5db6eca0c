"""Shared registry look-ups: who asks, and what the answers settle (pure logic)."""
import pytest

from ansible_collections.patchops.docker.plugins.module_utils.errors import InvalidOption
from ansible_collections.patchops.docker.plugins.module_utils.image_age import REASON_NOT_CHECKED
from ansible_collections.patchops.docker.plugins.module_utils.shared_lookups import normalize, plan_owners, settle

OLD = 'sha256:' + '1' * 64
NEW = 'sha256:' + '2' * 64


def entry(name, image, digests=(OLD,), update=None, reason=REASON_NOT_CHECKED):
    return dict(name=name, image=image, image_id='sha256:' + 'c' * 64, image_digests=list(digests),
                update_available=update, reason=reason, remote_digest=None, error=None, stale=False,
                image_age_days=3.0)


def test_references_are_fully_qualified_and_bad_input_is_one_sentence():
    assert normalize({'app:1': OLD, 'registry.example.com:5000/shop/web:2': NEW}) == {
        'docker.io/library/app:1': OLD, 'registry.example.com:5000/shop/web:2': NEW}
    with pytest.raises(InvalidOption, match=r'^remote_digests: the value for app:1 must be a sha256 digest'):
        normalize({'app:1': 'latest'})
    with pytest.raises(InvalidOption, match=r'^remote_digests: app@sha256:.* is pinned by digest; only tags'):
        normalize({'app@' + OLD: OLD})
    with pytest.raises(InvalidOption, match=r'^remote_digests: UPPER:1 is not an image reference'):
        normalize({'UPPER:1': OLD})


def test_each_reference_goes_to_the_first_host_that_runs_it_by_one_container():
    listings = [
        ('h1', [entry('a1', 'app:1'), entry('a2', 'app:1'),
                entry('local', 'mine:1', update=False, reason='image built locally')]),
        ('h2', [entry('a1', 'docker.io/library/app:1'), entry('w', 'web:2')]),
        ('h3', [entry('w', 'web:2'), entry('p', 'app@' + OLD, update=False, reason='pinned by digest')]),
        ('h4', []),
    ]
    assert plan_owners(listings) == {'h1': ['a1'], 'h2': ['w']}


def test_a_known_digest_settles_the_container_and_the_others_stay_for_their_host():
    listing = dict(containers=[entry('a', 'app:1'), entry('b', 'web:2'), entry('c', 'db:3'),
                               entry('d', 'mine:1', update=False, reason='image built locally')],
                   images=[dict(reference='docker.io/library/app:1', containers=['a'], update_available=None,
                                reason=REASON_NOT_CHECKED, remote_digest=None)],
                   summary={}, recovered=[], registry_lookups=0)
    settled = settle(listing, {'app:1': OLD, 'web:2': NEW})
    a, b, c, d = settled['containers']
    assert (a['update_available'], a['reason'], a['remote_digest']) == (
        False, 'running image matches the registry for tag 1', OLD)
    # web:2 moved: which platform's image moved only its host can ask; db:3 nobody looked up
    assert (b['update_available'], c['update_available']) == (None, None)
    assert d['reason'] == 'image built locally'
    assert settled['unsettled'] == 2
    assert settled['summary']['unknown'] == 2 and settled['summary']['updates_available'] == 0
    assert settled['images'][0]['update_available'] is False
    assert listing['containers'][0]['update_available'] is None  # the input is left as it was


def test_only_lookups_that_answered_are_passed_on():
    from ansible_collections.patchops.docker.plugins.module_utils.registry import RemoteDigest, as_remote
    from ansible_collections.patchops.docker.plugins.module_utils.shared_lookups import found
    remote = {'a': RemoteDigest('a', OLD, None), 'b': RemoteDigest('b', None, 'HTTP 401: unauthorized'),
              'c': RemoteDigest('c', None, 'HTTP 404', None, True)}
    remote.update(as_remote({'d': NEW}))
    # a failed look-up is not shared: each host that runs b or c then asks with its own credentials
    assert found(remote, {'a', 'b', 'c'}) == {'a': OLD}
    assert found(remote, {'b'}) == {}


def test_what_the_hosts_own_lookup_run_decided_is_taken_for_its_tag_and_image():
    moved = entry('a', 'app:1')
    other_image = dict(entry('c', 'app:1'), image_id='sha256:' + 'd' * 64)
    listing = dict(containers=[moved, entry('b', 'app:1'), other_image], images=[], summary={})
    decided = [dict(entry('a', 'app:1'), update_available=True, reason='registry has a newer image for tag 1',
                    remote_digest=NEW)]
    a, b, c = settle(listing, {'app:1': NEW}, decided)['containers']
    assert (a['update_available'], b['update_available'], b['remote_digest']) == (True, True, NEW)
    assert c['update_available'] is None  # another image on the same tag: its own platform check


def test_every_reference_falls_to_exactly_one_share_the_same_on_every_host():
    from ansible_collections.patchops.docker.plugins.module_utils.shared_lookups import share_index, share_of
    refs = set('127.0.0.1:5000/app-%d:1' % n for n in range(200))
    shares = [share_of(refs, {'index': i, 'count': 4}) for i in range(4)]
    assert set().union(*shares) == refs
    assert sum(len(s) for s in shares) == len(refs)  # no reference in two shares
    assert all(len(s) > 20 for s in shares)  # spread, not all on one host
    # CRC-32 of the text, not hash(): the same share on every host, whatever its process or Python
    assert share_index('docker.io/library/app:1', 1000) == 951
    assert share_of(refs, None) == refs


def test_a_share_that_names_no_share_is_one_sentence():
    from ansible_collections.patchops.docker.plugins.module_utils.shared_lookups import check_share
    assert check_share({'index': '2', 'count': 3}) == {'index': 2, 'count': 3}
    for bad, message in (({'index': 3, 'count': 3}, r'^share_lookups: index must be from 0 to 2 \(count minus one\), not 3\.$'),
                         ({'index': 0, 'count': 0}, r'^share_lookups: count must be 1 or more, not 0\.$'),
                         ({'index': True, 'count': 2}, r'^share_lookups: index must be a whole number, not True\.$'),
                         ({'index': 0}, r'^share_lookups must be a dict of index and count, not '),
                         (False, r'^share_lookups must be a dict of index and count, not False\.$')):
        with pytest.raises(InvalidOption, match=message):
            check_share(bad)


def test_references_a_share_already_answered_get_no_owner():
    listings = [('h1', [entry('a', 'app:1'), entry('w', 'web:2')]), ('h2', [entry('w', 'web:2'), entry('d', 'db:3')])]
    assert plan_owners(listings, {'docker.io/library/app:1': OLD}) == {'h1': ['w'], 'h2': ['d']}
    assert plan_owners(listings, {'app:1': OLD, 'web:2': OLD, 'db:3': NEW}) == {}


def test_the_hosts_check_is_its_listing_settled_or_its_second_check():
    from ansible_collections.patchops.docker.plugins.module_utils.shared_lookups import outcome
    listing = dict(containers=[entry('a', 'app:1'), entry('b', 'web:2')], images=[], summary={},
                   recovered=[{'name': 'x', 'action': 'restored'}], registry_lookups=1)
    owned = dict(containers=[dict(entry('b', 'web:2'), update_available=False,
                                  reason='running image matches the registry for tag 2', remote_digest=OLD)],
                 registry_lookups=1, lookups={'docker.io/library/web:2': OLD})
    settled = outcome(listing, {'app:1': OLD, 'web:2': OLD}, owned, {'skipped': True})
    assert [c['update_available'] for c in settled['containers']] == [False, False]
    assert (settled['unsettled'], settled['registry_lookups']) == (0, 2)
    # a tag that moved: the second check decides, and keeps what the first run recovered
    rechecked = dict(containers=[dict(entry('a', 'app:1'), update_available=True, reason='registry has a newer image '
                                      'for tag 1', remote_digest=NEW), owned['containers'][0]],
                     images=[], summary={'updates_available': 1}, recovered=[], registry_lookups=1)
    final = outcome(listing, {'app:1': NEW, 'web:2': OLD}, None, rechecked)
    assert final['containers'][0]['update_available'] is True
    assert (final['recovered'], final['registry_lookups'], final['unsettled']) == (listing['recovered'], 2, 0)
    assert outcome(listing, {}, None, None)['unsettled'] == 2
