# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Version order exactly as dpkg and apk order versions.

``dpkg_compare(a, b)`` is dpkg's own algorithm (deb-version(7); dpkg's
``lib/dpkg/version.c``: ``parseversion()`` and ``verrevcmp()``):

* ``[epoch:]upstream[-revision]``: the epoch is the number before the first
  colon (0 when absent), the revision what follows the last hyphen (empty when
  absent, which orders like ``0``);
* epochs compare as numbers, then upstream, then revision, each with
  ``verrevcmp``: alternately a run of non-digits, compared character by
  character where ``~`` sorts before everything, even the end of the string,
  then letters, then bytes of 128 and more, then every other character (each
  group by code), and a run of digits, compared as a number;
* what dpkg refuses (an empty version, a non-numeric, negative or too big epoch,
  nothing after the colon, an empty revision, embedded blanks) raises
  ``ValueError``; what dpkg only warns about (a version that does not start
  with a digit, characters outside ``[A-Za-z0-9.+~-:]``) is compared the way dpkg
  compares it. Characters are compared as the bytes of their UTF-8 encoding,
  as dpkg does (a byte of 128 or more as dpkg's signed ``char`` makes it).

Both compare keys built once per version (``dpkg_key``: the epoch, and upstream
and revision each as bytes that compare as ``verrevcmp`` compares them; kept in a
cache), so that the 150,000 packages of 1,000 images are compared with an index
in about a second (benchmarks/bench_package_compare.py).

We implement it here instead of importing python-debian's
``debian.debian_support.Version``: the modules run on Docker hosts and
package_updates_info on the controller, neither of which may need a package
beyond the Docker SDK; the algorithm is some forty lines. The unit tests check
it against python-debian and against the real ``dpkg --compare-versions``
(the test oracles).

``apk_compare(a, b)`` is apk-tools' comparison (``src/version.c`` of apk-tools
3, what ``apk version -t`` prints): ``digit{.digit}...{letter}{_suffix{digits}}...{~hash}{-rN}``;
a component with a leading zero compares as a string, others as numbers; a
letter by its code; the suffixes ``_alpha`` < ``_beta`` < ``_pre`` < ``_rc`` <
(none) < ``_cvs`` < ``_svn`` < ``_git`` < ``_hg`` < ``_p``; a commit hash as a
string; ``-rN`` as a number. When one version runs out first, the longer one is
newer unless what follows is a pre-release suffix; an invalid tail is older
than anything valid. ``apk_valid(v)`` says whether apk accepts a version.

Pure logic, no Docker: runs on managed nodes and the controller (Python 3.9,
standard library).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from functools import lru_cache

# ------------------------------------------------------------------------------------------ dpkg

# dpkg's order() of a character in a non-digit run: '~' -1, the end of the run (a digit or the
# end of the string) 0, letters their code, a byte of 128 or more its code (dpkg's signed char
# c + 256), every other character its code + 256. _DPKG_TABLE maps each byte to one byte in
# the same order: '~' 1, (the end of a run is _DPKG_RUN_END, 2), letters 3-54, bytes >= 128
# 55-182, the others 183-247.


def _dpkg_table():
    def order(c):
        if c == 0x7e:
            return -1
        if 0x41 <= c <= 0x5a or 0x61 <= c <= 0x7a or c >= 128:
            return c
        return c + 256
    chars = sorted((c for c in range(256) if not 0x30 <= c <= 0x39), key=order)
    table = bytearray(range(256))
    for rank, c in enumerate(chars):
        table[c] = rank + 1 if c == 0x7e else rank + 2
    return bytes(table)


_DPKG_TABLE = _dpkg_table()
_DPKG_RUN_END = b'\x02'
_DPKG_ZERO = b'\x02\x00'      # an empty non-digit run and the number 0: what an ended string goes on as
_DPKG_PART_END = b'\x02\x00\x02'
_DPKG_DIGITS = re.compile(br'([0-9]+)')
_DPKG_EPOCH = re.compile(r'[ \t\n\v\f\r]*([+-]?)([0-9]+)')
_DPKG_BLANK = ' \t'
_INT_MAX = 2 ** 31 - 1


def _dpkg_part_key(text):
    """A version part as bytes that compare as dpkg's verrevcmp() compares the part.

    verrevcmp() compares, run by run, a run of non-digits character by character by
    order() (a run that ends first compares as order() 0, and sorts after '~' and before
    anything else), then the following run of digits as a number, an ended string going
    on as empty runs and zeros. Here each non-digit run is mapped byte for byte to its
    order (_DPKG_TABLE) and ended with _DPKG_RUN_END, each number written as its length
    and its digits without leading zeros. An ended string goes on as _DPKG_ZERO repeated:
    those at the end are dropped and _DPKG_PART_END stands for all of them (what can
    follow in a longer part is a '~' (smaller), another character or a non-zero number
    (larger), never a third byte of 2, since only the first run can be empty).
    """
    pieces = _DPKG_DIGITS.split(text.encode('utf-8'))
    out = []
    for i in range(0, len(pieces) - 1, 2):
        digits = pieces[i + 1].lstrip(b'0')
        size = len(digits)
        out.append(pieces[i].translate(_DPKG_TABLE) + _DPKG_RUN_END +
                   (bytes((size,)) if size < 255 else b'\xff' + size.to_bytes(4, 'big')) + digits)
    if pieces[-1]:
        out.append(pieces[-1].translate(_DPKG_TABLE))
    key = b''.join(out)
    while key.endswith(_DPKG_ZERO):
        key = key[:-2]
    return key + _DPKG_PART_END


def _dpkg_parse(version):
    """(epoch, upstream parts, revision parts) of a version, or ValueError where dpkg refuses it."""
    if not isinstance(version, str):
        raise ValueError('The dpkg version %r is not a string.' % (version,))
    if not version:
        raise ValueError('The dpkg version string is empty.')
    text = version.strip(_DPKG_BLANK)
    end = 0
    while end < len(text) and text[end] not in _DPKG_BLANK:
        end += 1
    if end < len(text):
        raise ValueError('The dpkg version %r has embedded spaces.' % version)
    epoch = 0
    colon = text.find(':')
    if colon >= 0:
        match = _DPKG_EPOCH.match(text)
        if not match:
            raise ValueError('The epoch of the dpkg version %r is empty.' % version)
        if match.end() != colon:
            raise ValueError('The epoch of the dpkg version %r is not a number.' % version)
        epoch = int(match.group(1) + match.group(2))
        if epoch < 0:
            raise ValueError('The epoch of the dpkg version %r is negative.' % version)
        if epoch > _INT_MAX:
            raise ValueError('The epoch of the dpkg version %r is too big.' % version)
        text = text[colon + 1:]
        if not text:
            raise ValueError('The dpkg version %r has nothing after the colon.' % version)
    hyphen = text.rfind('-')
    if hyphen >= 0:
        upstream, revision = text[:hyphen], text[hyphen + 1:]
        if not revision:
            raise ValueError('The revision of the dpkg version %r is empty.' % version)
    else:
        upstream, revision = text, ''
    if not upstream:
        raise ValueError('The upstream part of the dpkg version %r is empty.' % version)
    return epoch, _dpkg_part_key(upstream), _dpkg_part_key(revision)


_dpkg_parse = lru_cache(maxsize=1 << 18)(_dpkg_parse)


def dpkg_key(version):
    """A sort key for a Debian package version: keys compare as dpkg compares the versions.

    Raises ValueError (one sentence) for a version dpkg refuses to parse.
    """
    return _dpkg_parse(version)


def dpkg_compare(a, b):
    """Compare two Debian package versions as dpkg does: -1 if a is older, 0 if equal, 1 if newer.

    Raises ValueError (one sentence) for a version dpkg refuses to parse.
    """
    ka = _dpkg_parse(a)
    if a == b:
        return 0
    kb = _dpkg_parse(b)
    return (ka > kb) - (ka < kb)


# ------------------------------------------------------------------------------------------- apk

# apk-tools src/version.c, enum PARTS
_T_INITIAL_DIGIT, _T_DIGIT, _T_LETTER, _T_SUFFIX, _T_SUFFIX_NO, _T_COMMIT_HASH, _T_REVISION_NO, _T_END, _T_INVALID = range(9)
# DECLARE_SUFFIXES: INVALID, pre-release suffixes, NONE, post-release suffixes
_S_INVALID, _S_NONE = 0, 5
_APK_SUFFIXES = {b'alpha': 1, b'beta': 2, b'pre': 3, b'rc': 4, b'cvs': 6, b'svn': 7, b'git': 8, b'hg': 9, b'p': 10}
_U64 = 2 ** 64

APK_LESS, APK_EQUAL, APK_GREATER, APK_FUZZY = 2, 1, 4, 8


class _ApkTokens(object):
    """apk-tools' token_state walking one version: token, suffix, number, value."""

    __slots__ = ('text', 'pos', 'token', 'suffix', 'number', 'value')

    def __init__(self, text):
        self.text = text
        self.pos = 0
        self.token = _T_INITIAL_DIGIT
        self.suffix = _S_INVALID
        self.number = 0
        self.value = b''
        self._digits()

    def _span(self, test):
        start = self.pos
        text = self.text
        while self.pos < len(text) and test(text[self.pos]):
            self.pos += 1
        return text[start:self.pos]

    def _digits(self):
        digits = self._span(lambda c: 0x30 <= c <= 0x39)
        self.value = digits
        self.number = int(digits) % _U64 if digits else 0
        if not digits:
            self.token = _T_INVALID

    def next(self):
        text, token = self.text, self.token
        if self.pos >= len(text):
            self.token = _T_END
            return
        c = text[self.pos]
        if 0x61 <= c <= 0x7a:  # a-z
            if token > _T_DIGIT:
                self.token = _T_INVALID
                return
            self.value = text[self.pos:self.pos + 1]
            self.token = _T_LETTER
            self.pos += 1
        elif c == 0x2e or 0x30 <= c <= 0x39:  # '.' or a digit
            if c == 0x2e:
                if token > _T_DIGIT:
                    self.token = _T_INVALID
                    return
                self.pos += 1
            if token in (_T_INITIAL_DIGIT, _T_DIGIT):
                self.token = _T_DIGIT
            elif token == _T_SUFFIX:
                self.token = _T_SUFFIX_NO
            else:
                self.token = _T_INVALID
                return
            self._digits()
        elif c == 0x5f:  # '_'
            if token > _T_SUFFIX_NO:
                self.token = _T_INVALID
                return
            self.pos += 1
            self.value = self._span(lambda c: 0x61 <= c <= 0x7a)
            self.suffix = _APK_SUFFIXES.get(self.value, _S_INVALID)
            self.token = _T_INVALID if self.suffix == _S_INVALID else _T_SUFFIX
        elif c == 0x7e:  # '~'
            if token >= _T_COMMIT_HASH:
                self.token = _T_INVALID
                return
            self.pos += 1
            self.value = self._span(lambda c: 0x30 <= c <= 0x39 or 0x61 <= c <= 0x66)
            self.token = _T_COMMIT_HASH if self.value else _T_INVALID
        elif c == 0x2d:  # '-'
            if token >= _T_REVISION_NO or text[self.pos:self.pos + 2] != b'-r':
                self.token = _T_INVALID
                return
            self.pos += 2
            self.token = _T_REVISION_NO
            self._digits()
        else:
            self.token = _T_INVALID


def _apk_token_cmp(ta, tb):
    """token_cmp(): two tokens of the same kind as -1, 0 or 1."""
    token = ta.token
    if token == _T_DIGIT and (ta.value[:1] == b'0' or tb.value[:1] == b'0'):
        a, b = ta.value, tb.value  # a leading zero: string order (memcmp, then the shorter first)
    elif token in (_T_INITIAL_DIGIT, _T_DIGIT, _T_SUFFIX_NO, _T_REVISION_NO):
        a, b = ta.number, tb.number
    elif token == _T_LETTER:
        a, b = ta.value, tb.value
    elif token == _T_SUFFIX:
        a, b = ta.suffix, tb.suffix
    else:
        a, b = ta.value, tb.value
    return (a > b) - (a < b)


def _apk_version_bytes(version):
    if not isinstance(version, str):
        raise ValueError('The apk version %r is not a string.' % (version,))
    return version.encode('utf-8')


def _apk_compare_fuzzy(a, b, fuzzy):
    """apk_version_compare_fuzzy(): APK_LESS, APK_EQUAL or APK_GREATER."""
    ta, tb = _ApkTokens(_apk_version_bytes(a)), _ApkTokens(_apk_version_bytes(b))
    while ta.token == tb.token and ta.token < _T_END:
        r = _apk_token_cmp(ta, tb)
        if r:
            return APK_LESS if r < 0 else APK_GREATER
        ta.next()
        tb.next()
    if ta.token == tb.token:
        return APK_EQUAL
    if tb.token == _T_END and fuzzy:
        return APK_EQUAL
    # the leading components are equal: the longer one is newer unless it goes on with a pre-release suffix
    if ta.token == _T_SUFFIX and ta.suffix < _S_NONE:
        return APK_LESS
    if tb.token == _T_SUFFIX and tb.suffix < _S_NONE:
        return APK_GREATER
    if ta.token > tb.token:
        return APK_LESS
    if tb.token > ta.token:
        return APK_GREATER
    return APK_EQUAL


def apk_compare(a, b):
    """Compare two Alpine package versions as apk does: -1 if a is older, 0 if equal, 1 if newer."""
    r = _apk_compare_fuzzy(a, b, False)
    return -1 if r == APK_LESS else (1 if r == APK_GREATER else 0)


apk_compare = lru_cache(maxsize=65536)(apk_compare)


def apk_valid(version):
    """Whether apk accepts ``version`` (apk_version_validate())."""
    t = _ApkTokens(_apk_version_bytes(version))
    while t.token < _T_END:
        t.next()
    return t.token == _T_END


def apk_match(a, op, b):
    """apk_version_match(): whether ``a OP b`` holds for OP in <, <=, =, >=, >, ~, <~, >~ (``!`` in front negates)."""
    invert = op.startswith('!')
    if invert:
        op = op[1:]
    mask = 0
    for char in op:
        if char == '<':
            mask |= APK_LESS
        elif char == '>':
            mask |= APK_GREATER
        elif char == '=':
            mask |= APK_EQUAL
        elif char == '~':
            mask |= APK_FUZZY | APK_EQUAL
        else:
            raise ValueError('%r is not an apk version operator.' % (op,))
    any_mask = APK_LESS | APK_EQUAL | APK_GREATER
    ok = (mask & any_mask) == any_mask or bool(_apk_compare_fuzzy(a, b, bool(mask & APK_FUZZY)) & mask)
    return not ok if invert else ok


COMPARE = {'dpkg': dpkg_compare, 'apk': apk_compare}
