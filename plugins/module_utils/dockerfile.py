# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which images a Dockerfile builds from: its stages and their ``FROM`` lines.

Reads a Dockerfile the way Docker's builder does, as far as the base images
are concerned:

* parser directives at the very top (``# escape=`` changes the escape
  character; ``# syntax=`` and ``# check=`` are accepted and ignored);
* comments (``#`` as the first non-blank character of a line) and blank
  lines, also inside an instruction continued over several lines;
* line continuations (the escape character, then only blanks, at the end of
  a line);
* ``ARG`` instructions before the first ``FROM`` (the "meta" arguments): their
  defaults may use earlier ones, a build argument of the same name wins, and
  only they are seen by ``FROM`` lines;
* ``FROM [--platform=...] image [AS name]`` with ``$VAR``, ``${VAR}``,
  ``${VAR:-default}``, ``${VAR:+alternative}`` (and the forms without the colon),
  ``${VAR:?message}``, quotes and escapes;
* ``FROM scratch`` (no image), ``FROM <earlier stage>`` (a stage, not an
  image; stage names are case-insensitive);
* ``COPY --from=<image>`` with a literal image reference (an image the build
  copies from, so an input like a base image); ``--from`` naming a stage or a
  stage index is a stage;
* a build ``target``: stages after it are not built, so their images do not count.

Pure logic, no Docker: runs on managed nodes (Python 3.9, standard library).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.image_ref import InvalidReference, is_image_id, parse

_DIRECTIVE = re.compile(r'^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$')
_KNOWN_DIRECTIVES = ('escape', 'syntax', 'check')
_STAGE_NAME = re.compile(r'^[a-z][a-z0-9_.-]*$')
_VAR_NAME = re.compile(r'[A-Za-z0-9_]+')
_ARG_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


class DockerfileError(PatchopsError):
    """The Dockerfile cannot be read the way the builder would read it."""


class _Unset(object):
    """Marks an ARG without a value (different from an empty one for ${VAR-x})."""


UNSET = _Unset()


def _logical_lines(text, where):
    """The escape character and the instructions as (line number, text), one per logical line.

    Parser directives, comments and blank lines are dropped; continued lines are joined.
    """
    lines = text.replace('\r\n', '\n').replace('\r', '\n').split('\n')
    escape = '\\'
    seen = set()
    index = 0
    # parser directives: only at the very top, before any blank line, comment or instruction
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        if not match:
            break
        name = match.group(1).lower()
        if name not in _KNOWN_DIRECTIVES:
            break
        if name in seen:
            raise DockerfileError('%s line %d: the parser directive %s is set twice.' % (where, index + 1, name))
        seen.add(name)
        if name == 'escape':
            if match.group(2) not in ('\\', '`'):
                raise DockerfileError('%s line %d: the escape directive must be \\ or `, not %s.'
                                      % (where, index + 1, match.group(2)))
            escape = match.group(2)
        index += 1
    continuation = re.compile(re.escape(escape) + r'[ \t]*$')
    result = []
    current = None
    start = 0
    for number in range(index, len(lines)):
        line = lines[number]
        stripped = line.strip()
        if stripped.startswith('#') or (not stripped and current is None):
            continue
        if not stripped:
            continue  # an empty line inside a continued instruction: Docker warns and goes on
        if current is None:
            start = number + 1
            current = ''
            line = line.lstrip()
        match = continuation.search(line)
        if match:
            current += line[:match.start()]
            continue
        current += line
        result.append((start, current))
        current = None
    if current is not None and current.strip():
        result.append((start, current))
    return escape, result


def _split_words(text):
    """Whitespace-separated words of an instruction's arguments; quotes keep blanks inside a word."""
    words = []
    word = ''
    quote = None
    in_word = False
    position = 0
    while position < len(text):
        char = text[position]
        if quote:
            word += char
            if char == quote:
                quote = None
        elif char in ' \t':
            if in_word:
                words.append(word)
                word, in_word = '', False
        else:
            if char in '\'"':
                quote = char
            word += char
            in_word = True
        position += 1
    if in_word:
        words.append(word)
    return words


class _Expander(object):
    """Docker's word processing for one word: quotes, the escape character and $ substitutions."""

    def __init__(self, variables, escape, where):
        self.variables = variables
        self.escape = escape
        self.where = where

    def expand(self, word):
        self.word = word
        self.pos = 0
        return self._until(None)

    def _peek(self):
        return self.word[self.pos] if self.pos < len(self.word) else ''

    def _until(self, stop):
        out = ''
        while self.pos < len(self.word):
            char = self.word[self.pos]
            if stop is not None and char == stop:
                return out
            if char == self.escape:
                self.pos += 1
                out += self._peek()
                self.pos += 1
            elif char == "'":
                end = self.word.find("'", self.pos + 1)
                if end < 0:
                    raise DockerfileError('%s: unmatched single quote in %s.' % (self.where, self.word))
                out += self.word[self.pos + 1:end]
                self.pos = end + 1
            elif char == '"':
                out += self._double_quoted()
            elif char == '$':
                out += self._dollar()
            else:
                out += char
                self.pos += 1
        if stop is not None:
            raise DockerfileError('%s: missing } in %s.' % (self.where, self.word))
        return out

    def _double_quoted(self):
        self.pos += 1
        out = ''
        while self.pos < len(self.word):
            char = self.word[self.pos]
            if char == '"':
                self.pos += 1
                return out
            if char == self.escape and self.pos + 1 < len(self.word) and self.word[self.pos + 1] in '"$' + self.escape:
                out += self.word[self.pos + 1]
                self.pos += 2
            elif char == '$':
                out += self._dollar()
            else:
                out += char
                self.pos += 1
        raise DockerfileError('%s: unmatched double quote in %s.' % (self.where, self.word))

    def _value(self, name):
        return self.variables.get(name, UNSET)

    def _dollar(self):
        self.pos += 1
        if self._peek() == '{':
            return self._braced()
        match = _VAR_NAME.match(self.word, self.pos)
        if not match:
            return '$'
        self.pos = match.end()
        value = self._value(match.group(0))
        return '' if value is UNSET else value

    def _braced(self):
        self.pos += 1
        match = _VAR_NAME.match(self.word, self.pos)
        if not match:
            raise DockerfileError('%s: bad substitution in %s.' % (self.where, self.word))
        name = match.group(0)
        self.pos = match.end()
        value = self._value(name)
        char = self._peek()
        if char == '}':
            self.pos += 1
            return '' if value is UNSET else value
        if not char:
            raise DockerfileError('%s: missing } in %s.' % (self.where, self.word))
        colon = char == ':'
        if colon:
            self.pos += 1
            char = self._peek()
        if char not in ('-', '+', '?'):
            raise DockerfileError('%s: unsupported modifier in %s.' % (self.where, self.word))
        self.pos += 1
        word = self._until('}')
        self.pos += 1
        is_set = value is not UNSET and (value != '' or not colon)
        if char == '-':
            return value if is_set else word
        if char == '+':
            return word if is_set else ''
        if not is_set:
            raise DockerfileError('%s: %s is not set%s.' % (self.where, name, (': ' + word) if word else ''))
        return value


def _meta_arg(words, variables, build_args, expander):
    for word in words:
        name, sep, default = word.partition('=')
        if not _ARG_NAME.match(name):
            raise DockerfileError('%s: %s is no valid ARG name.' % (expander.where, name))
        if name in build_args:
            variables[name] = build_args[name]
        elif sep:
            variables[name] = expander.expand(default)
        elif name not in variables:
            variables[name] = UNSET


def _parse_from(words, expander, stages, where):
    platform = None
    while words and words[0].startswith('--'):
        flag, sep, value = words[0][2:].partition('=')
        if flag.lower() != 'platform' or not sep:
            raise DockerfileError('%s: FROM takes only the flag --platform=<platform>, not %s.' % (where, words[0]))
        platform = expander.expand(value)
        words = words[1:]
    if len(words) == 3 and words[1].lower() == 'as':
        name = words[2].lower()
        if not _STAGE_NAME.match(name):
            raise DockerfileError('%s: %s is no valid stage name (a letter, then letters, digits, -, _ or .).'
                                  % (where, words[2]))
    elif len(words) == 1:
        name = None
    else:
        raise DockerfileError('%s: FROM needs one image and optionally AS <name>, as in FROM image:tag AS build.'
                              % where)
    raw = words[0]
    expanded = expander.expand(raw)
    if not expanded:
        raise DockerfileError('%s: FROM %s names no image once its build arguments are applied; '
                              'give it a default or set it in build_args.' % (where, raw))
    stage = dict(index=len(stages), name=name, source=expanded, platform=platform, image=None, stage=None,
                 copy_from=[])
    earlier = _stage_named(stages, expanded)
    if earlier is not None:
        stage['stage'] = earlier
    elif expanded.lower() != 'scratch':
        stage['image'] = _image(expanded, raw, where)
    return stage


def _stage_named(stages, name):
    for stage in stages:
        if stage['name'] is not None and stage['name'] == name.lower():
            return stage['index']
    return None


def _image(value, raw, where):
    try:
        return str(parse(value))
    except InvalidReference as exc:
        shown = value if value == raw else '%s (from %s)' % (value, raw)
        raise DockerfileError('%s: %s is no valid image reference: %s.' % (where, shown, exc.reason))


def _copy_from(words, stages, where):
    """The image of COPY --from=<image>, when it names one literally (not a stage, not a variable)."""
    for word in words:
        if not word.startswith('--'):
            break
        flag, sep, value = word[2:].partition('=')
        if flag.lower() != 'from' or not sep:
            continue
        if not value or '$' in value or value.isdigit() or _stage_named(stages, value) is not None:
            return None
        if is_image_id(value):
            return None
        return _image(value, value, where)
    return None


def read_stages(text, build_args=None, target=None, where='Dockerfile'):
    """The stages of a Dockerfile, up to ``target``, each a dict.

    ``index``, ``name`` (lowercase, or None), ``source`` (the FROM value with its
    build arguments applied), ``platform``, ``image`` (the fully qualified image
    reference, or None for ``scratch`` and for stages built on an earlier stage),
    ``stage`` (the index of the earlier stage it builds on, or None), ``copy_from``
    (fully qualified images that ``COPY --from`` copies from).
    """
    build_args = dict((str(k), '' if v is None else str(v)) for k, v in (build_args or {}).items())
    escape, lines = _logical_lines(text, where)
    variables = {}
    stages = []
    for number, line in lines:
        here = '%s line %d' % (where, number)
        parts = line.strip().split(None, 1)
        instruction = parts[0].upper()
        rest = parts[1] if len(parts) > 1 else ''
        expander = _Expander(variables, escape, here)
        if instruction == 'ARG' and not stages:
            _meta_arg(_split_words(rest), variables, build_args, expander)
        elif instruction == 'FROM':
            stages.append(_parse_from(_split_words(rest), expander, stages, here))
        elif not stages:
            raise DockerfileError('%s: %s comes before the first FROM; only ARG may.' % (here, parts[0]))
        elif instruction == 'COPY':
            image = _copy_from(_split_words(rest), stages, here)
            if image and image not in stages[-1]['copy_from']:
                stages[-1]['copy_from'].append(image)
    if not stages:
        raise DockerfileError('%s has no FROM instruction.' % where)
    if target:
        wanted = _stage_named(stages, target)
        if wanted is None:
            raise DockerfileError('%s has no stage named %s (the target).' % (where, target))
        stages = stages[:wanted + 1]
    return stages


def base_images(stages):
    """The distinct images the stages build or copy from, in the order they appear."""
    images = []
    for stage in stages:
        for image in [stage['image']] + stage['copy_from']:
            if image and image not in images:
                images.append(image)
    return images
