"""The fleet report: what it counts, how it orders, what it leaves out, and how its views render it."""
import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.patchops.docker.plugins.filter.fleet_report import (
    FilterModule,
    fleet_report,
    fleet_report_html,
    fleet_report_markdown,
)
from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_data import merge_reports
from ansible_collections.patchops.docker.plugins.plugin_utils.fleet_report_html import _bin_width

# Values planted where a module result can carry them; none may reach any of the three outputs.
SECRETS = ('LABEL-SECRET-9f2c', 'ENV-SECRET-77aa', 'HOOK-SECRET-31d0', 'RUN-SECRET-c0de', 'hunter2',
           'DIGEST-NOT-IN-REPORT', 'deploy@10.0.0.5')

CONTAINER_KEYS = {'name', 'image', 'image_age_days', 'stale', 'exposed', 'update_available', 'reason', 'action',
                  'message', 'downtime_seconds', 'old_image_id', 'new_image_id', 'version_before', 'version_after',
                  'package_updates', 'security_updates', 'packages', 'packages_error'}


def checked(name, image, age, stale=False, exposed=False, update=False, reason='up to date', **extra):
    """One container as image_age_info returns it, with labels and environment that must stay out."""
    entry = {
        'name': name, 'id': 'id-' + name, 'state': 'running', 'image': image, 'image_id': 'sha256:old-' + name,
        'image_created': '2026-01-01T00:00:00Z', 'image_age_days': age, 'remote_digest': 'DIGEST-NOT-IN-REPORT',
        'update_available': update, 'reason': reason, 'error': None, 'exposed': exposed, 'max_age_days': 30,
        'stale': stale, 'compose_project': None, 'compose_service': None, 'build_context': None, 'excluded': False,
        'labels': {'com.example.db-password': 'LABEL-SECRET-9f2c', 'patchops.docker.enable': 'true'},
        'environment': ['DB_PASSWORD=ENV-SECRET-77aa'], 'Env': ['API_TOKEN=ENV-SECRET-77aa'],
    }
    entry.update(extra)
    return entry


def updated(name, action, message, image, downtime=None, new=None):
    """One container as container_update returns it, with hook output that must stay out."""
    return {
        'name': name, 'action': action, 'message': message, 'image': image, 'old_image_id': 'sha256:old-' + name,
        'new_image_id': new, 'downtime_seconds': downtime,
        'pre_update': {'command': 'dump', 'rc': 0, 'output': 'HOOK-SECRET-31d0'},
    }


def summary_of(containers):
    return {'containers': len(containers), 'updates_available': 0, 'stale': 0, 'unknown': 0, 'errors': 0,
            'oldest_image_age_days': None}


def rebuilt(name, action, reason, new=None):
    """One image as image_rebuild returns it, with base digests and a build log that stay out of the report."""
    return {'name': name, 'reference': 'docker.io/' + name, 'action': action, 'reason': reason,
            'old_image_id': 'sha256:old-' + name, 'new_image_id': new,
            'base_images': [{'reference': 'debian:12', 'kind': 'registry', 'previous': 'DIGEST-NOT-IN-REPORT',
                             'current': 'DIGEST-NOT-IN-REPORT', 'moved': True, 'error': None}],
            'build_log': ['RUN-SECRET-c0de']}


def host_result(host, status, containers, update=None, error=None, check_mode=False, excluded=(), rebuild=None):
    return {
        'host': host, 'docker_host': 'ssh://deploy@10.0.0.5', 'status': status, 'error': error,
        'check_mode': check_mode,
        'age': {'containers': containers, 'summary': summary_of(containers), 'images': [{'reference': 'x'}]},
        'patch': update,
        'selected': [c['name'] for c in (update or {}).get('containers', [])],
        'excluded': [{'name': name, 'why': why} for name, why in excluded],
        'rebuild': {'images': rebuild} if rebuild is not None else None,
    }


def update_result(containers, recovered=()):
    summary = dict((a, 0) for a in ('updated', 'unchanged', 'deferred', 'rolled_back', 'failed', 'skipped'))
    for c in containers:
        summary[c['action']] += 1
    return {'containers': containers, 'summary': summary, 'recovered': list(recovered)}


# A patched host: two stale containers updated (one exposed), one up to date (not given to container_update,
# as patch_selection leaves it out), one excluded by label.
WEB1 = host_result(
    'web1', 'patched',
    [checked('cache', 'redis:7', 3.0),
     checked('worker', 'registry.example.com/shop/worker:2', 40.25, stale=True, update=True,
             reason='registry has a newer image for tag 2'),
     checked('legacy', 'registry.example.com/shop/legacy:1', 400.0, excluded=True),
     checked('web', 'registry.example.com/shop/web:1.25', 45.2, stale=True, exposed=True, update=True,
             reason='registry has a newer image for tag 1.25')],
    update=update_result(
        [updated('web', 'updated', 'Recreated on the newer image.', 'registry.example.com/shop/web:1.25', 2.314,
                 'sha256:new-web'),
         updated('worker', 'updated', 'Recreated on the newer image.', 'registry.example.com/shop/worker:2', 1.0,
                 'sha256:new-worker')],
        recovered=[{'name': 'old', 'action': 'restored', 'message': 'Put back.'}]),
    excluded=[('legacy', 'labelled patchops.docker.enable=false')],
    rebuild=[rebuilt('shop/reports:1', 'rebuilt', 'Rebuilt: registry has a newer image for base debian:12.',
                     'sha256:new-reports'),
             rebuilt('shop/tools:2', 'unchanged', 'Base images unchanged, image 3.0 days old (max_age_days 30).')])

# A check-mode host: one container would be updated, one is already on the newest image.
WEB2 = host_result(
    'web2', 'checked',
    [checked('app', 'registry.example.com/shop/app:3', 12.0, stale=True, exposed=False, update=True,
             reason='registry has a newer image for tag 3'),
     checked('db', 'postgres:16', 2.0)],
    update=update_result(
        [updated('app', 'updated', 'Would be recreated on the newer image (check mode).',
                 'registry.example.com/shop/app:3'),
         updated('db', 'unchanged', 'Already on the newest image.', 'postgres:16', new='sha256:old-db')]),
    check_mode=True,
    rebuild=[rebuilt('shop/app-base:3', 'rebuilt', 'Would rebuild: the image is 31.0 days old, older than max_age_days 30.')])

# A failed host: one container rolled back after its health gate, one failed on a registry error.
DB1 = host_result(
    'db1', 'failed',
    [checked('postgres', 'postgres:15', 90.0, stale=True, exposed=True, update=True,
             reason='registry has a newer image for tag 15'),
     checked('redis', 'registry.example.com/cache/redis:7', 10.0, update=None,
             reason='registry error: 401 from https://bob:hunter2@registry.example.com/v2/')],
    update=update_result(
        [updated('postgres', 'rolled_back', 'Not healthy within 120 s; the old container is back.', 'postgres:15',
                 7.5, 'sha256:new-postgres'),
         updated('redis', 'failed', 'Nothing was changed: pull failed at https://bob:hunter2@registry.example.com.',
                 'registry.example.com/cache/redis:7')]),
    error='Container postgres was rolled back and redis failed on db1; see the report.',
    rebuild=[rebuilt('shop/<b>evil</b>:1', 'failed', "The build failed: The command '/bin/sh -c exit 3' returned a "
                     "non-zero code: 3 (to rebuild because when is always); the old image and its tag are kept.")])

EMPTY1 = host_result('empty1', 'patched', [])

HOSTS = {
    'web2': WEB2,
    'edge1': {'status': 'unreachable', 'error': 'Failed to connect to the host via ssh: timed out.'},
    'web1': WEB1,
    'empty1': EMPTY1,
    'db1': DB1,
    'gone1': None,
}

RUN = {'playbook': 'Patch containers', 'check_mode': False, 'registry_password': 'RUN-SECRET-c0de',
       'awx_job_id': 4711, 'extra': {'nested': 'RUN-SECRET-c0de'}}


@pytest.fixture
def report():
    return fleet_report(copy.deepcopy(HOSTS), RUN)


def host(report, name):
    return next(h for h in report['hosts'] if h['name'] == name)


# --- the report ----------------------------------------------------------------------------------

def test_report_header(report):
    assert report['schema_version'] == 1
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', report['generated'])
    assert report['run'] == {'playbook': 'Patch containers', 'check_mode': False, 'awx_job_id': 4711}
    assert set(report) == {'schema_version', 'generated', 'run', 'summary', 'hosts'}


def test_each_host_shows_its_engine():
    engine = {'version': '26.1.5', 'api_version': '1.45', 'image_store': 'containerd', 'platform': 'linux/amd64'}
    result = {'status': 'checked', 'age': {'containers': [], 'summary': {}, 'engine': engine}}
    report = fleet_report({'web1': result, 'web2': None})
    assert report['hosts'][0]['engine'] == engine
    assert report['hosts'][1]['engine'] is None, 'an unreachable host has no engine'
    text = 'Engine 26.1.5 (API 1.45), containerd image store, linux/amd64'
    assert text + '.' in fleet_report_markdown(report)
    assert '<p class="engine">%s</p>' % text in fleet_report_html(report)


def test_hosts_sorted_by_name_with_numbers_in_order():
    names = [h['name'] for h in fleet_report({'web10': None, 'web2': None, 'db1': None, 'Web3': None})['hosts']]
    assert names == ['db1', 'web2', 'Web3', 'web10']


def test_every_host_reported_in_order(report):
    assert [h['name'] for h in report['hosts']] == ['db1', 'edge1', 'empty1', 'gone1', 'web1', 'web2']
    for entry in report['hosts']:
        assert set(entry) == {'name', 'status', 'error', 'engine', 'summary', 'containers', 'rebuilds'}


def test_patched_host_lists_exposed_stale_first_then_stale_then_by_name(report):
    web1 = host(report, 'web1')
    assert web1['status'] == 'patched' and web1['error'] is None
    assert [c['name'] for c in web1['containers']] == ['web', 'worker', 'cache', 'legacy']
    for container in web1['containers']:
        assert set(container) == CONTAINER_KEYS
    web = web1['containers'][0]
    assert web == {
        'name': 'web', 'image': 'registry.example.com/shop/web:1.25', 'image_age_days': 45.2, 'stale': True,
        'exposed': True, 'update_available': True, 'reason': 'registry has a newer image for tag 1.25',
        'action': 'updated', 'message': 'Recreated on the newer image.', 'downtime_seconds': 2.31,
        'old_image_id': 'sha256:old-web', 'new_image_id': 'sha256:new-web', 'version_before': None,
        'version_after': None, 'package_updates': None, 'security_updates': None, 'packages': [],
        'packages_error': None}
    cache, legacy = web1['containers'][2:]
    assert (cache['action'], cache['message'], cache['reason']) == ('unchanged', None, 'up to date')
    assert (legacy['action'], legacy['message']) == ('excluded', 'labelled patchops.docker.enable=false')
    assert cache['old_image_id'] == 'sha256:old-cache' and cache['new_image_id'] is None
    assert web1['summary'] == {
        'containers': 4, 'updates_available': 2, 'unknown': 0, 'stale': 2, 'exposed_stale': 1, 'stale_remaining': 0,
        'updated': 2, 'would_update': 0, 'unchanged': 1, 'deferred': 0, 'rolled_back': 0, 'failed': 0,
        'skipped': 0, 'excluded': 1, 'recovered': 1, 'interrupted': 0, 'oldest_image_age_days': 400.0,
        'images_rebuilt': 1, 'images_would_rebuild': 0, 'images_rebuild_failed': 0,
        'containers_with_security_updates': 0, 'security_updates': 0, 'registry_lookups': 0}


def test_swaps_a_killed_run_left_are_counted_where_they_were_put_right_or_left():
    containers = [checked('web', 'shop/web:1', 3.0)]
    # an update run: the check (image_age_info with recover) put one right, container_update another
    patched = host_result('h1', 'patched', containers, update=update_result(
        [], recovered=[{'name': 'db', 'action': 'restored', 'message': 'Put back.'}]))
    patched['age']['recovered'] = [{'name': 'web', 'action': 'restored', 'message': 'Put back.'}]
    patched['age']['interrupted'] = []
    # a check-only run: image_age_info listed two and touched nothing
    checked_only = host_result('h2', 'checked', containers, check_mode=True)
    checked_only['age']['interrupted'] = [{'name': 'a', 'stage': 'created', 'backup': 'a.patchops-backup'},
                                          {'name': 'b', 'stage': 'renamed', 'backup': 'b.patchops-backup'}]
    report = fleet_report({'h1': patched, 'h2': checked_only})
    assert (host(report, 'h1')['summary']['recovered'], host(report, 'h1')['summary']['interrupted']) == (2, 0)
    assert (host(report, 'h2')['summary']['recovered'], host(report, 'h2')['summary']['interrupted']) == (0, 2)
    assert (report['summary']['recovered'], report['summary']['interrupted']) == (2, 2)
    waiting = '2 interrupted swaps waiting to be put right (the next update run does it)'
    assert waiting in fleet_report_markdown(report) and waiting in fleet_report_html(report)
    assert '2 recovered from an interrupted run' in fleet_report_markdown(report)


def test_what_changed_is_told_by_the_images_version_labels():
    web = checked('web', 'shop/web:1.25', 45.2, stale=True, update=True)
    web['labels']['org.opencontainers.image.version'] = '1.25.3'
    cache = checked('cache', 'redis:7.2', 3.0)
    cache['labels']['org.opencontainers.image.version'] = '7.2.5'
    done = updated('web', 'updated', 'Recreated on the new image.', 'shop/web:1.25', 2.0, 'sha256:new-web')
    done.update(version_before='1.25.3', version_after='1.25.4', revision_after='9b0e3d7')
    report = fleet_report({'h': host_result('h', 'patched', [web, cache], update=update_result([done]))})
    entries = dict((c['name'], c) for c in host(report, 'h')['containers'])
    assert (entries['web']['version_before'], entries['web']['version_after']) == ('1.25.3', '1.25.4')
    # not given to container_update: the version its image says, from the check's labels; nothing moved
    assert (entries['cache']['version_before'], entries['cache']['version_after']) == ('7.2.5', None)
    markdown, page = fleet_report_markdown(report), fleet_report_html(report)
    assert '| web | shop/web:1.25 (1.25.3 \u2192 1.25.4) |' in markdown
    assert '| cache | redis:7.2 (7.2.5) |' in markdown
    assert '<span class="ver" title="the images\' org.opencontainers.image.version">1.25.3 \u2192 1.25.4</span>' in page
    assert '9b0e3d7' not in json.dumps(report), 'only the version labels reach the report'


def test_check_mode_host_would_update_and_updates_nothing(report):
    web2 = host(report, 'web2')
    assert web2['status'] == 'checked'
    app, db = web2['containers']
    assert (app['name'], app['action']) == ('app', 'would_update')
    assert (db['name'], db['action']) == ('db', 'unchanged')
    assert web2['summary']['would_update'] == 1 and web2['summary']['updated'] == 0
    assert web2['summary']['stale_remaining'] == 0


def test_containers_the_update_step_did_not_need_are_unchanged_and_only_then():
    containers = [checked('web', 'shop/web:1', 3.0, reason='running image matches the registry for tag 1'),
                  checked('db', 'postgres:16', 50.0, stale=True, update=None, reason='registry error: timeout')]
    # the role's result when the update step had nothing to select (container_update did not run)
    nothing = {'containers': [], 'summary': dict((a, 0) for a in ('updated', 'unchanged', 'deferred', 'rolled_back',
                                                                  'failed', 'skipped')), 'recovered': []}
    for status, check_mode, update in (('patched', False, nothing), ('checked', True, nothing)):
        entry = fleet_report({'h': host_result('h', status, containers, update=update, check_mode=check_mode)})
        (h,) = entry['hosts']
        assert [(c['name'], c['action'], c['message']) for c in h['containers']] == [
            ('db', 'unchanged', None), ('web', 'unchanged', None)]
        assert h['summary']['unchanged'] == 2 and h['summary']['stale_remaining'] == 1
    # a report-only run (patch_containers_update: false, or the check/report tags): no update step, no action
    (h,) = fleet_report({'h': host_result('h', 'checked', containers, update=None)})['hosts']
    assert [c['action'] for c in h['containers']] == [None, None] and h['summary']['unchanged'] == 0


def test_images_built_on_the_host_are_listed_without_their_base_digests_or_build_log(report):
    assert host(report, 'web1')['rebuilds'] == [
        {'name': 'shop/reports:1', 'action': 'rebuilt', 'reason': 'Rebuilt: registry has a newer image for base debian:12.',
         'old_image_id': 'sha256:old-shop/reports:1', 'new_image_id': 'sha256:new-reports'},
        {'name': 'shop/tools:2', 'action': 'unchanged',
         'reason': 'Base images unchanged, image 3.0 days old (max_age_days 30).',
         'old_image_id': 'sha256:old-shop/tools:2', 'new_image_id': None}]
    assert [r['action'] for r in host(report, 'web2')['rebuilds']] == ['would_rebuild']
    assert host(report, 'web2')['summary']['images_would_rebuild'] == 1
    assert host(report, 'db1')['summary']['images_rebuild_failed'] == 1
    assert host(report, 'empty1')['rebuilds'] == [] and host(report, 'edge1')['rebuilds'] == []
    assert {k: report['summary'][k] for k in ('images_rebuilt', 'images_would_rebuild', 'images_rebuild_failed')} == {
        'images_rebuilt': 1, 'images_would_rebuild': 1, 'images_rebuild_failed': 1}


def test_a_rebuild_the_role_ran_in_check_mode_would_rebuild_even_outside_check_mode():
    result = copy.deepcopy(WEB1)
    result['rebuild']['check_mode'] = True
    rebuilds = fleet_report({'web1': result})['hosts'][0]['rebuilds']
    assert [r['action'] for r in rebuilds] == ['would_rebuild', 'unchanged']


def test_rebuilt_images_in_the_markdown_and_html_views(report):
    markdown = fleet_report_markdown(report)
    assert '| shop/reports:1 | rebuilt | Rebuilt: registry has a newer image for base debian:12. |' in markdown
    assert '| shop/app-base:3 | would rebuild |' in markdown
    assert 'shop/\\<b\\>evil\\</b\\>:1' in markdown
    page = fleet_report_html(report)
    assert '<td class="name">shop/reports:1</td><td><span class="tag a-rebuilt">rebuilt</span></td>' in page
    assert '<span class="tag a-would_rebuild">would rebuild</span>' in page
    assert '<b>evil</b>' not in page and 'shop/&lt;b&gt;evil&lt;/b&gt;:1' in page


def test_check_mode_of_the_run_follows_the_hosts_unless_given():
    assert fleet_report({'web2': copy.deepcopy(WEB2)})['run'] == {'check_mode': True}
    assert fleet_report({'web1': copy.deepcopy(WEB1)})['run'] == {'check_mode': False}
    assert fleet_report({'web2': copy.deepcopy(WEB2)}, {'check_mode': False})['run']['check_mode'] is False
    # Ansible may template a bool fact to a string
    templated = dict(copy.deepcopy(WEB2), check_mode='True')
    assert fleet_report({'web2': templated})['hosts'][0]['containers'][0]['action'] == 'would_update'


def test_failed_host_counts_rollback_and_failure(report):
    db1 = host(report, 'db1')
    assert db1['status'] == 'failed'
    assert db1['error'] == 'Container postgres was rolled back and redis failed on db1; see the report.'
    postgres, redis = db1['containers']
    assert (postgres['name'], postgres['action'], postgres['stale'], postgres['exposed']) == (
        'postgres', 'rolled_back', True, True)
    assert postgres['downtime_seconds'] == 7.5
    assert (redis['action'], redis['update_available']) == ('failed', None)
    assert db1['summary']['rolled_back'] == 1 and db1['summary']['failed'] == 1
    assert db1['summary']['unknown'] == 1 and db1['summary']['stale_remaining'] == 1


def test_credentials_in_urls_are_removed_from_messages(report):
    redis = host(report, 'db1')['containers'][1]
    assert redis['reason'] == 'registry error: 401 from https://***@registry.example.com/v2/'
    assert redis['message'] == 'Nothing was changed: pull failed at https://***@registry.example.com.'


def test_unreachable_hosts_with_and_without_a_result(report):
    edge1, gone1 = host(report, 'edge1'), host(report, 'gone1')
    assert (edge1['status'], edge1['error']) == ('unreachable', 'Failed to connect to the host via ssh: timed out.')
    assert (gone1['status'], gone1['error']) == ('unreachable', 'The host could not be reached.')
    assert edge1['containers'] == [] and gone1['containers'] == []
    assert edge1['summary']['containers'] == 0 and edge1['summary']['oldest_image_age_days'] is None


def test_empty_host(report):
    empty1 = host(report, 'empty1')
    assert (empty1['status'], empty1['containers']) == ('patched', [])
    assert empty1['summary']['containers'] == 0 and empty1['summary']['oldest_image_age_days'] is None
    assert set(empty1['summary'].values()) == {0, None}


def test_fleet_summary(report):
    summary = report['summary']
    assert {k: summary[k] for k in ('hosts', 'hosts_patched', 'hosts_checked', 'hosts_failed', 'hosts_unreachable',
                                    'hosts_skipped')} == {
        'hosts': 6, 'hosts_patched': 2, 'hosts_checked': 1, 'hosts_failed': 1, 'hosts_unreachable': 2,
        'hosts_skipped': 0}
    assert {k: summary[k] for k in ('containers', 'updated', 'rolled_back', 'failed', 'would_update', 'stale',
                                    'exposed_stale', 'stale_remaining', 'oldest_image_age_days')} == {
        'containers': 8, 'updated': 2, 'rolled_back': 1, 'failed': 1, 'would_update': 1, 'stale': 4,
        'exposed_stale': 2, 'stale_remaining': 1, 'oldest_image_age_days': 400.0}


def test_the_report_is_plain_json(report):
    assert json.loads(json.dumps(report)) == report


def test_role_placeholders_and_templated_nulls():
    """The role passes status not_run for hosts a later serial batch has not reached, and '' for a None fact."""
    report = fleet_report({
        'later': {'host': 'later', 'status': 'not_run', 'error': 'Not reached yet in this run.'},
        'odd': {'status': 'exploded', 'error': '', 'age': '', 'patch': ''},
        'quiet': {'status': 'patched', 'error': '', 'age': '', 'patch': '', 'check_mode': 'False'},
    })
    later, odd, quiet = report['hosts']
    assert (later['status'], later['error']) == ('skipped', 'Not reached yet in this run.')
    assert (odd['status'], odd['error']) == ('failed', 'The host reported no valid status (got exploded).')
    assert (quiet['status'], quiet['error'], quiet['containers']) == ('patched', None, [])
    assert report['run'] == {'check_mode': False}


def test_a_container_only_container_update_knows_is_still_reported():
    result = host_result('h', 'patched', [], update=update_result(
        [updated('ghost', 'skipped', 'Started with --rm.', 'busybox:1')]))
    (ghost,) = fleet_report({'h': result})['hosts'][0]['containers']
    assert (ghost['name'], ghost['image'], ghost['image_age_days'], ghost['action']) == (
        'ghost', 'busybox:1', None, 'skipped')


def test_non_scalar_values_are_dropped_not_stringified():
    entry = checked('c', {'secret': 'LABEL-SECRET-9f2c'}, 'old', stale='yes', reason=['ENV-SECRET-77aa'])
    (container,) = fleet_report({'h': host_result('h', 'checked', [entry])})['hosts'][0]['containers']
    assert (container['image'], container['image_age_days'], container['stale'], container['reason']) == (
        None, None, False, None)


def test_secrets_never_reach_any_output(report):
    outputs = {'json': json.dumps(report), 'md': fleet_report_markdown(report), 'html': fleet_report_html(report)}
    for kind, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, '%s leaked into the %s report' % (secret, kind)
        assert 'db-password' not in text and 'DB_PASSWORD' not in text and 'labels' not in text


def test_wrong_input_fails_with_one_sentence():
    with pytest.raises(AnsibleFilterError, match='expects a dict of inventory_hostname'):
        fleet_report([WEB1])
    with pytest.raises(AnsibleFilterError, match='expects run to be a dict'):
        fleet_report({}, 'run')
    with pytest.raises(AnsibleFilterError, match='fleet_report_html expects the report'):
        fleet_report_html(HOSTS)
    with pytest.raises(AnsibleFilterError, match='fleet_report_markdown expects the report'):
        fleet_report_markdown({'schema_version': 2})


def test_filter_names():
    assert sorted(FilterModule().filters()) == ['fleet_report', 'fleet_report_html', 'fleet_report_markdown']


# --- Markdown ------------------------------------------------------------------------------------

def markdown_sections(text):
    """{heading: [lines]} for each '## ' section."""
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith('## '):
            current = sections[line[3:]] = []
        elif current is not None:
            current.append(line)
    return sections


def table_rows(lines):
    """Data rows of the first table in `lines` (header and separator left out)."""
    rows = []
    for line in lines:
        if line.startswith('| '):
            rows.append(line)
        elif rows:
            break
    return rows[2:]


def test_markdown_one_table_row_per_container(report):
    sections = markdown_sections(fleet_report_markdown(report))
    for entry in report['hosts']:
        rows = table_rows(sections['%s \u2014 %s' % (entry['name'], entry['status'])])
        assert len(rows) == len(entry['containers'])
        for row, container in zip(rows, entry['containers']):
            assert row.startswith('| %s |' % container['name'])
    assert 'No containers reported.' in sections['empty1 \u2014 patched']


def test_markdown_fleet_summary_and_hosts_not_patched(report):
    text = fleet_report_markdown(report)
    assert text.startswith('# Container patch report\n')
    sections = markdown_sections(text)
    assert '| 6 | 2 | 1 | 1 | 2 | 0 |' in sections['Fleet summary']
    assert '| 8 | 2 | 1 | 1 | 1 | 4 | 2 | 1 | 400.0 |' in sections['Fleet summary']
    rows = table_rows(sections['Hosts not patched'])
    assert [row.split(' | ')[0][2:] for row in rows] == ['db1', 'edge1', 'gone1', 'web2']
    assert 'Failed to connect to the host via ssh: timed out.' in rows[1]
    web1 = table_rows(sections['web1 \u2014 patched'])
    assert web1[0] == ('| web | registry.example.com/shop/web:1.25 | 45.2 | **yes, exposed** | available | updated '
                       '| Recreated on the newer image. |')


def test_markdown_check_mode_says_would_update():
    text = fleet_report_markdown(fleet_report({'web2': copy.deepcopy(WEB2)}))
    assert '**Check mode:**' in text
    assert '| would update |' in text
    assert 'Check mode: nothing was changed.' in text


def test_markdown_escapes_untrusted_text():
    entry = checked('evil|name', 'img:1', 1.0, reason='a | b <script>alert(1)</script>\nsecond line')
    text = fleet_report_markdown(fleet_report({'h': host_result('h', 'checked', [entry])}))
    (row,) = table_rows(markdown_sections(text)['h \u2014 checked'])
    assert row.count(' | ') == 6
    assert 'evil\\|name' in row and '\\<script\\>' in row and '<script>' not in text
    assert 'second line' in row


# --- HTML ----------------------------------------------------------------------------------------

VOID = {'meta', 'br', 'hr', 'img', 'input', 'link', 'col', 'wbr'}


class Page(HTMLParser):
    """Checks that every element is closed in order; collects text, classes of table rows and tag names."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.text, self.tags, self.row_classes, self.errors = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == 'tr':
            self.row_classes.append(dict(attrs).get('class') or '')
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append('</%s> closes %s' % (tag, self.stack[-1:] or 'nothing'))
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page):
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    return parser


def test_html_is_well_formed_and_names_every_host_and_container(report):
    page = fleet_report_html(report)
    assert page.startswith('<!DOCTYPE html>')
    parsed = parse(page)
    text = '\n'.join(parsed.text)
    for entry in report['hosts']:
        assert entry['name'] in text
        for container in entry['containers']:
            assert container['name'] in text
    assert 'Hosts not patched' in text and 'Failed to connect to the host via ssh: timed out.' in text


def test_html_is_self_contained(report):
    page = fleet_report_html(report)
    parsed = parse(page)
    assert 'script' not in parsed.tags and 'link' not in parsed.tags and 'img' not in parsed.tags
    assert not re.search(r'(?i)(src|href)\s*=\s*"(?!#)', page)
    assert 'style' in parsed.tags and 'svg' in parsed.tags
    assert 'url(' not in page and '@import' not in page
    # with no URL in the data, no URL anywhere on the page (the SVG needs no xmlns inside HTML)
    page = fleet_report_html(fleet_report({'web1': copy.deepcopy(WEB1), 'web2': copy.deepcopy(WEB2)}))
    assert '//' not in page.replace('://***', '')


def test_html_highlights_stale_exposed_and_actions(report):
    page = fleet_report_html(report)
    parsed = parse(page)
    assert parsed.row_classes.count('stale exposed') == 2
    assert parsed.row_classes.count('stale') == 2
    for action in ('updated', 'would_update', 'rolled_back', 'failed', 'excluded'):
        assert 'class="tag a-%s"' % action in page
    assert page.count('>EXPOSED</span>') == 2


def test_html_chart_has_a_bar_per_container_and_axis_labels(report):
    page = fleet_report_html(report)
    svg = page[page.index('<svg'):page.index('</svg>')]
    assert 'Image age (days)' in svg and 'Container (host / name)' in svg
    assert svg.count('<rect') == 3 + 8  # the legend, then one bar per container with a known age
    assert svg.count('fill="#c92a2a"') == 1 + 2 and svg.count('fill="#f08c00"') == 1 + 2


def test_html_chart_turns_into_a_histogram_for_a_large_fleet():
    containers = [checked('c%02d' % i, 'img:%d' % i, float(i * 5), stale=i * 5 > 30, exposed=i % 7 == 0)
                  for i in range(60)]
    page = fleet_report_html(fleet_report({'big': host_result('big', 'checked', containers)}))
    parse(page)
    svg = page[page.index('<svg'):page.index('</svg>')]
    assert 'Image age (days, bins of' in svg and '>Containers</text>' in svg
    assert svg.count('<rect') < 60


def test_html_escapes_untrusted_text():
    entry = checked('<script>alert(1)</script>', 'img"><b>x', 1.0, reason='<img src=x onerror=alert(1)>')
    result = host_result('h<i>', 'checked', [entry], error='bad & "worse"')
    page = fleet_report_html(fleet_report({'h<i>': result}))
    parsed = parse(page)
    assert 'script' not in parsed.tags and 'img' not in parsed.tags and 'i' not in parsed.tags
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in page
    text = '\n'.join(parsed.text)
    assert '<script>alert(1)</script>' in text and 'h<i>' in text and 'bad & "worse"' in text


def test_html_empty_fleet():
    page = fleet_report_html(fleet_report({}))
    text = '\n'.join(parse(page).text)
    assert 'No container with a known image age.' in text and 'None: every host was patched.' in text


def test_html_check_mode_shows_would_update_instead_of_updated():
    page = fleet_report_html(fleet_report({'web2': copy.deepcopy(WEB2)}))
    text = '\n'.join(parse(page).text)
    assert 'Check mode:' in text and 'Would update' in text and 'Updated' not in text


def test_hosts_not_patched_list_problems_first():
    report = fleet_report({'a-checked': {'status': 'checked'}, 'b-skipped': {'status': 'skipped'},
                           'c-failed': {'status': 'failed', 'error': 'Boom.'}, 'd-gone': None,
                           'e-patched': {'status': 'patched'}})
    rows = table_rows(markdown_sections(fleet_report_markdown(report))['Hosts not patched'])
    assert [row.split(' | ')[0][2:] for row in rows] == ['c-failed', 'd-gone', 'b-skipped', 'a-checked']
    assert rows[3].endswith('| Report only: updates were not requested (patch\\_containers\\_update is false). |')
    page = fleet_report_html(report)
    table = page[page.index('<table class="not-patched">'):]
    table = table[:table.index('</table>')]
    assert [table.index(name) for name in ('c-failed', 'd-gone', 'b-skipped', 'a-checked')] == sorted(
        table.index(name) for name in ('c-failed', 'd-gone', 'b-skipped', 'a-checked'))
    assert 'e-patched' not in table


def test_histogram_bins_are_days_weeks_or_months():
    assert [_bin_width(age) for age in (10, 40, 150, 272.6, 500, 2000, 20000)] == [1, 2, 7, 14, 30, 90, 1000]


# --- the schema document -------------------------------------------------------------------------

SCHEMA_DOC = Path(__file__).resolve().parents[4] / 'docs' / 'report-schema.md'


def documented_fields(heading):
    """The field names in the first column of the table under `## heading` in docs/report-schema.md."""
    lines = markdown_sections(SCHEMA_DOC.read_text())[heading]
    return [re.match(r'\| `(\w+)` \|', row).group(1) for row in table_rows(lines)]


def test_the_schema_document_names_exactly_the_fields_of_the_report(report):
    assert documented_fields('Top level') == list(report)
    assert documented_fields('Host') == list(report['hosts'][0])
    assert documented_fields('Host summary') == list(report['hosts'][0]['summary'])
    assert sorted(documented_fields('Container')) == sorted(CONTAINER_KEYS)
    fleet = documented_fields('Fleet summary')
    assert set(fleet) - set(report['summary']) == set()
    assert set(report['summary']) == set(fleet) | set(documented_fields('Host summary'))


def test_the_schema_example_has_the_shape_of_a_real_report(report):
    text = SCHEMA_DOC.read_text()
    example = json.loads(text[text.index('```json') + 7:text.index('```', text.index('```json') + 7)])
    assert set(example) == set(report) and set(example['summary']) == set(report['summary'])
    for entry in example['hosts']:
        assert set(entry) == set(report['hosts'][0]) and set(entry['summary']) == set(report['hosts'][0]['summary'])
        for container in entry['containers']:
            assert set(container) == CONTAINER_KEYS


def test_pending_security_updates_are_shown_by_container_most_first():
    web = checked('web', 'shop/web:1', 3.0)
    db = checked('db', 'shop/db:1', 3.0)
    plain = checked('plain', 'shop/plain:1', 3.0)
    result = host_result('h1', 'checked', [web, db, plain])
    result['packages'] = {
        'sha256:old-web': dict(package_updates=7, security_updates=1, error=None, top=[
            dict(name='libssl3', installed='3.0.11', available='3.0.15', security=True)]),
        'sha256:old-db': dict(package_updates=4, security_updates=3, error=None, top=[
            dict(name='<script>', installed='1', available='2', security=True)]),
    }
    report = fleet_report({'h1': result})
    containers = dict((c['name'], c) for c in host(report, 'h1')['containers'])
    assert (containers['web']['security_updates'], containers['web']['package_updates']) == (1, 7)
    assert containers['plain']['security_updates'] is None and containers['plain']['packages'] == []
    assert (report['summary']['containers_with_security_updates'], report['summary']['security_updates']) == (2, 4)
    markdown = fleet_report_markdown(report)
    section = markdown[markdown.index('## Pending security updates'):]
    assert section.index('| db |') < section.index('| web |')
    assert 'libssl3 3.0.11 \u2192 3.0.15 (security), and 6 more' in section
    page = fleet_report_html(report)
    assert '<h2>Pending security updates</h2>' in page and '&lt;script&gt; 1 \u2192 2' in page
    assert '<script>' not in page
    quiet = fleet_report({'h1': host_result('h1', 'checked', [plain])})
    assert 'Pending security updates' not in fleet_report_markdown(quiet)
    assert 'Pending security updates' not in fleet_report_html(quiet)


def test_merged_slices_hold_every_host_once_and_count_again():
    slice1 = fleet_report({'h1': host_result('h1', 'patched', [checked('web', 'shop/web:1', 40.0, stale=True)]),
                           'h2': host_result('h2', 'failed', [checked('db', 'shop/db:1', 3.0)], error='Boom.')},
                          {'playbook': 'Patch containers', 'awx_job_id': 1})
    slice2 = fleet_report({'h3': host_result('h3', 'checked', [checked('api', 'shop/api:1', 99.5)])},
                          {'playbook': 'Patch containers', 'awx_job_id': 2})
    # a later run of the same window fixed h2: its report wins for h2
    rerun = fleet_report({'h2': host_result('h2', 'patched', [checked('db', 'shop/db:1', 3.0)])})
    rerun['generated'] = '2999-01-01T00:00:00Z'

    merged = merge_reports([slice1, slice2, rerun])

    assert [h['name'] for h in merged['hosts']] == ['h1', 'h2', 'h3']
    assert host(merged, 'h2')['status'] == 'patched'
    assert (merged['summary']['hosts'], merged['summary']['hosts_patched'], merged['summary']['hosts_failed'],
            merged['summary']['hosts_checked']) == (3, 2, 0, 1)
    assert merged['summary']['containers'] == 3 and merged['summary']['stale'] == 1
    assert merged['summary']['oldest_image_age_days'] == 99.5
    assert merged['run']['merged_reports'] == 3 and merged['run']['check_mode'] is False
    assert set(merged['summary']) == set(slice1['summary'])
    # the views render a merged report like any other
    assert '## h3 — checked' in fleet_report_markdown(merged)
    assert merge_reports([merged])['hosts'] == merged['hosts']


@pytest.mark.parametrize('bad', [[], [{'hosts': []}], 'not a list'])
def test_merge_refuses_what_is_not_a_list_of_reports(bad):
    with pytest.raises(AnsibleFilterError):
        merge_reports(bad)


def test_a_large_fleet_opens_as_host_lines_failures_first_with_a_status_filter():
    results = dict(('h%02d' % i, host_result('h%02d' % i, 'patched', [checked('c', 'shop/c:1', 1.0)]))
                   for i in range(30))
    results['h17'] = host_result('h17', 'failed', [checked('c', 'shop/c:1', 1.0)], error='Boom.')
    results['h03'] = None  # never reported: unreachable
    page = fleet_report_html(fleet_report(results))
    parse(page)
    order = re.findall(r'<details class="host s-(\w+)" id="host-(\d+)"( open)?>', page)
    assert [status for status, _index, _open in order[:2]] == ['failed', 'unreachable']
    assert all(opened for status, _index, opened in order if status != 'patched')
    assert not any(opened for status, _index, opened in order if status == 'patched')
    for status in ('failed', 'unreachable', 'patched'):
        assert 'id="show-%s"' % status in page
    assert 'id="show-checked"' not in page
    small = fleet_report_html(fleet_report(dict(list(results.items())[:5])))
    assert small.count('<details class="host') == small.count(' open>') == 5


def test_registry_lookups_are_counted_per_host_and_for_the_fleet():
    # the role templates its sum, which Ansible may hand over as text
    results = {'h1': dict(status='checked', registry_lookups=10, age={'containers': []}),
               'h2': dict(status='checked', registry_lookups='0', age={'containers': []}),
               'h3': dict(status='checked', age={'containers': []}),
               'h4': dict(status='checked', registry_lookups=-1, age={'containers': []})}
    report = fleet_report(results)
    assert [host(report, h)['summary']['registry_lookups'] for h in ('h1', 'h2', 'h3', 'h4')] == [10, 0, 0, 0]
    assert report['summary']['registry_lookups'] == 10
    # and the views say it: a line under the Markdown summary, a card in the HTML one
    assert '\nRegistry look-ups: 10 (tags asked of their registries' in fleet_report_markdown(report)
    html = fleet_report_html(report)
    assert re.search(r'<span class="glabel">Registry</span><div class="cards"><div class="card info">'
                     r'<span class="n">10</span><span class="l">Look-ups</span></div>', html), html[:3000]
