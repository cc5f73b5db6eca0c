"""Registry error wording and the one-look-up-per-reference rule, without a registry."""
import threading

import requests
from docker.errors import APIError

from ansible_collections.patchops.docker.plugins.module_utils import registry


def api_error(status, explanation):
    response = requests.Response()
    response.status_code = status
    return APIError('%d Server Error' % status, response=response, explanation=explanation)


def test_connection_refused_names_the_registry():
    exc = api_error(500, 'Get "http://127.0.0.1:5115/v2/": dial tcp 127.0.0.1:5115: connect: connection refused')
    assert registry.describe_registry_error(exc) == '127.0.0.1:5115: connection refused'


def test_unauthorized_keeps_the_registry_words():
    exc = api_error(401, 'unauthorized: authentication required')
    assert registry.describe_registry_error(exc) == 'HTTP 401: unauthorized: authentication required'


def test_credentials_in_urls_are_redacted():
    exc = api_error(500, 'Get "https://alice:s3cret@registry.example.com/v2/": EOF')
    text = registry.describe_registry_error(exc)
    assert 's3cret' not in text and 'alice' not in text
    assert text == 'registry.example.com: the connection was closed without an answer (EOF)'
    assert registry.redact('pull https://alice:s3cret@registry.example.com/v2/ failed') == \
        'pull https://***@registry.example.com/v2/ failed'


# What Engine 20.10 said through /distribution/{name}/json and the pull stream when the fault proxy
# in front of the sandbox registry misbehaved (tests/integration/test_faults_registry.py).
DAEMON_SAID = [
    (500, 'Head "http://127.0.0.1:5119/v2/itest/x/manifests/1": no basic auth credentials',
     '127.0.0.1:5119: no basic auth credentials'),
    (429, 'toomanyrequests: too many requests, retry later',
     '127.0.0.1:5119: HTTP 429: toomanyrequests: too many requests, retry later'),
    (500, 'received unexpected HTTP status: 500 Internal Server Error',
     '127.0.0.1:5119: received unexpected HTTP status: 500 Internal Server Error'),
    (500, 'unexpected EOF', '127.0.0.1:5119: the connection broke off in the middle of an answer (unexpected EOF)'),
    (500, 'Get "http://127.0.0.1:5119/v2/": net/http: request canceled (Client.Timeout exceeded while awaiting headers)',
     '127.0.0.1:5119: no answer in time (Client.Timeout exceeded while awaiting headers)'),
    (500, 'Get "http://127.0.0.1:5119/v2/": context deadline exceeded', '127.0.0.1:5119: no answer in time (context deadline exceeded)'),
    (500, 'Get "http://127.0.0.1:5119/v2/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
     '127.0.0.1:5119: no answer in time (Client.Timeout exceeded while awaiting headers)'),
    (None, 'read tcp 127.0.0.1:49336->127.0.0.1:5119: read: connection reset by peer', '127.0.0.1:5119: connection reset by peer'),
    (None, 'error pulling image configuration: download failed after attempts=6: unexpected EOF',
     '127.0.0.1:5119: error pulling image configuration: download failed after attempts=6: the connection broke off in '
     'the middle of an answer (unexpected EOF)'),
]


def test_what_the_daemon_said_names_the_registry_and_the_problem():
    for status, said, expected in DAEMON_SAID:
        exc = api_error(status, said) if status else Exception(said)
        if not status:
            exc.explanation = said
        assert registry.describe_registry_error(exc, '127.0.0.1:5119') == expected


def test_a_full_disk_is_the_host_s_not_the_registry_s():
    exc = Exception('x')
    exc.explanation = 'write /var/lib/docker/tmp/GetImageBlob1966051808: no space left on device'
    assert registry.describe_registry_error(exc, '127.0.0.1:5115') == (
        'the Docker host ran out of disk space (write /var/lib/docker/tmp/GetImageBlob1966051808: no space left on device)')


def test_the_daemon_s_500_is_not_shown_as_the_registry_s_status():
    text = registry.describe_registry_error(api_error(500, 'unexpected EOF'))
    assert '500' not in text


def test_a_client_timeout_says_how_long_the_daemon_was_given():
    exc = requests.exceptions.ConnectionError('Read timed out. (read timeout=5)')
    assert registry.describe_registry_error(exc, '127.0.0.1:5119', 5) == \
        '127.0.0.1:5119: timed out waiting for the registry (the Docker daemon gave no answer within 5 s)'


def test_registry_of_a_reference():
    assert registry.registry_of('127.0.0.1:5119/itest/x:1') == '127.0.0.1:5119'
    assert registry.registry_of('docker.io/library/nginx:1.25') == 'docker.io'
    assert registry.registry_of('localhost/app:1') == 'localhost'
    assert registry.registry_of('team/app:1') is None
    assert registry.registry_of('b:1') is None


def test_a_failed_look_up_names_the_registry_of_its_reference():
    api = CountingApi({'127.0.0.1:5119/a/b:1': api_error(500, 'unexpected EOF')})
    result = registry.lookup_remote_digest(api, '127.0.0.1:5119/a/b:1')
    assert result.error == '127.0.0.1:5119: the connection broke off in the middle of an answer (unexpected EOF)'


class CountingApi:
    """Stands in for the daemon's distribution endpoint; records every call."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []
        self.lock = threading.Lock()

    def inspect_distribution(self, reference):
        with self.lock:
            self.calls.append(reference)
        answer = self.answers[reference]
        if isinstance(answer, Exception):
            raise answer
        return {'Descriptor': {'digest': answer}}


def test_each_reference_is_looked_up_once_and_failures_stay_isolated():
    good = 'sha256:' + 'e' * 64
    api = CountingApi({'a:1': good, 'b:1': api_error(404, 'manifest unknown'), 'c:1': good})
    results = registry.lookup_remote_digests(api, ['a:1', 'b:1', 'a:1', 'c:1', 'a:1'], concurrency=3)
    assert sorted(api.calls) == ['a:1', 'b:1', 'c:1']
    assert results['a:1'].digest == good and results['a:1'].error is None
    assert results['b:1'].digest is None and results['b:1'].error == 'HTTP 404: manifest unknown'
    assert results['c:1'].digest == good


def test_no_references_no_calls():
    api = CountingApi({})
    assert registry.lookup_remote_digests(api, [], concurrency=8) == {}
    assert api.calls == []
