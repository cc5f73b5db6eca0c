# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report as Markdown (the ``fleet_report_markdown`` filter): the fleet summary, the hosts not
patched and why, a table per host."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

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
    _update_text,
    version_text,
    _why_not_patched,
)


# --- Markdown ----------------------------------------------------------------------------------

FLEET_COUNTS_MD = ('containers', 'updated', 'would_update', 'rolled_back', 'failed', 'stale', 'exposed_stale',
                   'stale_remaining')
_MD_SPECIAL = re.compile(r'([\\`*_\[\]<>|&~])')


def _md(value):
    """Text for a Markdown table cell: one line, every character Markdown or HTML would act on escaped."""
    text = '' if value is None else str(value)
    text = ' '.join(text.split())
    return _MD_SPECIAL.sub(r'\\\1', text)


def _md_row(cells):
    return '| ' + ' | '.join(cells) + ' |'


def fleet_report_markdown(report):
    """The report as Markdown: the fleet summary, the hosts not patched and why, a table per host."""
    report = _checked_report(report, 'fleet_report_markdown')
    run = report.get('run') or {}
    check_mode = bool(run.get('check_mode'))
    summary = report.get('summary') or {}
    hosts = report.get('hosts') or []
    lines = ['# Container patch report', '', _md(' \u00b7 '.join(_run_line(report))), '']
    if check_mode:
        lines += ['**Check mode:** nothing was changed; "would update" is what a real run would do.', '']

    lines += ['## Fleet summary', '',
              _md_row(['Hosts', 'Patched', 'Checked', 'Failed', 'Unreachable', 'Skipped']),
              _md_row(['---:'] * 6),
              _md_row([str(summary.get(k, 0)) for k in HOST_COUNTS]), '',
              _md_row(['Containers', 'Updated', 'Would update', 'Rolled back', 'Failed', 'Stale', 'Exposed & stale',
                       'Still stale', 'Oldest image (d)']),
              _md_row(['---:'] * 9),
              _md_row([str(summary.get(k, 0)) for k in FLEET_COUNTS_MD]
                      + [_age_text(summary.get('oldest_image_age_days')) or '-']), '']

    not_patched = _not_patched(hosts)
    lines += ['## Hosts not patched', '']
    if not_patched:
        lines += [_md_row(['Host', 'Status', 'Why']), _md_row(['---'] * 3)]
        lines += [_md_row([_md(h.get('name')), _md(h.get('status')), _md(_why_not_patched(h, check_mode))])
                  for h in not_patched]
    else:
        lines.append('None: every host was patched.')
    lines.append('')

    for host in hosts:
        lines += ['## %s \u2014 %s' % (_md(host.get('name')), _md(host.get('status'))), '']
        if host.get('engine'):
            lines += [_md(engine_text(host['engine'])) + '.', '']
        why = _why_not_patched(host, check_mode)
        if why:
            lines += ['%s' % _md(why), '']
        containers = host.get('containers') or []
        if not containers:
            lines += ['No containers reported.', ''] + _md_rebuilds(host.get('rebuilds') or [])
            continue
        lines.append(_md_host_counts(host.get('summary') or {}))
        lines += ['', _md_row(['Container', 'Image', 'Age (d)', 'Stale', 'Update', 'Action', 'Message']),
                  _md_row(['---', '---', '---:', '---', '---', '---', '---'])]
        for c in containers:
            version = version_text(c)
            stale = ('**yes, exposed**' if c.get('exposed') else 'yes') if c.get('stale') else 'no'
            lines.append(_md_row([
                _md(c.get('name')),
                _md('%s (%s)' % (c['image'], version) if c.get('image') and version else c.get('image')),
                _age_text(c.get('image_age_days')), stale,
                _update_text(c.get('update_available')),
                _md(ACTION_LABELS.get(c.get('action'), c.get('action') or '-')),
                _md(c.get('message') or c.get('reason')),
            ]))
        lines.append('')
        lines += _md_rebuilds(host.get('rebuilds') or [])
    return '\n'.join(lines)


def _md_rebuilds(rebuilds):
    """The table of the host's own images (patch_containers_builds), before its containers; none when empty."""
    if not rebuilds:
        return []
    lines = ['Images built on this host:', '', _md_row(['Image', 'Action', 'Why']), _md_row(['---'] * 3)]
    lines += [_md_row([_md(r.get('name')), _md(REBUILD_LABELS.get(r.get('action'), r.get('action') or '-')),
                       _md(r.get('reason'))]) for r in rebuilds]
    return lines + ['']


def _md_host_counts(summary):
    parts = ['%d containers' % summary.get('containers', 0)]
    for key in ACTIONS + ('stale', 'exposed_stale'):
        if summary.get(key):
            parts.append('%d %s' % (summary[key], key.replace('_', ' ')))
    if summary.get('oldest_image_age_days') is not None:
        parts.append('oldest image %.1f days' % summary['oldest_image_age_days'])
    parts.extend(_recovery_parts(summary))
    return _md(', '.join(parts)) + '.'
