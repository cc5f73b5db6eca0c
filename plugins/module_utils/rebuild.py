# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rebuilding the images we own from their build context, when their base moved or they aged.

The run, for the ``images`` of one host:

1. Read every build (context, Dockerfile, build args, target) and refuse bad
   input before anything is done (:func:`prepare`).
2. Order the builds so that an image built ``FROM`` another image of the list
   comes after it.
3. Find out what each base image is now: the digest its registry serves for
   the tag (one look-up per reference, through the daemon), or - for an image
   of the list, or with ``pull_base: false`` - the image the tag names on the
   host; a base pinned by digest never moves.
4. Compare with what the image on the host was built from, recorded in its
   label ``patchops.docker.base-images`` (:func:`decide`).
5. Rebuild what must be: pull the bases fresh, build without the build cache
   (so the package-upgrade layers run again) and untagged, then move the tag
   to the new image. A failed build leaves the old image and its tag alone.

Labels set on every image built here:

``patchops.docker.build-context``
    the build context's absolute path on the host.
``patchops.docker.base-images``
    JSON, one entry per image the build used (FROM lines of the stages built,
    and ``COPY --from`` images): ``{"<fully qualified reference>":
    {"digest": "sha256:..." or null, "id": "sha256:..."}}``, the registry digest
    and the local image ID of that base at build time.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time
from collections import deque

from ansible_collections.patchops.docker.plugins.module_utils.client import DockerException, RequestException, not_found
from ansible_collections.patchops.docker.plugins.module_utils.dockerfile import base_images, read_stages
from ansible_collections.patchops.docker.plugins.module_utils.errors import InvalidOption, PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.image_age import age_days
from ansible_collections.patchops.docker.plugins.module_utils.image_packages import read_image
from ansible_collections.patchops.docker.plugins.module_utils.image_ref import InvalidReference, is_image_id, parse
from ansible_collections.patchops.docker.plugins.module_utils.inventory import iso_to_epoch
from ansible_collections.patchops.docker.plugins.module_utils.package_updates import (
    DEFAULT_CACHE_DIR,
    Fetcher,
    Indexes,
    compare_image,
)
from ansible_collections.patchops.docker.plugins.module_utils.pull import pull_one
from ansible_collections.patchops.docker.plugins.module_utils import engine
from ansible_collections.patchops.docker.plugins.module_utils.registry import (
    check_platform,
    client_for,
    describe_registry_error,
    lookup_remote_digests,
)

BUILD_CONTEXT_LABEL = 'patchops.docker.build-context'
BASE_IMAGES_LABEL = 'patchops.docker.base-images'
WHEN_CHOICES = ('base_changed', 'older_than', 'security_updates', 'always')
# when: security_updates reuses a fetched InRelease or APKINDEX for this long (seconds)
CACHE_MAX_AGE = 3600
# Lines of the build log a failure returns.
LOG_TAIL_LINES = 20
# Seconds the build may stay silent (a long RUN step) before the API call gives up.
BUILD_READ_TIMEOUT = 3600

REGISTRY, LOCAL, PINNED = 'registry', 'local', 'pinned'


class Build(object):
    """One entry of ``images``, checked and read."""

    def __init__(self, name, ref, context, dockerfile, dockerfile_path, build_args, target, bases):
        self.name = name
        self.ref = ref
        self.reference = str(ref)
        self.context = context
        self.dockerfile = dockerfile
        self.dockerfile_path = dockerfile_path
        self.build_args = build_args
        self.target = target
        self.bases = bases


def _parse_name(name):
    if not isinstance(name, str) or not name.strip():
        raise InvalidOption('Each entry of images needs a name, the tag to build (for example shop/reports:1).')
    if is_image_id(name):
        raise InvalidOption('The image name %s is an image ID; give the tag to build instead.' % name)
    try:
        ref = parse(name)
    except InvalidReference as exc:
        raise InvalidOption('The image name %s is not a valid tag to build: %s.' % (name, exc.reason))
    if ref.digest:
        raise InvalidOption('The image name %s is pinned by digest; give a tag to build instead.' % name)
    return ref


def _read_build(entry):
    name = entry.get('name')
    ref = _parse_name(name)
    context = entry.get('context')
    if not context:
        raise InvalidOption('The image %s needs a context, the directory to build from.' % name)
    context = os.path.abspath(os.path.expanduser(context))
    if not os.path.isdir(context):
        raise InvalidOption('The build context %s of image %s is not a directory on the host.' % (context, name))
    dockerfile = entry.get('dockerfile') or 'Dockerfile'
    dockerfile_path = dockerfile if os.path.isabs(dockerfile) else os.path.join(context, dockerfile)
    if not os.path.isfile(dockerfile_path):
        raise InvalidOption('The Dockerfile %s of image %s does not exist.' % (dockerfile_path, name))
    try:
        with open(dockerfile_path, 'rb') as handle:
            text = handle.read().decode('utf-8', 'replace')
    except (IOError, OSError) as exc:
        raise InvalidOption('The Dockerfile %s of image %s cannot be read: %s.'
                            % (dockerfile_path, name, exc.strerror or exc))
    build_args = dict((str(key), '' if value is None else str(value))
                      for key, value in (entry.get('build_args') or {}).items())
    target = entry.get('target') or None
    stages = read_stages(text, build_args, target, where=dockerfile_path)
    return Build(name, ref, context, dockerfile, dockerfile_path, build_args, target, base_images(stages))


def _ordered(builds):
    """Builds whose base is another build of the list come after it; a cycle is bad input."""
    by_reference = dict((build.reference, build) for build in builds)
    done, ordered, visiting = set(), [], []

    def visit(build):
        if build.reference in done:
            return
        if build.reference in visiting:
            cycle = visiting[visiting.index(build.reference):] + [build.reference]
            raise InvalidOption('The images build from each other in a circle: %s.' % ' -> '.join(cycle))
        visiting.append(build.reference)
        for base in build.bases:
            if base in by_reference:
                visit(by_reference[base])
        visiting.pop()
        done.add(build.reference)
        ordered.append(build)

    for build in builds:
        visit(build)
    return ordered


def validate(params):
    """Refuse values that cannot work, before connecting to anything."""
    if params['max_age_days'] < 0:
        raise InvalidOption('max_age_days must be 0 or more, not %d.' % params['max_age_days'])


def prepare(images):
    """Every build of ``images``, read and checked, in the order to build them; raises on bad input."""
    builds = []
    seen = {}
    for entry in images or []:
        build = _read_build(entry)
        if build.reference in seen:
            raise InvalidOption('The image %s is listed twice (as %s and %s).' % (build.reference, seen[build.reference],
                                                                                  build.name))
        seen[build.reference] = build.name
        builds.append(build)
    return _ordered(builds)


def recorded_bases(labels):
    """The base images an image was built from, from its label; None when it has no (readable) record."""
    text = (labels or {}).get(BASE_IMAGES_LABEL)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    recorded = {}
    for reference, entry in data.items():
        if isinstance(entry, dict):
            recorded[reference] = dict(digest=entry.get('digest'), id=entry.get('id'))
    return recorded


def base_label(used):
    """The label value recording ``used`` ({reference: {digest, id}})."""
    return json.dumps(dict((ref, dict(digest=v.get('digest'), id=v.get('id'))) for ref, v in sorted(used.items())),
                      sort_keys=True, separators=(',', ':'))


def compare_base(reference, kind, recorded, current, error=None):
    """One entry of ``base_images``: where the base is now against what the image was built from.

    ``recorded`` is the label's entry for the reference (None when not recorded); ``current`` is the
    registry digest (kind ``registry``), the local image ID (``local``) or the pinned digest (``pinned``).
    """
    key = 'id' if kind == LOCAL else 'digest'
    previous = (recorded or {}).get(key)
    if error:
        moved = None
    elif recorded is None or previous is None:
        moved = True
    else:
        moved = current != previous
    return dict(reference=reference, kind=kind, previous=previous, current=current, moved=moved, error=error)


def _base_reason(base):
    ref = base['reference']
    if base['previous'] is None:
        return 'no record of which image of base %s it was built from' % ref
    if base['kind'] == REGISTRY:
        return 'registry has a newer image for base %s' % ref
    if base['current'] is None:
        return 'base %s is not on the host' % ref
    if base.get('rebuilt'):
        return 'its base %s is rebuilt first' % ref
    return 'base %s names a different image on the host' % ref


def decide(when, max_age_days, now, image, bases, security=None):
    """(rebuild?, reason) for one image.

    ``image`` is the image's inspect data (None when the tag is not on the host); ``bases`` the
    :func:`compare_base` entries of its base images; ``security`` (``when: security_updates``) the image's
    package_updates_info entry.
    """
    if image is None:
        return True, 'the image is not on the host'
    if when == 'always':
        return True, 'when is always'
    age = age_days(iso_to_epoch(image.get('Created')), now)
    reasons = []
    notes = []
    if when == 'security_updates':
        security = security or {}
        if security.get('error'):
            notes.append('could not tell whether security updates are pending: %s' % security['error'].rstrip('.'))
        elif security.get('security_updates'):
            pending = [u for u in security.get('updates') or [] if u.get('security')]
            shown = ', '.join('%s %s -> %s' % (u['name'], u['installed'], u['available']) for u in pending[:3])
            reasons.append('%d security update%s pending in its packages (%s%s)'
                           % (len(pending), '' if len(pending) == 1 else 's', shown, ', ...' if len(pending) > 3 else ''))
        else:
            notes.append('no security updates pending in its packages')
    if when == 'base_changed':
        if recorded_bases((image.get('Config') or {}).get('Labels')) is None:
            reasons.append('no record of the base images it was built from')
        else:
            reasons.extend(_base_reason(base) for base in bases if base['moved'])
        notes.extend('could not ask the registry about base %s: %s' % (base['reference'], base['error'])
                     for base in bases if base['error'])
    old = age > max_age_days
    if old:
        reasons.append('the image is %.1f days old, older than max_age_days %d' % (age, max_age_days))
    if reasons:
        return True, '; '.join(reasons)
    if when == 'base_changed':
        text = 'base images unchanged' if bases else 'no base image'
        text += ', image %.1f days old (max_age_days %d)' % (age, max_age_days)
    else:
        text = 'image %.1f days old, not older than max_age_days %d' % (age, max_age_days)
    return False, '; '.join(notes + [text])


def _repo_digest(image, ref, prefer=None):
    """The digest the local ``image`` carries for the repository of ``ref`` (``prefer`` when it is one)."""
    found = []
    for entry in (image or {}).get('RepoDigests') or []:
        try:
            candidate = parse(entry, default_tag=False)
        except InvalidReference:
            continue
        if candidate.name == ref.name and candidate.digest:
            found.append(candidate.digest)
    if prefer in found:
        return prefer
    return found[0] if found else None


def _sentence(text):
    text = ' '.join(str(text).split()).rstrip('.')
    return _capital(text) + '.'


class Rebuilder(object):
    """Decide and rebuild the ``images`` of one Docker host."""

    def __init__(self, client, params, check_mode=False):
        self.api = client.api
        # AnsibleModule.run_command, for gpgv (when: security_updates); None where no module runs us
        self.run_command = getattr(getattr(client, 'module', None), 'run_command', None)
        self.docker_host = client.docker_host
        self.params = params
        self.check_mode = check_mode
        self.pull_base = params['pull_base']
        self.owned = set()
        self.engine = None
        self.registry = None

    # -- looking --------------------------------------------------------------------------------
    def _inspect(self, reference):
        try:
            return self.api.inspect_image(reference)
        except (DockerException, RequestException) as exc:
            if not_found(exc):
                return None
            raise

    def _kind(self, reference, owned):
        if parse(reference, default_tag=False).digest:
            return PINNED
        if reference in owned or not self.pull_base:
            return LOCAL
        return REGISTRY

    def _current(self, reference, kind, remote):
        """(current, error) for a base: registry digest, local image ID or pinned digest."""
        if kind == PINNED:
            return parse(reference, default_tag=False).digest, None
        if kind == LOCAL:
            image = self._inspect(reference)
            return (image or {}).get('Id'), None
        found = remote.get(reference)
        if found is None:
            return None, 'not looked up'
        return found.digest, found.error

    def _same_for_platform(self, reference, previous, current):
        """A base whose multi-platform tag moved for other platforms only has not moved for this host."""
        if not (self.registry and previous and current) or previous == current:
            return False
        checked = check_platform(self.registry, parse(reference), current, {previous}, self.engine.platform)
        return checked.changed is False

    def _compare(self, build, image, owned, remote, rebuilt_here):
        recorded = recorded_bases(((image or {}).get('Config') or {}).get('Labels')) or {}
        bases = []
        for reference in build.bases:
            kind = self._kind(reference, owned)
            current, error = self._current(reference, kind, remote)
            previous = (recorded.get(reference) or {}).get('digest')
            if kind == REGISTRY and not error and self._same_for_platform(reference, previous, current):
                current = previous
            base = compare_base(reference, kind, recorded.get(reference), current, error)
            if reference in rebuilt_here:
                base.update(moved=True, rebuilt=True)
            bases.append(base)
        return bases

    # -- building -------------------------------------------------------------------------------
    def _pull_bases(self, build, bases):
        """Pull the registry bases; returns {reference: {digest, id}} for the label, or raises _BuildFailed."""
        used = {}
        for base in bases:
            ref = parse(base['reference'], default_tag=False)
            if base['kind'] == REGISTRY:
                pulled = pull_one(self.api, ref, 'always')
                if pulled.error:
                    raise _BuildFailed('pulling base %s failed: %s' % (base['reference'], pulled.error), [])
            elif base['kind'] == LOCAL and base['reference'] not in self.owned:
                pulled = pull_one(self.api, ref, 'missing')
                if pulled.error:
                    raise _BuildFailed('base %s is not on the host and pulling it failed: %s'
                                       % (base['reference'], pulled.error), [])
            image = self._inspect(base['reference'])
            if image is None:
                if base['kind'] == PINNED:
                    # the builder pulls it; a digest names one image, so the label can say which
                    used[base['reference']] = dict(digest=ref.digest, id=None)
                    continue
                raise _BuildFailed('base %s is not on the host' % base['reference'], [])
            digest = ref.digest if base['kind'] == PINNED else _repo_digest(image, ref, base['current'])
            used[base['reference']] = dict(digest=digest, id=image.get('Id'))
            base['current'] = image.get('Id') if base['kind'] == LOCAL else digest
        return used

    def _build(self, build, used):
        labels = {BUILD_CONTEXT_LABEL: build.context, BASE_IMAGES_LABEL: base_label(used)}
        tail = deque(maxlen=LOG_TAIL_LINES)
        image_id = None
        error = None
        try:
            stream = self.api.build(path=build.context, dockerfile=build.dockerfile, buildargs=build.build_args or None,
                                    target=build.target, labels=labels, pull=False, nocache=True, rm=True,
                                    forcerm=True, decode=True, timeout=BUILD_READ_TIMEOUT)
            for chunk in stream:
                if not isinstance(chunk, dict):
                    continue
                for line in (chunk.get('stream') or '').splitlines():
                    if line.strip():
                        tail.append(line.rstrip())
                if chunk.get('status') and not chunk.get('progressDetail'):
                    tail.append(' '.join(str(chunk.get(k)) for k in ('id', 'status') if chunk.get(k)))
                if chunk.get('error'):
                    error = (chunk.get('errorDetail') or {}).get('message') or chunk['error']
                if isinstance(chunk.get('aux'), dict) and chunk['aux'].get('ID'):
                    image_id = chunk['aux']['ID']
                if not image_id and (chunk.get('stream') or '').startswith('Successfully built '):
                    image_id = chunk['stream'].split()[-1]
        except (DockerException, RequestException) as exc:
            raise _BuildFailed('the build failed: %s' % describe_registry_error(exc), list(tail))
        if error:
            raise _BuildFailed('the build failed: %s' % error, list(tail))
        if not image_id:
            raise _BuildFailed('the build ended without an image', list(tail))
        image = self._inspect(image_id)
        if image is None:
            raise _BuildFailed('the built image %s is not on the host' % image_id, list(tail))
        return image['Id']

    def _rebuild(self, build, bases):
        used = self._pull_bases(build, bases)
        new_id = self._build(build, used)
        try:
            self.api.tag(new_id, build.ref.name, build.ref.tag, force=True)
        except (DockerException, RequestException) as exc:
            raise _BuildFailed('tagging the new image %s as %s failed: %s'
                               % (new_id, build.reference, describe_registry_error(exc)), [])
        return new_id

    def _security(self, images):
        """{image ID: package_updates_info entry} of the images on the host (``when: security_updates``): their
        packages read here, the indexes fetched from here (the host reaches its mirrors to build anyway)."""
        fetcher = Fetcher(os.path.expanduser(self.params.get('cache_dir') or DEFAULT_CACHE_DIR),
                          CACHE_MAX_AGE, self.params.get('timeout') or 60)
        indexes = Indexes(fetcher, self.params.get('mirrors') or {}, None, self.run_command)
        found = {}
        for image in images.values():
            if image is None or image['Id'] in found:
                continue
            entry = read_image(self.api, image['Id'])
            entry['image_id'] = image['Id']
            found[image['Id']] = compare_image(indexes, entry)
        return found

    # -- the run --------------------------------------------------------------------------------
    def run(self):
        builds = prepare(self.params['images'])
        self.owned = set(build.reference for build in builds)
        images = dict((build.reference, self._inspect(build.reference)) for build in builds)
        lookups = set()
        for build in builds:
            lookups.update(ref for ref in build.bases if self._kind(ref, self.owned) == REGISTRY)
        self.registry = None
        if lookups:
            self.engine = engine.read(self.api)
            self.registry = client_for(self.api, self.engine, self.params.get('timeout') or 60)
        remote = lookup_remote_digests(self.registry, lookups) if lookups else {}
        now = time.time()
        results = []
        rebuilt_here = set()
        security = self._security(images) if self.params['when'] == 'security_updates' else {}
        for build in builds:
            image = images[build.reference]
            bases = self._compare(build, image, self.owned, remote, rebuilt_here)
            rebuild, reason = decide(self.params['when'], self.params['max_age_days'], now, image, bases,
                                     security.get((image or {}).get('Id')))
            entry = dict(name=build.name, reference=build.reference, action='unchanged',
                         old_image_id=(image or {}).get('Id'), new_image_id=None, reason=_sentence(reason),
                         base_images=bases)
            if rebuild and self.check_mode:
                entry.update(action='rebuilt', reason=_sentence('would rebuild: ' + reason))
                rebuilt_here.add(build.reference)
            elif rebuild:
                try:
                    entry.update(action='rebuilt', new_image_id=self._rebuild(build, bases),
                                 reason=_sentence('rebuilt: ' + reason))
                    rebuilt_here.add(build.reference)
                except _BuildFailed as exc:
                    entry.update(action='failed', build_log=exc.log,
                                 reason=_sentence('%s (to rebuild because %s); the old image and its tag are kept'
                                                  % (_capital(str(exc)), reason)))
            results.append(entry)
        for entry in results:
            for base in entry['base_images']:
                base.pop('rebuilt', None)
        return dict(images=results, diff=_diff(results))


def _capital(text):
    return text[:1].upper() + text[1:]


class _BuildFailed(PatchopsError):
    def __init__(self, message, log):
        super(_BuildFailed, self).__init__(message)
        self.log = log


def _diff(results):
    changed = [entry for entry in results if entry['action'] == 'rebuilt']

    def bases(entry, key):
        return dict((base['reference'], base[key]) for base in entry['base_images'])
    return dict(
        before=dict((e['name'], dict(image_id=e['old_image_id'], base_images=bases(e, 'previous'))) for e in changed),
        after=dict((e['name'], dict(image_id=e['new_image_id'], base_images=bases(e, 'current'))) for e in changed),
    )


def failure_message(results):
    """What the module says when images failed: one sentence each, then the tail of each build log; None when none failed."""
    failed = [entry for entry in results if entry['action'] == 'failed']
    if not failed:
        return None
    parts = ['%d of %d images were not rebuilt.' % (len(failed), len(results))]
    for entry in failed:
        parts.append('%s: %s' % (entry['name'], entry['reason']))
    for entry in failed:
        if entry.get('build_log'):
            parts.append('Last lines of the build log of %s:\n%s' % (entry['name'], '\n'.join(entry['build_log'])))
    return '\n'.join(parts)
