"""How SDK and requests errors read, and which of them mean the daemon did not answer at all."""
import requests
from docker.errors import APIError
from urllib3.exceptions import ProtocolError

from ansible_collections.patchops.docker.plugins.module_utils.client import lost_connection, short_reason


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
