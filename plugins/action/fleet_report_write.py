# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet_report_write action: build (or merge) the fleet report and write its files, on the controller.

Three copy tasks (one per format) cost a quiet night about 3.5 s; this writes every file in one task, in the
controller's own process, with nothing sent to any host.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail, AnsibleFilterError
from ansible.plugins.action import ActionBase

from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_data import fleet_report, merge_reports
from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_html import fleet_report_html
from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_markdown import fleet_report_markdown

FORMATS = ('json', 'md', 'html')
ARGUMENT_SPEC = dict(
    results=dict(type='dict'),
    hosts=dict(type='list', elements='str'),
    run=dict(type='dict', default={}),
    reports=dict(type='list', elements='raw'),
    dest=dict(type='path', required=True),
    formats=dict(type='list', elements='str', choices=list(FORMATS), default=list(FORMATS)),
)


RESULT_VAR = 'patch_containers_result'
NOT_REACHED = 'Not reached yet in this run (a later batch, or the play stopped before it).'
UNREACHABLE = ('The host could not be reached during the run (or failed outside the role); see the play output '
               'for this host.')


def _host_results(hosts, task_vars):
    """``{host: patch_containers_result}`` of ``hosts``, read from hostvars as they are (not templated: a container
    label that looks like Jinja stays text, and the report costs no template round trip per host). A host without
    the fact is still to come (``skipped``) while it is in the play, else it dropped out (``unreachable``)."""
    hostvars = task_vars.get('hostvars')
    active = set(task_vars.get('ansible_play_hosts') or [])
    results = {}
    for host in hosts:
        found = hostvars.raw_get(host) if hostvars is not None and host in hostvars else {}
        value = found.get(RESULT_VAR) if isinstance(found, dict) else None
        if value is None:
            value = ({'host': host, 'status': 'skipped', 'error': NOT_REACHED} if host in active
                     else {'host': host, 'status': 'unreachable', 'error': UNREACHABLE})
        results[host] = value
    return results


def _expand(items, dest):
    """Reports given as dicts, as paths of report files, or as directories (every patch-report.json under them,
    except the one this task writes)."""
    found = []
    own = os.path.realpath(os.path.join(dest, 'patch-report.json'))
    for item in items:
        if isinstance(item, dict):
            found.append(item)
            continue
        path = os.path.expanduser(str(item))
        if os.path.isdir(path):
            paths = sorted(os.path.join(root, name) for root, _dirs, names in os.walk(path)
                           for name in names if name == 'patch-report.json')
            paths = [p for p in paths if os.path.realpath(p) != own]
            if not paths:
                raise AnsibleActionFail('No patch-report.json under %s.' % path)
            found.extend(_read(p) for p in paths)
        else:
            found.append(_read(path))
    return found


def _read(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError) as exc:
        raise AnsibleActionFail('Cannot read the report %s: %s.' % (path, exc.strerror or exc))
    except ValueError as exc:
        raise AnsibleActionFail('The report %s is not JSON: %s.' % (path, exc))


def _write(path, text):
    handle, tmp = tempfile.mkstemp(prefix='.patch-report-', dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, 'w') as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC,
                                                        required_one_of=[('results', 'hosts', 'reports')],
                                                        mutually_exclusive=[('results', 'hosts', 'reports')])
        try:
            if args['hosts'] is not None:
                report = fleet_report(_host_results(args['hosts'], task_vars or {}), args['run'])
            elif args['results'] is not None:
                report = fleet_report(args['results'], args['run'])
            else:
                report = merge_reports(_expand(args['reports'], args['dest']))
        except AnsibleFilterError as exc:
            raise AnsibleActionFail(str(exc))
        dest = args['dest']
        try:
            if not os.path.isdir(dest):
                os.makedirs(dest, 0o755)
            files = []
            for fmt in args['formats']:
                path = os.path.join(dest, 'patch-report.%s' % fmt)
                if fmt == 'json':
                    text = json.dumps(report, indent=4, sort_keys=True)
                elif fmt == 'md':
                    text = fleet_report_markdown(report)
                else:
                    text = fleet_report_html(report)
                _write(path, text)
                files.append(path)
        except (IOError, OSError) as exc:
            raise AnsibleActionFail('Cannot write the report into %s: %s.' % (dest, exc.strerror or exc))
        result.update(changed=False, report=report, files=files)
        return result
