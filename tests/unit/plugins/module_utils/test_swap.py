"""The swap's test pause, and how a daemon that does not answer is told from a container that is gone."""
import time

import pytest
import requests
from docker.errors import APIError, NotFound

from ansible_collections.patchops.docker.plugins.module_utils import swap


class Api:
    """Answers inspect_container with one canned outcome."""

    def __init__(self, outcome):
        self.outcome = outcome

    def inspect_container(self, container_id):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def not_found():
    response = requests.Response()
    response.status_code = 404
    return NotFound('404 Client Error', response=response, explanation='No such container: abc')


def test_only_a_404_means_the_container_is_gone():
    assert swap._exists(Api({'Id': 'abc'}), 'abc') == {'Id': 'abc'}
    assert swap._exists(Api(not_found()), 'abc') is None


def test_a_silent_daemon_is_not_a_missing_container():
    gone = requests.exceptions.ConnectionError("('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))")
    with pytest.raises(requests.exceptions.ConnectionError):
        swap._exists(Api(gone), 'abc')
    response = requests.Response()
    response.status_code = 500
    with pytest.raises(APIError):
        swap._exists(Api(APIError('500 Server Error', response=response, explanation='boom')), 'abc')


def test_why_restoring_failed_reads_as_one_clause():
    gone = requests.exceptions.ConnectionError("('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))")
    assert swap._trouble(gone) == 'the Docker daemon did not answer (No such file or directory)'
    assert swap._trouble(RuntimeError('the original container abc is gone')) == 'the original container abc is gone'
    response = requests.Response()
    response.status_code = 409
    refused = APIError('409 Client Error', response=response, explanation='Conflict. The name is in use')
    assert 'Conflict' in swap._trouble(refused)


def test_the_pause_goes_on_once_the_resume_file_exists(monkeypatch, tmp_path):
    resume = tmp_path / 'resume'
    resume.write_text('')
    monkeypatch.setenv(swap.PAUSE_ENV, 'renamed')
    monkeypatch.setenv(swap.RESUME_ENV, str(resume))
    began = time.monotonic()
    swap._pause_point('renamed')
    assert time.monotonic() - began < 1


def test_the_pause_waits_without_a_resume_file_and_only_at_its_point(monkeypatch, tmp_path):
    monkeypatch.setattr(swap, 'PAUSE_SECONDS', 0.3)
    monkeypatch.setenv(swap.PAUSE_ENV, 'created')
    monkeypatch.setenv(swap.RESUME_ENV, str(tmp_path / 'never'))
    began = time.monotonic()
    swap._pause_point('stopped')
    assert time.monotonic() - began < 0.1, 'another point does not pause'
    swap._pause_point('created')
    assert time.monotonic() - began >= 0.3
