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
    assert 'https://***@registry.example.com' in text


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
