# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report as one self-contained HTML page (the ``fleet_report_html`` filter): summary cards, the
hosts not patched, the image-age chart (SVG) and a table per host.

This module turns the report into a view model of already formatted values (texts, CSS classes, the chart's
geometry); ``templates/fleet_report.html.j2`` (with ``fleet_report.css``) lays it out."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import html
import math
import os
import re
from collections import namedtuple
from types import SimpleNamespace

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_data import (
    ACTION_LABELS,
    ACTIONS,
    _age_text,
    _checked_report,
    engine_text,
    MAX_CHART_BARS,
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

_Group = namedtuple('_Group', 'label cards')
_Card = namedtuple('_Card', 'classes value label')
_NotPatched = namedtuple('_NotPatched', 'name status why')
_Host = namedtuple('_Host', 'anchor name status engine why why_class counts containers rebuilds open')
# Hosts beyond this many are shown collapsed (failed and unreachable ones stay open), so that a report of a
# thousand hosts opens as a list of host lines, failures first.
EXPANDED_HOSTS = 20
# The order of the host sections: what needs a look first.
STATUS_ORDER = {'failed': 0, 'unreachable': 1, 'skipped': 2, 'checked': 3, 'patched': 4}
# a row of a host's table; the template unpacks it in this order. update: 'available', 'none' or 'unknown'
_Container = namedtuple('_Container', 'name image version age stale exposed update action action_label reason message')
_Rebuild = namedtuple('_Rebuild', 'name action label reason')
_Legend = namedtuple('_Legend', 'x text_x fill label')
_Tick = namedtuple('_Tick', 'x label')
_Bar = namedtuple('_Bar', 'tooltip label y text_y width fill value_x age')
_GridLine = namedtuple('_GridLine', 'y label_y value')
_Bucket = namedtuple('_Bucket', 'tooltip rects')
_Rect = namedtuple('_Rect', 'x y width height fill')


# --- escaping and the template -------------------------------------------------------------------

class _Html(str):
    """Markup this module made (what the ``wbr`` filter returns): the one kind of value printed unescaped."""
    __slots__ = ()


_HTML_SPECIAL = re.compile('[&<>"\']').search


def _h(value):
    return html.escape('' if value is None else str(value), quote=True)


def _escape(value):
    """Jinja's finalize, applied to every ``{{ value }}``: escaped as html.escape does, None as ''.

    This is the page's autoescaping. Jinja's own (autoescape=True, through markupsafe) would write quotes as
    &#34; and &#39; where html.escape writes &quot; and &#x27;, and would double the page's render time."""
    if value.__class__ is str:
        # most values hold none of the characters html.escape replaces: it is skipped for them
        return html.escape(value, quote=True) if _HTML_SPECIAL(value) else value
    return value if value.__class__ is _Html else _h(value)


def _wbr(value):
    """An image reference, escaped, that may break after a slash or before a tag, not in the middle of a word."""
    return _Html(_h(value).replace('/', '/<wbr>').replace(':', '<wbr>:'))


@functools.lru_cache(maxsize=None)
def _template():
    """The page template, loaded once per process."""
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=False, finalize=_escape,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                      auto_reload=False)
    env.filters['wbr'] = _wbr
    return env.get_template('fleet_report.html.j2')


# --- the image-age chart -------------------------------------------------------------------------

_CHART_COLORS = {'fresh': '#4c8bd6', 'stale': '#f08c00', 'exposed': '#c92a2a'}


def _nice_step(span, ticks=6):
    """A round tick step (1, 2 or 5 times a power of ten) giving about `ticks` intervals over `span`."""
    if span <= 0:
        return 1
    raw = span / float(ticks)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _bin_width(top_age, max_bins=24):
    """Days per histogram bin: the smallest of a day, a week, a month, ... that needs at most `max_bins` bins."""
    for width in (1, 2, 7, 14, 30, 60, 90, 180, 365):
        if top_age / width < max_bins:
            return width
    return _nice_step(top_age, max_bins)


def _fmt_tick(value):
    return ('%d' % value) if float(value).is_integer() else ('%g' % value)


def _chart_kind(container):
    if container['stale'] and container['exposed']:
        return 'exposed'
    return 'stale' if container['stale'] else 'fresh'


def _legend(x):
    items = []
    for label, kind in (('within its age limit', 'fresh'), ('stale', 'stale'), ('stale and exposed', 'exposed')):
        items.append(_Legend(x, x + 17, _CHART_COLORS[kind], label))
        x += 30 + 7 * len(label)
    return items


def _age_bars(rows):
    """One horizontal bar per container: (label, tooltip, age, kind), oldest first."""
    width, label_w, right, top, bar_h, gap = 1100, 300, 70, 34, 16, 6
    plot_w = width - label_w - right
    plot_bottom = top + len(rows) * (bar_h + gap)
    top_age = max(age for _l, _t, age, _k in rows) or 1.0
    step = _nice_step(top_age)
    axis_max = step * math.ceil(top_age / step)
    scale = plot_w / axis_max
    ticks, tick = [], 0.0
    while tick <= axis_max + 1e-9:
        ticks.append(_Tick('%.1f' % (label_w + tick * scale), _fmt_tick(tick)))
        tick += step
    bars = []
    for index, (label, tooltip, age, kind) in enumerate(rows):
        y = top + index * (bar_h + gap)
        shown = label if len(label) <= 42 else label[:41] + u'\u2026'
        bars.append(_Bar(tooltip, shown, y, y + bar_h - 4, '%.1f' % max(age * scale, 1.5), _CHART_COLORS[kind],
                         '%.1f' % (label_w + age * scale + 5), '%.1f' % age))
    return SimpleNamespace(
        kind='bars', width=width, height=plot_bottom + 50, aria_label='Image age per container, in days',
        legend=_legend(label_w), left=label_w, right=width - right, top=top - 4, bottom=plot_bottom,
        ticks=ticks, tick_y=plot_bottom + 15, bars=bars, bar_h=bar_h, label_x=label_w - 8,
        x_title='Image age (days)', x_title_x='%.1f' % (label_w + plot_w / 2.0), x_title_y=plot_bottom + 36,
        y_title='Container (host / name)', y_title_x=14, y_title_y='%.1f' % ((top + plot_bottom) / 2.0))


def _age_histogram(ages):
    """Containers per age bin, stacked by kind, from (age, kind) pairs: for fleets too large for one bar each."""
    width, left, right, top, plot_h = 1100, 70, 30, 34, 260
    plot_w = width - left - right
    top_age = max(age for age, _k in ages) or 1.0
    bin_w = _bin_width(top_age)
    bins = int(math.floor(top_age / bin_w)) + 1
    counts = [dict(fresh=0, stale=0, exposed=0) for _i in range(bins)]
    for age, kind in ages:
        counts[min(int(age // bin_w), bins - 1)][kind] += 1
    top_count = max(sum(c.values()) for c in counts) or 1
    y_step = max(1, int(_nice_step(top_count, 5)))
    y_max = y_step * int(math.ceil(top_count / float(y_step)))
    col_w = plot_w / float(bins)
    bottom = top + plot_h
    grid = []
    for value in range(0, y_max + 1, y_step):
        y = bottom - value * plot_h / float(y_max)
        grid.append(_GridLine('%.1f' % y, '%.1f' % (y + 4), value))
    buckets = []
    for index, bucket in enumerate(counts):
        x = left + index * col_w
        y = float(bottom)
        rects = []
        for kind in ('fresh', 'stale', 'exposed'):
            if bucket[kind]:
                h = bucket[kind] * plot_h / float(y_max)
                y -= h
                rects.append(_Rect('%.1f' % (x + 1), '%.1f' % y, '%.1f' % max(col_w - 2, 1), '%.1f' % h,
                                   _CHART_COLORS[kind]))
        tooltip = '%s\u2013%s days: %d containers (%d stale, %d of them exposed)' % (
            _fmt_tick(index * bin_w), _fmt_tick((index + 1) * bin_w), sum(bucket.values()),
            bucket['stale'] + bucket['exposed'], bucket['exposed'])
        buckets.append(_Bucket(tooltip, rects))
    step = max(1, int(math.ceil(bins / 12.0)))
    ticks = [_Tick('%.1f' % (left + index * col_w), _fmt_tick(index * bin_w)) for index in range(0, bins + 1, step)]
    return SimpleNamespace(
        kind='histogram', width=width, height=top + plot_h + 56, aria_label='Containers per image age, in days',
        legend=_legend(left), left=left, right=width - right, top=top, bottom=bottom,
        grid=grid, grid_label_x=left - 6, buckets=buckets, ticks=ticks, tick_y=bottom + 15,
        x_title='Image age (days, bins of %s)' % _fmt_tick(bin_w), x_title_x='%.1f' % (left + plot_w / 2.0),
        x_title_y=bottom + 38, y_title='Containers', y_title_x=18, y_title_y='%.1f' % (top + plot_h / 2.0))


def _age_chart(hosts):
    """The chart of every container with a known image age, or None when there is none."""
    ages, unknown = [], 0
    for host in hosts:
        for c in host.get('containers') or []:
            if c.get('image_age_days') is None:
                unknown += 1
            else:
                ages.append((host, c))
    if not ages:
        return None
    if len(ages) > MAX_CHART_BARS:
        # the histogram needs neither labels nor order
        chart = _age_histogram([(c['image_age_days'], _chart_kind(c)) for _host, c in ages])
    else:
        rows = []
        for host, c in ages:
            label = '%s / %s' % (host.get('name'), c.get('name'))
            tooltip = '%s: %s, %.1f days%s%s' % (label, c.get('image') or '?', c['image_age_days'],
                                                 ', stale' if c.get('stale') else '',
                                                 ', exposed' if c.get('exposed') else '')
            rows.append((label, tooltip, c['image_age_days'], _chart_kind(c)))
        rows.sort(key=lambda row: (-row[2], row[0]))
        chart = _age_bars(rows)
    chart.unknown = unknown
    return chart


# --- cards and tables ----------------------------------------------------------------------------

def _card(label, value, tone):
    return _Card('card %s' % tone if value else 'card zero', '\u2014' if value is None else value, label)


def _host_counts(summary):
    parts = ['%d container%s' % (summary.get('containers', 0), '' if summary.get('containers') == 1 else 's')]
    for key in ACTIONS + ('stale', 'exposed_stale'):
        if summary.get(key):
            parts.append('%d %s' % (summary[key], ACTION_LABELS.get(key, key.replace('_', ' '))))
    if summary.get('oldest_image_age_days') is not None:
        parts.append('oldest image %.1f days' % summary['oldest_image_age_days'])
    parts.extend(_recovery_parts(summary))
    return ' \u00b7 '.join(parts)


def _container(c):
    action = c.get('action')
    message = c.get('message') or c.get('reason')
    if c.get('downtime_seconds') is not None and action in ('updated', 'rolled_back'):
        message = '%s (down %.1f s)' % (message or '', c['downtime_seconds'])
    return _Container(c.get('name'), c.get('image'), version_text(c), _age_text(c.get('image_age_days')),
                      bool(c.get('stale')), bool(c.get('exposed')), _update_text(c.get('update_available')),
                      action, ACTION_LABELS.get(action, action) if action else '', c.get('reason'), message)


def _host(index, host, check_mode, many):
    containers = host.get('containers') or []
    return _Host(
        open=not many or host.get('status') in ('failed', 'unreachable'),
        anchor='host-%d' % index,
        name=host.get('name'),
        status=host.get('status'),
        engine=engine_text(host.get('engine')),
        why=_why_not_patched(host, check_mode),
        why_class='error' if host.get('status') in ('failed', 'unreachable') else 'why',
        counts=_host_counts(host.get('summary') or {}) if containers else 'No containers reported.',
        containers=[_container(c) for c in containers],
        rebuilds=[_Rebuild(r.get('name'), r.get('action'), REBUILD_LABELS.get(r.get('action'), r.get('action') or '-'),
                           r.get('reason')) for r in host.get('rebuilds') or []])


def fleet_report_html(report):
    """The report as one self-contained HTML page: inline CSS, an inline SVG chart, no scripts, no network."""
    report = _checked_report(report, 'fleet_report_html')
    run = report.get('run') or {}
    check_mode = bool(run.get('check_mode'))
    s = report.get('summary') or {}
    hosts = report.get('hosts') or []

    host_cards = [('Hosts', s.get('hosts'), 'info'), ('Patched', s.get('hosts_patched'), 'ok'),
                  ('Checked only', s.get('hosts_checked'), 'info'), ('Failed', s.get('hosts_failed'), 'bad'),
                  ('Unreachable', s.get('hosts_unreachable'), 'bad'), ('Skipped', s.get('hosts_skipped'), 'warn')]
    container_cards = [('Containers', s.get('containers'), 'info')]
    if not check_mode or s.get('updated'):
        container_cards.append(('Updated', s.get('updated'), 'ok'))
    if check_mode or s.get('would_update'):
        container_cards.append(('Would update', s.get('would_update'), 'info'))
    container_cards += [
        ('Rolled back', s.get('rolled_back'), 'warn'), ('Failed', s.get('failed'), 'bad'),
        ('Stale', s.get('stale'), 'warn'), ('Exposed & stale', s.get('exposed_stale'), 'bad'),
        ('Still stale', s.get('stale_remaining'), 'warn'),
        ('Oldest image (d)', None if s.get('oldest_image_age_days') is None
         else '%.1f' % s['oldest_image_age_days'], 'warn')]

    return _template().render(
        generated=report.get('generated'),
        run_line=' \u00b7 '.join(_run_line(report)),
        check_mode=check_mode,
        card_groups=[_Group('Hosts', [_card(*c) for c in host_cards]),
                     _Group('Containers', [_card(*c) for c in container_cards]),
                     _Group('Registry', [_card('Look-ups', s.get('registry_lookups') or 0, 'info')])],
        not_patched=[_NotPatched(h.get('name'), h.get('status'), _why_not_patched(h, check_mode))
                     for h in _not_patched(hosts)],
        chart=_age_chart(hosts),
        security=security_rows(report),
        hosts=[_host(index, host, check_mode, len(hosts) > EXPANDED_HOSTS) for index, host in
               sorted(enumerate(hosts), key=lambda item: STATUS_ORDER.get(item[1].get('status'), 5))],
        statuses=[status for status in sorted(STATUS_ORDER, key=STATUS_ORDER.get)
                  if any(h.get('status') == status for h in hosts)],
        schema_version=report.get('schema_version'))
