# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report of a patch_containers run: the JSON document (``fleet_report``), and the plain values
and sentences its Markdown and HTML views share.

``fleet_report`` turns the ``patch_containers_result`` fact of every host into the document written as
``patch-report.json``. The report is built from an allow-list: only the fields named in
``docs/report-schema.md`` are copied from the module results, each as a plain scalar, so labels, environment
variables, hook output and anything else a result carries never reach a report file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
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
CONTAINER_COUNTS = ('containers', 'updates_available', 'unknown', 'stale', 'exposed_stale', 'stale_remaining') + ACTIONS \
    + ('containers_with_security_updates', 'security_updates')
# how many packages of an image the report names (security updates first)
TOP_PACKAGES = 5
REBUILD_COUNTS = ('images_rebuilt', 'images_would_rebuild', 'images_rebuild_failed')
HOST_COUNTS = ('hosts', 'hosts_patched', 'hosts_checked', 'hosts_failed', 'hosts_unreachable', 'hosts_skipped')

ACTION_LABELS = {
    'updated': 'updated', 'would_update': 'would update', 'unchanged': 'unchanged', 'deferred': 'deferred',
    'rolled_back': 'rolled back', 'failed': 'failed', 'skipped': 'skipped', 'excluded': 'excluded',
}

# Free text is capped so that one runaway error message cannot swamp the report.
LABEL_OCI_VERSION = 'org.opencontainers.image.version'
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

def _packages_entry(pending):
    """A container's pending package updates from the role's package_summary of its image (all None when the run did
    not read packages)."""
    pending = _mapping(pending)
    if not pending:
        return dict(package_updates=None, security_updates=None, packages=[], packages_error=None)
    top = []
    for item in _list(pending.get('top'))[:TOP_PACKAGES]:
        top.append(dict(name=_text(item.get('name')), installed=_text(item.get('installed')),
                        available=_text(item.get('available')), security=_flag(item.get('security'))))
    return dict(package_updates=_count(pending.get('package_updates')),
                security_updates=_count(pending.get('security_updates')), packages=top,
                packages_error=_text(pending.get('error')) or None)


def _count(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _container_entry(name, checked, updated, excluded_why, check_mode, update_ran, pending=None):
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
        # what changed, in the images' own words: their OCI version labels (the check's labels when the
        # update step did not report the container)
        'version_before': _text(updated.get('version_before'))
        or _text(_mapping(checked.get('labels')).get(LABEL_OCI_VERSION)),
        'version_after': _text(updated.get('version_after')),
        **_packages_entry(pending),
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
        if container['security_updates']:
            counts['containers_with_security_updates'] += 1
            counts['security_updates'] += container['security_updates']
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
    pending = _mapping(result.get('packages'))
    containers = [_container_entry(_text(n), checked.get(n, {}), updated.get(n, {}), excluded.get(n), check_mode, update_ran,
                                   pending.get(checked.get(n, {}).get('image_id')))
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
    # tags this host asked of their registries (patch_containers_share_lookups shares them across the batch)
    lookups = result.get('registry_lookups')
    summary['registry_lookups'] = _count(int(lookups) if isinstance(lookups, str) and lookups.isdigit() else lookups) or 0
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
    summary = _fleet_summary(hosts)
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


def merge_reports(reports):
    """One report of several (AWX job slices, or several runs of one window): every host once, from the report
    generated last that has it; the summary counted again over those hosts."""
    if not isinstance(reports, (list, tuple)) or not reports:
        raise AnsibleFilterError('merge_reports expects a list of one or more fleet reports.')
    latest = {}
    runs = []
    for index, report in enumerate(reports):
        report = _checked_report(report, 'merge_reports')
        generated = _text(report.get('generated'))
        runs.append(_mapping(report.get('run')))
        for host in _list(report.get('hosts')):
            name = _text(host.get('name'))
            if name and (name not in latest or (generated, index) >= latest[name][0]):
                latest[name] = ((generated, index), host)
    hosts = sorted((dict(host) for _key, host in latest.values()), key=lambda host: _natural_key(host['name']))
    run = dict((key, value) for r in runs for key, value in r.items()
               if key != 'check_mode' and (value is None or isinstance(value, (str, bool, int, float))))
    run = _run_info(run, [])
    run['check_mode'] = any(_truthy(r.get('check_mode')) for r in runs)
    run['merged_reports'] = len(reports)
    return {
        'schema_version': SCHEMA_VERSION,
        'generated': _utc_now(),
        'run': run,
        'summary': _fleet_summary(hosts),
        'hosts': hosts,
    }


def _fleet_summary(hosts):
    """The fleet's counts: hosts by status, then every host summary count summed."""
    summary = dict((key, 0) for key in HOST_COUNTS + CONTAINER_COUNTS + REBUILD_COUNTS)
    summary['recovered'] = 0
    summary['interrupted'] = 0
    summary['registry_lookups'] = 0
    summary['hosts'] = len(hosts)
    for host in hosts:
        if 'hosts_%s' % host.get('status') in summary:
            summary['hosts_%s' % host['status']] += 1
        counts = _mapping(host.get('summary'))
        for key in CONTAINER_COUNTS + ('recovered', 'interrupted', 'registry_lookups') + REBUILD_COUNTS:
            summary[key] = summary.get(key, 0) + (_count(counts.get(key)) or 0)
    ages = [_mapping(h.get('summary')).get('oldest_image_age_days') for h in hosts]
    ages = [age for age in ages if isinstance(age, (int, float)) and not isinstance(age, bool)]
    summary['oldest_image_age_days'] = max(ages) if ages else None
    return summary


def security_rows(report):
    """The fleet by pending security updates: one row per container whose image's packages were compared (host,
    container, image, security and package updates, the first packages as ``name installed → available``), most
    security updates first; [] when the run did not read packages."""
    rows = []
    for host in report.get('hosts') or []:
        for c in host.get('containers') or []:
            if c.get('security_updates') is None and c.get('package_updates') is None and not c.get('packages_error'):
                continue
            shown = ', '.join('%s %s \u2192 %s%s' % (p.get('name'), p.get('installed'), p.get('available'),
                                                     ' (security)' if p.get('security') else '')
                              for p in c.get('packages') or [])
            more = (c.get('package_updates') or 0) - len(c.get('packages') or [])
            if more > 0:
                shown += ', and %d more' % more
            rows.append(dict(host=host.get('name'), name=c.get('name'), image=c.get('image'),
                             security=c.get('security_updates'), updates=c.get('package_updates'),
                             packages=c.get('packages_error') or shown or '-'))
    rows.sort(key=lambda r: (-(r['security'] or 0), -(r['updates'] or 0), _natural_key(r['host'] or ''),
                             _natural_key(r['name'] or '')))
    return rows


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


REBUILD_LABELS = {'rebuilt': 'rebuilt', 'would_rebuild': 'would rebuild', 'unchanged': 'unchanged', 'failed': 'failed'}


def version_text(container):
    """What the container's image says of its version, and what it moved to: ``1.25.3 \u2192 1.25.4``, ``1.25.3``,
    or '' when its images set no version label."""
    before, after = container.get('version_before'), container.get('version_after')
    if before and after and before != after:
        return '%s \u2192 %s' % (before, after)
    if after and not before:
        return '\u2192 %s' % after
    return before or after or ''


def _recovery_parts(summary):
    """What a host's run did about swaps a killed run left behind, for the host's line of counts."""
    parts = []
    if summary.get('recovered'):
        parts.append('%d recovered from an interrupted run' % summary['recovered'])
    if summary.get('interrupted'):
        parts.append('%d interrupted swap%s waiting to be put right (the next update run does it)' % (
            summary['interrupted'], '' if summary['interrupted'] == 1 else 's'))
    return parts
