# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Update hooks: commands from container labels, run inside the container.

``patchops.docker.pre-update`` runs in the old container before it is stopped
(a non-zero exit skips the container); ``patchops.docker.post-update`` runs in
the new one once it passed its health gate.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading
from collections import namedtuple

from ansible_collections.patchops.docker.plugins.module_utils.client import DockerException, RequestException, short_reason

LABEL_PRE_UPDATE = 'patchops.docker.pre-update'
LABEL_POST_UPDATE = 'patchops.docker.post-update'
MAX_OUTPUT = 4096

HookResult = namedtuple('HookResult', ['command', 'exit_code', 'output'])


def hook_command(labels, label):
    command = (labels or {}).get(label)
    return command.strip() if command and command.strip() else None


def run_hook(api, container_id, command, timeout):
    """Run ``command`` with ``/bin/sh -c`` in the container; output is capped at 4 KiB.

    A hook that has not finished after ``timeout`` seconds, or that Docker could not run, ends
    with ``exit_code`` None and says why in ``output``: a hanging hook must not hold the run
    (and the host lock) forever. Docker cannot stop an exec, so it may still run in the container.
    """
    box = {}

    def execute():
        try:
            exec_id = api.exec_create(container_id, ['/bin/sh', '-c', command], stdout=True, stderr=True)['Id']
            box['raw'] = api.exec_start(exec_id) or b''
            box['exit_code'] = api.exec_inspect(exec_id).get('ExitCode')
        except (DockerException, RequestException) as exc:
            box['error'] = short_reason(exc)

    worker = threading.Thread(target=execute, name='patchops-hook')
    worker.daemon = True
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return HookResult(command, None, 'did not finish within %d s (it may still run in the container)' % timeout)
    if 'error' in box:
        return HookResult(command, None, 'could not be run: %s' % box['error'])
    exit_code = box['exit_code']
    raw = box['raw']
    output = raw.decode('utf-8', 'replace') if isinstance(raw, bytes) else str(raw)
    if len(output) > MAX_OUTPUT:
        output = output[-MAX_OUTPUT:]
    return HookResult(command, exit_code, output.strip())


def hook_outcome(result):
    """How a hook that did not succeed ended, for a sentence: 'exited with code 3', 'did not finish within 120 s'."""
    if result.exit_code is None:
        return result.output
    return 'exited with code %s' % result.exit_code
