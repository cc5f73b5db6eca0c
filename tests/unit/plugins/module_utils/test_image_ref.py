# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tests for plugins/module_utils/image_ref.py.

The tables come from the Docker distribution reference test suite
(github.com/distribution/reference: reference_test.go and normalize_test.go),
restated for the normalising parser (ParseNormalizedNamed, as ``docker pull``
uses it), so every expectation carries the implicit ``docker.io`` and
``library/``. The property tests build references from the grammar.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import copy
import pickle
import re
import sys
import time

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ansible_collections.patchops.docker.plugins.module_utils import image_ref
from ansible_collections.patchops.docker.plugins.module_utils.image_ref import (
    ImageReference,
    InvalidReference,
    is_image_id,
    parse,
    same_repository,
)

SHA256_F = 'sha256:' + 'f' * 64
SHA512_F = 'sha512:' + 'f' * 128
SHA256_BUSYBOX = 'sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa'
SHA256_REDIS = 'sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c'
HEX64 = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a'

# Example counts keep the whole file under a few seconds; the grammar-built
# strategies below cost far more to draw than parse() costs to run.
PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HEAVY_PROPERTY_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=60)


# ---------------------------------------------------------------------------
# Table: valid references
# (input, domain, path, tag, digest, familiar), parsed with the default tag.
# ---------------------------------------------------------------------------
VALID = [
    # --- brief / everyday forms
    ('nginx', 'docker.io', 'library/nginx', 'latest', None, 'nginx:latest'),
    ('nginx:1.25', 'docker.io', 'library/nginx', '1.25', None, 'nginx:1.25'),
    ('patchops/app', 'docker.io', 'patchops/app', 'latest', None, 'patchops/app:latest'),
    ('ghcr.io/patchops/app:v1', 'ghcr.io', 'patchops/app', 'v1', None, 'ghcr.io/patchops/app:v1'),
    ('127.0.0.1:5115/x/y:1', '127.0.0.1:5115', 'x/y', '1', None, '127.0.0.1:5115/x/y:1'),
    ('localhost:5000/foo', 'localhost:5000', 'foo', 'latest', None, 'localhost:5000/foo:latest'),
    ('localhost/foo', 'localhost', 'foo', 'latest', None, 'localhost/foo:latest'),
    # a lone 'localhost' (no '/') is a Docker Hub name, and ':5000' its tag
    ('localhost', 'docker.io', 'library/localhost', 'latest', None, 'localhost:latest'),
    ('localhost:5000', 'docker.io', 'library/localhost', '5000', None, 'localhost:5000'),
    ('nginx@' + SHA256_F, 'docker.io', 'library/nginx', None, SHA256_F, 'nginx@' + SHA256_F),
    ('nginx:1.25@' + SHA256_F, 'docker.io', 'library/nginx', '1.25', SHA256_F, 'nginx:1.25@' + SHA256_F),
    # --- reference_test.go TestReferenceParse (normalised)
    ('test_com', 'docker.io', 'library/test_com', 'latest', None, 'test_com:latest'),
    ('test.com:tag', 'docker.io', 'library/test.com', 'tag', None, 'test.com:tag'),
    ('test.com:5000', 'docker.io', 'library/test.com', '5000', None, 'test.com:5000'),
    ('test.com/repo:tag', 'test.com', 'repo', 'tag', None, 'test.com/repo:tag'),
    ('test:5000/repo', 'test:5000', 'repo', 'latest', None, 'test:5000/repo:latest'),
    ('test:5000/repo:tag', 'test:5000', 'repo', 'tag', None, 'test:5000/repo:tag'),
    ('test:5000/repo@' + SHA256_F, 'test:5000', 'repo', None, SHA256_F, 'test:5000/repo@' + SHA256_F),
    ('test:5000/repo:tag@' + SHA256_F, 'test:5000', 'repo', 'tag', SHA256_F, 'test:5000/repo:tag@' + SHA256_F),
    ('lowercase:Uppercase', 'docker.io', 'library/lowercase', 'Uppercase', None, 'lowercase:Uppercase'),
    ('a/' * 127 + 'a:tag-puts-this-over-max', 'docker.io', 'a/' * 127 + 'a', 'tag-puts-this-over-max', None,
     'a/' * 127 + 'a:tag-puts-this-over-max'),
    ('sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com', 'bar/baz/quux', 'latest', None,
     'sub-dom1.foo.com/bar/baz/quux:latest'),
    ('sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com', 'bar/baz/quux', 'some-long-tag', None,
     'sub-dom1.foo.com/bar/baz/quux:some-long-tag'),
    ('b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io', 'test.example.com/my-app', 'test.example.com', None,
     'b.gcr.io/test.example.com/my-app:test.example.com'),
    ('xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com', 'myimage', 'xn--n3h.com', None, 'xn--n3h.com/myimage:xn--n3h.com'),
    ('xn--7o8h.com/myimage:xn--7o8h.com@' + SHA512_F, 'xn--7o8h.com', 'myimage', 'xn--7o8h.com', SHA512_F,
     'xn--7o8h.com/myimage:xn--7o8h.com@' + SHA512_F),
    ('foo_bar.com:8080', 'docker.io', 'library/foo_bar.com', '8080', None, 'foo_bar.com:8080'),
    ('foo/foo_bar.com:8080', 'docker.io', 'foo/foo_bar.com', '8080', None, 'foo/foo_bar.com:8080'),
    ('192.168.1.1', 'docker.io', 'library/192.168.1.1', 'latest', None, '192.168.1.1:latest'),
    ('192.168.1.1:tag', 'docker.io', 'library/192.168.1.1', 'tag', None, '192.168.1.1:tag'),
    ('192.168.1.1:5000', 'docker.io', 'library/192.168.1.1', '5000', None, '192.168.1.1:5000'),
    ('192.168.1.1/repo', '192.168.1.1', 'repo', 'latest', None, '192.168.1.1/repo:latest'),
    ('192.168.1.1:5000/repo', '192.168.1.1:5000', 'repo', 'latest', None, '192.168.1.1:5000/repo:latest'),
    ('192.168.1.1:5000/repo:5050', '192.168.1.1:5000', 'repo', '5050', None, '192.168.1.1:5000/repo:5050'),
    ('[2001:db8::1]/repo', '[2001:db8::1]', 'repo', 'latest', None, '[2001:db8::1]/repo:latest'),
    ('[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]', 'repo', 'tag', None, '[2001:db8:1:2:3:4:5:6]/repo:tag'),
    ('[2001:db8::1]:5000/repo', '[2001:db8::1]:5000', 'repo', 'latest', None, '[2001:db8::1]:5000/repo:latest'),
    ('[2001:db8::1]:5000/repo:tag', '[2001:db8::1]:5000', 'repo', 'tag', None, '[2001:db8::1]:5000/repo:tag'),
    ('[2001:db8::1]:5000/repo@' + SHA256_F, '[2001:db8::1]:5000', 'repo', None, SHA256_F,
     '[2001:db8::1]:5000/repo@' + SHA256_F),
    ('[2001:db8::1]:5000/repo:tag@' + SHA256_F, '[2001:db8::1]:5000', 'repo', 'tag', SHA256_F,
     '[2001:db8::1]:5000/repo:tag@' + SHA256_F),
    ('[2001:db8::]:5000/repo', '[2001:db8::]:5000', 'repo', 'latest', None, '[2001:db8::]:5000/repo:latest'),
    ('[::1]:5000/repo', '[::1]:5000', 'repo', 'latest', None, '[::1]:5000/repo:latest'),
    # --- normalize_test.go TestValidateReferenceName / TestValidateRemoteName
    ('docker/docker', 'docker.io', 'docker/docker', 'latest', None, 'docker/docker:latest'),
    ('library/debian', 'docker.io', 'library/debian', 'latest', None, 'debian:latest'),
    ('debian', 'docker.io', 'library/debian', 'latest', None, 'debian:latest'),
    ('docker.io/docker/docker', 'docker.io', 'docker/docker', 'latest', None, 'docker/docker:latest'),
    ('docker.io/library/debian', 'docker.io', 'library/debian', 'latest', None, 'debian:latest'),
    ('docker.io/debian', 'docker.io', 'library/debian', 'latest', None, 'debian:latest'),
    ('index.docker.io/docker/docker', 'docker.io', 'docker/docker', 'latest', None, 'docker/docker:latest'),
    ('index.docker.io/library/debian', 'docker.io', 'library/debian', 'latest', None, 'debian:latest'),
    ('index.docker.io/debian', 'docker.io', 'library/debian', 'latest', None, 'debian:latest'),
    ('127.0.0.1:5000/docker/docker', '127.0.0.1:5000', 'docker/docker', 'latest', None,
     '127.0.0.1:5000/docker/docker:latest'),
    ('127.0.0.1:5000/library/debian', '127.0.0.1:5000', 'library/debian', 'latest', None,
     '127.0.0.1:5000/library/debian:latest'),
    ('127.0.0.1:5000/debian', '127.0.0.1:5000', 'debian', 'latest', None, '127.0.0.1:5000/debian:latest'),
    ('192.168.0.1', 'docker.io', 'library/192.168.0.1', 'latest', None, '192.168.0.1:latest'),
    ('192.168.0.1:80', 'docker.io', 'library/192.168.0.1', '80', None, '192.168.0.1:80'),
    ('192.168.0.1:8/debian', '192.168.0.1:8', 'debian', 'latest', None, '192.168.0.1:8/debian:latest'),
    ('192.168.0.2:25000/debian', '192.168.0.2:25000', 'debian', 'latest', None, '192.168.0.2:25000/debian:latest'),
    ('thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', 'docker.io',
     'library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', 'latest', None,
     'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest'),
    ('[fc00::1]:5000/docker', '[fc00::1]:5000', 'docker', 'latest', None, '[fc00::1]:5000/docker:latest'),
    ('[fc00::1]:5000/docker/docker', '[fc00::1]:5000', 'docker/docker', 'latest', None,
     '[fc00::1]:5000/docker/docker:latest'),
    ('[fc00:1:2:3:4:5:6:7]:5000/library/debian', '[fc00:1:2:3:4:5:6:7]:5000', 'library/debian', 'latest', None,
     '[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest'),
    # a 64-hex name is fine once a domain makes clear it is no image ID
    ('docker.io/' + HEX64, 'docker.io', 'library/' + HEX64, 'latest', None, HEX64 + ':latest'),
    # an uppercase first component is taken for a registry host
    ('Docker/docker', 'Docker', 'docker', 'latest', None, 'Docker/docker:latest'),
    ('DOCKER/docker', 'DOCKER', 'docker', 'latest', None, 'DOCKER/docker:latest'),
    ('docker-rules/docker', 'docker.io', 'docker-rules/docker', 'latest', None, 'docker-rules/docker:latest'),
    ('docker---rules/docker', 'docker.io', 'docker---rules/docker', 'latest', None, 'docker---rules/docker:latest'),
    ('doc/docker', 'docker.io', 'doc/docker', 'latest', None, 'doc/docker:latest'),
    ('d/docker', 'docker.io', 'd/docker', 'latest', None, 'd/docker:latest'),
    ('jess/t', 'docker.io', 'jess/t', 'latest', None, 'jess/t:latest'),
    ('dock__er/docker', 'docker.io', 'dock__er/docker', 'latest', None, 'dock__er/docker:latest'),
    # --- normalize_test.go TestParseRepositoryInfo / TestNormalizedSplitHostname
    ('fooo/bar', 'docker.io', 'fooo/bar', 'latest', None, 'fooo/bar:latest'),
    ('index.docker.io/fooo/bar', 'docker.io', 'fooo/bar', 'latest', None, 'fooo/bar:latest'),
    ('nonlibrary/ubuntu', 'docker.io', 'nonlibrary/ubuntu', 'latest', None, 'nonlibrary/ubuntu:latest'),
    ('other/library', 'docker.io', 'other/library', 'latest', None, 'other/library:latest'),
    ('127.0.0.1:8000/private/moonbase', '127.0.0.1:8000', 'private/moonbase', 'latest', None,
     '127.0.0.1:8000/private/moonbase:latest'),
    ('example.com/privatebase', 'example.com', 'privatebase', 'latest', None, 'example.com/privatebase:latest'),
    ('example.com:8000/private/moonbase', 'example.com:8000', 'private/moonbase', 'latest', None,
     'example.com:8000/private/moonbase:latest'),
    ('ubuntu-12.04-base', 'docker.io', 'library/ubuntu-12.04-base', 'latest', None, 'ubuntu-12.04-base:latest'),
    ('library/foo/bar', 'docker.io', 'library/foo/bar', 'latest', None, 'library/foo/bar:latest'),
    ('docker.io/library/foo/bar', 'docker.io', 'library/foo/bar', 'latest', None, 'library/foo/bar:latest'),
    ('store/foo/bar', 'docker.io', 'store/foo/bar', 'latest', None, 'store/foo/bar:latest'),
    ('Foo/bar', 'Foo', 'bar', 'latest', None, 'Foo/bar:latest'),
    ('test_com/foo', 'docker.io', 'test_com/foo', 'latest', None, 'test_com/foo:latest'),
    ('docker/migrator', 'docker.io', 'docker/migrator', 'latest', None, 'docker/migrator:latest'),
    ('test-com:8080/foo', 'test-com:8080', 'foo', 'latest', None, 'test-com:8080/foo:latest'),
    ('xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo', 'latest', None, 'xn--n3h.com:18080/foo:latest'),
    # --- TestParseReferenceWithTagAndDigest / TestParseAnyReference
    ('busybox:latest@' + SHA256_BUSYBOX, 'docker.io', 'library/busybox', 'latest', SHA256_BUSYBOX,
     'busybox:latest@' + SHA256_BUSYBOX),
    ('redis@' + SHA256_REDIS, 'docker.io', 'library/redis', None, SHA256_REDIS, 'redis@' + SHA256_REDIS),
    ('dmcgowan/myapp@' + SHA256_REDIS, 'docker.io', 'dmcgowan/myapp', None, SHA256_REDIS,
     'dmcgowan/myapp@' + SHA256_REDIS),
    ('docker.io/mcgowan/myapp:latest', 'docker.io', 'mcgowan/myapp', 'latest', None, 'mcgowan/myapp:latest'),
    (SHA256_REDIS[7:-1], 'docker.io', 'library/' + SHA256_REDIS[7:-1], 'latest', None, SHA256_REDIS[7:-1] + ':latest'),
    ('dbcc1', 'docker.io', 'library/dbcc1', 'latest', None, 'dbcc1:latest'),
    # an image ID with its algorithm reads as the name 'sha256' with a tag:
    # callers that accept IDs check is_image_id() first
    ('sha256:' + HEX64, 'docker.io', 'library/sha256', HEX64, None, 'sha256:' + HEX64),
    # --- length: only the path counts (distribution/reference v0.6.0 and later)
    ('a' * 247, 'docker.io', 'library/' + 'a' * 247, 'latest', None, 'a' * 247 + ':latest'),
    ('example.com/' + 'a' * 255, 'example.com', 'a' * 255, 'latest', None, 'example.com/' + 'a' * 255 + ':latest'),
    # --- tags: 128 characters, any case, digits first
    ('nginx:' + 'T' * 128, 'docker.io', 'library/nginx', 'T' * 128, None, 'nginx:' + 'T' * 128),
    ('nginx:_x', 'docker.io', 'library/nginx', '_x', None, 'nginx:_x'),
    ('nginx:1.2-alpine_3.19', 'docker.io', 'library/nginx', '1.2-alpine_3.19', None, 'nginx:1.2-alpine_3.19'),
    ('nginx@sha384:' + 'a' * 96, 'docker.io', 'library/nginx', None, 'sha384:' + 'a' * 96, 'nginx@sha384:' + 'a' * 96),
    # --- domains that are not rewritten
    ('registry-1.docker.io/library/nginx', 'registry-1.docker.io', 'library/nginx', 'latest', None,
     'registry-1.docker.io/library/nginx:latest'),
    ('INDEX.DOCKER.IO/foo', 'INDEX.DOCKER.IO', 'foo', 'latest', None, 'INDEX.DOCKER.IO/foo:latest'),
    # --- a first component with '.' that is no valid host: the grammar reads
    # the whole name as a path on no registry (domain '')
    ('foo_bar.com/baz', '', 'foo_bar.com/baz', 'latest', None, 'foo_bar.com/baz:latest'),
]


@pytest.mark.parametrize('text, domain, path, tag, digest, familiar', VALID, ids=[v[0][:60] for v in VALID])
def test_valid(text, domain, path, tag, digest, familiar):
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert ref.familiar == familiar
    name = domain + '/' + path if domain else path
    assert ref.name == name
    expected_str = name + (':' + tag if tag else '') + ('@' + digest if digest else '')
    assert str(ref) == expected_str
    assert ref.pinned is (digest is not None)
    assert parse(str(ref)) == ref
    assert parse(ref.familiar) == ref


# ---------------------------------------------------------------------------
# Table: invalid references (input, words the reason must contain)
# ---------------------------------------------------------------------------
INVALID = [
    ('', 'empty'),
    (':', 'repository name is empty'),
    (':justtag', 'repository name is empty'),
    ('@' + SHA256_F, 'repository name is empty'),
    ('repo@sha256:' + 'f' * 34, 'exactly 64'),
    ('repo@sha256:' + 'f' * 65, 'exactly 64'),
    ('repo@sha256:' + 'F' * 64, 'lowercase'),
    ('repo@sha256:abc', "'algorithm:hex'"),
    ('repo@SHA256:' + 'f' * 64, 'not supported'),
    ('validname@invaliddigest:' + 'f' * 64, 'not supported'),
    ('repo@md5:' + 'f' * 32, 'not supported'),
    ('repo@', 'digest after "@" is empty'),
    ('repo@' + SHA256_F + '@' + SHA256_F, 'digest'),
    ('Uppercase:tag', 'must be lowercase'),
    ('Uppercase', 'must be lowercase'),
    ('Foo/Bar', 'must be lowercase'),
    ('test:5000/Uppercase/lowercase:tag', 'must be lowercase'),
    ('docker/Docker', 'must be lowercase'),
    ('docker.io/docker/Docker', 'must be lowercase'),
    ('a/' * 128 + 'a:tag', 'more than 255'),
    ('a' * 248, 'more than 255'),
    ('this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth'
     '_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_name'
     'space_because_its_lenth_is_greater_than_255/docker', 'more than 255'),
    ('aa/asdf$$^/aa', "character '$'"),
    ('[2001:db8::1]', 'IPv6'),
    ('[2001:db8::1]:5000', 'IPv6'),
    ('[2001:db8::1]:tag', 'IPv6'),
    ('[fc00::1]', 'IPv6'),
    ('[fc00::1]:5000', 'IPv6'),
    ('[fe80::1%eth0]:5000/repo', "character '%'"),
    ('[fe80::1%@invalidzone]:5000/repo', "character '%'"),
    ('[2001:db8:3:4::192.0.2.33]:5000/debian', 'registry'),
    ('fc00::1:5000/debian', 'registry'),
    ('-docker.io/docker/docker', 'registry'),
    ('https://github.com/docker/docker', 'URL'),
    ('-docker', 'path component'),
    ('-docker/docker', 'path component'),
    ('docker-/docker', 'path component'),
    ('-docker-/docker', 'path component'),
    ('____/____', 'path component'),
    ('_docker/_docker', 'path component'),
    ('dock..er/docker', 'registry'),
    ('dock..er/docker', 'registry'),
    ('dock..er/docker', 'registry'),
    ('dock___er/docker', 'path component'),
    ('docker///docker', 'empty path component'),
    ('docker.io/docker///docker', 'empty path component'),
    ('/nginx', 'empty path component'),
    ('docker/', 'ends with "/"'),
    ('localhost:5000/', 'ends with "/"'),
    (HEX64, 'image ID'),
    (SHA256_REDIS[7:], 'image ID'),
    ('nginx:', 'tag after ":" is empty'),
    ('nginx:-x', "tag '-x'"),
    ('nginx:.x', "tag '.x'"),
    ('nginx:' + 'a' * 129, 'longer than 128'),
    ('nginx:1.0:2', 'path component'),
    ('foo/bar:tag/baz', 'tag'),
    ('nginx\n', 'whitespace'),
    (' nginx', 'whitespace'),
    ('nginx latest', 'whitespace'),
    (u'\xf1ginx', u"character '\xf1'"),
    ('ghcr.io:/foo', 'registry'),
    ('ghcr.io:port/foo', 'registry'),
]


@pytest.mark.parametrize('text, reason', INVALID, ids=[repr(v[0])[:60] for v in INVALID])
def test_invalid(text, reason):
    with pytest.raises(InvalidReference) as excinfo:
        parse(text)
    exc = excinfo.value
    assert isinstance(exc, ValueError)
    assert exc.reference == text
    assert reason in exc.reason
    message = str(exc)
    assert message.startswith('Invalid image reference %r: ' % (text[:197] + '...' if len(text) > 200 else text,))
    assert '\n' not in message


def test_message_example_from_brief():
    with pytest.raises(InvalidReference) as excinfo:
        parse('Foo/Bar')
    assert str(excinfo.value) == "Invalid image reference 'Foo/Bar': repository name must be lowercase"


@pytest.mark.parametrize('value', [None, 5, b'nginx', ['nginx'], 1.5])
def test_non_strings_are_invalid(value):
    with pytest.raises(InvalidReference) as excinfo:
        parse(value)
    assert 'expected a string' in str(excinfo.value)


@pytest.mark.parametrize('text', [
    'A' * 10000,
    'a' * 10000,
    'nginx:-' + 'a' * 10000,
    'nginx:' + 'a' * 10000,
    'nginx@sha256:' + 'f' * 10000,
    'nginx@' + 'a' * 10000 + ':' + 'f' * 64,
    'x/-' + 'a' * 10000,
    '-' + 'a' * 10000 + '.com/x',
])
def test_long_input_message_is_shortened(text):
    with pytest.raises(InvalidReference) as excinfo:
        parse(text)
    assert len(str(excinfo.value)) < 600
    assert excinfo.value.reference == text


# ---------------------------------------------------------------------------
# default_tag, ambiguities, API details
# ---------------------------------------------------------------------------
def test_default_tag_off():
    ref = parse('nginx', default_tag=False)
    assert ref.tag is None and ref.digest is None
    assert str(ref) == 'docker.io/library/nginx'
    assert ref.familiar == 'nginx'
    assert parse('nginx:1', default_tag=False).tag == '1'
    assert parse('nginx@' + SHA256_F, default_tag=False).tag is None


def test_default_tag_not_added_to_digest():
    ref = parse('nginx@' + SHA256_F)
    assert ref.tag is None
    assert ref.pinned


def test_parse_accepts_reference():
    ref = parse('nginx', default_tag=False)
    assert parse(ref, default_tag=False) is ref
    assert parse(ref) == parse('nginx:latest')


def test_familiar_can_be_ambiguous_like_docker():
    # Docker drops 'docker.io/' from familiar names even when the first
    # remaining component then reads as a registry; we do the same.
    ref = parse('docker.io/foo.bar/baz:1')
    assert (ref.domain, ref.path) == ('docker.io', 'foo.bar/baz')
    assert ref.familiar == 'foo.bar/baz:1'
    assert parse(ref.familiar).domain == 'foo.bar'
    assert parse(str(ref)) == ref
    ref = parse('docker.io/localhost/x')
    assert ref.repository == 'localhost/x'
    assert parse(ref.repository).domain == 'localhost'
    # a bare 64-hex familiar name reads as an image ID
    ref = parse('docker.io/' + HEX64, default_tag=False)
    assert ref.familiar == HEX64
    with pytest.raises(InvalidReference):
        parse(ref.familiar)


@pytest.mark.parametrize('text, repository', [
    ('nginx', 'nginx'),
    ('library/nginx:1', 'nginx'),
    ('docker.io/library/nginx@' + SHA256_F, 'nginx'),
    ('patchops/app', 'patchops/app'),
    ('library/foo/bar', 'library/foo/bar'),
    ('127.0.0.1:5115/x/y:1', '127.0.0.1:5115/x/y'),
    ('ghcr.io/library/nginx', 'ghcr.io/library/nginx'),
    ('localhost:5000/nginx', 'localhost:5000/nginx'),
    ('foo_bar.com/baz', 'foo_bar.com/baz'),
])
def test_repository(text, repository):
    assert parse(text).repository == repository


@pytest.mark.parametrize('value, expected', [
    (SHA256_REDIS, True),
    (SHA256_REDIS[7:], True),
    (HEX64, True),
    ('sha256:' + HEX64.upper(), False),
    (HEX64.upper(), False),
    (SHA256_REDIS[:-1], False),
    (SHA256_REDIS + '0', False),
    (SHA256_REDIS[7:19], False),
    ('sha512:' + 'a' * 128, False),
    ('sha256:' + HEX64 + '\n', False),
    ('nginx', False),
    ('nginx@' + SHA256_REDIS, False),
    ('', False),
    (None, False),
    (42, False),
])
def test_is_image_id(value, expected):
    assert is_image_id(value) is expected


@pytest.mark.parametrize('left, right, expected', [
    ('nginx', 'docker.io/library/nginx:1.25', True),
    ('nginx', 'library/nginx@' + SHA256_F, True),
    ('nginx:1', 'index.docker.io/nginx:2', True),
    ('nginx', 'ghcr.io/library/nginx', False),
    ('nginx', 'nginx/nginx', False),
    ('patchops/app', 'docker.io/patchops/app:v1', True),
    ('127.0.0.1:5115/x/y:1', '127.0.0.1:5115/x/y@' + SHA256_F, True),
    ('127.0.0.1:5115/x/y', 'localhost:5115/x/y', False),
    ('registry-1.docker.io/library/nginx', 'nginx', False),
])
def test_same_repository(left, right, expected):
    assert same_repository(left, right) is expected
    assert same_repository(right, left) is expected
    assert same_repository(parse(left), right) is expected


def test_same_repository_invalid():
    with pytest.raises(InvalidReference):
        same_repository('nginx', 'Nginx')


def test_with_tag_and_digest():
    ref = parse('nginx:1.25')
    pinned = ref.with_digest(SHA256_F)
    assert str(pinned) == 'docker.io/library/nginx:1.25@' + SHA256_F
    assert pinned.pinned and not ref.pinned
    assert pinned.with_tag('2') == parse('nginx:2@' + SHA256_F)
    assert pinned.with_tag(None) == parse('nginx@' + SHA256_F)
    assert pinned.with_digest(None) == ref
    assert ref.with_tag('1.25') == ref
    with pytest.raises(InvalidReference) as excinfo:
        ref.with_tag('-bad')
    assert str(excinfo.value).startswith("Invalid image reference 'docker.io/library/nginx:-bad': tag '-bad'")
    with pytest.raises(InvalidReference):
        ref.with_tag('')
    with pytest.raises(InvalidReference):
        ref.with_tag(5)
    with pytest.raises(InvalidReference):
        ref.with_digest('sha256:abc')
    with pytest.raises(InvalidReference):
        ref.with_digest('md5:' + 'a' * 32)
    with pytest.raises(InvalidReference):
        ref.with_digest(b'sha256:' + b'a' * 64)


def test_immutable_hashable_comparable():
    ref = parse('nginx:1.25')
    with pytest.raises(AttributeError):
        ref.tag = 'x'
    with pytest.raises(AttributeError):
        ref.other = 'x'
    with pytest.raises(AttributeError):
        del ref.tag
    assert ref == parse('docker.io/library/nginx:1.25')
    assert ref != parse('nginx:1.26')
    assert not (ref == parse('nginx:1.25@' + SHA256_F))
    assert ref != str(ref)
    assert len({ref, parse('library/nginx:1.25'), parse('index.docker.io/nginx:1.25')}) == 1
    assert copy.copy(ref) == ref
    assert copy.deepcopy(ref) == ref
    assert pickle.loads(pickle.dumps(ref)) == ref


def test_repr_round_trips():
    ref = parse('ghcr.io/patchops/app@' + SHA256_F)
    assert repr(ref) == "ImageReference(domain='ghcr.io', path='patchops/app', tag=None, digest='%s')" % SHA256_F
    assert eval(repr(ref), {'ImageReference': ImageReference}) == ref


def test_constructor():
    assert ImageReference('docker.io', 'library/nginx', '1.25') == parse('nginx:1.25')
    assert ImageReference('docker.io', 'library/nginx') == parse('nginx', default_tag=False)
    assert ImageReference('', 'foo_bar.com/baz') == parse('foo_bar.com/baz', default_tag=False)
    for args in [
        ('docker.io', 'nginx'),                 # needs library/
        ('index.docker.io', 'library/nginx'),   # rewritten to docker.io
        ('', 'nginx'),                          # gets docker.io
        ('foo', 'bar'),                         # 'foo' is no registry
        ('ghcr.io', 'Foo'),
        ('ghcr.io', 'foo', ''),
        ('ghcr.io', 'foo', None, 'sha256:abc'),
        ('ghcr.io', None),
        (None, 'foo'),
        ('ghcr.io', 'foo', 1),
    ]:
        with pytest.raises(InvalidReference):
            ImageReference(*args)


def test_pathological_inputs_are_fast():
    started = time.time()
    for text in [
        'a' + '-' * 50000 + '!',
        'a' + '_a' * 20000 + '__',
        'a.' * 30000 + '/',
        'a/' * 30000 + ':' + 'a' * 200,
        '[' + ':' * 50000,
        'a:' + '1' * 50000 + '/x!',
        'x@sha256:' + 'f' * 50000 + 'g',
        'x@a' + '.a' * 30000,
        'A' * 100000,
    ]:
        with pytest.raises(InvalidReference):
            parse(text)
    assert time.time() - started < 2


def test_module_keeps_python37_syntax():
    source_path = image_ref.__file__
    if source_path.endswith('.pyc'):
        source_path = source_path[:-1]
    with open(source_path) as handle:
        source = handle.read()
    if sys.version_info >= (3, 8):
        ast.parse(source, filename=source_path, feature_version=(3, 7))
    assert 'from __future__ import absolute_import, division, print_function' in source
    assert '__metaclass__ = type' in source
    # standard library only
    imports = re.findall(r'^\s*(?:from|import)\s+([\w.]+)', source, re.M)
    assert set(imports) <= {'__future__', 'functools', 're'}, imports


# ---------------------------------------------------------------------------
# Property-based tests. Strategies follow the grammar in regexp.go.
# ---------------------------------------------------------------------------
LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789'
HOST_CHARS = LOWER_ALNUM + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
TAG_FIRST = HOST_CHARS + '_'
TAG_REST = TAG_FIRST + '.-'
HEX_DIGITS = '0123456789abcdef'

alnum = st.text(LOWER_ALNUM, min_size=1, max_size=6)
separators = st.sampled_from(['.', '_', '__', '-', '--', '---'])


@st.composite
def path_components(draw):
    parts = [draw(alnum)]
    for dummy in range(draw(st.integers(0, 3))):
        parts.append(draw(separators))
        parts.append(draw(alnum))
    return ''.join(parts)


paths = st.lists(path_components(), min_size=1, max_size=4).map('/'.join)


@st.composite
def host_components(draw):
    first = draw(st.sampled_from(HOST_CHARS))
    middle = draw(st.text(HOST_CHARS + '-', max_size=6))
    if middle:
        return first + middle + draw(st.sampled_from(HOST_CHARS))
    return first


ports = st.integers(0, 99999).map(lambda p: ':%d' % p)
optional_ports = st.one_of(st.just(''), ports)
hostnames = st.lists(host_components(), min_size=1, max_size=4).map('.'.join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: '%d.%d.%d.%d' % t)
ipv6 = st.lists(st.text('0123456789abcdefABCDEF', max_size=4), min_size=2, max_size=8).map(
    lambda groups: '[' + ':'.join(groups) + ']')


def looks_like_registry(domain):
    """normalize.go: a first component is a registry if it has '.' or ':', is localhost, or has uppercase."""
    return '.' in domain or ':' in domain or domain == 'localhost' or domain.lower() != domain


domains = st.one_of(
    st.sampled_from(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'ghcr.io', 'localhost',
                     'localhost:5000', '127.0.0.1:5115', '[::1]:5000', 'quay.io', 'Foo']),
    st.tuples(hostnames, optional_ports).map(''.join),
    st.tuples(ipv4, optional_ports).map(''.join),
    st.tuples(ipv6, optional_ports).map(''.join),
).filter(looks_like_registry)

tags = st.one_of(
    st.tuples(st.sampled_from(TAG_FIRST), st.text(TAG_REST, max_size=12)).map(''.join),
    st.tuples(st.sampled_from(TAG_FIRST), st.text(TAG_REST, min_size=120, max_size=127)).map(''.join),
)


@st.composite
def digests(draw):
    algorithm = draw(st.sampled_from(['sha256', 'sha384', 'sha512']))
    size = {'sha256': 32, 'sha384': 48, 'sha512': 64}[algorithm]
    return algorithm + ':' + draw(st.binary(min_size=size, max_size=size)).hex()


def valid_host(domain):
    """Test-side restatement of the host[:port] rule."""
    host_re = r'(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])'
    return re.match(host_re + r'(?::[0-9]+)?\Z', domain) is not None


def expected_parts(domain, path):
    """What normalisation should make of ``[domain/]path`` (test-side restatement of normalize.go)."""
    if domain is None:
        first, slash, rest = path.partition('/')
        if slash and looks_like_registry(first):
            domain, path = first, rest
        else:
            domain = 'docker.io'
    if domain == 'index.docker.io':
        domain = 'docker.io'
    if not valid_host(domain):
        # only a path component with '_' and '.' gets here; the grammar then
        # reads everything as the path
        return '', domain + '/' + path
    if domain == 'docker.io' and '/' not in path:
        path = 'library/' + path
    return domain, path


@st.composite
def reference_parts(draw):
    domain = draw(st.one_of(st.none(), domains))
    return (domain, draw(paths), draw(st.one_of(st.none(), tags)), draw(st.one_of(st.none(), digests())))


def join(domain, path, tag, digest):
    text = (domain + '/' if domain is not None else '') + path
    if tag is not None:
        text += ':' + tag
    if digest is not None:
        text += '@' + digest
    return text


valid_reference_texts = reference_parts().map(lambda parts: join(*parts)).filter(
    lambda text: not re.match(r'[a-f0-9]{64}\Z', text))


@HEAVY_PROPERTY_SETTINGS
@given(reference_parts())
@example(('docker.io', 'nginx', None, None))
@example((None, 'a_b.c/d', 'x', None))
@example((None, 'localhost/x', None, None))
@example(('index.docker.io', 'x', None, SHA256_F))
def test_generated_references_parse_as_expected(parts):
    domain, path, tag, digest = parts
    text = join(*parts)
    assume(not re.match(r'[a-f0-9]{64}\Z', text))
    ref = parse(text, default_tag=False)
    assert (ref.domain, ref.path) == expected_parts(domain, path)
    assert (ref.tag, ref.digest) == (tag, digest)
    defaulted = parse(text)
    assert defaulted.tag == (tag if tag is not None or digest is not None else 'latest')
    assert defaulted.digest == digest


def familiar_is_ambiguous(ref):
    """Familiar forms that Docker itself would read back differently."""
    if ref.domain != 'docker.io':
        return False
    first, slash, dummy = ref.repository.partition('/')
    if slash and looks_like_registry(first):
        return True
    return ref.tag is None and ref.digest is None and re.match(r'[a-f0-9]{64}\Z', ref.repository) is not None


@HEAVY_PROPERTY_SETTINGS
@given(valid_reference_texts)
def test_round_trips(text):
    ref = parse(text, default_tag=False)
    # the fully qualified form reads back the same, and so does normalising twice
    assert parse(str(ref), default_tag=False) == ref
    assert str(parse(str(ref), default_tag=False)) == str(ref)
    tagged = parse(text)
    assert parse(str(tagged)) == tagged
    assert parse(tagged) == tagged
    # the familiar form too, except where Docker's own familiar form is ambiguous
    if not familiar_is_ambiguous(ref):
        assert parse(ref.familiar, default_tag=False) == ref
        assert parse(tagged.familiar) == tagged
    # the parts agree with one another
    assert ref.name == (ref.domain + '/' + ref.path if ref.domain else ref.path)
    assert str(ref).startswith(ref.name)
    assert ref.familiar.startswith(ref.repository)
    assert ref.pinned is (ref.digest is not None)
    assert same_repository(ref, text)
    assert ImageReference(ref.domain, ref.path, ref.tag, ref.digest) == ref
    assert hash(ref) == hash(parse(str(ref), default_tag=False))


@HEAVY_PROPERTY_SETTINGS
@given(valid_reference_texts, st.one_of(st.none(), tags), st.one_of(st.none(), digests()))
def test_with_tag_and_with_digest_round_trip(text, tag, digest):
    ref = parse(text).with_tag(tag).with_digest(digest)
    assert (ref.tag, ref.digest) == (tag, digest)
    assert parse(str(ref), default_tag=False) == ref
    assert same_repository(ref, text)


TAG_RE_TEST = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z')


@PROPERTY_SETTINGS
@given(st.text(TAG_REST + ':/@ !', min_size=0, max_size=130))
def test_with_tag_accepts_exactly_the_tag_grammar(tag):
    ref = parse('nginx')
    if TAG_RE_TEST.match(tag):
        assert ref.with_tag(tag).tag == tag
    else:
        with pytest.raises(InvalidReference):
            ref.with_tag(tag)


INTERESTING = st.sampled_from(list('aZ09._-/:@[]%+ \n\t') + [u'\xe9', u'\u0130', '__', '//', '::', '@sha256:'])


@st.composite
def mutated_references(draw):
    text = draw(valid_reference_texts)
    for dummy in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(['insert', 'delete', 'replace', 'upper']))
        if action == 'insert':
            text = text[:position] + draw(INTERESTING) + text[position:]
        elif action == 'delete':
            text = text[:position] + text[position + 1:]
        elif action == 'replace':
            text = text[:position] + draw(INTERESTING) + text[position + 1:]
        else:
            text = text[:position] + text[position:position + 1].upper() + text[position + 1:]
    return text


def check_parses_or_refuses(text):
    try:
        ref = parse(text, default_tag=False)
    except InvalidReference as exc:
        assert exc.reference == text
        assert str(exc).startswith('Invalid image reference ')
        assert '\n' not in str(exc)
        assert exc.reason
        return
    assert isinstance(ref, ImageReference)
    assert parse(str(ref), default_tag=False) == ref
    assert re.match(r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z', ref.path)
    assert len(ref.path) <= 255


@PROPERTY_SETTINGS
@given(st.text(max_size=80))
@example(u'')
@example(u':')
@example(u'@')
@example(u'/')
@example(u'[::1]')
@example(u'a@b:c')
def test_arbitrary_text_parses_or_raises_invalid_reference(text):
    check_parses_or_refuses(text)


@HEAVY_PROPERTY_SETTINGS
@given(mutated_references())
def test_mutated_references_parse_or_raise_invalid_reference(text):
    check_parses_or_refuses(text)


@PROPERTY_SETTINGS
@given(st.text(HEX_DIGITS + 'A:sh256', max_size=80))
def test_is_image_id_matches_definition(text):
    expected = re.match(r'(?:sha256:)?[a-f0-9]{64}\Z', text) is not None
    assert is_image_id(text) is expected
    if re.match(r'[a-f0-9]{64}\Z', text):
        with pytest.raises(InvalidReference):
            parse(text)
