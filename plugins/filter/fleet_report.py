# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report of a patch_containers run: the JSON document and its Markdown and HTML views.

``fleet_report`` turns the ``patch_containers_result`` fact of every host into
the document written as ``patch-report.json``; ``fleet_report_markdown`` and
``fleet_report_html`` render that document. The report is built from an
allow-list: only the fields named in ``docs/report-schema.md`` are copied from
the module results, each as a plain scalar, so labels, environment variables,
hook output and anything else a result carries never reach a report file.

Documentation for ansible-doc lives beside this file, one ``<filter>.yml`` per filter.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import html
import math
import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

SCHEMA_VERSION = 1

HOST_STATUSES = ('patched', 'checked', 'failed', 'unreachable', 'skipped')

# Every value `action` can take in the report: container_update's actions, `would_update` for
# `updated` in check mode, `excluded` for containers the role did not select. `None` when no
# update was attempted (a report-only run, or the host failed before the update step).
ACTIONS = ('updated', 'would_update', 'unchanged', 'deferred', 'rolled_back', 'failed', 'skipped', 'excluded')

# What image_rebuild did with an image of patch_containers_builds; `would_rebuild` is `rebuilt` in check mode.
REBUILD_ACTIONS = ('rebuilt', 'would_rebuild', 'unchanged', 'failed')

# The keys of a host's summary; the fleet summary has the same keys summed over all hosts, plus the host counts.
CONTAINER_COUNTS = ('containers', 'updates_available', 'unknown', 'stale', 'exposed_stale', 'stale_remaining') + ACTIONS
REBUILD_COUNTS = ('images_rebuilt', 'images_would_rebuild', 'images_rebuild_failed')
HOST_COUNTS = ('hosts', 'hosts_patched', 'hosts_checked', 'hosts_failed', 'hosts_unreachable', 'hosts_skipped')

ACTION_LABELS = {
    'updated': 'updated', 'would_update': 'would update', 'unchanged': 'unchanged', 'deferred': 'deferred',
    'rolled_back': 'rolled back', 'failed': 'failed', 'skipped': 'skipped', 'excluded': 'excluded',
}

# Free text is capped so that one runaway error message cannot swamp the report.
MAX_TEXT = 1000
# Up to this many containers the chart draws one bar per container; above it, a histogram.
MAX_CHART_BARS = 40

# user:password@ in a URL inside an error message (a registry URL, a DOCKER_HOST): keep the host, drop the secret.
_URL_CREDENTIALS = re.compile(r'(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]+:[^\s/@]*@')
# Keys of the `run` argument that are never copied, whatever their value.
_SECRET_KEY = re.compile(r'(?i)pass|secret|token|key|cred|auth')


# --- plain values ------------------------------------------------------------------------------

def _text(value):
    """A string field of the report: strings only (never str() of a dict), URL credentials removed, capped."""
    if not isinstance(value, str):
        return None
    value = _URL_CREDENTIALS.sub(r'\1***@', str(value))
    if len(value) > MAX_TEXT:
        value = value[:MAX_TEXT - 1] + u'\u2026'
    return value


def _number(value, digits=1):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return round(float(value), digits)


def _flag(value):
    """True / False / None (unknown) for a tri-state field."""
    return value if isinstance(value, bool) else None


def _truthy(value):
    """A boolean fact, also when templating left it as the string 'True'."""
    if isinstance(value, str):
        return value.strip().lower() in ('true', 'yes', '1')
    return value is True


def _natural_key(name):
    """Sort web2 before web10; ties fall back to the plain string."""
    parts = re.split(r'(\d+)', name)
    return ([(0, int(part), '') if part.isdigit() else (1, 0, part.lower()) for part in parts if part], name)


def _mapping(value):
    return value if isinstance(value, Mapping) else {}


def _list(value):
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, (list, tuple)) else []


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# --- the report --------------------------------------------------------------------------------

def _container_entry(name, checked, updated, excluded_why, check_mode, update_ran):
    """One container of the report, from its image_age_info entry and its container_update entry.

    UPDATE_RAN: the host's update step ran (or had nothing to select); a container it was not given
    because nothing newer was known for it is then ``unchanged``, its ``reason`` says why.
    """
    stale = checked.get('stale') is True
    exposed = checked.get('exposed') is True
    action = message = None
    if updated:
        action = _text(updated.get('action'))
        if action == 'updated' and check_mode:
            action = 'would_update'
        message = _text(updated.get('message'))
    elif excluded_why is not None:
        action, message = 'excluded', excluded_why
    elif checked.get('excluded') is True:
        action, message = 'excluded', 'Labelled patchops.docker.enable=false.'
    elif update_ran and checked:
        action = 'unchanged'
    return {
        'name': name,
        'image': _text(checked.get('image')) or _text(updated.get('image')),
        'image_age_days': _number(checked.get('image_age_days')),
        'stale': stale,
        'exposed': exposed,
        'update_available': _flag(checked.get('update_available')),
        'reason': _text(checked.get('reason')),
        'action': action,
        'message': message,
        'downtime_seconds': _number(updated.get('downtime_seconds'), 2),
        'old_image_id': _text(updated.get('old_image_id')) or _text(checked.get('image_id')),
        'new_image_id': _text(updated.get('new_image_id')),
    }


def _container_order(container):
    """Exposed stale containers first, then the other stale ones, then the rest; by name within each."""
    if container['stale'] and container['exposed']:
        rank = 0
    elif container['stale']:
        rank = 1
    else:
        rank = 2
    return (rank, _natural_key(container['name']))


def _rebuild_entry(built, check_mode):
    """One image of patch_containers_builds, from its image_rebuild entry."""
    action = _text(built.get('action'))
    if action == 'rebuilt' and check_mode:
        action = 'would_rebuild'
    return {
        'name': _text(built.get('name')),
        'action': action if action in REBUILD_ACTIONS else None,
        'reason': _text(built.get('reason')),
        'old_image_id': _text(built.get('old_image_id')),
        'new_image_id': _text(built.get('new_image_id')),
    }


def _count_rebuilds(rebuilds):
    return {
        'images_rebuilt': sum(1 for r in rebuilds if r['action'] == 'rebuilt'),
        'images_would_rebuild': sum(1 for r in rebuilds if r['action'] == 'would_rebuild'),
        'images_rebuild_failed': sum(1 for r in rebuilds if r['action'] == 'failed'),
    }


def _count_containers(containers, recovered=0, interrupted=0):
    counts = dict((key, 0) for key in CONTAINER_COUNTS)
    counts['containers'] = len(containers)
    for container in containers:
        if container['update_available'] is True:
            counts['updates_available'] += 1
        elif container['update_available'] is None:
            counts['unknown'] += 1
        if container['stale']:
            counts['stale'] += 1
            if container['exposed']:
                counts['exposed_stale'] += 1
            if container['action'] not in ('updated', 'would_update'):
                counts['stale_remaining'] += 1
        if container['action'] in ACTIONS:
            counts[container['action']] += 1
    counts['recovered'] = recovered
    counts['interrupted'] = interrupted
    ages = [c['image_age_days'] for c in containers if c['image_age_days'] is not None]
    counts['oldest_image_age_days'] = max(ages) if ages else None
    return counts


def _engine_entry(engine):
    """The host's engine as image_age_info reported it (version, API, image store, platform), or None."""
    engine = _mapping(engine)
    if not engine:
        return None
    return dict((key, _text(engine.get(key)) or None) for key in ('version', 'api_version', 'image_store', 'platform'))


def engine_text(engine):
    """``Engine 26.1.5 (API 1.45), containerd image store, linux/amd64``; '' when unknown."""
    if not engine:
        return ''
    text = 'Engine %s' % (engine.get('version') or 'unknown')
    if engine.get('api_version'):
        text += ' (API %s)' % engine['api_version']
    if engine.get('image_store'):
        text += ', %s image store' % engine['image_store']
    if engine.get('platform'):
        text += ', %s' % engine['platform']
    return text


def _host_entry(name, result):
    """One host of the report from its patch_containers_result (None or {} when the host never reported)."""
    result = _mapping(result)
    if not result:
        result = {'status': 'unreachable'}
    status = result.get('status')
    # Ansible templates a None fact value to '': an empty error is no error.
    error = _text(result.get('error')) or None
    if status == 'not_run':
        # the role's placeholder for a host a later serial batch has not reached yet
        status = 'skipped'
    if status not in HOST_STATUSES:
        error = error or 'The host reported no valid status (got %s).' % (
            _text(status) if isinstance(status, str) else type(status).__name__)
        status = 'failed'
    if status == 'unreachable' and not error:
        error = 'The host could not be reached.'
    check_mode = _truthy(result.get('check_mode'))

    age = _mapping(result.get('age'))
    update_ran = isinstance(result.get('patch'), Mapping)
    update = _mapping(result.get('patch'))
    checked = dict((c.get('name'), c) for c in _list(age.get('containers')) if isinstance(c.get('name'), str))
    updated = dict((c.get('name'), c) for c in _list(update.get('containers')) if isinstance(c.get('name'), str))
    excluded = {}
    for item in _list(result.get('excluded')):
        if isinstance(item.get('name'), str):
            excluded[item['name']] = _text(item.get('why')) or 'Excluded.'

    names = list(checked) + [n for n in updated if n not in checked]
    containers = [_container_entry(_text(n), checked.get(n, {}), updated.get(n, {}), excluded.get(n), check_mode, update_ran)
                  for n in names]
    containers.sort(key=_container_order)
    # put right by the check (image_age_info with recover, as the role's update runs ask) or by the update
    recovered = len(_list(age.get('recovered'))) + len(_list(update.get('recovered')))
    # left as they were: a check-only run, or another run held the lock
    interrupted = len(_list(age.get('interrupted')))
    rebuild = _mapping(result.get('rebuild'))
    # the role runs image_rebuild in check mode also when it does not update (report-only runs, tags)
    rebuild_check_mode = check_mode or _truthy(rebuild.get('check_mode'))
    rebuilds = [_rebuild_entry(built, rebuild_check_mode) for built in _list(rebuild.get('images'))]
    summary = _count_containers(containers, recovered, interrupted)
    summary.update(_count_rebuilds(rebuilds))
    return {
        'name': name,
        'status': status,
        'error': error,
        'check_mode': check_mode,
        'engine': _engine_entry(age.get('engine')),
        'summary': summary,
        'containers': containers,
        'rebuilds': rebuilds,
    }


def _run_info(run, hosts):
    """The `run` block: scalar values of the `run` argument (never secret-looking keys), and check_mode."""
    info = {}
    for key, value in _mapping(run).items():
        if not isinstance(key, str) or _SECRET_KEY.search(key):
            continue
        if isinstance(value, str):
            info[str(key)] = _text(value)
        elif value is None or isinstance(value, (bool, int, float)):
            info[str(key)] = value
    if info.get('check_mode') not in (None, ''):
        info['check_mode'] = _truthy(info['check_mode'])
        return info
    info['check_mode'] = any(host['check_mode'] for host in hosts)
    return info


def fleet_report(host_results, run=None):
    """The patch-report.json document for ``{inventory_hostname: patch_containers_result}``."""
    if not isinstance(host_results, Mapping):
        raise AnsibleFilterError('fleet_report expects a dict of inventory_hostname to patch_containers_result, '
                                 'got %s.' % type(host_results).__name__)
    if run is not None and not isinstance(run, Mapping):
        raise AnsibleFilterError('fleet_report expects run to be a dict, got %s.' % type(run).__name__)
    hosts = [_host_entry(str(name), result) for name, result in host_results.items()]
    hosts.sort(key=lambda host: _natural_key(host['name']))

    summary = dict((key, 0) for key in HOST_COUNTS + CONTAINER_COUNTS + REBUILD_COUNTS)
    summary['recovered'] = 0
    summary['interrupted'] = 0
    summary['hosts'] = len(hosts)
    for host in hosts:
        summary['hosts_' + host['status']] += 1
        for key in CONTAINER_COUNTS + ('recovered', 'interrupted') + REBUILD_COUNTS:
            summary[key] = summary.get(key, 0) + host['summary'][key]
    ages = [h['summary']['oldest_image_age_days'] for h in hosts if h['summary']['oldest_image_age_days'] is not None]
    summary['oldest_image_age_days'] = max(ages) if ages else None

    run_info = _run_info(run, hosts)
    for host in hosts:
        # check_mode is the run's; per host it only served to name would_update
        del host['check_mode']
    return {
        'schema_version': SCHEMA_VERSION,
        'generated': _utc_now(),
        'run': run_info,
        'summary': summary,
        'hosts': hosts,
    }


def _checked_report(report, filter_name):
    if not isinstance(report, Mapping) or report.get('schema_version') != SCHEMA_VERSION:
        raise AnsibleFilterError('%s expects the report that patchops.docker.fleet_report returns '
                                 '(schema_version %d).' % (filter_name, SCHEMA_VERSION))
    return report


def _why_not_patched(host, check_mode):
    """One sentence saying why a host that is not `patched` was left alone; None for patched hosts."""
    if host['status'] == 'patched':
        return None
    if host.get('error'):
        return host['error']
    summary = host.get('summary') or {}
    if host['status'] == 'failed':
        return '%d container(s) rolled back, %d failed.' % (summary.get('rolled_back', 0), summary.get('failed', 0))
    if host['status'] == 'checked':
        if check_mode:
            return 'Check mode: nothing was changed.'
        return 'Report only: updates were not requested (patch_containers_update is false).'
    if host['status'] == 'skipped':
        return 'Skipped.'
    return 'The host could not be reached.'


_NOT_PATCHED_ORDER = {'failed': 0, 'unreachable': 1, 'skipped': 2, 'checked': 3}


def _not_patched(hosts):
    """The hosts that were not patched: failed first, then unreachable, skipped, checked only; by name within."""
    return sorted((h for h in hosts if h.get('status') != 'patched'),
                  key=lambda h: (_NOT_PATCHED_ORDER.get(h.get('status'), 0), _natural_key(str(h.get('name')))))


def _age_text(age):
    return '' if age is None else '%.1f' % age


def _update_text(value):
    return {True: 'available', False: 'none'}.get(value, 'unknown')


def _run_line(report):
    run = report.get('run') or {}
    parts = ['Generated %s' % report.get('generated', '')]
    parts.append('check mode: %s' % ('yes' if run.get('check_mode') else 'no'))
    for key in sorted(run):
        if key != 'check_mode' and run[key] not in (None, ''):
            parts.append('%s: %s' % (key.replace('_', ' '), run[key]))
    return parts


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
            stale = ('**yes, exposed**' if c.get('exposed') else 'yes') if c.get('stale') else 'no'
            lines.append(_md_row([
                _md(c.get('name')), _md(c.get('image')), _age_text(c.get('image_age_days')), stale,
                _update_text(c.get('update_available')),
                _md(ACTION_LABELS.get(c.get('action'), c.get('action') or '-')),
                _md(c.get('message') or c.get('reason')),
            ]))
        lines.append('')
        lines += _md_rebuilds(host.get('rebuilds') or [])
    return '\n'.join(lines)


REBUILD_LABELS = {'rebuilt': 'rebuilt', 'would_rebuild': 'would rebuild', 'unchanged': 'unchanged', 'failed': 'failed'}


def _md_rebuilds(rebuilds):
    """The table of the host's own images (patch_containers_builds), before its containers; none when empty."""
    if not rebuilds:
        return []
    lines = ['Images built on this host:', '', _md_row(['Image', 'Action', 'Why']), _md_row(['---'] * 3)]
    lines += [_md_row([_md(r.get('name')), _md(REBUILD_LABELS.get(r.get('action'), r.get('action') or '-')),
                       _md(r.get('reason'))]) for r in rebuilds]
    return lines + ['']


def _recovery_parts(summary):
    """What a host's run did about swaps a killed run left behind, for the host's line of counts."""
    parts = []
    if summary.get('recovered'):
        parts.append('%d recovered from an interrupted run' % summary['recovered'])
    if summary.get('interrupted'):
        parts.append('%d interrupted swap%s waiting to be put right (the next update run does it)' % (
            summary['interrupted'], '' if summary['interrupted'] == 1 else 's'))
    return parts


def _md_host_counts(summary):
    parts = ['%d containers' % summary.get('containers', 0)]
    for key in ACTIONS + ('stale', 'exposed_stale'):
        if summary.get(key):
            parts.append('%d %s' % (summary[key], key.replace('_', ' ')))
    if summary.get('oldest_image_age_days') is not None:
        parts.append('oldest image %.1f days' % summary['oldest_image_age_days'])
    parts.extend(_recovery_parts(summary))
    return _md(', '.join(parts)) + '.'


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


class FilterModule(object):
    """The fleet report of a patch_containers run."""

    def filters(self):
        return {
            'fleet_report': fleet_report,
            'fleet_report_markdown': fleet_report_markdown,
            'fleet_report_html': fleet_report_html,
        }
