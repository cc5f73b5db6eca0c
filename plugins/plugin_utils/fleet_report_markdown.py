# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report as Markdown (the ``fleet_report_markdown`` filter): the fleet summary, the hosts not
patched and why, a table per host.

This module turns the report into a view model of already formatted values; ``templates/fleet_report.md.j2``
lays it out."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import os
import re
from collections import namedtuple

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_data import (
    ACTION_LABELS,
    ACTIONS,
    _age_text,
    _checked_report,
    engine_text,
    HOST_COUNTS,
    _not_patched,
    REBUILD_LABELS,
    _recovery_parts,
    _run_line,
    security_rows,
    _update_text,
    version_text,
    _why_not_patched,
)

_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'templates')

FLEET_COUNTS_MD = ('containers', 'updated', 'would_update', 'rolled_back', 'failed', 'stale', 'exposed_stale',
                   'stale_remaining')
_MD_SPECIAL = re.compile(r'([\\`*_\[\]<>|&~])')

_NotPatched = namedtuple('_NotPatched', 'name status why')
_Host = namedtuple('_Host', 'name status engine why counts containers rebuilds')
# a row of a host's table; the template unpacks it in this order
_Container = namedtuple('_Container', 'name image age stale update action message')
_Rebuild = namedtuple('_Rebuild', 'name action reason')


def _md(value):
    """Text for a Markdown table cell: one line, every character Markdown or HTML would act on escaped."""
    text = ' '.join(('' if value is None else str(value)).split())
    # most cells hold no such character: searching is much cheaper than substituting nothing
    return _MD_SPECIAL.sub(r'\\\1', text) if _MD_SPECIAL.search(text) else text


@functools.lru_cache(maxsize=None)
def _template():
    """The Markdown template, loaded once per process."""
    env = Environment(loader=FileSystemLoader(_TEMPLATES), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, auto_reload=False)
    env.filters['md'] = _md
    return env.get_template('fleet_report.md.j2')


def _host_counts(summary):
    parts = ['%d containers' % summary.get('containers', 0)]
    for key in ACTIONS + ('stale', 'exposed_stale'):
        if summary.get(key):
            parts.append('%d %s' % (summary[key], key.replace('_', ' ')))
    if summary.get('oldest_image_age_days') is not None:
        parts.append('oldest image %.1f days' % summary['oldest_image_age_days'])
    parts.extend(_recovery_parts(summary))
    return ', '.join(parts)


def _container(c):
    version = version_text(c)
    return _Container(
        c.get('name'),
        '%s (%s)' % (c['image'], version) if c.get('image') and version else c.get('image'),
        _age_text(c.get('image_age_days')),
        ('**yes, exposed**' if c.get('exposed') else 'yes') if c.get('stale') else 'no',
        _update_text(c.get('update_available')),
        ACTION_LABELS.get(c.get('action'), c.get('action') or '-'),
        c.get('message') or c.get('reason'))


def _host(host, check_mode):
    containers = host.get('containers') or []
    return _Host(
        name=host.get('name'),
        status=host.get('status'),
        engine=engine_text(host.get('engine')),
        why=_why_not_patched(host, check_mode),
        counts=_host_counts(host.get('summary') or {}) if containers else '',
        containers=[_container(c) for c in containers],
        rebuilds=[_Rebuild(r.get('name'), REBUILD_LABELS.get(r.get('action'), r.get('action') or '-'), r.get('reason'))
                  for r in host.get('rebuilds') or []])


def fleet_report_markdown(report):
    """The report as Markdown: the fleet summary, the hosts not patched and why, a table per host."""
    report = _checked_report(report, 'fleet_report_markdown')
    check_mode = bool((report.get('run') or {}).get('check_mode'))
    summary = report.get('summary') or {}
    hosts = report.get('hosts') or []
    return _template().render(
        run_line=' \u00b7 '.join(_run_line(report)),
        check_mode=check_mode,
        host_counts=[str(summary.get(k, 0)) for k in HOST_COUNTS],
        container_counts=[str(summary.get(k, 0)) for k in FLEET_COUNTS_MD]
        + [_age_text(summary.get('oldest_image_age_days')) or '-'],
        registry_lookups=summary.get('registry_lookups') or 0,
        not_patched=[_NotPatched(h.get('name'), h.get('status'), _why_not_patched(h, check_mode))
                     for h in _not_patched(hosts)],
        security=security_rows(report),
        hosts=[_host(host, check_mode) for host in hosts])
