# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The swap journal and the host lock, under ``state_dir`` on the target.

Before a container is stopped, an entry is written that says how to put it
back; each step of the swap moves the entry's ``stage`` on; the entry is
removed when the swap is finished either way. Whatever is left when a run
starts belongs to a run that was killed: :func:`recover` puts those
containers back (or finishes the swap when the new container had already
passed its health gate).

The directory is 0700 and every file 0600. Entries hold names, IDs and image
references only, never a container's environment.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import json
import os
import time

from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError

# The state directory on the managed node when none is given: the modules' default. The module docs, the role's
# defaults and argument spec and the rollback playbook say the same (tests/unit checks that they do).
DEFAULT_STATE_DIR = '/var/lib/patchops-docker'
JOURNAL_DIR = 'journal'
LOCK_FILE = 'lock'
LAST_RUN_FILE = 'last-run.json'

# Stages of a swap, in order.
STAGE_STOPPING = 'stopping'      # the old container is being stopped under its own name
STAGE_RENAMED = 'renamed'        # the old container is stopped and carries the backup name
STAGE_CREATED = 'created'        # the new container exists under the name (maybe started)
STAGE_HEALTHY = 'healthy'        # the new container passed its gate; only the backup's removal is left
STAGES = (STAGE_STOPPING, STAGE_RENAMED, STAGE_CREATED, STAGE_HEALTHY)


class LockTimeout(PatchopsError):
    """Another run holds the host lock."""


def _ensure_dir(path):
    try:
        os.makedirs(path, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise PatchopsError('Cannot create the state directory %s: %s.' % (path, exc.strerror))
    os.chmod(path, 0o700)


def _write_private(path, data):
    """Write JSON atomically, readable by the owner only."""
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(data, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


class Journal(object):
    """The journal of one host, rooted at ``state_dir``."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.entries_dir = os.path.join(state_dir, JOURNAL_DIR)
        self._lock_handle = None

    def prepare(self):
        _ensure_dir(self.state_dir)
        _ensure_dir(self.entries_dir)

    # --- the host lock -------------------------------------------------------
    def lock(self, timeout):
        """Take the host lock, waiting up to ``timeout`` seconds for another run to finish."""
        self.prepare()
        path = os.path.join(self.state_dir, LOCK_FILE)
        handle = open(path, 'a+')
        os.chmod(path, 0o600)
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    handle.close()
                    raise
                if time.time() >= deadline:
                    handle.close()
                    raise LockTimeout('Another patchops.docker run holds the lock %s; it did not finish within %d s.'
                                      % (path, timeout))
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write('%d\n' % os.getpid())
        handle.flush()
        self._lock_handle = handle

    def locked_by_another_run(self):
        """Whether another run holds the host lock now. Opens the lock file read-only and writes nothing."""
        try:
            handle = open(os.path.join(self.state_dir, LOCK_FILE), 'r')
        except (IOError, OSError):
            return False  # no lock file: no run ever took it
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except (IOError, OSError) as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        else:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False
        finally:
            handle.close()

    def unlock(self):
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    # --- entries -------------------------------------------------------------
    def _path(self, old_id):
        return os.path.join(self.entries_dir, '%s.json' % old_id)

    def begin(self, entry):
        """Record a swap before anything is touched; ``entry`` needs ``old_id`` and ``name``."""
        entry = dict(entry, stage=STAGE_STOPPING, started=time.time(), pid=os.getpid())
        _write_private(self._path(entry['old_id']), entry)
        return entry

    def advance(self, entry, stage, **extra):
        if stage not in STAGES:
            raise ValueError('unknown swap stage %r' % (stage,))
        entry.update(extra)
        entry['stage'] = stage
        _write_private(self._path(entry['old_id']), entry)
        return entry

    def finish(self, entry):
        try:
            os.unlink(self._path(entry['old_id']))
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def leftovers(self):
        """Entries of swaps that never finished, oldest first."""
        if not os.path.isdir(self.entries_dir):
            return []
        found = []
        for file_name in sorted(os.listdir(self.entries_dir)):
            if not file_name.endswith('.json'):
                continue
            try:
                with open(os.path.join(self.entries_dir, file_name)) as handle:
                    found.append(json.load(handle))
            except (IOError, OSError, ValueError):
                continue
        return sorted(found, key=lambda entry: entry.get('started', 0))

    # --- the last run, for rollback_containers -------------------------------
    def record_run(self, containers, superseded=None):
        """Keep what the last run changed (name, old and new image per updated container),
        and the superseded images kept for a rollback until the next run."""
        self.prepare()
        _write_private(os.path.join(self.state_dir, LAST_RUN_FILE),
                       dict(finished=time.time(), containers=containers, superseded=list(superseded or [])))

    def last_run(self):
        try:
            with open(os.path.join(self.state_dir, LAST_RUN_FILE)) as handle:
                return json.load(handle)
        except (IOError, OSError, ValueError):
            return None


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


def has_leftovers(state_dir):
    """Whether a killed run left swaps in the journal of ``state_dir`` (False when there is none, or it is not ours
    to read): a check that loads nothing of the swap machinery."""
    try:
        return bool(Journal(state_dir).leftovers())
    except (IOError, OSError):
        return False
