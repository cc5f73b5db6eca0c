"""Version order exactly as dpkg and apk order versions.

dpkg: literal cases from deb-version(7), then property tests against two oracles, the real
``dpkg --compare-versions`` of this machine (batched: one shell loop per batch of pairs) and
python-debian's ``debian.debian_support.Version``; and every pair of real versions from this
machine's dpkg database against its apt lists (or generated ones when it has none).
apk: apk-tools' own test table (fixtures/apk_version.data, checked as its version_test.c
checks it) and literal cases of each rule.
"""
import glob
import os
import random
import subprocess
from functools import cmp_to_key

import pytest
from debian.debian_support import Version
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from ansible_collections.patchops.docker.plugins.module_utils.versions import (
    apk_compare, apk_match, apk_valid, dpkg_compare)

HERE = os.path.dirname(os.path.abspath(__file__))
APK_DATA = os.path.join(HERE, 'fixtures', 'apk_version.data')

# dpkg --compare-versions for every line "A B" of stdin: one of < = > per line
DPKG_LOOP = '''
while read -r a b; do
    if dpkg --compare-versions "$a" lt "$b"; then echo '<'
    elif dpkg --compare-versions "$a" eq "$b"; then echo '='
    else echo '>'; fi
done
'''
SIGN = {-1: '<', 0: '=', 1: '>'}


def dpkg_oracle(pairs):
    """The real dpkg's answer for each pair, two shell loops side by side."""
    half = (len(pairs) + 1) // 2
    procs = []
    for chunk in (pairs[:half], pairs[half:]):
        proc = subprocess.Popen(['sh', '-c', DPKG_LOOP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        procs.append((proc, chunk))
    answers = []
    for proc, chunk in procs:
        out, err = proc.communicate(''.join('%s %s\n' % pair for pair in chunk))
        assert proc.returncode == 0, err
        lines = out.split()
        assert len(lines) == len(chunk), err
        answers.extend(lines)
    return answers


def assert_like_dpkg(pairs):
    mine = [SIGN[dpkg_compare(a, b)] for a, b in pairs]
    theirs = dpkg_oracle(pairs)
    wrong = [(a, b, m, t) for (a, b), m, t in zip(pairs, mine, theirs) if m != t]
    assert not wrong, wrong[:20]


# ----------------------------------------------------------------------------------- dpkg rules

@pytest.mark.parametrize('a, op, b', [
    ('1.0', '=', '1.0'),
    ('1.0~rc1', '<', '1.0'),          # ~ sorts before the end of the string
    ('1.0~~', '<', '1.0~'),
    ('1.0~~a', '<', '1.0~'),
    ('1.0', '<', '1.0+b1'),
    ('1.0', '<', '1.0a'),             # a letter after the end
    ('1.0a', '<', '1.0+'),            # letters before non-letters
    ('1.0a', '<', '1.0.'),
    ('1.0Z', '<', '1.0a'),
    ('1.0+', '<', '1.0.'),            # other characters by their code ('+' before '.')
    ('1:0.9', '>', '2.0'),            # the epoch first
    ('0:2.0', '=', '2.0'),
    ('1.0-1', '<', '1.0-2'),
    ('1.0', '=', '1.0-0'),            # no revision orders like 0
    ('1.0-1~bpo12+1', '<', '1.0-1'),
    ('1.10', '>', '1.9'),             # digits as numbers
    ('1.010', '=', '1.10'),
    ('00', '=', '0'),
    ('1.2.3-4', '<', '1.2.3-4.1'),
    ('7.88.1-10+deb12u14', '<', '7.88.1-10+deb12u15'),
    ('2.36-9+deb12u14', '>', '2.36-9+deb12u9'),
    ('1:2.3~rc1-1', '<', '1:2.3-1'),
    ('1.0-a-1', '>', '1.0-1'),        # the revision is after the last hyphen
])
def test_dpkg_rules(a, op, b):
    expected = {'<': -1, '=': 0, '>': 1}[op]
    assert dpkg_compare(a, b) == expected
    older, newer = (a, b) if expected <= 0 else (b, a)
    assert dpkg_compare(newer, older) == abs(expected)


def test_dpkg_rules_agree_with_the_real_dpkg():
    assert_like_dpkg([('1.0~rc1', '1.0'), ('1.0a', '1.0+'), ('1.0+', '1.0.'), ('1:0.9', '2.0'),
                      ('1.0', '1.0-0'), ('1.010', '1.10'), ('1.0-a-1', '1.0-1'), ('1.0Z', '1.0a')])


@pytest.mark.parametrize('bad, why', [
    ('', 'empty'),
    ('a:1.0', 'epoch of the dpkg version'),
    ('1a:1.0', 'not a number'),
    (':1.0', 'empty'),
    ('-1:1.0', 'negative'),
    ('99999999999:1.0', 'too big'),
    ('1:', 'nothing after the colon'),
    ('1.0-', 'revision'),
    ('1.0 2', 'embedded spaces'),
    ('-1', 'upstream part'),
])
def test_dpkg_refuses_what_dpkg_refuses_in_one_sentence(bad, why):
    with pytest.raises(ValueError) as info:
        dpkg_compare(bad, '1.0')
    msg = str(info.value)
    assert why in msg and msg.endswith('.') and '\n' not in msg
    # the real dpkg refuses it too
    proc = subprocess.run(['dpkg', '--compare-versions', '--', bad, 'lt', '1.0'], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2 or (bad == '' and proc.returncode in (0, 1)), proc.stderr


def test_dpkg_compares_what_dpkg_only_warns_about():
    # does not start with a digit, a character outside the allowed ones: dpkg warns and compares
    pairs = [('a1.0', '1.0'), ('1.0_1', '1.0'), ('1.0', '1.0@'), ('x', 'y'), ('1.0-1_1', '1.0-1'),
             (' 1.0', '1.0'), ('1.0\t', '1.0~')]
    for a, b in pairs:
        dpkg_compare(a, b)
    assert_like_dpkg([(a, b) for a, b in pairs if a.strip() == a and b.strip() == b])


# -------------------------------------------------------------------------------- dpkg property

_UPSTREAM_PIECES = st.sampled_from(['0', '1', '2', '9', '10', '00', '01', '007', '123', '20240101', '.', '.', '+',
                                    '~', '~~', 'a', 'b', 'z', 'A', 'Z', 'rc', 'alpha', 'dfsg', 'deb12u', '+b',
                                    '~rc', '~bpo', '+ds', '-', ':'])
_REVISION_PIECES = st.sampled_from(['0', '1', '2', '10', '01', '.', '+', '~', 'a', 'Z', 'deb12u', 'ubuntu', 'build',
                                    '+b', '~bpo12+'])


@st.composite
def dpkg_versions(draw):
    """Valid dpkg versions, weighted towards what makes the order tricky."""
    epoch = draw(st.one_of(st.just(''), st.sampled_from(['0:', '1:', '2:', '10:', '01:'])))
    first = draw(st.sampled_from(['0', '1', '2', '9', '10', '00', '1.0', '2.36']))
    rest = ''.join(draw(st.lists(_UPSTREAM_PIECES, max_size=6)))
    revision = draw(st.one_of(st.just(''), st.lists(_REVISION_PIECES, min_size=1, max_size=4).map(''.join)))
    upstream = first + rest
    if not epoch:
        upstream = upstream.replace(':', '.')
    if not revision:
        upstream = upstream.replace('-', '.')
        return epoch + upstream
    return '%s%s-%s' % (epoch, upstream, revision)


def _related(draw, a):
    """Often a version close to ``a``, so that the interesting comparisons happen."""
    how = draw(st.sampled_from(['other', 'same', 'tilde', 'plus', 'revision', 'epoch', 'digit']))
    if how == 'other':
        return draw(dpkg_versions())
    if how == 'same':
        return a
    if how == 'tilde':
        return a + '~' + draw(st.sampled_from(['', 'rc1', '1']))
    if how == 'plus':
        return a + '+' + draw(st.sampled_from(['b1', '1', 'a']))
    if how == 'revision':
        return (a if '-' in a else a + '-1') + draw(st.sampled_from(['.1', '~1', '+b1', '0']))
    if how == 'epoch':
        if ':' not in a:
            return '1:' + a
        upstream = a.split(':', 1)[1].replace(':', '.')
        return upstream if upstream[0].isdigit() else '0' + upstream
    return a.replace('1', '01', 1).replace('9', '10', 1)


@st.composite
def dpkg_pairs(draw):
    a = draw(dpkg_versions())
    return a, _related(draw, a)


@settings(max_examples=2000, deadline=None)
@given(dpkg_pairs())
@example(('1.0~rc1', '1.0'))
@example(('1:1.0', '2'))
def test_dpkg_compare_is_python_debians_order(pair):
    a, b = pair
    expected = (Version(a) > Version(b)) - (Version(a) < Version(b))
    assert dpkg_compare(a, b) == expected


BATCH = 250
# PATCHOPS_DPKG_BATCHES=200 checks 50,000 pairs (about four minutes)
BATCHES = int(os.environ.get('PATCHOPS_DPKG_BATCHES', '8'))


@settings(max_examples=BATCHES, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(st.lists(dpkg_pairs(), min_size=BATCH, max_size=BATCH))
def test_dpkg_compare_is_the_real_dpkgs_order(pairs):
    """BATCH x BATCHES generated pairs against dpkg --compare-versions (a failure lists the pairs that
    differ; shrinking, one dpkg run per step, would take too long)."""
    assert_like_dpkg(pairs)


@settings(max_examples=200, deadline=None)
@given(st.lists(dpkg_versions(), min_size=2, max_size=30))
def test_sorting_with_dpkg_compare_is_sorting_by_python_debian(versions):
    ours = sorted(versions, key=cmp_to_key(dpkg_compare))
    theirs = sorted(versions, key=Version)
    assert [Version(v) for v in ours] == [Version(v) for v in theirs]


def _apt_list_versions():
    """Versions from this machine's apt lists; when it has none, from its dpkg status."""
    versions = []
    for path in sorted(glob.glob('/var/lib/apt/lists/*_Packages*')):
        out = subprocess.run(['/usr/lib/apt/apt-helper', 'cat-file', path], capture_output=True, check=True).stdout
        versions.extend(line.split(b' ', 1)[1].decode() for line in out.splitlines() if line.startswith(b'Version: '))
    if not versions:
        out = subprocess.run(['dpkg-query', '-W', '-f=${Version}\n'], capture_output=True, text=True, check=True)
        versions = out.stdout.split()
    return versions


def test_real_versions_of_this_machine_order_as_dpkg_orders_them():
    """Installed versions against those of the apt lists (same names first), and random pairs of them."""
    installed = subprocess.run(['dpkg-query', '-W', '-f=${Package} ${Version}\n'], capture_output=True, text=True,
                               check=True).stdout.split('\n')
    installed = dict(line.split(' ', 1) for line in installed if line)
    available = _apt_list_versions()
    assert len(available) > 100
    rnd = random.Random(12)
    pairs = [(v, rnd.choice(available)) for v in rnd.sample(sorted(installed.values()), min(300, len(installed)))]
    pairs += [(rnd.choice(available), rnd.choice(available)) for _pair in range(400)]
    pairs += [(a, a + '~1') for a in rnd.sample(available, 50)]
    assert_like_dpkg(pairs)
    # and python-debian agrees on all the versions, sorted
    sample = rnd.sample(available, min(3000, len(available)))
    assert [Version(v) for v in sorted(sample, key=cmp_to_key(dpkg_compare))] == sorted(Version(v) for v in sample)


# ------------------------------------------------------------------------------------------- apk

def _apk_table():
    with open(APK_DATA) as f:
        for number, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if line:
                yield number, line


def test_apk_tools_own_version_table():
    """Every line of apk-tools' test/unit/version.data holds, as its version_test.c checks it."""
    failed = []
    checked = 0
    for number, line in _apk_table():
        words = line.split()
        if len(words) == 3:
            a, op, b = words
            ok = apk_match(a, op, b)
        else:
            version = words[0]
            invert = version.startswith('!')
            ok = apk_valid(version[1:] if invert else version) != invert
        checked += 1
        if not ok:
            failed.append((number, line))
    assert checked > 700
    assert not failed, failed


def test_apk_table_comparisons_are_antisymmetric():
    for _number, line in _apk_table():
        words = line.split()
        if len(words) == 3 and words[1] in ('<', '>', '='):
            a, op, b = words
            r = apk_compare(a, b)
            assert r == {'<': -1, '=': 0, '>': 1}[op]
            assert apk_compare(b, a) == -r


@pytest.mark.parametrize('older, newer', [
    ('1.0_alpha', '1.0_beta'),
    ('1.0_beta', '1.0_pre'),
    ('1.0_pre', '1.0_rc'),
    ('1.0_rc1', '1.0_rc2'),
    ('1.0_rc9', '1.0'),             # pre-release suffixes before the release
    ('1.0', '1.0_cvs'),             # post-release suffixes after it
    ('1.0_cvs', '1.0_svn'),
    ('1.0_svn', '1.0_git'),
    ('1.0_git', '1.0_hg'),
    ('1.0_hg', '1.0_p1'),
    ('1.0_p1', '1.0_p2'),
    ('1.0', '1.0a'),                # a letter suffix
    ('1.0a', '1.0b'),
    ('1.0-r0', '1.0-r1'),
    ('1.0-r9', '1.0-r10'),          # revisions as numbers
    ('1.0', '1.0-r1'),
    ('1.0-r99', '1.0.1'),
    ('1.9', '1.10'),
    ('1.2.3', '1.2.3.1'),
    ('3.0.15-r0', '3.0.15-r1'),
    ('1.36.1-r15', '1.36.1-r29'),
    ('8.2.0', '8.2.001'),           # a leading zero: string order
    ('1.0~1234', '1.0~2345'),       # commit hashes
    ('9.1.0414', '9.1.0500'),
])
def test_apk_rules(older, newer):
    assert apk_compare(older, newer) == -1
    assert apk_compare(newer, older) == 1
    assert apk_compare(newer, newer) == 0


def test_apk_invalid_versions():
    assert apk_valid('1.2.3_rc1-r0')
    assert apk_valid('0.1_pre2~1234abcd')
    for bad in ('', 'a', '1.0_foo', '1.0-r', '1.0-r1-r2', '1.0bc', '.1', '1.0_'):
        assert not apk_valid(bad), bad
    # an invalid tail sorts before the end of a valid version with the same leading part...
    assert apk_compare('1.0_foo', '1.0') == -1
    assert apk_compare('1.0-r1', '1.0-r1-r2') == 1
    # ...but the comparison stops at the first difference: 'b' against the end, before 'c' makes it invalid
    assert apk_compare('1.0', '1.0bc') == -1


def test_apk_match_operators():
    assert apk_match('1.0', '<', '1.1')
    assert apk_match('1.0', '<=', '1.0')
    assert apk_match('3.6.9', '~', '3.6')
    assert apk_match('3.8', '!~', '3.8.1')
    assert not apk_match('1.1', '<', '1.0')
    with pytest.raises(ValueError):
        apk_match('1.0', '<>!', '1.0')


def test_compare_refuses_what_is_not_a_string():
    with pytest.raises(ValueError):
        dpkg_compare(1.0, '1.0')
    with pytest.raises(ValueError):
        apk_compare(None, '1.0')
