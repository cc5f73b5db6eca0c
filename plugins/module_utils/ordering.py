# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Dependency order: a container is recreated after the containers it depends on.

A container depends on X when it shares X's network namespace
(``network_mode: container:X``), links to X, or names X in the label
``patchops.docker.depends-on`` (comma-separated names).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError

LABEL_DEPENDS_ON = 'patchops.docker.depends-on'


def _name(inspect):
    return (inspect.get('Name') or '').lstrip('/')


def dependencies(inspect, names_by_id):
    """Names of the containers ``inspect`` depends on, and whether each must follow a recreate.

    Returns ``{name: hard}``; ``hard`` is True when the dependent stops working
    if that container is recreated under it (shared network namespace, links).
    """
    host_config = inspect.get('HostConfig') or {}
    deps = {}
    mode = host_config.get('NetworkMode') or ''
    if mode.startswith('container:'):
        target = mode[len('container:'):]
        deps[names_by_id.get(target, target)] = True
    for link in host_config.get('Links') or []:
        target = link.split(':', 1)[0].lstrip('/')
        deps[names_by_id.get(target, target)] = True
    labels = (inspect.get('Config') or {}).get('Labels') or {}
    for target in (labels.get(LABEL_DEPENDS_ON) or '').split(','):
        target = target.strip().lstrip('/')
        if target and target not in deps:
            deps[target] = False
    deps.pop(_name(inspect), None)
    return deps


def dependency_order(inspects, names_by_id):
    """Order container inspects so every container comes after those it depends on.

    Dependencies outside ``inspects`` do not constrain the order. Ties keep the
    given order. A cycle is refused with one sentence naming its members.
    """
    by_name = dict((_name(inspect), inspect) for inspect in inspects)
    deps = dict((name, [d for d in dependencies(inspect, names_by_id) if d in by_name])
                for name, inspect in by_name.items())
    ordered, done, visiting = [], set(), []

    def visit(name):
        if name in done:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name):]
            raise PatchopsError('Containers %s depend on each other; break the cycle in their %s labels or links.'
                                % (', '.join(sorted(cycle)), LABEL_DEPENDS_ON))
        visiting.append(name)
        for dep in deps[name]:
            visit(dep)
        visiting.pop()
        done.add(name)
        ordered.append(by_name[name])

    for inspect in inspects:
        visit(_name(inspect))
    return ordered


def hard_dependents(all_inspects, names_by_id, recreated_names):
    """Containers not in ``recreated_names`` that stop working when one of those is recreated."""
    found = []
    for inspect in all_inspects:
        name = _name(inspect)
        if name in recreated_names:
            continue
        hard = [dep for dep, is_hard in dependencies(inspect, names_by_id).items() if is_hard]
        if any(dep in recreated_names for dep in hard):
            found.append(inspect)
    return found


COMPOSE_PROJECT = 'com.docker.compose.project'
COMPOSE_SERVICE = 'com.docker.compose.service'


def independent_groups(ordered, names_by_id):
    """Split containers (inspects in dependency order) into groups that can be swapped at the same time.

    Two containers share a group when one depends on the other (network namespace, link,
    ``patchops.docker.depends-on``), directly or through others of the list, or when they are
    replicas of one Compose service (same project and service labels): replicas are swapped one
    after another so that the service never loses all of them at once. Each group keeps the
    given order; groups come in the order of their first member.
    """
    names = [_name(inspect) for inspect in ordered]
    parent = dict((name, name) for name in names)

    def root(name):
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    def join(a, b):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra

    services = {}
    for inspect in ordered:
        name = _name(inspect)
        for dep in dependencies(inspect, names_by_id):
            if dep in parent:
                join(name, dep)
        labels = (inspect.get('Config') or {}).get('Labels') or {}
        if labels.get(COMPOSE_PROJECT) and labels.get(COMPOSE_SERVICE):
            key = (labels[COMPOSE_PROJECT], labels[COMPOSE_SERVICE])
            join(services.setdefault(key, name), name)
    groups = {}
    for inspect in ordered:
        groups.setdefault(root(_name(inspect)), []).append(inspect)
    return list(groups.values())
