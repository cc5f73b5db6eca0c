# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report as one self-contained HTML page (the ``fleet_report_html`` filter): summary cards, the
hosts not patched, the image-age chart (SVG) and a table per host."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import html
import math

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
    version_text,
    _why_not_patched,
)


# --- HTML --------------------------------------------------------------------------------------

def _h(value):
    return html.escape('' if value is None else str(value), quote=True)


_CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9dee4; --bg:#f5f7fa; --card:#fff;
  --ok:#2b8a3e; --info:#1c6fd1; --warn:#c77700; --bad:#c92a2a; --stale-bg:#fff4e6; --exposed-bg:#ffe3e3; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width:1200px; margin:0 auto; padding:24px 28px 48px; }
header h1 { margin:0 0 4px; font-size:26px; }
.meta { color:var(--muted); margin:0; }
.banner { margin:16px 0 0; padding:10px 14px; border-radius:6px; background:#e7f0fd; border:1px solid #a5c8f5; }
h2 { font-size:19px; margin:30px 0 10px; }
.group { display:flex; align-items:stretch; gap:10px; margin:0 0 10px; }
.group .glabel { flex:0 0 92px; align-self:center; color:var(--muted); font-weight:600; font-size:13px; }
.cards { flex:1; display:grid; grid-template-columns:repeat(auto-fit, minmax(118px, 1fr)); gap:10px; }
.card { background:var(--card); border:1px solid var(--line); border-top:4px solid var(--line); border-radius:6px;
  padding:8px 12px; }
.card .n { font-size:24px; font-weight:700; display:block; line-height:1.25; }
.card .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.03em; }
.card.ok { border-top-color:var(--ok); } .card.info { border-top-color:var(--info); }
.card.warn { border-top-color:var(--warn); } .card.bad { border-top-color:var(--bad); }
.card.zero .n { color:var(--muted); font-weight:400; }
table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef1f5; font-size:12px; text-transform:uppercase; letter-spacing:.03em; color:var(--muted); }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.msg { color:#3e4c59; overflow-wrap:anywhere; }
.ver { color:#52606d; font-size:11.5px; }
td.img { overflow-wrap:anywhere; font-family:"DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:12.5px; }
table.containers { table-layout:fixed; }
table.containers col.c-name { width:17%; } table.containers col.c-img { width:27%; }
table.containers col.c-age { width:7%; } table.containers col.c-stale { width:6%; }
table.containers col.c-upd { width:9%; } table.containers col.c-act { width:10%; }
td.name { overflow-wrap:anywhere; font-weight:600; }
.legend { color:var(--muted); margin:-4px 0 6px; font-size:12.5px; }
.swatch { display:inline-block; width:11px; height:11px; border-radius:2px; vertical-align:-1px; margin:0 4px 0 10px; }
.sw-stale { background:var(--stale-bg); border:1px solid var(--warn); }
.sw-exposed { background:var(--exposed-bg); border:1px solid var(--bad); }
tr.stale td { background:var(--stale-bg); }
tr.exposed td { background:var(--exposed-bg); }
tr.stale td:first-child { box-shadow:inset 4px 0 0 var(--warn); }
tr.exposed td:first-child { box-shadow:inset 4px 0 0 var(--bad); }
.tag { display:inline-block; padding:1px 7px; border-radius:10px; font-size:12px; font-weight:600;
  white-space:nowrap; background:#e4e7eb; color:#3e4c59; }
.tag.exposed { background:var(--bad); color:#fff; margin-left:6px; }
.a-updated, .a-rebuilt { background:#d3f9d8; color:#1b5e20; }
.a-would_update, .a-would_rebuild { background:#d0e4fb; color:#0b4a8b; }
.a-rolled_back { background:#ffe0b2; color:#8a4b00; } .a-failed { background:var(--bad); color:#fff; }
.a-deferred { background:#fff3bf; color:#6b5200; }
.a-excluded, .a-skipped, .a-unchanged { background:#e4e7eb; color:#52606d; }
table.rebuilds { margin-top:10px; }
.s-patched { background:var(--ok); color:#fff; } .s-checked { background:var(--info); color:#fff; }
.s-failed { background:var(--bad); color:#fff; } .s-unreachable { background:#52606d; color:#fff; }
.s-skipped { background:#9aa5b1; color:#fff; }
.upd-yes { color:var(--info); font-weight:600; } .upd-unknown { color:var(--warn); }
.host { margin-top:26px; }
.host h3 { font-size:17px; margin:0 0 4px; display:flex; align-items:center; gap:10px; }
.host .counts { color:var(--muted); margin:0 0 8px; }
.host .error { margin:0 0 8px; color:var(--bad); }
.host .why { margin:0 0 8px; color:var(--info); }
.chart { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:12px; }
.chart svg { display:block; width:100%; height:auto; }
.chart .note { color:var(--muted); margin:6px 0 0; font-size:12px; }
nav.hosts { margin:8px 0 0; color:var(--muted); }
nav.hosts a { color:var(--info); text-decoration:none; margin-right:12px; white-space:nowrap; }
footer { margin-top:36px; color:var(--muted); font-size:12px; }
@media print { body { background:#fff; } .card, table, .chart { break-inside:avoid; } }
"""

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


def _svg_legend(x, y):
    parts = []
    for label, kind in (('within its age limit', 'fresh'), ('stale', 'stale'), ('stale and exposed', 'exposed')):
        parts.append('<rect x="%d" y="%d" width="12" height="12" rx="2" fill="%s"/>' % (x, y, _CHART_COLORS[kind]))
        parts.append('<text x="%d" y="%d" class="lg">%s</text>' % (x + 17, y + 10, _h(label)))
        x += 30 + 7 * len(label)
    return parts


_SVG_STYLE = ('<style>text{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;fill:#3e4c59}'
              '.tk{font-size:11px}.lb{font-size:12px}.ax{font-size:12px;font-weight:600}.lg{font-size:12px}'
              '.gl{stroke:#e4e7eb}.axis{stroke:#9aa5b1}</style>')


def _age_bars_svg(rows):
    """One horizontal bar per container: (label, tooltip, age, kind), oldest first."""
    width, label_w, right, top, bar_h, gap = 1100, 300, 70, 34, 16, 6
    plot_w = width - label_w - right
    height = top + len(rows) * (bar_h + gap) + 50
    top_age = max(age for _l, _t, age, _k in rows) or 1.0
    step = _nice_step(top_age)
    axis_max = step * math.ceil(top_age / step)
    scale = plot_w / axis_max
    parts = ['<svg viewBox="0 0 %d %d" role="img" aria-label="Image age per container, in days">' % (width, height),
             _SVG_STYLE]
    parts += _svg_legend(label_w, 8)
    plot_bottom = top + len(rows) * (bar_h + gap)
    tick = 0.0
    while tick <= axis_max + 1e-9:
        x = label_w + tick * scale
        parts.append('<line class="gl" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (x, top - 4, x, plot_bottom))
        parts.append('<text class="tk" x="%.1f" y="%d" text-anchor="middle">%s</text>'
                     % (x, plot_bottom + 15, _fmt_tick(tick)))
        tick += step
    for index, (label, tooltip, age, kind) in enumerate(rows):
        y = top + index * (bar_h + gap)
        shown = label if len(label) <= 42 else label[:41] + u'\u2026'
        parts.append('<g><title>%s</title>' % _h(tooltip))
        parts.append('<text class="lb" x="%d" y="%d" text-anchor="end">%s</text>'
                     % (label_w - 8, y + bar_h - 4, _h(shown)))
        parts.append('<rect x="%d" y="%d" width="%.1f" height="%d" rx="2" fill="%s"/>'
                     % (label_w, y, max(age * scale, 1.5), bar_h, _CHART_COLORS[kind]))
        parts.append('<text class="tk" x="%.1f" y="%d">%.1f</text></g>' % (label_w + age * scale + 5, y + bar_h - 4, age))
    parts.append('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>' % (label_w, top - 4, label_w, plot_bottom))
    parts.append('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>'
                 % (label_w, plot_bottom, width - right, plot_bottom))
    parts.append('<text class="ax" x="%.1f" y="%d" text-anchor="middle">Image age (days)</text>'
                 % (label_w + plot_w / 2.0, plot_bottom + 36))
    parts.append('<text class="ax" x="14" y="%.1f" text-anchor="middle" transform="rotate(-90 14 %.1f)">'
                 'Container (host / name)</text>' % ((top + plot_bottom) / 2.0, (top + plot_bottom) / 2.0))
    parts.append('</svg>')
    return '\n'.join(parts)


def _age_histogram_svg(rows):
    """Containers per age bin, stacked by kind: for fleets too large for one bar per container."""
    width, left, right, top, plot_h = 1100, 70, 30, 34, 260
    plot_w = width - left - right
    top_age = max(age for _l, _t, age, _k in rows) or 1.0
    bin_w = _bin_width(top_age)
    bins = int(math.floor(top_age / bin_w)) + 1
    counts = [dict(fresh=0, stale=0, exposed=0) for _i in range(bins)]
    for _l, _t, age, kind in rows:
        counts[min(int(age // bin_w), bins - 1)][kind] += 1
    top_count = max(sum(c.values()) for c in counts) or 1
    y_step = max(1, int(_nice_step(top_count, 5)))
    y_max = y_step * int(math.ceil(top_count / float(y_step)))
    col_w = plot_w / float(bins)
    height = top + plot_h + 56
    bottom = top + plot_h
    parts = ['<svg viewBox="0 0 %d %d" role="img" aria-label="Containers per image age, in days">' % (width, height),
             _SVG_STYLE]
    parts += _svg_legend(left, 8)
    for value in range(0, y_max + 1, y_step):
        y = bottom - value * plot_h / float(y_max)
        parts.append('<line class="gl" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>' % (left, y, width - right, y))
        parts.append('<text class="tk" x="%d" y="%.1f" text-anchor="end">%d</text>' % (left - 6, y + 4, value))
    for index, bucket in enumerate(counts):
        x = left + index * col_w
        y = float(bottom)
        low, high = index * bin_w, (index + 1) * bin_w
        tooltip = '%s\u2013%s days: %d containers (%d stale, %d of them exposed)' % (
            _fmt_tick(low), _fmt_tick(high), sum(bucket.values()), bucket['stale'] + bucket['exposed'],
            bucket['exposed'])
        parts.append('<g><title>%s</title>' % _h(tooltip))
        for kind in ('fresh', 'stale', 'exposed'):
            if bucket[kind]:
                h = bucket[kind] * plot_h / float(y_max)
                y -= h
                parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                             % (x + 1, y, max(col_w - 2, 1), h, _CHART_COLORS[kind]))
        parts.append('</g>')
    step = max(1, int(math.ceil(bins / 12.0)))
    for index in range(0, bins + 1, step):
        x = left + index * col_w
        parts.append('<text class="tk" x="%.1f" y="%d" text-anchor="middle">%s</text>'
                     % (x, bottom + 15, _fmt_tick(index * bin_w)))
    parts.append('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>' % (left, top, left, bottom))
    parts.append('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>' % (left, bottom, width - right, bottom))
    parts.append('<text class="ax" x="%.1f" y="%d" text-anchor="middle">Image age (days, bins of %s)</text>'
                 % (left + plot_w / 2.0, bottom + 38, _fmt_tick(bin_w)))
    parts.append('<text class="ax" x="18" y="%.1f" text-anchor="middle" transform="rotate(-90 18 %.1f)">'
                 'Containers</text>' % (top + plot_h / 2.0, top + plot_h / 2.0))
    parts.append('</svg>')
    return '\n'.join(parts)


def _age_chart(hosts):
    rows, unknown = [], 0
    for host in hosts:
        for c in host.get('containers') or []:
            if c.get('image_age_days') is None:
                unknown += 1
                continue
            label = '%s / %s' % (host.get('name'), c.get('name'))
            tooltip = '%s: %s, %.1f days%s%s' % (label, c.get('image') or '?', c['image_age_days'],
                                                 ', stale' if c.get('stale') else '',
                                                 ', exposed' if c.get('exposed') else '')
            rows.append((label, tooltip, c['image_age_days'], _chart_kind(c)))
    if not rows:
        return '<p class="meta">No container with a known image age.</p>'
    rows.sort(key=lambda row: (-row[2], row[0]))
    svg = _age_bars_svg(rows) if len(rows) <= MAX_CHART_BARS else _age_histogram_svg(rows)
    note = ''
    if unknown:
        note = '<p class="note">%d container(s) without a known image age are not shown.</p>' % unknown
    return '<div class="chart">%s%s</div>' % (svg, note)


def _card(label, value, tone):
    classes = 'card %s' % tone if value else 'card zero'
    shown = '\u2014' if value is None else value
    return '<div class="%s"><span class="n">%s</span><span class="l">%s</span></div>' % (classes, _h(shown), _h(label))


def _host_counts_html(summary):
    parts = ['%d container%s' % (summary.get('containers', 0), '' if summary.get('containers') == 1 else 's')]
    for key in ACTIONS + ('stale', 'exposed_stale'):
        if summary.get(key):
            parts.append('%d %s' % (summary[key], ACTION_LABELS.get(key, key.replace('_', ' '))))
    if summary.get('oldest_image_age_days') is not None:
        parts.append('oldest image %.1f days' % summary['oldest_image_age_days'])
    parts.extend(_recovery_parts(summary))
    return ' \u00b7 '.join(parts)


def _container_row(c):
    classes = []
    if c.get('stale'):
        classes.append('stale')
        if c.get('exposed'):
            classes.append('exposed')
    name = _h(c.get('name'))
    if c.get('stale') and c.get('exposed'):
        name += '<span class="tag exposed" title="Reachable from outside and stale: patch first">EXPOSED</span>'
    elif c.get('exposed'):
        name += ' <span class="tag" title="Reachable from outside">exposed</span>'
    action = c.get('action')
    action_html = ('<span class="tag a-%s">%s</span>' % (_h(action), _h(ACTION_LABELS.get(action, action)))
                   if action else '\u2014')
    update = c.get('update_available')
    update_html = {True: '<span class="upd-yes">available</span>', False: 'none'}.get(
        update, '<span class="upd-unknown">unknown</span>')
    message = c.get('message') or c.get('reason')
    if c.get('downtime_seconds') is not None and action in ('updated', 'rolled_back'):
        message = '%s (down %.1f s)' % (message or '', c['downtime_seconds'])
    stale = ('yes' if c.get('stale') else 'no')
    # break long references after a slash or before a tag, not in the middle of a word
    image = _h(c.get('image')).replace('/', '/<wbr>').replace(':', '<wbr>:')
    version = version_text(c)
    if version:
        image += '<br><span class="ver" title="the images\' org.opencontainers.image.version">%s</span>' % _h(version)
    return ('<tr%s><td class="name">%s</td><td class="img">%s</td><td class="num">%s</td><td>%s</td><td>%s</td>'
            '<td>%s</td><td class="msg" title="%s">%s</td></tr>') % (
        ' class="%s"' % ' '.join(classes) if classes else '', name, image,
        _h(_age_text(c.get('image_age_days'))), stale, update_html, action_html, _h(c.get('reason')), _h(message))


def fleet_report_html(report):
    """The report as one self-contained HTML page: inline CSS, an inline SVG chart, no scripts, no network."""
    report = _checked_report(report, 'fleet_report_html')
    run = report.get('run') or {}
    check_mode = bool(run.get('check_mode'))
    s = report.get('summary') or {}
    hosts = report.get('hosts') or []
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<title>Container patch report %s</title>' % _h(report.get('generated')),
           '<style>%s</style>' % _CSS, '</head>', '<body>', '<main>',
           '<header><h1>Container patch report</h1><p class="meta">%s</p>' % _h(' \u00b7 '.join(_run_line(report)))]
    if hosts:
        out.append('<nav class="hosts">Hosts: %s</nav>' % ' '.join(
            '<a href="#host-%d">%s</a>' % (i, _h(h.get('name'))) for i, h in enumerate(hosts)))
    out.append('</header>')
    if check_mode:
        out.append('<p class="banner"><strong>Check mode:</strong> nothing was changed. '
                   '&ldquo;Would update&rdquo; is what a real run would do.</p>')

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
    out += ['<section><h2>Fleet summary</h2>',
            '<div class="group"><span class="glabel">Hosts</span><div class="cards">%s</div></div>'
            % ''.join(_card(*c) for c in host_cards),
            '<div class="group"><span class="glabel">Containers</span><div class="cards">%s</div></div>'
            % ''.join(_card(*c) for c in container_cards),
            '</section>']

    not_patched = _not_patched(hosts)
    out.append('<section><h2>Hosts not patched</h2>')
    if not_patched:
        out.append('<table class="not-patched"><thead><tr><th>Host</th><th>Status</th><th>Why</th></tr></thead><tbody>')
        for h in not_patched:
            out.append('<tr><td>%s</td><td><span class="tag s-%s">%s</span></td><td class="msg">%s</td></tr>' % (
                _h(h.get('name')), _h(h.get('status')), _h(h.get('status')), _h(_why_not_patched(h, check_mode))))
        out.append('</tbody></table>')
    else:
        out.append('<p class="meta">None: every host was patched.</p>')
    out.append('</section>')

    out += ['<section><h2>Image age</h2>', _age_chart(hosts), '</section>', '<section><h2>Hosts</h2>',
            '<p class="legend">Rows:<span class="swatch sw-stale"></span>'
            'stale<span class="swatch sw-exposed"></span>'
            'stale and exposed (listed first: patch these soonest)</p>']
    for index, host in enumerate(hosts):
        out.append('<div class="host" id="host-%d"><h3>%s <span class="tag s-%s">%s</span></h3>' % (
            index, _h(host.get('name')), _h(host.get('status')), _h(host.get('status'))))
        if host.get('engine'):
            out.append('<p class="engine">%s</p>' % _h(engine_text(host['engine'])))
        why = _why_not_patched(host, check_mode)
        if why:
            tone = 'error' if host.get('status') in ('failed', 'unreachable') else 'why'
            out.append('<p class="%s">%s</p>' % (tone, _h(why)))
        containers = host.get('containers') or []
        counts = _host_counts_html(host.get('summary') or {}) if containers else 'No containers reported.'
        out.append('<p class="counts">%s</p>' % _h(counts))
        if containers:
            out.append('<table class="containers"><colgroup><col class="c-name"><col class="c-img"><col class="c-age">'
                       '<col class="c-stale"><col class="c-upd"><col class="c-act"><col></colgroup>'
                       '<thead><tr><th>Container</th><th>Image</th><th class="num">Age (d)</th><th>Stale</th>'
                       '<th>Update</th><th>Action</th><th>Message</th></tr></thead><tbody>')
            out += [_container_row(c) for c in containers]
            out.append('</tbody></table>')
        rebuilds = host.get('rebuilds') or []
        if rebuilds:
            out.append('<table class="rebuilds"><thead><tr><th>Image built on this host</th><th>Action</th>'
                       '<th>Why</th></tr></thead><tbody>')
            out += ['<tr><td class="name">%s</td><td><span class="tag a-%s">%s</span></td><td class="msg">%s</td></tr>' % (
                _h(r.get('name')), _h(r.get('action')), _h(REBUILD_LABELS.get(r.get('action'), r.get('action') or '-')),
                _h(r.get('reason'))) for r in rebuilds]
            out.append('</tbody></table>')
        out.append('</div>')
    out += ['</section>', '<footer>patch-report schema_version %s \u00b7 generated by patchops.docker</footer>'
            % _h(report.get('schema_version')), '</main>', '</body>', '</html>', '']
    return '\n'.join(out)
