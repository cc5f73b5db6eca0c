"""The disk filling up during a pull (issue 6, item 2).

An engine beside the sandbox's has its data root on a small tmpfs of its own (sandbox.small_engine_up);
the registry gets a newer image whose new layer is bigger than the room left on that disk. The pull
fails, and container_update must say so and leave the running container, its data and its image tag
as they were; once the disk has room again (the tmpfs grown in place), the next run updates it.
"""
import json
import os

import pytest

from conftest import SLEEPER, run_module, sandbox

pytestmark = pytest.mark.once

DISK_MB = 32
LAYER_MB = 40


@pytest.fixture(scope='module')
def small(sb):
    info = sandbox.small_engine_up(DISK_MB)
    yield info
    sandbox.small_engine_down()


def inspect(name):
    return json.loads(sandbox.small_engine_docker('inspect', name))[0]


def names_like(prefix):
    names = sandbox.small_engine_docker('ps', '-a', '--format', '{{.Names}}').split()
    return sorted(n for n in names if n.startswith(prefix))


def image_id(ref):
    return json.loads(sandbox.small_engine_docker('image', 'inspect', ref))[0]['Id']


def test_a_pull_that_fills_the_disk_changes_nothing_and_the_next_run_updates(small, sb, unique, tmp_path):
    repo = '%s/itest/disk-%s' % (sb['registry'], unique)
    name = 'disk-' + unique
    sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'])
    sandbox.small_engine_docker('pull', '-q', repo + ':1')
    try:
        sandbox.small_engine_docker('run', '-d', '--network', 'none', '--name', name, repo + ':1', *SLEEPER)
        sandbox.small_engine_docker('exec', name, 'sh', '-c', 'echo precious > /data/file')
        before = inspect(name)
        newer = sandbox.publish(repo + ':1', cmd=SLEEPER, volumes=['/data'], labels={'v': '2'},
                                files={'/layer': os.urandom(LAYER_MB * 1024 * 1024)})
        sandbox.docker('rmi', newer['id'])  # only the registry keeps it
        free_before = sandbox.small_engine_info()['free_mb']
        assert free_before < LAYER_MB, 'the new layer does not fit'
        args = dict(docker_host=small['docker_host'], containers=[name], state_dir=str(tmp_path / 'state'),
                    stable_seconds=1, health_timeout=20)

        result = run_module('container_update', args)

        assert result.failed and 'Traceback' not in result.stdout + result.stderr
        entry = result['containers'][0]
        assert entry['action'] == 'failed', entry
        assert entry['message'].startswith('Nothing was changed: pull failed: the Docker host ran out of disk space ('), \
            entry['message']
        assert entry['message'].endswith(': no space left on device).'), entry['message']
        assert names_like(name) == [name], 'no backup and no second container'
        now = inspect(name)
        assert now['Id'] == before['Id'] and now['State']['Running'] and now['Image'] == before['Image']
        assert sandbox.small_engine_docker('exec', name, 'cat', '/data/file').strip() == 'precious'
        assert image_id(repo + ':1') == before['Image'], 'the tag did not move'
        assert sandbox.small_engine_info()['free_mb'] >= free_before - 1, 'the failed pull left no partial layer'

        sandbox.small_engine_resize(DISK_MB + 3 * LAYER_MB)
        again = run_module('container_update', args)

        assert not again.failed, again
        assert again['containers'][0]['action'] == 'updated'
        assert names_like(name) == [name]
        now = inspect(name)
        assert now['Image'] == newer['id'] and now['State']['Running']
        assert sandbox.small_engine_docker('exec', name, 'cat', '/data/file').strip() == 'precious'
    finally:
        sandbox.small_engine_docker('rm', '-f', '-v', name, name + '.patchops-backup', check=False)
