# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The swap of one container, its rollback, and the recovery of interrupted swaps.

pre-update hook -> journal entry -> stop old -> rename old to the backup name
-> create new under the name -> start -> health gate -> remove the backup
(never its volumes) -> post-update hook. Any failure after the stop puts the
old container back under its name and state. The journal entry moves with
each step, so a run killed anywhere is put right by the next one.
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

BACKUP_SUFFIX = '.patchops-backup'
# Fault injection for the crash-recovery and engine-restart tests: the module
# sleeps at this point of the swap ('stopped', 'renamed', 'created' or 'started')
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

    def __init__(self, action, message, new_id=None, downtime=None, hooks=None):
        self.action = action
        self.message = message
        self.new_id = new_id
        self.downtime = downtime
        self.hooks = hooks or {}


def restore(api, name, old_id, was_running, unwanted_id=None):
    """Put the old container back under ``name`` and in its run state.

    Removes ``unwanted_id`` (or whatever else now holds the name) first, never
    with its volumes.
    """
    holder = _exists(api, name)
    if holder is not None and holder['Id'] != old_id:
        api.remove_container(holder['Id'], force=True, v=False)
    if unwanted_id and unwanted_id != old_id and _exists(api, unwanted_id) is not None:
        api.remove_container(unwanted_id, force=True, v=False)
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

    def __init__(self, api, journal, health_timeout, stable_seconds, rollback, stop_timeout, run_hooks):
        self.api = api
        self.journal = journal
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

    def swap(self, old, plan):
        """Swap the container ``old`` (its inspect) for one created from ``plan``."""
        name = plan.name
        old_id = old['Id']
        was_running = bool((old.get('State') or {}).get('Running'))
        labels = (old.get('Config') or {}).get('Labels') or {}
        hooks = {}
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
        try:
            if was_running:
                self.api.stop(old_id, timeout=self.stop_timeout) if self.stop_timeout is not None \
                    else self.api.stop(old_id)
            _pause_point('stopped')
            self.api.rename(old_id, entry['backup'])
            self.journal.advance(entry, STAGE_RENAMED)
            _pause_point('renamed')
            new_id = apply_plan(self.api, plan)
            self.journal.advance(entry, STAGE_CREATED, new_id=new_id)
            _pause_point('created')
            ready_at = began
            if plan.start:
                self.api.start(new_id)
                ready_at = time.time()
                _pause_point('started')
                gate = wait_until_ready(self.api, new_id, self.health_timeout, self.stable_seconds)
                if not gate.ok:
                    return self._failed(entry, new_id, gate.message, hooks)
                if gate.healthcheck:
                    ready_at = gate.ready_at
            self.journal.advance(entry, STAGE_HEALTHY)
            self.api.remove_container(old_id, v=False, force=True)
        except RecreateError as exc:
            return self._failed(entry, new_id, str(exc), hooks)
        except (DockerException, RequestException) as exc:
            if lost_connection(exc):
                reason = 'The Docker daemon stopped answering in the middle of the swap (%s).' % short_reason(exc)
            else:
                reason = 'Docker refused a step of the swap: %s.' % short_reason(exc)
            return self._failed(entry, new_id, reason, hooks)
        self.journal.finish(entry)
        post = self._hook(new_id, labels, LABEL_POST_UPDATE)
        if post is not None:
            hooks['post_update'] = post._asdict()
        message = 'Recreated on the new image.'
        if post is not None and post.exit_code != 0:
            message += ' The post-update hook %s.' % hook_outcome(post)
        return SwapOutcome('updated', message, new_id=new_id, downtime=round(ready_at - began, 3), hooks=hooks)

    def _failed(self, entry, new_id, reason, hooks):
        if not self.rollback:
            self.journal.finish(entry)
            return SwapOutcome('failed', '%s The new container was left as it is; the original is kept, stopped, '
                                         'as %s.' % (reason, entry['backup']), new_id=new_id, hooks=hooks)
        try:
            restore(self.api, entry['name'], entry['old_id'], entry['was_running'], unwanted_id=new_id)
        except (DockerException, RequestException, RuntimeError) as exc:
            return SwapOutcome('failed', '%s Rolling back failed too: %s; the journal keeps the swap for the next '
                                         'run to restore.' % (reason, _trouble(exc)), hooks=hooks)
        self.journal.finish(entry)
        return SwapOutcome('rolled_back', '%s The original container is running again.' % reason
                           if entry['was_running'] else '%s The original container is back.' % reason, hooks=hooks)


def recover(api, journal):
    """Put right every swap a killed run left behind; returns one dict per container."""
    recovered = []
    for entry in journal.leftovers():
        name = entry.get('name')
        try:
            if entry.get('stage') == STAGE_HEALTHY:
                if _exists(api, entry['old_id']) is not None:
                    api.remove_container(entry['old_id'], v=False, force=True)
                result = dict(name=name, action='completed',
                              message='The interrupted swap had passed its health gate; the backup was removed.')
            else:
                restore(api, name, entry['old_id'], entry.get('was_running'), unwanted_id=entry.get('new_id'))
                result = dict(name=name, action='restored',
                              message='An interrupted swap (stage %s) was undone; the original container is back.'
                                      % entry.get('stage', STAGE_STOPPING))
        except (DockerException, RequestException, RuntimeError) as exc:
            recovered.append(dict(name=name, action='failed',
                                  message='Could not put right the interrupted swap: %s.' % _trouble(exc)))
            continue
        journal.finish(entry)
        recovered.append(result)
    return recovered


def interrupted_swaps(state_dir):
    """The swaps a killed run left behind, as they are: one dict per container (name, stage, backup).

    Reads only, for read-only callers: [] when there is no journal, when it is not ours to read, and
    while another run holds the lock (its entries are that run's swaps in progress).
    """
    journal = Journal(state_dir)
    try:
        entries = journal.leftovers()
        if not entries or journal.locked_by_another_run():
            return []
    except (IOError, OSError):
        return []
    return [dict(name=entry.get('name'), stage=entry.get('stage', STAGE_STOPPING), backup=entry.get('backup'))
            for entry in entries]


def recover_if_idle(api, state_dir):
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
        return recover(api, journal)
    finally:
        journal.unlock()
