# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parse and normalise Docker image references.

The rules follow the Docker distribution reference code
(github.com/distribution/reference: regexp.go, reference.go and normalize.go,
as used by the Docker CLI and daemon through ``ParseNormalizedNamed``):

* ``reference := name [ ":" tag ] [ "@" digest ]``
* ``name := [domain "/"] path``; the first ``/``-separated component is taken
  as the domain (registry) only if it contains ``.`` or ``:``, is
  ``localhost``, or contains an uppercase letter; otherwise the domain is
  ``docker.io``.  ``index.docker.io`` is rewritten to ``docker.io``.
  Single-component paths on ``docker.io`` get the ``library/`` prefix.
* path components are lowercase: ``[a-z0-9]+`` joined by one ``.``, one or two
  ``_`` or any number of ``-``; the path is at most 255 characters.
* tags are ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``.
* digests are ``algorithm:hex``; sha256, sha384 and sha512 are supported, with
  exactly 64, 96 or 128 lowercase hexadecimal digits.
* a whole reference made of 64 lowercase hexadecimal digits is an image ID,
  not a name, and is refused (``sha256:<hex>`` parses as the name ``sha256``
  with a tag; use :func:`is_image_id` to tell IDs apart first).

Two corners follow Docker even though they look odd: a first component that
contains ``.`` but is no valid host name (``foo_bar.com/x``) leaves the
reference with no registry at all (domain ``''``, path ``foo_bar.com/x``), and
familiar names drop ``docker.io/`` even when the rest then reads as a registry
(``docker.io/foo.bar/x`` shows as ``foo.bar/x``).

This file runs on managed nodes: standard library only, Python 3.7+ syntax.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import re

__all__ = [
    'DEFAULT_DOMAIN',
    'DEFAULT_TAG',
    'ImageReference',
    'InvalidReference',
    'is_image_id',
    'parse',
    'same_repository',
]

DEFAULT_DOMAIN = 'docker.io'
LEGACY_DEFAULT_DOMAIN = 'index.docker.io'
OFFICIAL_REPO_PREFIX = 'library/'
DEFAULT_TAG = 'latest'
LOCALHOST = 'localhost'
NAME_TOTAL_LENGTH_MAX = 255
TAG_LENGTH_MAX = 128

# Digest algorithms the Docker daemon understands, with the exact number of
# (lowercase) hexadecimal digits each needs.
DIGEST_ALGORITHMS = {
    'sha256': 64,
    'sha384': 96,
    'sha512': 128,
}

# --- grammar (regexp.go) ----------------------------------------------------
# Character classes are spelt out instead of using \w or \d so that they are
# ASCII-only, as in Go's RE2, whatever the Python version or flags.
_ALNUM = r'[a-z0-9]+'
_SEPARATOR = r'(?:[._]|__|[-]+)'
_PATH_COMPONENT = _ALNUM + r'(?:' + _SEPARATOR + _ALNUM + r')*'
_REMOTE_NAME = _PATH_COMPONENT + r'(?:/' + _PATH_COMPONENT + r')*'
_DOMAIN_NAME_COMPONENT = r'(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + r'(?:\.' + _DOMAIN_NAME_COMPONENT + r')*'
_IPV6_ADDRESS = r'\[(?:[a-fA-F0-9:]+)\]'
_HOST = r'(?:' + _DOMAIN_NAME + r'|' + _IPV6_ADDRESS + r')'
_DOMAIN_AND_PORT = _HOST + r'(?::[0-9]+)?'
_NAME = r'(?:' + _DOMAIN_AND_PORT + r'/)?' + _REMOTE_NAME
_TAG = r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
_DIGEST = r'[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'
_IDENTIFIER = r'[a-f0-9]{64}'

# All patterns are used with match() and end in \Z: unlike '$', \Z does not
# accept a trailing newline, which matches Go's '$' (end of text).
_REFERENCE_RE = re.compile(
    r'(' + _NAME + r')(?::(' + _TAG + r'))?(?:@(' + _DIGEST + r'))?\Z')
_ANCHORED_NAME_RE = re.compile(
    r'(?:(' + _DOMAIN_AND_PORT + r')/)?(' + _REMOTE_NAME + r')\Z')
_DOMAIN_RE = re.compile(_DOMAIN_AND_PORT + r'\Z')
_PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT + r'\Z')
_TAG_RE = re.compile(_TAG + r'\Z')
_DIGEST_RE = re.compile(_DIGEST + r'\Z')
_IDENTIFIER_RE = re.compile(_IDENTIFIER + r'\Z')
_HEX_RE = re.compile(r'[a-f0-9]+\Z')
_ALLOWED_CHARS_RE = re.compile(r'[A-Za-z0-9._\-/:@\[\]+]*\Z')

_SHOWN_MAX = 200


class InvalidReference(ValueError):
    """An image reference (or part of one) that Docker would refuse.

    ``str(exc)`` is one sentence naming the reference and the reason;
    ``exc.reference`` and ``exc.reason`` hold the two parts.
    """

    def __init__(self, reference, reason):
        self.reference = reference
        self.reason = reason
        super(InvalidReference, self).__init__(
            'Invalid image reference %s: %s' % (_show(reference), reason))


def _show(value):
    if isinstance(value, str) and len(value) > _SHOWN_MAX:
        value = value[:_SHOWN_MAX - 3] + '...'
    return repr(value)


def _digest_problem(digest):
    """Why ``digest`` is not a digest Docker accepts, or None (go-digest rules)."""
    if not _DIGEST_RE.match(digest):
        return ("digest %s is not valid: expected 'algorithm:hex', for example "
                "'sha256:' followed by 64 hexadecimal digits" % _show(digest))
    algorithm, encoded = digest.split(':', 1)
    length = DIGEST_ALGORITHMS.get(algorithm)
    if length is None:
        return ('digest algorithm %s is not supported (use %s)'
                % (_show(algorithm), ', '.join(sorted(DIGEST_ALGORITHMS))))
    if len(encoded) != length or not _HEX_RE.match(encoded):
        return ('digest %s is not valid: a %s digest has exactly %d lowercase '
                'hexadecimal digits' % (_show(digest), algorithm, length))
    return None


def _tag_problem(tag):
    """Why ``tag`` is not a valid tag, or None."""
    if tag == '':
        return 'the tag after ":" is empty'
    if _TAG_RE.match(tag):
        return None
    if len(tag) > TAG_LENGTH_MAX and _TAG_RE.match(tag[:TAG_LENGTH_MAX]):
        return 'tag %s is longer than %d characters' % (_show(tag), TAG_LENGTH_MAX)
    return ("tag %s is not valid: a tag is made of letters, digits, '_', '.' "
            "and '-' and must not start with '.' or '-'" % _show(tag))


def _split_docker_domain(name):
    """Split ``name`` into (domain, remainder) as normalize.go's splitDockerDomain does.

    ``name`` may still carry its tag and digest; they stay in the remainder.
    """
    if '/' not in name:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    maybe_domain, maybe_remainder = name.split('/', 1)
    if maybe_domain == LOCALHOST:
        domain, remainder = maybe_domain, maybe_remainder
    elif maybe_domain == LEGACY_DEFAULT_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, maybe_remainder
    elif '.' in maybe_domain or ':' in maybe_domain:
        domain, remainder = maybe_domain, maybe_remainder
    elif maybe_domain.lower() != maybe_domain:
        # Uppercase is not allowed in paths, so such a component is taken
        # for a registry host.
        domain, remainder = maybe_domain, maybe_remainder
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and '/' not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _explain(ref):
    """Find a reason, as specific as possible, why ``ref`` does not parse."""
    if ref == '':
        return 'the reference is empty'
    if not _ALLOWED_CHARS_RE.match(ref):
        for char in ref:
            if not _ALLOWED_CHARS_RE.match(char):
                if char.isspace():
                    return 'it contains whitespace (%r)' % (char,)
                return 'it contains the character %r, which is not allowed' % (char,)
    if '://' in ref:
        return 'it looks like a URL; leave out the scheme (such as "https://")'
    name_tag, at, digest = ref.partition('@')
    if at:
        if digest == '':
            return 'the digest after "@" is empty'
        problem = _digest_problem(digest)
        if problem:
            return problem
    if '/' not in name_tag and ('[' in name_tag or ']' in name_tag):
        return ('square brackets may only enclose an IPv6 registry address, '
                'which must be followed by "/" and a repository path')
    name, tag = name_tag, None
    colon = name_tag.rfind(':')
    if colon > name_tag.rfind('/'):
        name, tag = name_tag[:colon], name_tag[colon + 1:]
    if name == '':
        return 'the repository name is empty'
    if tag is not None:
        problem = _tag_problem(tag)
        if problem:
            return problem
    if name.endswith('/'):
        return 'the repository name ends with "/"'
    if name.startswith('/') or '//' in name:
        return 'the repository name has an empty path component'
    domain, remainder = _split_docker_domain(name)
    if remainder.lower() != remainder:
        return 'repository name must be lowercase'
    if not _DOMAIN_RE.match(domain):
        return ("registry %s is not a valid host name or IP address with an "
                "optional port" % _show(domain))
    for component in remainder.split('/'):
        if not _PATH_COMPONENT_RE.match(component):
            return ("path component %s is not valid: use lowercase letters and "
                    "digits, separated by one '.', one or two '_' or any number "
                    "of '-'" % _show(component))
    return 'invalid reference format'


def _parse_parts(ref):
    """Parse ``ref`` into (domain, path, tag, digest) like ParseNormalizedNamed.

    ``tag`` and ``digest`` are None when absent; no default tag is added.
    """
    if not isinstance(ref, str):
        raise InvalidReference(ref, 'expected a string, got %s' % type(ref).__name__)
    if _IDENTIFIER_RE.match(ref):
        raise InvalidReference(
            ref, 'a 64-character hexadecimal string is an image ID, not a repository name')
    domain, remainder = _split_docker_domain(ref)
    remote = remainder.split(':', 1)[0]
    if remote.lower() != remote:
        # Same check as ParseNormalizedNamed; _explain() says which part is wrong.
        raise InvalidReference(ref, _explain(ref))

    match = _REFERENCE_RE.match(domain + '/' + remainder)
    if match is None:
        raise InvalidReference(ref, _explain(ref))
    name, tag, digest = match.groups()

    # Split the name again by the grammar, as reference.go's Parse does. This
    # only differs from _split_docker_domain() when the first component
    # contains '.' but is no valid host (e.g. 'foo_bar.com/x'): the grammar
    # then reads the whole name as a path on no registry (domain '').
    name_match = _ANCHORED_NAME_RE.match(name)
    domain, path = name_match.group(1) or '', name_match.group(2)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            ref, 'repository name must not be more than %d characters (its path has %d)'
            % (NAME_TOTAL_LENGTH_MAX, len(path)))
    if digest is not None:
        problem = _digest_problem(digest)
        if problem:
            raise InvalidReference(ref, problem)
    return domain, path, tag, digest


def _join(domain, path, tag, digest):
    text = domain + '/' + path if domain else path
    if tag is not None:
        text += ':' + tag
    if digest is not None:
        text += '@' + digest
    return text


class ImageReference(object):
    """A parsed, normalised image reference. Immutable and hashable.

    Attributes: ``domain`` (``docker.io`` when none was given, else the
    registry as written, such as ``ghcr.io`` or ``[::1]:5000``), ``path``
    (``library/nginx``), ``tag`` and ``digest`` (``sha256:<hex>``), each of the
    last two a string or None.

    Build one with :func:`parse`. The constructor takes the normalised parts
    (``ImageReference('docker.io', 'library/nginx', '1.25')``) and refuses
    parts that :func:`parse` would not give back unchanged.
    """

    __slots__ = ('domain', 'path', 'tag', 'digest')

    def __init__(self, domain, path, tag=None, digest=None):
        parts = (domain, path, tag, digest)
        for part in parts:
            if part is not None and not isinstance(part, str):
                raise InvalidReference(
                    parts, 'expected strings (or None), got %s' % type(part).__name__)
        if not isinstance(domain, str) or not isinstance(path, str):
            raise InvalidReference(parts, 'domain and path must be strings')
        text = _join(domain, path, tag, digest)
        parsed = _parse_parts(text)
        if parsed != parts:
            raise InvalidReference(
                text, 'the parts are not normalised; parse() gives %r' % (_new(*parsed),))
        _init(self, domain, path, tag, digest)

    # -- immutability ------------------------------------------------------
    def __setattr__(self, name, value):
        raise AttributeError('ImageReference is immutable')

    def __delattr__(self, name):
        raise AttributeError('ImageReference is immutable')

    def __reduce__(self):
        return (ImageReference, (self.domain, self.path, self.tag, self.digest))

    # -- value semantics ---------------------------------------------------
    def _key(self):
        return (self.domain, self.path, self.tag, self.digest)

    def __eq__(self, other):
        if not isinstance(other, ImageReference):
            return NotImplemented
        return self._key() == other._key()

    def __ne__(self, other):
        result = self.__eq__(other)
        if result is NotImplemented:
            return result
        return not result

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return 'ImageReference(domain=%r, path=%r, tag=%r, digest=%r)' % self._key()

    def __str__(self):
        """Fully qualified form, e.g. ``docker.io/library/nginx:1.25``."""
        return _join(self.domain, self.path, self.tag, self.digest)

    # -- derived forms -----------------------------------------------------
    @property
    def name(self):
        """Fully qualified repository name, e.g. ``docker.io/library/nginx``."""
        return self.domain + '/' + self.path if self.domain else self.path

    @property
    def repository(self):
        """Repository name as ``docker`` shows it, e.g. ``nginx`` or ``ghcr.io/a/b``.

        Like Docker's familiar names, this drops ``docker.io/`` even when the
        first remaining component would then read as a registry
        (``docker.io/foo.bar/baz`` shows as ``foo.bar/baz``).
        """
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_REPO_PREFIX):
            rest = path[len(OFFICIAL_REPO_PREFIX):]
            if '/' not in rest:
                return rest
        return path

    @property
    def familiar(self):
        """Reference as ``docker`` shows it, e.g. ``nginx:1.25`` or ``nginx@sha256:...``."""
        return _join('', self.repository, self.tag, self.digest)

    @property
    def pinned(self):
        """True when the reference names a digest."""
        return self.digest is not None

    # -- copies with changes -----------------------------------------------
    def with_tag(self, tag):
        """Copy with ``tag`` (None removes the tag); the digest is kept."""
        if tag is not None:
            if not isinstance(tag, str):
                raise InvalidReference(tag, 'a tag must be a string, got %s' % type(tag).__name__)
            problem = _tag_problem(tag)
            if problem:
                raise InvalidReference(_join(self.domain, self.path, tag, self.digest), problem)
        return _new(self.domain, self.path, tag, self.digest)

    def with_digest(self, digest):
        """Copy with ``digest`` (None removes it); the tag is kept."""
        if digest is not None:
            if not isinstance(digest, str):
                raise InvalidReference(
                    digest, 'a digest must be a string, got %s' % type(digest).__name__)
            problem = _digest_problem(digest)
            if problem:
                raise InvalidReference(_join(self.domain, self.path, self.tag, digest), problem)
        return _new(self.domain, self.path, self.tag, digest)


def _init(obj, domain, path, tag, digest):
    object.__setattr__(obj, 'domain', domain)
    object.__setattr__(obj, 'path', path)
    object.__setattr__(obj, 'tag', tag)
    object.__setattr__(obj, 'digest', digest)


def _new(domain, path, tag, digest):
    """Build an ImageReference from parts already known to be normalised."""
    obj = object.__new__(ImageReference)
    _init(obj, domain, path, tag, digest)
    return obj


@functools.lru_cache(maxsize=4096)
def _parse_text(ref):
    """The reference a text names, parsed once: a check meets each of its host's references many times (every
    container, image and look-up), and an ImageReference cannot change. An invalid text raises every time."""
    return _new(*_parse_parts(ref))


def parse(ref, default_tag=True):
    """Parse an image reference the way ``docker pull``/``docker run`` read it.

    ``nginx`` gives ``docker.io/library/nginx:latest``; ``name:tag@digest``
    keeps both. With ``default_tag`` (the default) the tag ``latest`` is
    added when the reference has neither tag nor digest.

    An :class:`ImageReference` is accepted as well (and gets the default tag
    the same way). Anything else that is not valid raises
    :class:`InvalidReference`.
    """
    if isinstance(ref, ImageReference):
        result = ref
    elif isinstance(ref, str):
        result = _parse_text(ref)
    else:
        result = _new(*_parse_parts(ref))
    if default_tag and result.tag is None and result.digest is None:
        result = result.with_tag(DEFAULT_TAG)
    return result


def is_image_id(value):
    """True for a full image ID: ``sha256:`` plus 64 lowercase hex digits, or the 64 digits alone.

    Docker reads a bare 64-digit hexadecimal string as an ID, never as a
    name. Short (truncated) IDs give False: they are also valid names.
    """
    if not isinstance(value, str):
        return False
    if value.startswith('sha256:'):
        value = value[len('sha256:'):]
    return _IDENTIFIER_RE.match(value) is not None


def same_repository(a, b):
    """True when ``a`` and ``b`` name the same repository, ignoring tag and digest.

    Each may be a string or an :class:`ImageReference`; strings are parsed
    (so ``nginx`` and ``docker.io/library/nginx:1.25`` are the same), and an
    invalid one raises :class:`InvalidReference`.
    """
    return parse(a, default_tag=False).name == parse(b, default_tag=False).name
