"""A registry that is down, slow, refuses (401, 429, 500) or drops the connection mid-pull (issue 6, item 2).

The faults come from tests/sandbox/sandbox/faultproxy.py, a proxy of our own on 127.0.0.1:5119 in front of
the sandbox registry: the images of the faulty containers are referenced as 127.0.0.1:5119/..., so
every look-up and pull of them goes through the proxy (each test checks that the daemon really asked
it), while a container on the same image through 127.0.0.1:5115 shows that the others stay fine.

For each fault: image_age_info reports the container as unknown with a reason that names the
registry and the problem, the others as usual, in bounded time and without a traceback;
container_update fails that container with a clear message and touches nothing (same container,
running, volume data there, no backup left, no second container, its tag not moved); once the fault
is cleared, the next run updates it.
"""
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SLEEPER, run_module, run_playbook, sandbox
from sandbox.faultproxy import FaultProxy

pytestmark = pytest.mark.once

PROXY = '127.0.0.1:5119'
FAST = dict(stable_seconds=1, health_timeout=20)
# The daemon gives a registry's /v2/ ping 15 s; a proxy that waits longer than that is "slow" for it.
DAEMON_PING_TIMEOUT = 15


@pytest.fixture(scope='module')
def proxy(sb):
    with FaultProxy(PROXY, sb['registry']) as running:
        yield running


@pytest.fixture
def faults(proxy):
    """The proxy, passing again after the test whatever happened."""
    proxy.set('pass')
    yield proxy
    proxy.set('pass')


def inspect(name):
    return json.loads(sandbox.docker('inspect', name))[0]


def names_like(prefix):
    return sorted(n for n in sandbox.docker('ps', '-a', '--format', '{{.Names}}').split() if n.startswith(prefix))


def image_id(ref):
    return json.loads(sandbox.docker('image', 'inspect', ref))[0]['Id']


def layer_digest(repo, tag):
    """The digest of the last layer the registry lists for repo:tag (the one publish() added)."""
    path = repo.split('/', 1)[1]
    status, _headers, body = sandbox._registry_request('GET', '/v2/%s/manifests/%s' % (path, tag),
                                                       headers={'Accept': sandbox.MANIFEST_ACCEPT})
    assert status == 200, status
    return json.loads(body)['layers'][-1]['digest']


class World:
    """Two containers on one image, one pulled through the proxy and one straight from the registry,
    both one image behind: the registry has a newer one whose new layer the engine does not have."""

    def __init__(self, sb, containers, unique, tmp_path, faults):
        self.repo = '%s/itest/flt-%s' % (sb['registry'], unique)
        self.via_repo = '%s/itest/flt-%s' % (PROXY, unique)
        self.docker_host = sb['docker_host']
        self.tmp_path = tmp_path
        self.faults = faults
        sandbox.publish(self.repo + ':1', cmd=SLEEPER, volumes=['/data'])
        sandbox.docker('pull', '-q', self.via_repo + ':1')
        self.via = containers.run('via-' + unique, self.via_repo + ':1')
        self.direct = containers.run('direct-' + unique, self.repo + ':1')
        containers.names.append(self.via + '.patchops-backup')
        sandbox.docker('exec', self.via, 'sh', '-c', 'echo precious > /data/file')
        self.via_id = inspect(self.via)['Id']
        self.old_image = inspect(self.via)['Image']
        newer = sandbox.publish(self.repo + ':1', cmd=SLEEPER, volumes=['/data'], labels={'v': '2'},
                                files={'/layer': os.urandom(512 * 1024)})
        # as if built elsewhere: a pull has to download the new layer
        sandbox.docker('rmi', newer['id'])
        self.new_image = newer['id']
        self.layer = layer_digest(self.repo, '1')
        self.seen = len(faults.log)

    def asked_proxy(self):
        """The requests the daemon sent the proxy since the world was made (the tests run one at a time)."""
        return self.faults.requests(self.seen)

    def check(self, **options):
        args = dict(docker_host=self.docker_host, containers=[self.via, self.direct],
                    state_dir=str(self.tmp_path / 'state-check'))
        args.update(options)
        return timed(run_module, 'image_age_info', args)

    def update(self, **options):
        args = dict(FAST, docker_host=self.docker_host, containers=[self.via], state_dir=str(self.tmp_path / 'state'))
        args.update(options)
        return timed(run_module, 'container_update', args)

    def assert_untouched(self):
        assert names_like(self.via) == [self.via], 'no backup and no second container'
        current = inspect(self.via)
        assert current['Id'] == self.via_id and current['State']['Running']
        assert current['Image'] == self.old_image
        assert sandbox.docker('exec', self.via, 'cat', '/data/file').strip() == 'precious'
        assert image_id(self.via_repo + ':1') == self.old_image, 'the tag did not move'

    def assert_updated(self, result):
        assert not result.failed, result
        assert [(c['name'], c['action']) for c in result['containers']] == [(self.via, 'updated')]
        assert names_like(self.via) == [self.via]
        current = inspect(self.via)
        assert current['Image'] == self.new_image and current['State']['Running']
        assert sandbox.docker('exec', self.via, 'cat', '/data/file').strip() == 'precious'


def timed(function, *args, **kwargs):
    began = time.monotonic()
    result = function(*args, **kwargs)
    result.seconds = time.monotonic() - began
    return result


def both(world, check_options=None, update_options=None):
    """image_age_info and container_update under the same fault, at the same time (they are independent)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        checked = pool.submit(world.check, **(check_options or {}))
        updated = pool.submit(world.update, **(update_options or {}))
        return checked.result(), updated.result()


@pytest.fixture
def world(sb, containers, unique, tmp_path, faults):
    return World(sb, containers, unique, tmp_path, faults)


# fault id: (proxy mode and options, words the reason must hold, module options, seconds it may take)
FAULTS = {
    'down': (('down', {}), r'127\.0\.0\.1:5119: connection refused', {}, 30),
    '401': (('status', dict(code=401)), r'no basic auth credentials|unauthorized|\b401\b', {}, 30),
    '429': (('status', dict(code=429, retry_after=120)), r'toomanyrequests', {}, 30),
    '500': (('status', dict(code=500)), r'\b500:? Internal Server Error', {}, 30),
    'drop-mid-manifest': (('drop', dict(match='/manifests/')),
                          r'connection broke off in the middle of an answer \(unexpected EOF\)', {}, 30),
    # Slower than the module's timeout: the daemon asks for the manifest without a limit of its own.
    'slow-past-module-timeout': (('slow', dict(delay=300, match='/manifests/')),
                                 r'timed out waiting for the registry \((the Docker daemon gave )?no answer within 5 s\)',
                                 dict(timeout=5), 30),
    # Slower than the daemon's own 15 s limit for the /v2/ ping, with the module's default timeout.
    # The look-up (made by the target itself) gives a registry 15 s, as the daemon gives its first request.
    'slow-past-daemon-timeout': (('slow', dict(delay=300)), r'no answer in time \((Client\.Timeout|context deadline) '
                                 r'exceeded|timed out waiting for the registry \(no answer within 15 s\)', {},
                                 DAEMON_PING_TIMEOUT + 25),
}


@pytest.mark.parametrize('fault', sorted(FAULTS))
def test_registry_fault(world, faults, fault):
    (mode, options), words, module_options, seconds = FAULTS[fault]
    faults.set(mode, **options)

    checked, updated = both(world, module_options, module_options)

    for result in (checked, updated):
        assert 'Traceback' not in result.stdout + result.stderr
        assert result.seconds < seconds, (fault, result.seconds)
    assert not checked.failed, checked
    entries = dict((c['name'], c) for c in checked['containers'])
    via = entries[world.via]
    assert via['update_available'] is None, via
    assert via['reason'].startswith('registry error: ' + PROXY), via['reason']
    assert re.search(words, via['reason']), via['reason']
    assert via['error'] and via['error'] in via['reason']
    assert entries[world.direct]['update_available'] is True, 'the other registry is fine'
    assert checked['summary']['unknown'] == 1 and checked['summary']['updates_available'] == 1

    assert updated.failed
    entry = updated['containers'][0]
    assert entry['name'] == world.via and entry['action'] == 'failed', entry
    assert entry['message'].startswith('Nothing was changed: pull failed: ' + PROXY), entry['message']
    assert re.search(words, entry['message']), entry['message']
    assert updated['msg'] == '1 of 1 containers were not updated: %s.' % world.via
    world.assert_untouched()
    if mode != 'down':
        assert world.asked_proxy(), 'the daemon talked to the proxy'

    faults.set('pass')
    asked = len(faults.log)
    world.assert_updated(world.update())
    assert faults.requests(asked), 'the pull went through the proxy'


def test_connection_dropped_in_every_blob_download(world, faults):
    """The daemon retries a broken download a few times, then the pull fails; the look-up, which needs
    only the manifest, still sees the newer image."""
    faults.set('drop', match='/blobs/')

    checked, updated = both(world)

    seen = dict((c['name'], c['update_available']) for c in checked['containers'])
    assert seen == {world.via: True, world.direct: True}
    assert updated.failed and 'Traceback' not in updated.stdout + updated.stderr
    entry = updated['containers'][0]
    assert entry['action'] == 'failed'
    assert entry['message'].startswith('Nothing was changed: pull failed: ' + PROXY), entry['message']
    assert re.search(r'download failed after attempts=\d+: the connection broke off in the middle of an answer '
                     r'\(unexpected EOF\)', entry['message']), entry['message']
    assert updated.seconds < 45
    assert [line for line in faults.log if line[2].startswith('dropped after')], 'blobs were cut off mid-download'
    world.assert_untouched()

    faults.set('pass')
    world.assert_updated(world.update())


def test_a_connection_dropped_once_mid_layer_is_resumed(world, faults):
    """Docker asks again for the rest of the layer (a Range request) and the update goes through."""
    faults.set('drop', match='/blobs/' + world.layer, times=1)

    result = world.update()

    world.assert_updated(result)
    layer_requests = [line for line in faults.log if line[1].endswith(world.layer) and line[0] == 'GET']
    outcomes = [outcome for _method, _path, outcome in layer_requests]
    assert any(o.startswith('dropped after') for o in outcomes), outcomes
    assert 'upstream 206' in outcomes, 'the second try asked for the rest only'


def test_the_role_reports_a_pull_cut_off_mid_download(world, faults, containers, tmp_path, unique):
    """The check sees the newer image, the pull breaks off: the fleet report says so for that container,
    and another container of the host, on an image of its own, is patched.

    Only the image configuration is cut off: the engine downloads a layer once for every pull that needs
    it, so a layer cut off for one repository would fail the other container's pull of it too. And the
    other container is not world.direct: its pull, side by side with the one through the proxy, fetches the
    same image, and when it lands first the engine has the configuration and skips the cut-off download."""
    other_ref = world.repo + '-other:1'
    sandbox.publish(other_ref, cmd=SLEEPER)
    other = containers.run('other-' + unique, other_ref)
    sandbox.publish(other_ref, cmd=SLEEPER, labels={'v': '2'})
    faults.set('drop', match='/blobs/' + world.new_image)
    report_dir = tmp_path / 'report'
    extra = dict(patch_containers_docker_host=world.docker_host, patch_containers_state_dir=str(tmp_path / 'role'),
                 patch_containers_include=[world.via, other], patch_containers_stable_seconds=1,
                 patch_containers_report_dir=str(report_dir), patch_containers_report_formats=['json'],
                 patch_containers_hosts='localhost')
    proc = run_playbook('patchops.docker.patch_containers', extra_vars=extra)

    assert proc.returncode != 0, 'the host failed'
    assert 'Traceback' not in proc.stdout + proc.stderr
    report = json.loads((report_dir / 'patch-report.json').read_text())
    host = report['hosts'][0]
    assert host['status'] == 'failed', host
    entries = dict((c['name'], c) for c in host['containers'])
    via = entries[world.via]
    assert via['action'] == 'failed', via
    assert via['message'].startswith('Nothing was changed: pull failed: ' + PROXY), via
    assert entries[other]['action'] == 'updated', entries[other]
    assert entries[world.direct]['action'] == 'excluded', entries[world.direct]
    world.assert_untouched()
