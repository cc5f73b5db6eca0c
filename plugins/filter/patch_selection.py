# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: patch_selection
short_description: Choose which containers of an image_age_info result to patch, and say why the others are left
version_added: 0.1.0
author:
  - patchops.docker maintainers (@patchops)
description:
  - Takes the RV(patchops.docker.image_age_info#module:containers) list and returns the names to update and, for
    every container left alone, why.
  - A container is selected when a newer image is waiting for it (C(update_available)), it is not labelled
    C(patchops.docker.enable=false), it matches O(include) (when given), matches no O(exclude) pattern, carries
    C(patchops.docker.enable=true) when O(opt_in) is set, and is in O(query_result) when given.
positional: include, exclude, opt_in, query_result, security_only
options:
  _input:
    description: The containers list of M(patchops.docker.image_age_info).
    type: list
    elements: dict
    required: true
  include:
    description: Names or shell-style globs; empty selects every container.
    type: list
    elements: str
    default: []
  exclude:
    description: Names or shell-style globs never selected; wins over O(include).
    type: list
    elements: str
    default: []
  opt_in:
    description: Select only containers labelled C(patchops.docker.enable=true).
    type: bool
    default: false
  query_result:
    description:
      - The value of a JMESPath query over the same containers (C(selected) of M(patchops.docker.image_age_info)),
        a list of containers or of names. V(null) means no query.
    type: raw
  security_only:
    description:
      - The P(patchops.docker.package_summary#filter) of the containers' images - select only containers whose
        image has security updates pending. V(null) selects regardless of packages.
    type: dict
'''

EXAMPLES = r'''
- name: Pick what to patch
  ansible.builtin.set_fact:
    selection: "{{ ages.containers | patchops.docker.patch_selection(include=['web*'], exclude=['web-canary']) }}"
'''

RETURN = r'''
_value:
  description: The selection.
  type: dict
  contains:
    selected:
      description: Names of the containers to update, in the order of the input.
      type: list
      elements: str
    excluded:
      description:
        - The containers a rule left alone (label, opt-in, include/exclude, query), each C({name, why}).
          Containers with nothing to patch are in neither list; their C(reason) says why.
      type: list
      elements: dict
'''

import fnmatch

from ansible.errors import AnsibleFilterError

LABEL_ENABLE = 'patchops.docker.enable'


def _matches(name, patterns):
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _query_names(query_result):
    if query_result is None:
        return None
    if not isinstance(query_result, list):
        raise AnsibleFilterError('patch_selection: the query must return a list of containers or names, not %s.'
                                 % type(query_result).__name__)
    names = set()
    for item in query_result:
        if isinstance(item, dict) and 'name' in item:
            names.add(item['name'])
        elif isinstance(item, str):
            names.add(item)
        else:
            raise AnsibleFilterError('patch_selection: the query must return containers or their names; '
                                     'it returned an item of type %s.' % type(item).__name__)
    return names


def _patterns(value, option):
    """The list of name patterns of ``include``/``exclude``; anything but strings is refused."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise AnsibleFilterError('patch_selection: patch_containers_%s must be a list of names or globs, not %s.'
                                 % (option, type(value).__name__))
    for pattern in value:
        if not isinstance(pattern, str):
            raise AnsibleFilterError('patch_selection: patch_containers_%s must hold names or globs (strings); '
                                     'it holds a %s.' % (option, type(pattern).__name__))
    return list(value)


def _security_why(container, security_only):
    """Why patch_containers_security_only leaves a container alone; None when its image has security updates."""
    pending = security_only.get(container.get('image_id'))
    if not isinstance(pending, dict):
        return 'no package information for its image (patch_containers_security_only)'
    if pending.get('error'):
        return 'security updates of its image unknown: %s' % pending['error']
    if not pending.get('security_updates'):
        return 'no security updates pending in its image (patch_containers_security_only)'
    return None


def patch_selection(containers, include=None, exclude=None, opt_in=False, query_result=None, security_only=None):
    if not isinstance(containers, list):
        raise AnsibleFilterError('patch_selection expects the containers list of image_age_info.')
    for container in containers:
        if not isinstance(container, dict) or not isinstance(container.get('name'), str):
            raise AnsibleFilterError('patch_selection expects the containers list of image_age_info; '
                                     'an item has no name.')
    include = _patterns(include, 'include')
    exclude = _patterns(exclude, 'exclude')
    queried = _query_names(query_result)
    selected, excluded = [], []
    for container in containers:
        name = container.get('name')
        labels = container.get('labels')
        enable = str((labels if isinstance(labels, dict) else {}).get(LABEL_ENABLE, '')).strip().lower()
        if container.get('excluded') or enable == 'false':
            why = 'labelled %s=false' % LABEL_ENABLE
        elif opt_in and enable != 'true':
            why = 'not labelled %s=true (opt-in)' % LABEL_ENABLE
        elif include and not _matches(name, include):
            why = 'not in patch_containers_include'
        elif _matches(name, exclude):
            why = 'in patch_containers_exclude'
        elif queried is not None and name not in queried:
            why = 'not selected by patch_containers_query'
        elif container.get('update_available'):
            why = _security_why(container, security_only) if security_only is not None else None
            if why is None:
                selected.append(name)
                continue
        else:
            continue  # nothing to patch: its reason (current, pinned, registry error) says why
        excluded.append(dict(name=name, why=why))
    return dict(selected=selected, excluded=excluded)


class FilterModule(object):
    def filters(self):
        return {'patch_selection': patch_selection}
