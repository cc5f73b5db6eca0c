# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The work of ``container_update``: decide, pull, order, swap, clean up.

1. Recover swaps a killed run left behind (under the host lock).
2. Resolve the named containers; an unknown name fails before anything is touched.
3. Pull each distinct reference once, before any container stops (check mode
   asks the registry for its digest instead and pulls nothing).
4. Decide per container: unchanged, deferred (image too young), or update.
5. Swap in dependency order; containers that share the network namespace of
   (or link to) a recreated container are recreated after it. With
   ``max_parallel`` independent groups (ordering.independent_groups) are
   swapped side by side, each group in order.
6. Remove superseded images nobody uses (``cleanup``), record the run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.patchops.docker.plugins.module_utils.errors import InvalidOption
from ansible_collections.patchops.docker.plugins.module_utils.client import DockerException, RequestException
from ansible_collections.patchops.docker.plugins.module_utils import engine, platforms
from ansible_collections.patchops.docker.plugins.module_utils.image_age import (
    age_days,
    built_here,
    classify,
    known_digests,
    parse_reference,
    record_of_inspect,
    systemd_unit,
)
from ansible_collections.patchops.docker.plugins.module_utils.inventory import iso_to_epoch, primary_name, select_containers
from ansible_collections.patchops.docker.plugins.module_utils.journal import Journal
from ansible_collections.patchops.docker.plugins.module_utils.ordering import (
    dependencies,
    dependency_order,
    hard_dependents,
    independent_groups,
)
from ansible_collections.patchops.docker.plugins.module_utils.pull import PULL_POLICIES, local_image, pull_all
from ansible_collections.patchops.docker.plugins.module_utils.recreate import plan_recreate
from ansible_collections.patchops.docker.plugins.module_utils.registry import (
    RegistryError,
    as_remote,
    check_platform,
    client_for,
    lookup_remote_digests,
)
from ansible_collections.patchops.docker.plugins.module_utils import shared_lookups
from ansible_collections.patchops.docker.plugins.module_utils.snapshot import MODES as SNAPSHOT_MODES
from ansible_collections.patchops.docker.plugins.module_utils.snapshot import SnapshotError, Snapshots, preflight
from ansible_collections.patchops.docker.plugins.module_utils.snapshot import wanted as snapshot_wanted
from ansible_collections.patchops.docker.plugins.module_utils.swap import Swapper, SwapOutcome, backup_name, recover
from ansible_collections.patchops.docker.plugins.module_utils.systemd import restart_unit

ACTIONS = ('updated', 'unchanged', 'deferred', 'rolled_back', 'failed', 'skipped')
LOCK_TIMEOUT = 900
TARGETS = ('newest', 'previous')
# Under the containerd image store an image whose tag moves on is gone from the store; with
# keep_previous it is kept under this repository (tag: its ID) until the next run cleans up.
KEEP_REPOSITORY = 'patchops-previous'


def keep_tag(image_id):
    """The tag that keeps a superseded image: ``sha256:ab..`` -> ``sha256-ab..``."""
    return (image_id or '').replace(':', '-')


def same_platform_image(old, new):
    """True when two image inspects describe the same image for the same platform.

    Under the containerd image store an image ID is the digest of what the tag resolved to
    (an index, for a multi-platform tag), so a tag whose index moved for other platforms only
    gets a new ID for the very same image: same config, same layers, same platform.
    """
    if not old or not new:
        return False
    if old.get('Id') == new.get('Id'):
        return True

    def identity(image):
        return (image.get('Os'), image.get('Architecture'), image.get('Variant'), image.get('Created'),
                (image.get('RootFS') or {}).get('Layers'), image.get('Config'))
    return identity(old) == identity(new)


def validate(params):
    """Refuse values that cannot work, before anything is touched."""
    if not params['containers']:
        raise InvalidOption('containers must name at least one container.')
    for option in ('min_image_age_days', 'health_timeout', 'stable_seconds'):
        if params[option] < 0:
            raise InvalidOption('%s must be 0 or more, not %d.' % (option, params[option]))
    if params.get('timeout') is not None and params['timeout'] < 1:
        raise InvalidOption('timeout must be 1 or more, not %d.' % params['timeout'])
    if params.get('max_parallel', 1) < 1:
        raise InvalidOption('max_parallel must be 1 or more, not %d.' % params['max_parallel'])
    if params.get('stop_timeout') is not None and params['stop_timeout'] < 0:
        raise InvalidOption('stop_timeout must be 0 or more, not %d.' % params['stop_timeout'])
    if params.get('target', 'newest') not in TARGETS:
        raise InvalidOption('target must be one of %s.' % ', '.join(TARGETS))
    if params['pull'] not in PULL_POLICIES:
        raise InvalidOption('pull must be one of %s.' % ', '.join(PULL_POLICIES))
    if params.get('snapshot', 'none') not in SNAPSHOT_MODES:
        raise InvalidOption('snapshot must be one of %s.' % ', '.join(SNAPSHOT_MODES))
    if params.get('snapshot_keep', 1) < 1:
        raise InvalidOption('snapshot_keep must be 1 or more, not %d.' % params['snapshot_keep'])
    if params.get('restore_data') and params.get('target', 'newest') != 'previous':
        raise InvalidOption('restore_data puts back the data of the last run\'s snapshot and only applies with '
                            'target: previous.')
    params['remote_digests'] = shared_lookups.normalize(params.get('remote_digests'))


# What an image says of its own version (the OCI image spec's annotations, set as labels by most builds).
LABEL_OCI_VERSION = 'org.opencontainers.image.version'
LABEL_OCI_REVISION = 'org.opencontainers.image.revision'
LABEL_OCI_SOURCE = 'org.opencontainers.image.source'


def _name(inspect):
    return (inspect.get('Name') or '').lstrip('/')


def _entry(name, action, message, old_image_id=None, new_image_id=None, image=None, downtime=None, hooks=None,
           snapshot=None):
    entry = dict(name=name, action=action, message=message, image=image, old_image_id=old_image_id,
                 new_image_id=new_image_id, downtime_seconds=downtime, snapshot=snapshot)
    entry.update(hooks or {})
    return entry


class Decision(object):
    """What the run decided for one container: a final ``result`` entry, or what to swap it to.

    ``image`` is the reference the container was created from, ``old_image_id`` the image it runs;
    a swap takes ``new_image`` (its inspect; ``new_image_id`` its ID), moves the tag back to it first
    when ``retag`` (a reference) is set, and reports ``remote_digest``. A ``follower`` was not asked
    for: it is recreated because it shares the network namespace of, or links to, a recreated one.
    ``restore_from`` is the snapshot whose data goes back into its volumes (``target: previous`` with
    ``restore_data``).
    """

    __slots__ = ('name', 'inspect', 'image', 'old_image_id', 'new_image_id', 'new_image', 'retag',
                 'remote_digest', 'result', 'follower', 'restore_from', 'systemd_unit')

    def __init__(self, name, inspect, image, follower=False):
        self.name = name
        self.inspect = inspect
        self.image = image
        self.old_image_id = inspect.get('Image')
        self.new_image_id = None
        self.new_image = None
        self.retag = None
        self.remote_digest = None
        self.result = None
        self.follower = follower
        self.restore_from = None
        self.systemd_unit = None  # restarted instead of recreated (Podman, restart_systemd_units)


class Updater(object):
    def __init__(self, client, params, check_mode=False):
        self.client = client
        self.api = client.api
        self.params = params
        self.check_mode = check_mode
        self.journal = Journal(params['state_dir'])
        # AnsibleModule.run_command: the snapshots' cp (None where no module runs us, as in the unit tests)
        self._run_command = getattr(getattr(client, 'module', None), 'run_command', None)
        self.engine = None
        self.podman = False
        self._podman_defaults = None
        self._registry = None
        self._old_images = {}
        self._summaries = []
        self.registry_lookups = 0  # tags asked of their registries: look-ups in check mode, pulls otherwise

    @property
    def registry(self):
        if self._registry is None:
            self._registry = client_for(self.api, self.engine, self.params.get('timeout') or 60)
        return self._registry

    @property
    def digest_ids(self):
        """True where image IDs are manifest or index digests (the containerd image store)."""
        return self.engine is not None and self.engine.image_store == engine.STORE_CONTAINERD

    def run(self):
        validate(self.params)
        if self.check_mode:
            return self._run_locked()
        self.journal.lock(LOCK_TIMEOUT)
        try:
            return self._run_locked()
        finally:
            self.journal.unlock()

    # --- phases ------------------------------------------------------------------------------
    def _run_locked(self):
        recovered = [] if self.check_mode else recover(self.api, self.journal, self._run_command)
        self.engine = engine.read(self.api)
        self.podman = engine.is_podman(self.engine)
        summaries = self.api.containers(all=True)
        selected = select_containers(summaries, self.params['containers'], self.client.docker_host)
        inspects = [self.api.inspect_container(summary['Id']) for summary in selected]
        self._summaries = summaries
        decisions = self._decide(inspects)
        to_swap = [decision for decision in decisions.values() if decision.result is None]
        results = OrderedDict()
        if self.check_mode:
            for decision in to_swap:
                results[decision.name] = self._would(decision)
        else:
            results.update(self._swap_all(to_swap, summaries))
        for name, decision in decisions.items():
            if decision.result is not None:
                results[name] = decision.result
        # Dependencies first (the order the swaps ran in), then the containers left alone.
        containers = list(results.values())
        self._add_versions(containers)  # before the cleanup may remove the old images
        # A run that updated nothing leaves the record of the last run that did (and the images it
        # kept), so that rollback_containers still returns to them.
        if not self.check_mode and any(c['action'] == 'updated' for c in containers):
            superseded = self._cleanup(containers)
            if self.params.get('target') != 'previous':
                self.journal.record_run([dict(name=c['name'], old_image_id=c['old_image_id'],
                                              new_image_id=c['new_image_id'], image=c['image'],
                                              snapshot=(c.get('snapshot') or {}).get('path'))
                                         for c in containers if c['action'] == 'updated'], superseded)
        if not self.check_mode:
            self._prune_snapshots(containers)
        summary = dict((action, 0) for action in ACTIONS)
        for entry in containers:
            summary[entry['action']] += 1
        return dict(containers=containers, summary=summary, recovered=recovered,
                    registry_lookups=self.registry_lookups,
                    changed=bool(summary['updated']) or bool([r for r in recovered if r['action'] != 'failed']),
                    diff=self._diff(containers))

    def _prune_snapshots(self, containers):
        """Keep ``snapshot_keep`` snapshots per container that took one, and always the one the last run recorded
        (rollback_containers puts that one back)."""
        snapshots = Snapshots(self.params['state_dir'], self._run_command)
        recorded = set(c.get('snapshot') for c in (self.journal.last_run() or {}).get('containers') or [])
        for entry in containers:
            if entry.get('snapshot'):
                try:
                    snapshots.prune(entry['name'], self.params.get('snapshot_keep') or 1, protect=recorded)
                except OSError:
                    continue  # an older snapshot left behind takes room but harms nothing

    def _wants_snapshot(self, inspect):
        return snapshot_wanted(self.params.get('snapshot'), (inspect.get('Config') or {}).get('Labels'))

    def _would(self, decision):
        """The check-mode entry of a container that would be recreated, with the snapshot's checks run."""
        entry = _entry(decision.name, 'updated', 'Would be recreated on the newer image (check mode).',
                       decision.old_image_id, decision.new_image_id, decision.image)
        entry['remote_digest'] = decision.remote_digest
        if self._wants_snapshot(decision.inspect) or decision.restore_from:
            try:
                volumes = preflight(self.api, Snapshots(self.params['state_dir'], self._run_command), decision.inspect)
            except SnapshotError as exc:
                entry.update(action='failed', message='Would not be updated: %s' % exc)
                return entry
            if volumes:
                entry['message'] = ('Would be recreated on the newer image, after a snapshot of its volumes (%s) '
                                    '(check mode).' % ', '.join(v['name'] for v in volumes))
        return entry

    def _add_versions(self, containers):
        """Each entry's ``version_before`` / ``version_after``: the OCI version label of the image it ran and of
        the one it runs now (an update, or in check mode a newer image already on the host), with
        ``revision_*`` and ``source_*`` where the images set those labels."""
        labels = {}

        def of(image_id):
            if not image_id:
                return {}
            if image_id not in labels:
                image = self._old_images.get(image_id) or self._image(image_id)
                labels[image_id] = ((image or {}).get('Config') or {}).get('Labels') or {}
            return labels[image_id]

        for entry in containers:
            before = of(entry.get('old_image_id'))
            after = of(entry.get('new_image_id')) if entry['action'] == 'updated' else {}
            entry['version_before'] = before.get(LABEL_OCI_VERSION)
            entry['version_after'] = after.get(LABEL_OCI_VERSION)
            for key, label in (('revision', LABEL_OCI_REVISION), ('source', LABEL_OCI_SOURCE)):
                for side, image_labels in (('before', before), ('after', after)):
                    if image_labels.get(label):
                        entry['%s_%s' % (key, side)] = image_labels[label]

    def _decide(self, inspects):
        """One decision per container: a final result, or what to swap it to."""
        decisions = {}
        refs = {}
        for inspect in inspects:
            name = _name(inspect)
            reference = (inspect.get('Config') or {}).get('Image')
            ref = parse_reference(reference, inspect.get('Image'))
            decision = Decision(name, inspect, reference)
            decisions[name] = decision
            refused = self._podman_refusal(inspect, decision) if self.podman else None
            if refused is not None:
                decision.result = _entry(name, 'skipped', refused, inspect.get('Image'), image=reference)
            elif ref is None:
                decision.result = _entry(name, 'unchanged', 'Created from an image ID; there is no tag to follow.',
                                         inspect.get('Image'), image=reference)
            elif ref.digest:
                decision.result = _entry(name, 'unchanged', 'Pinned by digest.', inspect.get('Image'),
                                         image=reference)
            elif (inspect.get('HostConfig') or {}).get('AutoRemove'):
                decision.result = _entry(name, 'skipped', 'Started with --rm: Docker deletes it (and its anonymous '
                                         'volumes) when it stops, so it cannot be kept as a backup; nothing was '
                                         'changed.', inspect.get('Image'), image=reference)
            else:
                refs[name] = ref
        for name in refs:
            # Read before anything is pulled: under the containerd image store the pull that moves
            # the tag takes the old image out of the store, and the recreate needs its defaults.
            old_id = decisions[name].old_image_id
            if old_id not in self._old_images:
                self._old_images[old_id] = self._image(old_id)
        if self.params.get('target') == 'previous':
            self._decide_previous(decisions, refs)
        elif self.check_mode:
            self._decide_from_registry(decisions, refs)
        else:
            self._decide_from_pull(decisions, refs)
        return decisions

    def _podman_refusal(self, inspect, decision):
        """Why a container on a Podman host is left alone (one sentence), or None.

        A container in a pod shares the pod's namespaces, and Podman's Docker-compatible API cannot create a
        container into a pod. A container that a systemd unit runs (label ``PODMAN_SYSTEMD_UNIT``) is systemd's:
        recreated behind its back, the unit would stop or start the old one; with ``restart_systemd_units``
        the unit is restarted on the new image instead.
        """
        pod = engine.podman_pod(self.api, inspect['Id'])
        if pod:
            return ("Not recreated: it belongs to Podman pod '%s', and Podman's Docker-compatible API cannot create "
                    "a container inside a pod; update the pod with podman instead." % engine.podman_pod_name(self.api, pod))
        unit = systemd_unit((inspect.get('Config') or {}).get('Labels'))
        if unit is None:
            return None
        if self.params.get('restart_systemd_units'):
            decision.systemd_unit = unit
            return None
        return ('Managed by systemd unit %s; left alone, since the unit would run the old configuration again '
                'behind a recreate (restart_systemd_units restarts the unit after the pull instead).' % unit)

    def _decide_previous(self, decisions, refs):
        """Back to the image each container ran before the last run, which the journal recorded."""
        last = dict((c['name'], c) for c in (self.journal.last_run() or {}).get('containers') or [])
        for name, ref in refs.items():
            decision = decisions[name]
            previous = last.get(name)
            if previous is None or previous.get('new_image_id') != decision.old_image_id:
                decision.result = _entry(name, 'unchanged', 'The last run did not update this container, or it '
                                         'changed since; nothing to return to.', decision.old_image_id,
                                         image=decision.image)
                continue
            if self.params.get('restore_data'):
                decision.restore_from = previous.get('snapshot')
                if not decision.restore_from:
                    decision.result = _entry(name, 'failed', 'The last run took no snapshot of its volumes, so there '
                                             'is no data to put back; nothing was changed.', decision.old_image_id,
                                             image=decision.image)
                    continue
            image = self._image(previous['old_image_id'])
            if image is None:
                decision.result = _entry(name, 'failed', 'The previous image %s is no longer on the host; nothing '
                                         'was changed.' % previous['old_image_id'], decision.old_image_id,
                                         image=decision.image)
                continue
            decision.new_image_id = image['Id']
            decision.new_image = image
            decision.retag = ref
            if self.check_mode:
                decision.remote_digest = None

    def _decide_from_registry(self, decisions, refs):
        built = self._built_here(refs.values())
        shared = self.params['remote_digests']
        asked = set(str(ref) for ref in refs.values() if str(ref) not in built and str(ref) not in shared)
        remote = lookup_remote_digests(self.registry, asked)
        remote.update(as_remote(shared))
        self.registry_lookups += len(asked)
        for name, ref in refs.items():
            decision = decisions[name]
            image = self._old_images.get(decision.old_image_id)
            local = self._image(str(ref)) or {}
            if str(ref) in built:  # built on this host: the local tag is the newest there is
                decision.new_image_id = local.get('Id') if local.get('Id') != decision.old_image_id else None
                decision.remote_digest = None
                if decision.new_image_id is None and not self.params['force']:
                    decision.result = _entry(name, 'unchanged', 'Already on the newest local build of its tag.',
                                             decision.old_image_id, decision.old_image_id, decision.image)
                continue
            record = self._old_record(decision)
            found = remote.get(str(ref))
            platform = platforms.of_image(image, self.engine.platform)
            checked = None
            known = known_digests(record, ref, decision.old_image_id)
            if found is not None and not found.error and found.digest not in known:
                config_id = None if self.digest_ids or image is None else decision.old_image_id
                known.discard(config_id)
                checked = check_platform(self.registry, ref, found.digest, known, platform, config_id)
            update, reason, digest, error = classify(ref, record, decision.old_image_id, local.get('Id'),
                                                     found, True, checked, platforms.format_platform(platform),
                                                     self.digest_ids)
            decision.new_image_id = local.get('Id') if local.get('Id') != decision.old_image_id else None
            decision.remote_digest = digest
            if update is None and error:
                decision.result = _entry(name, 'failed', 'Cannot tell whether a newer image exists: registry error: '
                                         '%s.' % error, decision.old_image_id, image=decision.image)
            elif not update and not self.params['force']:
                decision.result = _entry(name, 'unchanged', 'Already on the newest image (%s).' % reason,
                                         decision.old_image_id, decision.old_image_id, decision.image)

    def _built_here(self, refs):
        """The distinct references among ``refs`` whose local image was built on this host (no registry has
        them: image_rebuild's, a build without a repo digest, a Podman build), each inspected once."""
        built = set()
        for reference in set(str(ref) for ref in refs):
            if built_here(record_of_inspect(self._image(reference), self.podman)):
                built.add(reference)
        return built

    def _decide_from_pull(self, decisions, refs):
        # Tags built on this host (image_rebuild) are recreated on the local tag, never pulled.
        built = self._built_here(refs.values())
        refs = self._not_moved(decisions, refs, built)
        if self.digest_ids:
            self._keep_old_images(decisions, refs)
        from_registry = [ref for ref in refs.values() if str(ref) not in built]
        pulled = pull_all(self.api, from_registry, self.params['pull'])
        self.registry_lookups += sum(1 for reference in set(str(ref) for ref in from_registry)
                                     if self.params['pull'] == 'always' or pulled[reference].pulled)
        pulled.update(pull_all(self.api, [ref for ref in refs.values() if str(ref) in built], 'never'))
        min_age = self.params['min_image_age_days']
        now = time.time()
        for name, ref in refs.items():
            decision = decisions[name]
            outcome = pulled[str(ref)]
            if outcome.error and (outcome.image_id is None or self.params['pull'] == 'always'):
                decision.result = _entry(name, 'failed', 'Nothing was changed: %s.' % outcome.error,
                                         decision.old_image_id, image=decision.image)
                continue
            decision.new_image_id = outcome.image_id
            if outcome.image_id == decision.old_image_id and not self.params['force']:
                decision.result = _entry(name, 'unchanged', 'Already on the newest image.',
                                         decision.old_image_id, outcome.image_id, decision.image)
                continue
            new_image = self._image(outcome.image_id)
            decision.new_image = new_image
            if not self.params['force'] and self._same_for_platform(ref, decision, new_image):
                platform = platforms.format_platform(platforms.of_image(new_image, self.engine.platform))
                decision.result = _entry(
                    name, 'unchanged', 'Already on the newest image: tag %s moved for other platforms only; the %s '
                    'image is the same.' % (ref.tag, platform), decision.old_image_id, decision.old_image_id,
                    decision.image)
                continue
            created = iso_to_epoch(new_image.get('Created'))
            if min_age and outcome.image_id != decision.old_image_id and age_days(created, now) < min_age:
                decision.result = _entry(
                    name, 'deferred', 'The new image is %.1f days old; min_image_age_days is %d.'
                    % (age_days(created, now), min_age), decision.old_image_id, outcome.image_id, decision.image)

    def _not_moved(self, decisions, refs, built):
        """``refs`` without the containers whose image is known by their tag's digest in ``remote_digests``: those
        are already on the newest image, as another host found it, and nothing is pulled for them."""
        shared = self.params['remote_digests']
        if not shared or self.params['force']:
            return refs
        left = {}
        for name, ref in refs.items():
            decision = decisions[name]
            digest = shared.get(str(ref))
            if digest is None or str(ref) in built or \
                    digest not in known_digests(self._old_record(decision), ref, decision.old_image_id):
                left[name] = ref
                continue
            decision.remote_digest = digest
            decision.result = _entry(name, 'unchanged', 'Already on the newest image (its tag\'s digest in '
                                     'remote_digests).', decision.old_image_id, decision.old_image_id, decision.image)
        return left

    def _old_record(self, decision):
        """The image a container runs, as image_age's digest rules take it (None when the store no longer has it)."""
        image = self._old_images.get(decision.old_image_id)
        return dict(repo_digests=image.get('RepoDigests') or []) if image is not None else None

    def _image(self, reference):
        image = local_image(self.api, reference)
        if self.podman and image is not None:
            image = engine.podman_image(self.api, image['Id'], image)
        return image

    def _same_for_platform(self, ref, decision, new_image):
        """Whether the pulled image is the one the container runs, under another ID (containerd image store)."""
        if not self.digest_ids or new_image is None:
            return False
        old_image = self._old_images.get(decision.old_image_id)
        if old_image is not None:
            return same_platform_image(old_image, new_image)
        # Gone from the store before this run: the registry still knows both indexes.
        platform = platforms.of_image(new_image, self.engine.platform)
        checked = check_platform(self.registry, ref, new_image['Id'], {decision.old_image_id}, platform)
        return checked.changed is False

    def _keep_old_images(self, decisions, refs):
        """Under the containerd image store, tag the images the pull would take out of the store but that are
        still wanted: by ``keep_previous`` (for rollback_containers), or by a container this run does not update."""
        updating = set(decisions[name].inspect['Id'] for name in refs)
        still_used = set(s.get('ImageID') for s in self._summaries if s['Id'] not in updating)
        for name in refs:
            old_id = decisions[name].old_image_id
            wanted = self.params.get('keep_previous') or old_id in still_used
            if wanted and self._old_images.get(old_id) is not None:
                try:
                    self.api.tag(old_id, KEEP_REPOSITORY, keep_tag(old_id), force=True)
                except (DockerException, RequestException):
                    continue  # kept or not, the update itself does not depend on it

    def _old_image(self, decision, image_id, ref):
        """The old image's inspect: read before the pull, or now, or its config from its registry.

        Returns None when none of them has it: then what the container inherited from its image
        cannot be told apart from what was set on it.
        """
        image = self._old_images.get(image_id) or self._image(image_id)
        if image is not None or not self.digest_ids or ref is None:
            return image
        platform = self.engine.platform
        try:
            manifest = self.registry.platform_digest(ref, image_id, platform)
            config = self.registry.image_config(ref, manifest)
        except RegistryError:
            return None
        return {'Id': image_id, 'Config': config.get('config') or {}}

    def _swap_all(self, to_swap, summaries):
        if not to_swap:
            return {}  # nothing to recreate, so no followers to look for either
        names_by_id = dict((s['Id'], primary_name(s)) for s in summaries)
        swapper = Swapper(self.api, self.journal, self.params['health_timeout'], self.params['stable_seconds'],
                          self.params['rollback'], self.params['stop_timeout'], self.params['run_hooks'],
                          run_command=self._run_command)
        planned = dict((d.name, d) for d in to_swap)
        followers = self._followers(planned, names_by_id, summaries)
        ordered = dependency_order([d.inspect for d in list(planned.values()) + followers], names_by_id)
        groups = independent_groups(ordered, names_by_id)
        workers = max(1, min(self.params.get('max_parallel') or 1, len(groups)))

        def swap_group(group):
            # renamed / broken never cross groups: no container of one group depends on another group's
            results, renamed, broken = {}, {}, set()
            for inspect in group:
                results[_name(inspect)] = self._swap_one(swapper, inspect, planned, names_by_id, renamed, broken)
            return results

        results = {}
        if workers == 1:
            results.update(swap_group(ordered))
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for group_results in pool.map(swap_group, groups):
                    results.update(group_results)
        # in dependency order, whatever order the groups finished in
        return OrderedDict((_name(inspect), results[_name(inspect)]) for inspect in ordered)

    def _swap_one(self, swapper, inspect, planned, names_by_id, renamed, broken):
        """Swap one container; ``renamed`` and ``broken`` carry what its group's earlier swaps did."""
        name = _name(inspect)
        decision = planned.get(name) or Decision(name, inspect, inspect['Config'].get('Image'), follower=True)
        blocked = self._blocked_by(inspect, names_by_id, broken)
        if blocked:
            return _entry(name, 'skipped', 'Not recreated because %s was not updated.' % blocked,
                          decision.old_image_id, image=decision.image)
        fresh = self.api.inspect_container(inspect['Id'])
        followed = parse_reference(fresh['Config'].get('Image'), fresh.get('Image'))
        old_image = self._old_image(decision, fresh.get('Image'), followed)
        if old_image is None:
            return _entry(name, 'failed', 'Nothing was changed: the image it runs (%s) is gone from the image store '
                          'and from its registry, so the settings it inherited from that image cannot be told '
                          'apart from its own.' % fresh.get('Image'), decision.old_image_id,
                          image=decision.image)
        if decision.follower:
            # Created again from the reference it was made from: whatever that names on the host now.
            new_image = self._image(decision.image) or old_image
        else:
            new_image = decision.new_image or old_image
        if decision.retag is not None:
            # The tag names the previous image again, so the container keeps following its tag.
            ref = decision.retag
            self.api.tag(new_image['Id'], ref.name, ref.tag, force=True)
        if decision.systemd_unit:
            outcome = self._restart_unit(decision, fresh, new_image)
            return _entry(name, outcome.action, outcome.message, fresh.get('Image'),
                          new_image.get('Id') if outcome.action == 'updated' else None, decision.image,
                          outcome.downtime)
        try:
            defaults = self._defaults_of(new_image)
        except (DockerException, RequestException) as exc:
            return _entry(name, 'failed', 'Nothing was changed: Podman did not say what it sets on a new container '
                          '(a probe container failed: %s).' % exc, decision.old_image_id, image=decision.image)
        plan = plan_recreate(fresh, old_image, new_image, renamed, defaults)
        outcome = swapper.swap(fresh, plan, snapshot=self._wants_snapshot(fresh), restore_from=decision.restore_from)
        message = outcome.message
        if decision.follower:
            message = ('Recreated because it shares the network namespace of, or links to, a recreated '
                       'container. ' + message)
        if outcome.action == 'updated':
            renamed[fresh['Id']] = outcome.new_id
            renamed[backup_name(name)] = name
        else:
            broken.add(name)
        return _entry(name, outcome.action, message, fresh.get('Image'),
                      new_image.get('Id') if outcome.action == 'updated' else None,
                      decision.image, outcome.downtime, outcome.hooks, outcome.snapshot)

    def _defaults_of(self, image):
        """On Podman, what it fills in on a container nobody configured (once per run); None elsewhere."""
        if not self.podman:
            return None
        if self._podman_defaults is None:
            self._podman_defaults = engine.podman_defaults(self.api, image['Id'], uuid.uuid4().hex[:12])
        return self._podman_defaults

    def _restart_unit(self, decision, fresh, new_image):
        """A container that a systemd unit runs: the unit restarts it on the pulled image (restart_systemd_units)."""
        began = time.time()
        ok, message = restart_unit(self.client.module, decision.systemd_unit, self.client.docker_host)
        if not ok:
            return SwapOutcome('failed', message)
        after = self.api.containers(all=True, filters={'name': '^/?%s$' % decision.name})
        running = [c for c in after if c.get('ImageID') == new_image.get('Id') and c.get('State') == 'running']
        if not running:
            return SwapOutcome('failed', 'systemd unit %s was restarted, but container %s does not run the new '
                               'image %s; see systemctl status %s.' % (decision.systemd_unit, decision.name,
                                                                       new_image.get('Id'), decision.systemd_unit))
        return SwapOutcome('updated', 'Pulled the new image and restarted systemd unit %s, which recreated the '
                           'container.' % decision.systemd_unit, new_id=running[0]['Id'],
                           downtime=round(time.time() - began, 3))

    def _followers(self, planned, names_by_id, summaries):
        """Containers outside the request that break when a planned one is recreated under them.

        Only containers that can depend hard on another are inspected: those whose list entry shows a
        ``container:`` network mode, and those that link to another (the linked container's list entry
        carries the name ``/<linker>/<alias>``).
        """
        candidates = set()
        linkers = set()
        for summary in summaries:
            for listed in summary.get('Names') or []:
                parts = listed.strip('/').split('/')
                if len(parts) > 1:
                    linkers.add(parts[0])
        for summary in summaries:
            mode = (summary.get('HostConfig') or {}).get('NetworkMode')
            name = names_by_id.get(summary['Id'])
            if name in planned:
                continue
            if mode is None or mode.startswith('container:') or name in linkers:
                candidates.add(summary['Id'])  # no network mode listed (old engines): look closer
        inspects = []
        for container_id in candidates:
            try:
                inspects.append(self.api.inspect_container(container_id))
            except (DockerException, RequestException):
                continue
        found, names = [], set(planned)
        while True:
            more = [i for i in hard_dependents(inspects, names_by_id, names) if _name(i) not in names]
            if not more:
                return found
            for inspect in more:
                names.add(_name(inspect))
                found.append(Decision(_name(inspect), inspect, inspect['Config'].get('Image'), follower=True))

    def _blocked_by(self, inspect, names_by_id, broken):
        for dep, hard in dependencies(inspect, names_by_id).items():
            if hard and dep in broken:
                return dep
        return None

    def _cleanup(self, containers):
        """Remove superseded images nobody uses; returns the images kept for the next run.

        With ``keep_previous`` the images this run superseded stay until the next
        run (so that ``target: previous`` can return to them); the images an
        earlier run kept that way are removed now.
        """
        superseded = set(c['old_image_id'] for c in containers
                         if c['action'] == 'updated' and c['old_image_id'] != c['new_image_id'])
        if not self.params['cleanup']:
            return []
        candidates = set((self.journal.last_run() or {}).get('superseded') or [])
        kept = []
        if self.params.get('keep_previous'):
            kept = sorted(superseded)
        else:
            candidates |= superseded
        in_use = set(s.get('ImageID') for s in self.api.containers(all=True))
        if self.digest_ids:
            # images kept under patchops-previous that nothing needs any more (whatever run kept them)
            for image in self.api.images(name=KEEP_REPOSITORY):
                if image['Id'] not in in_use:
                    candidates.add(image['Id'])
        for image_id in candidates - in_use - set(kept):
            try:
                if self.digest_ids:
                    try:
                        self.api.remove_image('%s:%s' % (KEEP_REPOSITORY, keep_tag(image_id)))
                    except (DockerException, RequestException):
                        pass  # not kept under that name
                self.api.remove_image(image_id)
            except (DockerException, RequestException):
                continue  # still tagged elsewhere or used by a build cache: keep it
        return kept

    def _diff(self, containers):
        changed = [c for c in containers if c['action'] == 'updated']
        after = {}
        for c in changed:
            after[c['name']] = dict(image=c['image'], image_id=c['new_image_id'])
            if c.get('remote_digest'):
                after[c['name']]['registry_digest'] = c['remote_digest']
        return dict(
            before=dict((c['name'], dict(image=c['image'], image_id=c['old_image_id'])) for c in changed),
            after=after,
        )
