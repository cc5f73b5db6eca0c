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

from collections import namedtuple

LABEL_PRE_UPDATE = 'patchops.docker.pre-update'
LABEL_POST_UPDATE = 'patchops.docker.post-update'
MAX_OUTPUT = 4096

HookResult = namedtuple('HookResult', ['command', 'exit_code', 'output'])


def hook_command(labels, label):
    command = (labels or {}).get(label)
    return command.strip() if command and command.strip() else None


def run_hook(api, container_id, command):
    """Run ``command`` with ``/bin/sh -c`` in the container; output is capped at 4 KiB."""
    exec_id = api.exec_create(container_id, ['/bin/sh', '-c', command], stdout=True, stderr=True)['Id']
    raw = api.exec_start(exec_id) or b''
    exit_code = api.exec_inspect(exec_id).get('ExitCode')
    output = raw.decode('utf-8', 'replace') if isinstance(raw, bytes) else str(raw)
    if len(output) > MAX_OUTPUT:
        output = output[-MAX_OUTPUT:]
    return HookResult(command, exit_code, output.strip())
