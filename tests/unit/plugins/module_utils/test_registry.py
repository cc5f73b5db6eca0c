"""Registry error wording and the one-look-up-per-reference rule, without a registry."""
import threading

import requests
from docker.errors import APIError

from ansible_collections.patchops.docker.plugins.module_utils import platforms, registry
from ansible_collections.patchops.docker.plugins.module_utils.image_ref import parse


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
    client = CountingClient({'127.0.0.1:5119/a/b:1': registry.RegistryError('connection refused')})
    result = registry.lookup_remote_digest(client, parse('127.0.0.1:5119/a/b:1'))
    assert result.error == '127.0.0.1:5119: connection refused'
    assert result.digest is None


class CountingClient:
    """Stands in for RegistryClient at its boundary (one HEAD per tag); records every call."""

    def __init__(self, answers, documents=None):
        self.answers = answers
        self.documents = documents or {}
        self.calls = []
        self.lock = threading.Lock()

    def head_tag(self, ref):
        with self.lock:
            self.calls.append(str(ref))
        answer = self.answers[str(ref)]
        if isinstance(answer, Exception):
            raise answer
        return answer, platforms.MEDIA_OCI_INDEX

    def platform_digest(self, ref, digest, platform):
        with self.lock:
            self.calls.append(digest)
        document = self.documents.get(digest)
        if document is None:
            raise registry.RegistryError('HTTP 404: manifest unknown')
        if 'manifests' not in document:
            return digest
        chosen = platforms.select_manifest(document, platform)
        if chosen is None:
            raise registry.RegistryError('tag %s has no image for %s' % (ref.tag, platforms.format_platform(platform)))
        return chosen

    def config_digest(self, ref, manifest_digest):
        return (self.documents.get(manifest_digest) or {}).get('config', {}).get('digest')


def test_each_reference_is_looked_up_once_and_failures_stay_isolated():
    good = 'sha256:' + 'e' * 64
    client = CountingClient({'docker.io/library/a:1': good,
                             'docker.io/library/b:1': registry.RegistryError('HTTP 404: manifest unknown'),
                             'docker.io/library/c:1': good})
    results = registry.lookup_remote_digests(client, ['a:1', 'b:1', 'a:1', 'c:1', 'a:1'], concurrency=3)
    assert sorted(client.calls) == ['docker.io/library/a:1', 'docker.io/library/b:1', 'docker.io/library/c:1']
    assert results['a:1'].digest == good and results['a:1'].error is None
    assert results['b:1'].digest is None and results['b:1'].error == 'docker.io: HTTP 404: manifest unknown'
    assert results['c:1'].digest == good


def test_no_references_no_calls():
    client = CountingClient({})
    assert registry.lookup_remote_digests(client, [], concurrency=8) == {}
    assert client.calls == []


def digest(char):
    return 'sha256:' + char * 64


AMD64 = platforms.parse('linux/amd64')


def index(*entries):
    return {'manifests': [{'digest': d, 'platform': dict(zip(('os', 'architecture', 'variant'), p.split('/')))}
                          for d, p in entries]}


def test_an_index_that_moved_for_other_platforms_only_is_no_update():
    old_index = index((digest('a'), 'linux/amd64'), (digest('b'), 'linux/arm64/v8'))
    new_index = index((digest('a'), 'linux/amd64'), (digest('c'), 'linux/arm64/v8'))
    client = CountingClient({}, {digest('1'): old_index, digest('2'): new_index})
    check = registry.check_platform(client, parse('r.example/app:1'), digest('2'), {digest('1')}, AMD64)
    assert check == registry.PlatformCheck(False, digest('a'), 'only other platforms changed', None)


def test_an_index_whose_platform_image_moved_is_an_update():
    old_index = index((digest('a'), 'linux/amd64'), (digest('b'), 'linux/arm64/v8'))
    new_index = index((digest('d'), 'linux/amd64'), (digest('b'), 'linux/arm64/v8'))
    client = CountingClient({}, {digest('1'): old_index, digest('2'): new_index})
    check = registry.check_platform(client, parse('r.example/app:1'), digest('2'), {digest('1')}, AMD64)
    assert check.changed is True and check.platform_digest == digest('d') and check.error is None


def test_a_plain_manifest_that_became_an_index_of_itself_is_no_update():
    new_index = index((digest('a'), 'linux/amd64'), (digest('b'), 'linux/arm64/v8'))
    client = CountingClient({}, {digest('2'): new_index})
    check = registry.check_platform(client, parse('r.example/app:1'), digest('2'), {digest('a')}, AMD64)
    assert check.changed is False


def test_an_index_that_became_a_plain_manifest_of_the_same_image_is_no_update():
    old_index = index((digest('a'), 'linux/amd64'), (digest('b'), 'linux/arm64/v8'))
    client = CountingClient({}, {digest('1'): old_index, digest('a'): {'config': {'digest': digest('f')}}})
    check = registry.check_platform(client, parse('r.example/app:1'), digest('a'), {digest('1')}, AMD64)
    assert check.changed is False


def test_an_index_without_this_platform_is_that_container_s_error():
    new_index = index((digest('b'), 'linux/arm64/v8'))
    client = CountingClient({}, {digest('2'): new_index})
    check = registry.check_platform(client, parse('r.example/app:1'), digest('2'), {digest('1')}, AMD64)
    assert check.changed is None
    assert check.error == 'r.example: tag 1 has no image for linux/amd64'


def test_when_the_old_index_is_gone_the_config_digest_decides():
    new_index = index((digest('a'), 'linux/amd64'), (digest('c'), 'linux/arm64/v8'))
    documents = {digest('2'): new_index, digest('a'): {'config': {'digest': digest('f')}}}
    client = CountingClient({}, documents)
    same = registry.check_platform(client, parse('r.example/app:1'), digest('2'), {digest('1')}, AMD64, digest('f'))
    assert same.changed is False
    other = registry.check_platform(client, parse('r.example/app:1'), digest('2'), {digest('1')}, AMD64, digest('9'))
    assert other.changed is True
    unknown = registry.check_platform(client, parse('r.example/app:1'), digest('2'), {digest('1')}, AMD64)
    assert unknown.changed is True


def test_insecure_registries_follow_the_daemon_s_settings():
    config = {'IndexConfigs': {'reg.example:5000': {'Secure': False}, 'docker.io': {'Secure': True}},
              'InsecureRegistryCIDRs': ['127.0.0.0/8', '10.9.0.0/16']}
    client = registry.RegistryClient(config)
    assert client._insecure('reg.example:5000')
    assert client._insecure('127.0.0.1:5115')
    assert client._insecure('10.9.3.4:443')
    assert not client._insecure('10.8.0.1')
    assert client._bases_for('127.0.0.1:5115') == ['https://127.0.0.1:5115', 'http://127.0.0.1:5115']
    assert client._bases_for('10.8.0.1:5000') == ['https://10.8.0.1:5000']
    mirrored = registry.RegistryClient({'Mirrors': ['https://mirror.example/']})
    assert mirrored._bases_for('docker.io') == ['https://mirror.example', 'https://' + registry.DOCKER_HUB_API]
    assert registry.RegistryClient()._insecure('127.0.0.1:5000'), 'loopback is insecure by default, as for the daemon'
