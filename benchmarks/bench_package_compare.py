"""Benchmark package_updates_info's comparison on the controller: 1,000 images x ~150 dpkg packages.

    python benchmarks/bench_package_compare.py [--images 1000] [--packages 150] [--runs 3] [--seed 12]

Run with ``.venv/core217/bin/python`` (or any Python 3.9+ with the collection linked under
``.build/collections``, as the tests link it). No Docker, no network: the goal in issue 12 is that
comparing 1,000 images of about 150 dpkg packages each with cached indexes takes at most 5 s.

The indexes are real when this machine has apt lists (every ``Packages`` of
``/var/lib/apt/lists``, unpacked with ``apt-helper cat-file``: the release, ``-updates`` and
``-security`` suites); without them a Packages index of 60,000 generated packages stands in.
The images: each takes PACKAGES names from a pool of 2,000 of the indexes' names (the
first 500 in every image, as base layers share them); of each package's installed version, half
are the index's newest (up to date), the others older in one of the ways real images are
(``~`` before the newest, an older revision, an older security upload), so that about half
have an update and the versions installed vary between images.

Measured, RUNS rounds (the median and the best printed):

* parsing the indexes (done once per run and release, not per image);
* the comparison of every image (``Candidates.pending_updates``, one ``Candidates`` for all
  images of the release, as the module uses it), from a fresh ``Candidates`` each round;
* the same with a fresh ``Candidates`` per image (nothing carried between images), for scale.

Prints numbers; asserts nothing about time (the result of each round is checked to be the same).
"""

import argparse
import glob
import os
import platform
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, '.build', 'collections'))


def link_collection():
    """Link the repository where Python finds ansible_collections.patchops.docker (as tests/conftest.py does)."""
    link = os.path.join(REPO, '.build', 'collections', 'ansible_collections', 'patchops', 'docker')
    if not os.path.exists(os.path.join(link, 'plugins')):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(os.path.relpath(REPO, os.path.dirname(link)), link)


link_collection()

from ansible_collections.patchops.docker.plugins.module_utils.package_index import (  # noqa: E402
    Candidates, parse_packages)
from ansible_collections.patchops.docker.plugins.module_utils import versions  # noqa: E402
from ansible_collections.patchops.docker.plugins.module_utils.versions import dpkg_compare  # noqa: E402

NAME = 'bench_package_compare'
LISTS = '/var/lib/apt/lists'
APT_HELPER = '/usr/lib/apt/apt-helper'
POOL = 2000
SHARED = 500
GENERATED = 60000


def say(msg):
    sys.stderr.write('%s: %s\n' % (NAME, msg))
    sys.stderr.flush()


def real_indexes():
    """[(suite, security, Packages bytes)] from this machine's apt lists."""
    found = []
    for path in sorted(glob.glob(os.path.join(LISTS, '*_Packages*'))):
        suite = path.split('_dists_', 1)[1].split('_', 1)[0]
        data = subprocess.run([APT_HELPER, 'cat-file', path], capture_output=True, check=True).stdout
        found.append((suite, suite.endswith('-security'), data))
    return found


def generated_indexes(rnd):
    """A release of GENERATED packages and a security suite with newer versions of a tenth of them."""
    release, security = [], []
    for i in range(GENERATED):
        version = '%d.%d.%d-%d' % (rnd.randint(0, 9), rnd.randint(0, 30), rnd.randint(0, 99), rnd.randint(1, 5))
        arch = 'all' if i % 5 == 0 else 'amd64'
        release.append('Package: pkg%05d\nVersion: %s\nArchitecture: %s\nDescription: generated\n' % (i, version, arch))
        if i % 10 == 0:
            security.append('Package: pkg%05d\nVersion: %s+deb12u1\nArchitecture: %s\n' % (i, version, arch))
    return [('bookworm', False, '\n'.join(release).encode()),
            ('bookworm-security', True, '\n'.join(security).encode())]


def older(version, rnd):
    """A version older than ``version``, in one of the ways real images lag behind."""
    how = rnd.randrange(3)
    if how == 0:
        return version + '~%d' % rnd.randrange(50)
    if how == 1 and '-' in version:
        upstream, revision = version.rsplit('-', 1)
        return '%s-%s~old%d' % (upstream, revision, rnd.randrange(20))
    return version.split('+deb')[0] + '~pre%d' % rnd.randrange(20) if '+deb' in version else version + '~rc1'


def make_images(indexes, images, per_image, rnd):
    """IMAGES lists of PER_IMAGE installed packages (half of them from the SHARED names every image has)."""
    candidates = Candidates(indexes, dpkg_compare)
    names = sorted(set(name for index in indexes for name in index['packages']))
    pool = rnd.sample(names, min(POOL, len(names)))
    newest = {}
    for name in pool:
        _version, arch, _source = [entry for index in indexes for entry in index['packages'].get(name, ())][0]
        newest[name] = (candidates.offers(name, arch)[0][0], arch)
    shared = pool[:SHARED]
    result = []
    for _image in range(images):
        half = min(per_image // 2, len(shared))
        chosen = rnd.sample(shared, half) + rnd.sample(pool[SHARED:], per_image - half)
        packages = []
        for name in chosen:
            version, arch = newest[name]
            installed = version if rnd.random() < 0.5 else older(version, rnd)
            packages.append({'name': name, 'version': installed, 'arch': arch, 'source': name,
                             'source_version': installed})
        result.append(packages)
    return result


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--images', type=int, default=1000)
    parser.add_argument('--packages', type=int, default=150, help='packages per image')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--seed', type=int, default=12)
    args = parser.parse_args(argv)
    rnd = random.Random(args.seed)

    raw = real_indexes()
    source = 'this machine\'s apt lists (%s)' % ', '.join(sorted(set(s for s, _sec, _d in raw)))
    if not raw:
        raw = generated_indexes(rnd)
        source = 'generated (%d packages; no apt lists here)' % GENERATED
    size = sum(len(d) for _s, _sec, d in raw)

    parse_times = []
    for _round in range(args.runs):
        seconds, parsed = timed(lambda: [{'suite': s, 'security': sec, 'packages': parse_packages(d)}
                                         for s, sec, d in raw])
        parse_times.append(seconds)
    indexes = parsed
    entries = sum(len(v) for index in indexes for v in index['packages'].values())
    images = make_images(indexes, args.images, args.packages, rnd)
    total_packages = sum(len(p) for p in images)

    shared_times, fresh_times, results = [], [], []
    for _round in range(args.runs):
        versions._dpkg_parse.cache_clear()  # pylint: disable=protected-access
        seconds, updates = timed(lambda: _shared(indexes, images))
        shared_times.append(seconds)
        results.append(updates)
        versions._dpkg_parse.cache_clear()  # pylint: disable=protected-access
        seconds, fresh = timed(lambda: [Candidates(indexes, dpkg_compare).pending_updates(p) for p in images])
        fresh_times.append(seconds)
        if fresh != updates:
            raise SystemExit('%s: a fresh Candidates per image gave another result' % NAME)
    if any(r != results[0] for r in results):
        raise SystemExit('%s: the rounds gave different results' % NAME)
    pending = sum(len(u) for u in results[0])
    security = sum(1 for u in results[0] for x in u if x['security'])

    print('bench_package_compare: %s, Python %s, %s'
          % (platform.node(), platform.python_version(), platform.processor() or platform.machine()))
    print('indexes: %s: %d entries, %.1f MB' % (source, entries, size / 1e6))
    print('images: %d x %d packages = %d packages; %d pending updates (%d security)'
          % (len(images), args.packages, total_packages, pending, security))
    print('')
    print('| what | median s | best s | per image ms |')
    print('| --- | ---: | ---: | ---: |')
    for label, times, per in (('parse the indexes (once per run)', parse_times, None),
                              ('compare all images, one Candidates (the module)', shared_times, len(images)),
                              ('compare all images, a fresh Candidates per image', fresh_times, len(images))):
        per_image = '%.2f' % (statistics.median(times) * 1000 / per) if per else ''
        print('| %s | %.3f | %.3f | %s |' % (label, statistics.median(times), min(times), per_image))
    print('')
    print('goal: comparing %d images <= 5 s; parse + compare: %.2f s (median)'
          % (len(images), statistics.median(parse_times) + statistics.median(shared_times)))
    return 0


def _shared(indexes, images):
    candidates = Candidates(indexes, dpkg_compare)
    return [candidates.pending_updates(p) for p in images]


if __name__ == '__main__':
    sys.exit(main())
