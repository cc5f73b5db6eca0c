# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exceptions of patchops.docker.

Every exception carries a message that is one sentence naming the object and,
where there is one, what to do. Modules turn them into ``fail_json(msg=...)``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class PatchopsError(Exception):
    """Base class: an error whose message can be shown to the operator as is."""


class DockerConnectionError(PatchopsError):
    """The Docker daemon could not be reached or refused the connection."""


class ContainerNotFound(PatchopsError):
    """A container named in the task does not exist on the Docker host."""


class InvalidOption(PatchopsError):
    """A module option has a value that cannot be used."""
