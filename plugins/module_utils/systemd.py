# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Containers that systemd runs on a Podman host: restarting their unit instead of recreating them.

A unit made by ``podman generate systemd --new`` or by Quadlet creates its container from the image's tag
each time it starts, so after the pull a restart of the unit is the update. A rootful Podman's units are
system units; behind a rootless socket (``/run/user/UID/podman/podman.sock``) they are that user's units.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

_ROOTLESS_SOCKET = re.compile(r'^unix://(/var)?/run/user/(\d+)/')


def systemctl_command(unit, docker_host):
    """The ``systemctl`` command that restarts ``unit`` for the Podman behind ``docker_host``."""
    command = ['systemctl']
    if _ROOTLESS_SOCKET.match(docker_host or ''):
        command.append('--user')
    return command + ['restart', '--', unit]


def restart_unit(module, unit, docker_host):
    """Restart ``unit`` with systemctl on the target; ``(ok, one-sentence message)``."""
    systemctl = module.get_bin_path('systemctl')
    if systemctl is None:
        return False, ('Cannot restart systemd unit %s: systemctl is not on this host; nothing was changed.' % unit)
    command = systemctl_command(unit, docker_host)
    command[0] = systemctl
    rc, _out, err = module.run_command(command)
    if rc != 0:
        return False, ('systemctl restart %s failed (exit %d): %s.'
                       % (unit, rc, (err or '').strip().splitlines()[-1:] and (err or '').strip().splitlines()[-1]
                          or 'no message'))
    return True, 'systemd unit %s restarted.' % unit
