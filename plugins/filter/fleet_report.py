# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report filters: ``fleet_report`` builds the JSON document of a patch_containers run,
``fleet_report_markdown`` and ``fleet_report_html`` render it. Each concern lives in its own file under
``plugins/plugin_utils/``: ``fleet_report_data.py`` (the document, from an allow-list), ``fleet_report_markdown.py``
and ``fleet_report_html.py`` (the views).

Documentation for ansible-doc lives beside this file, one ``<filter>.yml`` per filter.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


# Ansible loads every filter file of a collection in each worker process that templates any one of its filters (a
# set_fact of the role's, every host, every task), so this file loads the report's code only when a report filter
# is called.
def fleet_report(results, run=None):
    from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_data import fleet_report as build
    return build(results, run)


def fleet_report_markdown(report):
    from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_markdown import fleet_report_markdown as render
    return render(report)


def fleet_report_html(report):
    from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_html import fleet_report_html as render
    return render(report)


class FilterModule(object):
    """The fleet report of a patch_containers run."""

    def filters(self):
        return {
            'fleet_report': fleet_report,
            'fleet_report_markdown': fleet_report_markdown,
            'fleet_report_html': fleet_report_html,
        }
