# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``query`` option: a JMESPath expression over a module's result list."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.patchops.docker.plugins.module_utils.errors import InvalidOption

_SHOWN_MAX = 120


def _shown(expression):
    """The expression as a message quotes it: on one line, long ones cut short."""
    if len(expression) > _SHOWN_MAX:
        return repr(expression[:_SHOWN_MAX - 3] + '...')
    return repr(expression)


def _detail(text):
    """The parser's or evaluator's own words, on one line and not too long."""
    text = ' '.join(str(text).split()).rstrip('.')
    return text if len(text) <= 300 else text[:290].rstrip('.') + ' [...]'


def compile_query(module, expression):
    """Compile ``expression`` once; return a function of the data, or None without a query.

    A missing library fails the module with ``missing_required_lib``; an
    invalid expression raises InvalidOption with the parser's own words.
    """
    if expression is None:
        return None
    try:  # only with a query: a check without one does not load the library
        import jmespath
        from jmespath.exceptions import JMESPathError
    except ImportError:
        module.fail_json(msg=missing_required_lib('jmespath'))
    try:
        compiled = jmespath.compile(expression)
    except JMESPathError as exc:
        detail = getattr(exc, 'msg', None) or ' '.join(str(exc).split())
        position = getattr(exc, 'lex_position', None)
        if isinstance(position, int):
            detail = '%s at position %d' % (detail, position)
        raise InvalidOption("Invalid JMESPath expression in query %s: %s." % (_shown(expression), _detail(detail)))

    def evaluate(data):
        try:
            return compiled.search(data)
        except JMESPathError as exc:
            raise InvalidOption("The JMESPath query %s failed: %s." % (_shown(expression), _detail(exc)))
    return evaluate
