# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The swap of one container, its rollback, and the recovery of interrupted swaps.

pre-update hook -> journal entry -> stop old -> (snapshot of its volumes) ->
rename old to the backup name -> create new under the name -> start -> health
gate -> remove the backup (never its volumes) -> post-update hook. Any failure
after the stop puts the old container back under its name and state, and its
volumes' data back from the snapshot when one was taken. The journal entry
moves with each step, so a run killed anywhere is put right by the next one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

from ansible_collections.patchops.docker.plugins.module_utils.client import (
    DockerException,
    RequestException,
    lost_connection,
    not_found,
    short_reason,
)
from ansible_collections.patchops.docker.plugins.module_utils.health import wait_until_ready
from ansible_collections.patchops.docker.plugins.module_utils.hooks import (
    LABEL_POST_UPDATE,
    LABEL_PRE_UPDATE,
    hook_command,
    hook_outcome,
    run_hook,
)
from ansible_collections.patchops.docker.plugins.module_utils.journal import (
    Journal,
    LockTimeout,
    STAGE_CREATED,
    STAGE_HEALTHY,
    STAGE_RENAMED,
    STAGE_STOPPING,
)
from ansible_collections.patchops.docker.plugins.module_utils.recreate import RecreateError, apply_plan
from ansible_collections.patchops.docker.plugins.module_utils.snapshot import SnapshotError, Snapshots, preflight

BACKUP_SUFFIX = '.patchops-backup'
# Fault injection for the crash-recovery and engine-restart tests: the module
# sleeps at this point of the swap ('stopped', 'renamed', 'created' or 'started', or
# 'snapshot' / 'restoring' between two volumes of a snapshot's copy or restore)
# so that the test can kill it there, or stop the engine under it; with the
# resume file set, it goes on once that file exists. Both unset in normal use.
PAUSE_ENV = 'PATCHOPS_DOCKER_TEST_PAUSE_AT'
RESUME_ENV = 'PATCHOPS_DOCKER_TEST_RESUME_FILE'
PAUSE_SECONDS = 3600


def backup_name(name):
    return name + BACKUP_SUFFIX


def _pause_point(point):
    if os.environ.get(PAUSE_ENV) != point:
        return
    resume = os.environ.get(RESUME_ENV)
    deadline = time.time() + PAUSE_SECONDS
    while time.time() < deadline:
        if resume and os.path.exists(resume):
            return
        time.sleep(0.1 if resume else max(0.0, deadline - time.time()))


def _exists(api, container_id):
    """The container's inspect, or None when the daemon says there is no such container.

    A daemon that does not answer is not a missing container: that error goes up, so that
    nobody reads "the original container is gone" while it is only out of reach.
    """
    try:
        return api.inspect_container(container_id)
    except DockerException as exc:
        if not_found(exc):
            return None
        raise


def _trouble(exc):
    """Why restoring failed, in a few words: the original's absence, Docker's refusal, or a silent daemon."""
    if isinstance(exc, RuntimeError):
        return str(exc)
    if lost_connection(exc):
        return 'the Docker daemon did not answer (%s)' % short_reason(exc)
    return short_reason(exc)


class SwapOutcome(object):
    """What happened to one container: ``action``, ``message``, ``new_id``, ``downtime``, hook outputs."""

    def __init__(self, action, message, new_id=None, downtime=None, hooks=None, snapshot=None):
        self.action = action
        self.message = message
        self.new_id = new_id
        self.downtime = downtime
        self.hooks = hooks or {}
        self.snapshot = snapshot


def _remove_unwanted(api, name, old_id, unwanted_id):
    """Remove the new container (or whatever else now holds the name), never with its volumes."""
    holder = _exists(api, name)
    if holder is not None and holder['Id'] != old_id:
        api.remove_container(holder['Id'], force=True, v=False)
    if unwanted_id and unwanted_id != old_id and _exists(api, unwanted_id) is not None:
        api.remove_container(unwanted_id, force=True, v=False)


def restore(api, name, old_id, was_running, unwanted_id=None):
    """Put the old container back under ``name`` and in its run state.

    Removes ``unwanted_id`` (or whatever else now holds the name) first, never
    with its volumes.
    """
    _remove_unwanted(api, name, old_id, unwanted_id)
    old = _exists(api, old_id)
    if old is None:
        raise RuntimeError('the original container %s is gone' % old_id[:12])
    if old.get('Name', '').lstrip('/') != name:
        api.rename(old_id, name)
    if was_running and not (old.get('State') or {}).get('Running'):
        api.start(old_id)


class Swapper(object):
    """Swaps containers on one host. It keeps no state of its own between swaps, so the workers of
    ``max_parallel`` share one."""

    def __init__(self, api, journal, health_timeout, stable_seconds, rollback, stop_timeout, run_hooks,
                 run_command=None):
        self.api = api
        self.journal = journal
        self.snapshots = Snapshots(journal.state_dir, run_command)
        self.health_timeout = health_timeout
        self.stable_seconds = stable_seconds
        self.rollback = rollback
        self.stop_timeout = stop_timeout
        self.run_hooks = run_hooks

    def _hook(self, container_id, labels, label):
        command = hook_command(labels, label) if self.run_hooks else None
        if command is None:
            return None
        return run_hook(self.api, container_id, command, self.health_timeout)

    def swap(self, old, plan, snapshot=False, restore_from=None):
        """Swap the container ``old`` (its inspect) for one created from ``plan``.

        With ``snapshot`` its volumes' data is copied once it has stopped, and put back if the swap is rolled
        back. With ``restore_from`` (a snapshot's path) the data that snapshot holds is put into the volumes
        before the new container starts (a snapshot of the data as it is now is taken first).
        """
        name = plan.name
        old_id = old['Id']
        was_running = bool((old.get('State') or {}).get('Running'))
        labels = (old.get('Config') or {}).get('Labels') or {}
        hooks = {}
        volumes = []
        if snapshot or restore_from:
            try:
                volumes = preflight(self.api, self.snapshots, old)
            except SnapshotError as exc:
                return SwapOutcome('failed', 'Nothing was changed: %s' % exc)
        if was_running:
            pre = self._hook(old_id, labels, LABEL_PRE_UPDATE)
            if pre is not None:
                hooks['pre_update'] = pre._asdict()
                if pre.exit_code != 0:
                    return SwapOutcome('skipped', 'The pre-update hook %s; nothing was changed.'
                                       % hook_outcome(pre), hooks=hooks)
        entry = self.journal.begin(dict(old_id=old_id, name=name, backup=backup_name(name), was_running=was_running,
                                        old_image_id=old.get('Image'), new_image_id=plan.image_id))
        began = time.time()
        new_id = None
        taken = None
        try:
            if was_running:
                self.api.stop(old_id, timeout=self.stop_timeout) if self.stop_timeout is not None \
                    else self.api.stop(old_id)
            _pause_point('stopped')
            if volumes:
                taken = self._snapshot(entry, volumes)
                if isinstance(taken, SwapOutcome):
                    return taken
            if restore_from:
                self.journal.advance(entry, STAGE_STOPPING, data_dirty=True)
                self.snapshots.restore(restore_from, volumes, between=lambda: _pause_point('restoring'))
            self.api.rename(old_id, entry['backup'])
            self.journal.advance(entry, STAGE_RENAMED)
            _pause_point('renamed')
            new_id = apply_plan(self.api, plan)
            self.journal.advance(entry, STAGE_CREATED, new_id=new_id, data_dirty=bool(volumes))
            _pause_point('created')
            ready_at = began
            if plan.start:
                self.api.start(new_id)
                ready_at = time.time()
                _pause_point('started')
                gate = wait_until_ready(self.api, new_id, self.health_timeout, self.stable_seconds)
                if not gate.ok:
                    return self._failed(entry, new_id, gate.message, hooks, taken)
                if gate.healthcheck:
                    ready_at = gate.ready_at
            self.journal.advance(entry, STAGE_HEALTHY)
            self.api.remove_container(old_id, v=False, force=True)
        except (RecreateError, SnapshotError) as exc:
            return self._failed(entry, new_id, str(exc), hooks, taken)
        except (DockerException, RequestException) as exc:
            if lost_connection(exc):
                reason = 'The Docker daemon stopped answering in the middle of the swap (%s).' % short_reason(exc)
            else:
                reason = 'Docker refused a step of the swap: %s.' % short_reason(exc)
            return self._failed(entry, new_id, reason, hooks, taken)
        self.journal.finish(entry)
        post = self._hook(new_id, labels, LABEL_POST_UPDATE)
        if post is not None:
            hooks['post_update'] = post._asdict()
        message = 'Recreated on the new image.'
        if post is not None and post.exit_code != 0:
            message += ' The post-update hook %s.' % hook_outcome(post)
        return SwapOutcome('updated', message, new_id=new_id, downtime=round(ready_at - began, 3), hooks=hooks,
                           snapshot=taken)

    def _snapshot(self, entry, volumes):
        """Copy the stopped container's volumes; on failure, start it again and say why (a SwapOutcome)."""
        path = self.snapshots.new_path(entry['name'], entry['old_id'])
        self.journal.advance(entry, STAGE_STOPPING, snapshot=dict(path=path, state='copying', volumes=volumes))
        try:
            taken = self.snapshots.take(path, entry['name'], entry['old_id'], volumes,
                                        between=lambda: _pause_point('snapshot'))
        except SnapshotError as exc:
            try:
                restore(self.api, entry['name'], entry['old_id'], entry['was_running'])
            except (DockerException, RequestException, RuntimeError) as trouble:
                return SwapOutcome('failed', '%s Starting the original container again failed too: %s; the journal '
                                             'keeps the swap for the next run to restore.' % (exc, _trouble(trouble)))
            self.journal.finish(entry)
            return SwapOutcome('failed', '%s Nothing was updated; the original container %s.'
                               % (exc, 'is running again' if entry['was_running'] else 'is back'))
        entry['snapshot']['state'] = 'complete'
        self.journal.advance(entry, STAGE_STOPPING)
        return taken

    def _failed(self, entry, new_id, reason, hooks, taken=None):
        if not self.rollback:
            self.journal.finish(entry)
            kept = ' The snapshot of its volumes is kept at %s.' % taken['path'] if taken else ''
            return SwapOutcome('failed', '%s The new container was left as it is; the original is kept, stopped, '
                                         'as %s.%s' % (reason, entry['backup'], kept), new_id=new_id, hooks=hooks,
                               snapshot=taken)
        restored_data = False
        try:
            restored_data = _put_data_back(self.api, self.journal, self.snapshots, entry, new_id)
            restore(self.api, entry['name'], entry['old_id'], entry['was_running'], unwanted_id=new_id)
        except SnapshotError as exc:
            return SwapOutcome('failed', '%s Rolling back failed too: %s The original container stays stopped, as %s, '
                                         'so that it does not start on half-restored data; the journal keeps the swap '
                                         'for the next run to restore.' % (reason, exc, entry['backup']),
                               hooks=hooks, snapshot=taken)
        except (DockerException, RequestException, RuntimeError) as exc:
            return SwapOutcome('failed', '%s Rolling back failed too: %s; the journal keeps the swap for the next '
                                         'run to restore.' % (reason, _trouble(exc)), hooks=hooks, snapshot=taken)
        self.journal.finish(entry)
        data = ' on the data of its snapshot' if restored_data else ''
        return SwapOutcome('rolled_back', '%s The original container is running again%s.' % (reason, data)
                           if entry['was_running'] else '%s The original container is back%s.' % (reason, data),
                           hooks=hooks, snapshot=taken)


def _put_data_back(api, journal, snapshots, entry, new_id=None):
    """When the swap's snapshot is complete and something may have written to the volumes since, remove the new
    container (so that nothing writes while the data goes back) and put the snapshot's data back. True if it did."""
    snap = entry.get('snapshot') or {}
    if snap.get('state') != 'complete' or not entry.get('data_dirty'):
        return False
    _remove_unwanted(api, entry['name'], entry['old_id'], new_id or entry.get('new_id'))
    journal.advance(entry, entry.get('stage', STAGE_STOPPING), restoring=True)
    snapshots.restore(snap['path'], snap['volumes'], between=lambda: _pause_point('restoring'))
    return True


def recover(api, journal, run_command=None):
    """Put right every swap a killed run left behind; returns one dict per container. ``run_command``
    (AnsibleModule's) puts a snapshot's data back where a swap took one."""
    recovered = []
    snapshots = Snapshots(journal.state_dir, run_command)
    for entry in journal.leftovers():
        name = entry.get('name')
        try:
            snap = entry.get('snapshot') or {}
            if snap.get('state') == 'copying' and entry.get('stage') != STAGE_HEALTHY:
                snapshots.remove(snap['path'])  # a partial copy: the data itself was not touched
            if entry.get('stage') == STAGE_HEALTHY:
                if _exists(api, entry['old_id']) is not None:
                    api.remove_container(entry['old_id'], v=False, force=True)
                result = dict(name=name, action='completed',
                              message='The interrupted swap had passed its health gate; the backup was removed.')
            else:
                data = _put_data_back(api, journal, snapshots, entry)
                restore(api, name, entry['old_id'], entry.get('was_running'), unwanted_id=entry.get('new_id'))
                result = dict(name=name, action='restored',
                              message='An interrupted swap (stage %s) was undone; the original container is back%s.'
                                      % (entry.get('stage', STAGE_STOPPING),
                                         ' on the data of its snapshot' if data else ''))
        except SnapshotError as exc:
            recovered.append(dict(name=name, action='failed',
                                  message='Could not put right the interrupted swap: %s The original container '
                                          'stays stopped until its data is back.' % exc))
            continue
        except (DockerException, RequestException, RuntimeError) as exc:
            recovered.append(dict(name=name, action='failed',
                                  message='Could not put right the interrupted swap: %s.' % _trouble(exc)))
            continue
        journal.finish(entry)
        recovered.append(result)
    return recovered


def recover_if_idle(api, state_dir, run_command=None):
    """Recover leftovers of a killed run, unless another run holds the lock (its entries are live).

    For read-only callers: creates nothing when there is no journal.
    """
    journal = Journal(state_dir)
    try:
        if not journal.leftovers():
            return []
    except OSError:
        return []  # not ours to read (another user's state_dir)
    try:
        journal.lock(0)
    except (LockTimeout, OSError):
        return []
    try:
        return recover(api, journal, run_command)
    finally:
        journal.unlock()
