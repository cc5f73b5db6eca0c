"""The journal on a real filesystem: modes, stages, leftovers, the lock."""
import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.patchops.docker.plugins.module_utils import journal as journal_mod


@pytest.fixture
def journal(tmp_path):
    return journal_mod.Journal(str(tmp_path / 'state'))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_entries_are_private_and_move_through_the_stages(journal):
    journal.prepare()
    entry = journal.begin(dict(old_id='abc', name='web', backup='web.patchops-backup', was_running=True))
    journal.advance(entry, journal_mod.STAGE_RENAMED)
    journal.advance(entry, journal_mod.STAGE_CREATED, new_id='def')
    path = os.path.join(journal.entries_dir, 'abc.json')
    assert mode(journal.state_dir) == 0o700 and mode(journal.entries_dir) == 0o700 and mode(path) == 0o600
    (left,) = journal.leftovers()
    assert (left['stage'], left['new_id'], left['name']) == ('created', 'def', 'web')
    journal.finish(entry)
    assert journal.leftovers() == []


def test_a_stage_recovery_would_not_know_is_never_written(journal):
    journal.prepare()
    entry = journal.begin(dict(old_id='abc', name='web', backup='web.patchops-backup', was_running=True))
    with pytest.raises(ValueError):
        journal.advance(entry, 'started')
    (left,) = journal.leftovers()
    assert left['stage'] == journal_mod.STAGE_STOPPING


def test_no_directory_means_no_leftovers_and_nothing_created(tmp_path):
    journal = journal_mod.Journal(str(tmp_path / 'missing'))
    assert journal.leftovers() == []
    assert not os.path.exists(str(tmp_path / 'missing'))


def test_a_corrupt_entry_is_ignored(journal):
    journal.prepare()
    with open(os.path.join(journal.entries_dir, 'bad.json'), 'w') as handle:
        handle.write('{not json')
    assert journal.leftovers() == []


def test_the_lock_keeps_a_second_holder_out(journal):
    journal.lock(1)
    try:
        other = subprocess.run(
            [sys.executable, '-c', 'import fcntl, sys; f = open(sys.argv[1]); '
             'fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)', os.path.join(journal.state_dir, 'lock')],
            capture_output=True, check=False)
        assert other.returncode != 0, 'the lock is held while a run works'
        second = journal_mod.Journal(journal.state_dir)
        with pytest.raises(journal_mod.LockTimeout) as err:
            second.lock(0)
        assert 'holds the lock' in str(err.value)
    finally:
        journal.unlock()
    journal_mod.Journal(journal.state_dir).lock(0)


def test_last_run_round_trips(journal):
    journal.record_run([dict(name='web', old_image_id='sha256:a', new_image_id='sha256:b', image='web:1')])
    assert journal.last_run()['containers'][0]['old_image_id'] == 'sha256:a'
    with open(os.path.join(journal.state_dir, journal_mod.LAST_RUN_FILE)) as handle:
        assert json.load(handle)['containers'][0]['name'] == 'web'
