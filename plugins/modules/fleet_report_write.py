#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: fleet_report_write
short_description: Build the fleet report of a patch run and write its files on the controller, in one step
version_added: 0.1.0
description:
  - Builds the fleet report from every host's C(patch_containers_result) (the
    P(patchops.docker.fleet_report#filter) document), or merges reports that runs already wrote, and writes
    C(patch-report.json), C(.md) and C(.html) into O(dest) on the controller.
  - An action that runs on the controller; nothing is sent to the managed nodes. Each file is written to a
    temporary name and renamed, so a reader never sees half a report. What the patch_containers role and the
    merge_reports playbook use to write their reports in one task.
  - Writing the report is the run's output, like a log - the task reports C(changed=false).
author:
  - patchops.docker maintainers (@patchops)
extends_documentation_fragment:
  - patchops.docker.attributes
attributes:
  check_mode:
    support: full
    details:
      - Writes the report in check mode too (it describes what the run would do).
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Writes the same files for the same input (apart from the time the report was generated).
options:
  results:
    description:
      - "C({inventory_hostname: patch_containers_result}) of the run. One of O(results), O(hosts) and O(reports) is
        required."
    type: dict
  hosts:
    description:
      - Inventory hosts whose C(patch_containers_result) fact the report is built from, read from C(hostvars) on the
        controller as they are (the role passes C(ansible_play_hosts_all)). A host without that fact is reported
        V(skipped) while it is still in the play (a later C(serial) batch) and V(unreachable) once it dropped out.
      - The same report as O(results) with those facts, without templating every host's result into the task's
        arguments first. One of O(results), O(hosts) and O(reports) is required.
    type: list
    elements: str
  run:
    description:
      - Scalar facts about the run for the report's C(run) block (C(playbook), C(check_mode), AWX job ids).
    type: dict
    default: {}
  reports:
    description:
      - Reports to merge (JSON documents of P(patchops.docker.fleet_report#filter), as dicts or as paths of
        C(patch-report.json) files on the controller). A host in several reports is taken from the one generated
        last. One of O(results), O(hosts) and O(reports) is required.
    type: list
    elements: raw
  dest:
    description:
      - The directory on the controller to write into (created with mode 0755 when missing).
    type: path
    required: true
  formats:
    description:
      - Which files to write.
    type: list
    elements: str
    choices: [json, md, html]
    default: [json, md, html]
seealso:
  - plugin: patchops.docker.fleet_report
    plugin_type: filter
'''

EXAMPLES = r'''
- name: Write the report of this play's hosts, from their patch_containers_result
  patchops.docker.fleet_report_write:
    hosts: "{{ ansible_play_hosts_all }}"
    run: {check_mode: "{{ ansible_check_mode }}", playbook: "{{ ansible_play_name }}"}
    dest: /srv/reports/tonight
  run_once: true
  check_mode: false

- name: Merge the reports of three AWX slices into one
  patchops.docker.fleet_report_write:
    reports:
      - /srv/reports/slice1/patch-report.json
      - /srv/reports/slice2/patch-report.json
      - /srv/reports/slice3/patch-report.json
    dest: /srv/reports/window
  run_once: true
'''

RETURN = r'''
report:
  description: The report that was written (the JSON document).
  returned: success
  type: dict
files:
  description: The files written.
  returned: success
  type: list
  elements: str
  sample: [/srv/reports/window/patch-report.json, /srv/reports/window/patch-report.md]
'''

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(
        results=dict(type='dict'), hosts=dict(type='list', elements='str'), run=dict(type='dict', default={}),
        reports=dict(type='list', elements='raw'),
        dest=dict(type='path', required=True),
        formats=dict(type='list', elements='str', choices=['json', 'md', 'html'], default=['json', 'md', 'html']),
    ), supports_check_mode=True)
    module.fail_json(msg='patchops.docker.fleet_report_write runs on the controller as an action; it cannot run as '
                         'a module on a managed node.')


if __name__ == '__main__':
    main()
