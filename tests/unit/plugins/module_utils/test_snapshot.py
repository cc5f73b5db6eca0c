"""Snapshots on a real filesystem (GNU cp does the copying); the Docker side is in tests/integration/test_snapshot.py."""
import os
import stat
import subprocess

import pytest

from ansible_collections.patchops.docker.plugins.module_utils.snapshot import (
    MANIFEST,
    SnapshotError,
    Snapshots,
    measure,
    read_manifest,
    volumes_of,
    wanted,
)


def run_command(args):
    """What AnsibleModule.run_command returns for a list of arguments: (rc, stdout, stderr) as text."""
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


class VolumeApi(object):
    """Answers inspect_volume from a dict: the Docker API's shape, for the refusal logic alone."""

    def __init__(self, volumes):
        self.volumes = volumes

    def inspect_volume(self, name):
        return self.volumes[name]


def container(*mounts):
    return {'Name': '/db', 'Mounts': [dict(Type='volume', Name=n, Destination=d) for n, d in mounts]
            + [dict(Type='bind', Source='/etc/hosts', Destination='/etc/hosts')]}


@pytest.fixture
def volume_dirs(tmp_path):
    data = tmp_path / 'docker' / 'data'
    logs = tmp_path / 'docker' / 'logs'
    data.mkdir(parents=True)
    logs.mkdir()
    (data / 'db').write_text('schema=1\n')
    (data / 'sub').mkdir(mode=0o750)
    (data / 'sub' / 'f').write_bytes(b'x' * 10000)
    os.link(str(data / 'sub' / 'f'), str(data / 'hard'))
    os.symlink('sub/f', str(data / 'link'))
    (logs / 'app.log').write_text('v1\n')
    return [dict(name='data', destination='/data', mountpoint=str(data)),
            dict(name='logs', destination='/logs', mountpoint=str(logs))]


def test_the_option_or_the_label_opts_in():
    assert wanted('volumes', {}) is True
    assert wanted('none', {'patchops.docker.snapshot': 'volumes'}) is True
    assert wanted('none', {'patchops.docker.snapshot': 'none'}) is False
    assert wanted('none', None) is False


def test_only_local_volumes_with_data_on_this_host_are_accepted(tmp_path):
    api = VolumeApi({
        'ok': dict(Driver='local', Mountpoint=str(tmp_path), Options=None),
        'nfs': dict(Driver='local', Mountpoint=str(tmp_path), Options={'type': 'nfs', 'device': ':/export',
                                                                       'o': 'addr=10.0.0.1'}),
        'plugin': dict(Driver='rexray/ebs', Mountpoint='/var/lib/docker/plugins/x/rootfs'),
        'remote': dict(Driver='local', Mountpoint=str(tmp_path / 'not-here')),
    })
    assert volumes_of(api, container(('ok', '/data'))) == [dict(name='ok', destination='/data',
                                                                mountpoint=str(tmp_path))]
    refusals = {
        'nfs': "Volume nfs mounts :/export (type nfs); only data a local volume keeps on this host's disk can be "
               "snapshotted.",
        'plugin': 'Volume plugin uses the volume driver rexray/ebs; only local volumes can be snapshotted.',
        'remote': 'The data of volume remote (%s) is not on the host this module runs on; run it on the Docker '
                  'host, as root.' % (tmp_path / 'not-here'),
    }
    for name, sentence in refusals.items():
        with pytest.raises(SnapshotError) as caught:
            volumes_of(api, container(('ok', '/data'), (name, '/other')))
        assert str(caught.value) == sentence


def test_measure_counts_allocated_bytes_and_each_hard_link_once(volume_dirs):
    size, files = measure([v['mountpoint'] for v in volume_dirs])
    assert files == 8  # data, db, sub, sub/f, hard, link, logs, app.log
    single = measure([volume_dirs[0]['mountpoint']])[0]
    assert size >= 10000 and single < size


def test_take_then_restore_gives_back_the_data_as_it_was(tmp_path, volume_dirs):
    snapshots = Snapshots(str(tmp_path / 'state'), run_command)
    path = snapshots.new_path('db', 'a' * 64)
    taken = snapshots.take(path, 'db', 'a' * 64, volume_dirs)
    assert taken['path'] == path and taken['bytes'] > 10000
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert read_manifest(path)['volumes'] == [dict(name='data', destination='/data'),
                                              dict(name='logs', destination='/logs')]
    data = volume_dirs[0]['mountpoint']
    with open(os.path.join(data, 'db'), 'w') as handle:
        handle.write('schema=2\n')
    os.unlink(os.path.join(data, 'link'))
    os.mkdir(os.path.join(data, 'added'))

    snapshots.restore(path, volume_dirs)

    assert sorted(os.listdir(data)) == ['db', 'hard', 'link', 'sub']
    with open(os.path.join(data, 'db')) as handle:
        assert handle.read() == 'schema=1\n'
    assert os.readlink(os.path.join(data, 'link')) == 'sub/f'
    assert os.stat(os.path.join(data, 'hard')).st_ino == os.stat(os.path.join(data, 'sub', 'f')).st_ino
    assert stat.S_IMODE(os.stat(os.path.join(data, 'sub')).st_mode) == 0o750


def test_restore_refuses_an_incomplete_snapshot_and_touches_nothing(tmp_path, volume_dirs):
    snapshots = Snapshots(str(tmp_path / 'state'), run_command)
    path = snapshots.new_path('db', 'b' * 64)
    snapshots.take(path, 'db', 'b' * 64, volume_dirs)
    os.unlink(os.path.join(path, MANIFEST))
    with pytest.raises(SnapshotError) as caught:
        snapshots.restore(path, volume_dirs)
    assert str(caught.value) == 'The snapshot %s is incomplete or gone, so the data cannot be put back.' % path
    assert os.path.exists(os.path.join(volume_dirs[0]['mountpoint'], 'db'))


def test_a_failed_copy_leaves_no_partial_snapshot(tmp_path, volume_dirs):
    snapshots = Snapshots(str(tmp_path / 'state'), run_command)
    gone = dict(name='gone', destination='/gone', mountpoint=str(tmp_path / 'vanished'))
    path = snapshots.new_path('db', 'c' * 64)
    with pytest.raises(SnapshotError) as caught:
        snapshots.take(path, 'db', 'c' * 64, volume_dirs + [gone])
    assert str(caught.value).startswith('The snapshot of volume gone failed: ')
    assert not os.path.exists(path)


def test_prune_keeps_the_newest_and_the_protected_and_removes_partial_copies(tmp_path, volume_dirs):
    snapshots = Snapshots(str(tmp_path / 'state'), run_command)
    paths = []
    for index in range(4):
        path = os.path.join(snapshots.container_dir('db'), '2026120%dT030000Z-%012d' % (index, index))
        snapshots.take(path, 'db', '%064d' % index, volume_dirs)
        paths.append(path)
    partial = os.path.join(snapshots.container_dir('db'), '20261209T030000Z-partial')
    os.makedirs(partial)

    removed = snapshots.prune('db', 2, protect={paths[0]})

    assert sorted(removed) == sorted([paths[1], partial])
    assert snapshots.complete('db') == [paths[0], paths[2], paths[3]]
