# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The health gate: is the new container good enough to keep?

With a healthcheck it must report ``healthy`` within ``health_timeout``;
without one it must keep running, without a restart, for ``stable_seconds``.
A container that exits, restarts or reports ``unhealthy`` fails at once.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 0.5


class GateResult(object):
    """``ok``; ``message`` (one sentence when not ok); ``ready_at`` (when it became healthy or started);
    ``healthcheck`` (whether the container has one)."""

    def __init__(self, ok, message=None, ready_at=None, healthcheck=False):
        self.ok = ok
        self.message = message
        self.ready_at = ready_at
        self.healthcheck = healthcheck


def has_healthcheck(inspect):
    test = ((inspect.get('Config') or {}).get('Healthcheck') or {}).get('Test') or []
    return bool(test) and test[0] != 'NONE'


def _last_probe(state):
    log = ((state.get('Health') or {}).get('Log')) or []
    if not log:
        return ''
    last = log[-1]
    output = ' '.join((last.get('Output') or '').split())[:160]
    return 'exit code %s%s' % (last.get('ExitCode'), (': ' + output) if output else '')


def _not_running(state):
    if state.get('OOMKilled'):
        return 'was killed for running out of memory'
    if state.get('Restarting'):
        return 'is restarting (exit code %s)' % state.get('ExitCode')
    if state.get('Running'):
        # running, but started again since the gate began: its restart policy, or an engine restart
        return 'stopped and was started again during its health gate (last exit code %s)' % state.get('ExitCode')
    return 'exited with code %s' % state.get('ExitCode')


def wait_until_ready(api, container_id, health_timeout, stable_seconds, clock=time.time, sleep=time.sleep):
    """Watch the new container until it passes or fails its gate."""
    inspect = api.inspect_container(container_id)
    healthcheck = has_healthcheck(inspect)
    started_at = (inspect.get('State') or {}).get('StartedAt')
    begin = clock()
    deadline = begin + (health_timeout if healthcheck else stable_seconds)
    running_since = None
    delay = POLL_SECONDS
    while True:
        state = inspect.get('State') or {}
        now = clock()
        if not state.get('Running') or state.get('Restarting') or state.get('StartedAt') != started_at:
            return GateResult(False, 'The new container %s.' % _not_running(state))
        if running_since is None:
            running_since = now
        if healthcheck:
            status = (state.get('Health') or {}).get('Status')
            if status == 'healthy':
                return GateResult(True, ready_at=now, healthcheck=True)
            if status == 'unhealthy':
                return GateResult(False, 'The new container is unhealthy (last check: %s).' % _last_probe(state))
            if now >= deadline:
                probe = _last_probe(state)
                return GateResult(False, 'The new container was not healthy within %d s%s.'
                                  % (health_timeout, (' (last check: %s)' % probe) if probe else ''))
        elif now >= deadline:
            return GateResult(True, ready_at=running_since)
        sleep(min(delay, max(0.0, deadline - now)) or POLL_SECONDS)
        delay = min(delay * 1.5, MAX_POLL_SECONDS)
        inspect = api.inspect_container(container_id)
