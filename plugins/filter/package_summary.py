# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: package_summary
short_description: What each image has pending, in a few words, for the report and the selection
version_added: 0.1.0
author:
  - patchops.docker maintainers (@patchops)
description:
  - Takes the RV(patchops.docker.package_updates_info#module:images) list and returns, per image ID, how many
    package updates and security updates are pending, the first few packages (security updates first), and the
    error when the image could not be compared.
positional: image_ids, top
options:
  _input:
    description: The images list of M(patchops.docker.package_updates_info).
    type: list
    elements: dict
    required: true
  image_ids:
    description: Only these image IDs (those of one host's containers). V(null) keeps every image.
    type: list
    elements: str
  top:
    description: How many packages to keep per image.
    type: int
    default: 5
'''

EXAMPLES = r'''
- name: What this host's images have pending
  ansible.builtin.set_fact:
    pending: >-
      {{ updates.images | patchops.docker.package_summary(ages.containers | map(attribute='image_id') | list) }}
'''

RETURN = r'''
_value:
  description:
    - "C({image ID: {package_updates, security_updates, top, error}}); C(top) is a list of
      C({name, installed, available, security})."
  type: dict
'''

from ansible.errors import AnsibleFilterError


def package_summary(images, image_ids=None, top=5):
    if not isinstance(images, list):
        raise AnsibleFilterError('package_summary expects the images list of package_updates_info.')
    wanted = None if image_ids is None else set(image_ids)
    summary = {}
    for image in images:
        if not isinstance(image, dict) or (wanted is not None and image.get('image_id') not in wanted):
            continue
        updates = [u for u in image.get('updates') or [] if isinstance(u, dict)]
        ordered = [u for u in updates if u.get('security')] + [u for u in updates if not u.get('security')]
        summary[image.get('image_id')] = dict(
            package_updates=image.get('package_updates'),
            security_updates=image.get('security_updates'),
            error=image.get('error'),
            top=[dict(name=u.get('name'), installed=u.get('installed'), available=u.get('available'),
                      security=u.get('security')) for u in ordered[:int(top)]],
        )
    return summary


class FilterModule(object):
    def filters(self):
        return {'package_summary': package_summary}
