# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """The attributes every patchops.docker module documents, in the form community.docker uses.

    ``DOCUMENTATION`` says what each attribute means; a module gives its ``support`` and ``details``.
    ``ACTIONGROUP_DOCKER`` is the ``module_defaults`` group of meta/runtime.yml; ``INFO_MODULE`` is what
    a module that only reads supports.
    """

    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying the target.
  diff_mode:
    description: Returns details on what has changed (or would change in C(check_mode)) when run in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second run reports no change.
      - This assumes that nothing else changed the host or the registries in between.
'''

    ACTIONGROUP_DOCKER = r'''
options: {}
attributes:
  action_group:
    description: Use C(group/patchops.docker.docker) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - patchops.docker.docker
'''

    INFO_MODULE = r'''
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
'''
