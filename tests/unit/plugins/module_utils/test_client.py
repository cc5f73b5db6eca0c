"""How SDK and requests errors read, and which of them mean the daemon did not answer at all."""
import requests
from docker.errors import APIError
from urllib3.exceptions import ProtocolError

from ansible_collections.patchops.docker.plugins.module_utils.client import DockerClient, lost_connection, short_reason
from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError


def api_error(status, explanation):
    response = requests.Response()
    response.status_code = status
    return APIError('%d Server Error' % status, response=response, explanation=explanation)


def aborted(inner):
    """What requests raises when the daemon's socket goes away under a request."""
    return requests.exceptions.ConnectionError(ProtocolError('Connection aborted.', inner))


def test_a_vanished_socket_reads_as_its_os_error():
    exc = aborted(FileNotFoundError(2, 'No such file or directory'))
    assert str(exc) == "('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"
    assert short_reason(exc) == 'No such file or directory'
    assert lost_connection(exc)


def test_a_refused_or_closed_connection_reads_as_its_cause():
    assert short_reason(aborted(ConnectionRefusedError(111, 'Connection refused'))) == 'Connection refused'
    closed = aborted(ConnectionResetError('Remote end closed connection without response'))
    assert short_reason(closed) == 'Remote end closed connection without response'


def test_a_read_timeout_says_how_long_it_waited():
    exc = requests.exceptions.ReadTimeout("UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. "
                                          "(read timeout=5)")
    assert short_reason(exc) == 'no answer within 5 s (read timed out)'
    assert lost_connection(exc)


def test_errno_clauses_still_win():
    exc = requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=2375): Max retries exceeded with url: /_ping (Caused by "
        "NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new "
        "connection: [Errno 111] Connection refused'))")
    assert short_reason(exc) == 'Connection refused'


def test_an_answer_from_the_daemon_is_not_a_lost_connection():
    assert not lost_connection(api_error(404, 'No such container: web'))
    assert not lost_connection(api_error(500, 'driver failed'))
    assert not lost_connection(ValueError('not a Docker error'))


class _Failed(Exception):
    pass


class _Module:
    """What DockerClient.run needs of an AnsibleModule: fail_json, which ends the module."""

    def __init__(self):
        self.failed_with = None

    def fail_json(self, **kwargs):
        self.failed_with = kwargs
        raise _Failed()


def _client(module):
    client = DockerClient.__new__(DockerClient)  # run() needs no connection
    client.module, client.docker_host = module, 'unix:///run/x.sock'
    return client


def test_a_docker_error_is_one_sentence_with_the_traceback_kept_for_vvv():
    module = _Module()

    def work():
        raise APIError('409 Client Error: Conflict', explanation='the container name is in use')

    try:
        _client(module).run(work)
    except _Failed:
        pass
    assert module.failed_with['msg'].startswith('Docker API error on unix:///run/x.sock: ')
    assert module.failed_with['msg'].count('.') >= 1 and '\n' not in module.failed_with['msg']
    assert 'Traceback (most recent call last)' in module.failed_with['exception']
    assert 'in work' in module.failed_with['exception']


def test_our_own_errors_are_one_sentence_without_a_traceback():
    module = _Module()

    def work():
        raise PatchopsError('concurrency must be 1 or more, not 0.')

    try:
        _client(module).run(work)
    except _Failed:
        pass
    assert module.failed_with == {'msg': 'concurrency must be 1 or more, not 0.'}
