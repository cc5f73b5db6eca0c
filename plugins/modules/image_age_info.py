#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: image_age_info
short_description: Report how old the image behind each container is and whether a newer one is waiting
version_added: 0.1.0
description:
  - Lists the containers of one Docker host with the age of the image each one runs, and whether the
    registry holds a newer image for the tag the container was created from.
  - Each distinct image reference is looked up in its registry once, through the Docker daemon, with up to
    O(concurrency) look-ups at a time. A registry that fails marks only its own containers as unknown
    (RV(containers[].update_available=null)); the module still succeeds.
  - Read-only. A swap that a killed M(patchops.docker.container_update) run left half-done is reported under
    RV(interrupted) and left as it is, unless O(recover=true) asks this module to put it right first.
  - Works the same against Podman 4.3+ through its Docker-compatible API (O(docker_host=unix:///run/podman/podman.sock),
    rootless C(unix:///run/user/UID/podman/podman.sock)); RV(engine.image_store) is then V(podman). Podman gives
    every image a repo digest, its own builds too; an image with a parent (built from another image on the host)
    or named under C(localhost/) counts as V(image built locally) there.
author:
  - patchops.docker maintainers (@patchops)
extends_documentation_fragment:
  - patchops.docker.docker
  - patchops.docker.attributes
  - patchops.docker.attributes.actiongroup_docker
  - patchops.docker.attributes.info_module
attributes:
  check_mode:
    details:
      - This action does not modify state, and ignores O(recover) in check mode.
  idempotent:
    details:
      - This action does not modify state, unless O(recover=true) finds a swap a killed run left behind; a second
        run then finds none.
options:
  containers:
    description:
      - Names or IDs (full or a unique prefix) of the containers to report on.
      - Named containers are reported whatever their state. A name that matches no container fails the module
        before anything else is done.
      - When empty, every running container is reported (stopped ones too with O(include_stopped=true)).
    type: list
    elements: str
    default: []
  include_stopped:
    description:
      - Also report containers that are not running, when O(containers) is empty.
    type: bool
    default: false
  check_registry:
    description:
      - Ask the registry whether it holds a newer image for each container's tag.
      - When V(false), only local facts are used; RV(containers[].update_available) is then V(true) when the
        local tag already names a newer image, and V(null) otherwise.
    type: bool
    default: true
  max_age_days:
    description:
      - A container whose image is older than this many days is RV(containers[].stale).
    type: int
    default: 30
  max_age_days_exposed:
    description:
      - The stricter age limit for containers reachable from outside the host (RV(containers[].exposed)),
        that is with ports published on a non-loopback address, or with host networking.
    type: int
    default: 7
  include_unused_images:
    description:
      - Also report local images that no reported container uses, under RV(images) with RV(images[].in_use=false),
        the way the C(CREATED) column of C(docker images) shows them. Their registry is not asked.
    type: bool
    default: false
  concurrency:
    description:
      - How many registry look-ups run at the same time.
    type: int
    default: 8
  state_dir:
    description:
      - The directory where M(patchops.docker.container_update) keeps its journal on the managed node. This
        module reads it for RV(interrupted) and never creates it.
    type: path
    default: /var/lib/patchops-docker
  recover:
    description:
      - Put right first every swap that a killed M(patchops.docker.container_update) run left behind in
        O(state_dir), as the next M(patchops.docker.container_update) run would (RV(recovered)), and report
        C(changed) when one was. A swap that had passed its health gate is completed, any other is undone so
        that the original container is back under its name.
      - Never while another run holds the host lock (its swaps are in progress), and never in check mode.
      - When V(false) (the default) the module changes nothing and lists those swaps under RV(interrupted).
    type: bool
    default: false
  query:
    description:
      - A JMESPath expression evaluated over the RV(containers) list; its value is returned as RV(selected).
      - Requires the C(jmespath) Python library on the managed node.
    type: str
  remote_digests:
    description:
      - Digests of tags another host already looked up, a dict of reference to digest (the RV(lookups) of that host's
        run). A reference given here is not looked up again; a container is compared with its digest as with
        the registry's answer. References are matched fully qualified (V(app:1) is V(docker.io/library/app:1)).
      - A container whose image is not known by the given digest (its tag moved) may still cost a request to
        its registry, to tell which platform's image moved.
      - The role C(patchops.docker.patch_containers) fills this in when C(patch_containers_share_lookups) is on,
        so that each reference is looked up once per play batch, by a host that runs it, with that host's
        credentials.
    type: dict
    default: {}
  share_lookups:
    description:
      - Take part in registry look-ups shared by the hosts of a play batch, in this one run. The batch's references are
        split into C(count) shares by a hash of the fully qualified reference; this host looks up only the references
        of its share (C(index)) that it runs, and leaves its containers on every other
        reference waiting for another host's answer (RV(containers[].update_available=null),
        V(registry not checked)), to be decided by the P(patchops.docker.settle_lookups#filter) filter with the
        RV(lookups) of the other hosts.
      - A reference whose share fell to a host that does not run it is looked up by none of them here; the role then
        asks the first host that runs it (P(patchops.docker.lookup_owners#filter)), so that a batch whose hosts run the
        same images costs one look-up per reference and one run of this module per host.
      - "A dict of two integers: C(count), how many shares the references are split into (the hosts of the batch), and
        C(index), this host's share, from V(0) to C(count) minus one."
      - Set by the role C(patchops.docker.patch_containers) with C(patch_containers_share_lookups) on and more than
        one host in the batch (C(index) is the host's place in C(ansible_play_batch)).
    type: dict
notes:
  - A container is compared with the registry by digest. An image that was built on the host and never pushed
    or pulled has no registry digest, is reported as V(image built locally) and is never looked up.
    Under the containerd image store every image has a registry digest, so the image alone cannot say
    that it was never pushed; there its tag is looked up, and a registry that has no such tag means
    V(image built locally). An image built on the host under a name without a registry host (C(myapp:1))
    is therefore looked up at Docker Hub, as C(docker.io/library/myapp:1), and if Docker Hub has that tag it
    is compared with it. Give such images a name under a registry of your own, or leave their containers out
    with the label C(patchops.docker.enable=false).
  - Containers pinned to a digest (C(image@sha256:...)) are never due for an update.
seealso:
  - module: patchops.docker.container_update
    description: Pull the newer images and recreate the containers on them.
'''

EXAMPLES = r'''
- name: Report the age of every running container's image
  patchops.docker.image_age_info:
  register: ages

- name: Show the containers that have a newer image waiting
  ansible.builtin.debug:
    msg: "{{ ages.containers | selectattr('update_available') | map(attribute='name') | list }}"

- name: Check a few containers on a remote engine over TLS, without asking registries
  patchops.docker.image_age_info:
    docker_host: tcp://docker01.example.com:2376
    validate_certs: true
    containers: [web, worker]
    check_registry: false

- name: Select stale containers with a JMESPath query
  patchops.docker.image_age_info:
    max_age_days: 90
    query: "[?stale].{name: name, age: image_age_days, image: image}"
  register: stale

- name: Use the same connection for every module of the collection
  module_defaults:
    group/patchops.docker.docker:
      docker_host: unix:///run/user/1000/docker.sock
  block:
    - name: Report images nobody uses any more too
      patchops.docker.image_age_info:
        include_unused_images: true

- name: Put right what a killed container_update run left behind, then report
  patchops.docker.image_age_info:
    recover: true
  register: ages

- name: Say which swaps were put right
  ansible.builtin.debug:
    msg: "{{ ages.recovered | map(attribute='name') | list }}"
'''

RETURN = r'''
containers:
  description: One entry per container, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The container's name.
      type: str
      sample: web
    id:
      description: The container's full ID.
      type: str
    state:
      description: The container's state, as Docker reports it.
      type: str
      sample: running
    image:
      description: The image reference the container was created from, as written when it was created.
      type: str
      sample: registry.example.com/shop/web:1.25
    image_id:
      description:
        - The ID of the image the container runs.
        - Under the containerd image store this is the digest of what its tag resolved to when it was pulled (an
          index for a multi-platform tag); such an image can be gone from the store once its tag moved on, and the
          container is then still reported, with RV(containers[].image_created) and RV(containers[].image_age_days)
          V(null).
      type: str
      sample: sha256:4c0b5f0e7a1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7
    platform:
      description:
        - The platform of the image the container runs, as the registry check uses it. A multi-platform tag is an
          update only when the image for this platform moved in its index.
      type: str
      sample: linux/amd64
    image_created:
      description: When the running image was created, ISO 8601 in UTC; V(null) when the image store no longer has it.
      type: str
      sample: '2026-05-12T10:00:00Z'
    image_age_days:
      description: Age of the running image in days.
      type: float
      sample: 199.5
    remote_digest:
      description: The digest the registry serves for the tag now; V(null) when not looked up or on error.
      type: str
      sample: sha256:3f1c...
    image_digests:
      description:
        - The digests the running image is known by in the repository of its reference (its repo digests;
          under the containerd image store also its ID). A registry digest among them means the container
          runs what the registry serves. Empty for a container created from an image ID or a digest.
      type: list
      elements: str
    update_available:
      description:
        - V(true) when a newer image exists for the tag (in the registry, or already as the local tag),
          V(false) when not, V(null) when unknown (registry error, or not checked).
      type: bool
    reason:
      description: One short sentence saying why RV(containers[].update_available) has its value.
      type: str
      sample: registry has a newer image for tag 1.25
    error:
      description: The registry error, when the look-up failed; otherwise V(null).
      type: str
    exposed:
      description: Whether the container publishes ports on a non-loopback address or uses host networking.
      type: bool
    max_age_days:
      description: The age limit that applies to this container (O(max_age_days) or O(max_age_days_exposed)).
      type: int
    stale:
      description: Whether the image is older than the limit that applies to the container.
      type: bool
    labels:
      description: The container's labels.
      type: dict
    compose_project:
      description: The Compose project the container belongs to, if any.
      type: str
    compose_service:
      description: The Compose service of the container, if any.
      type: str
    build_context:
      description: The build context recorded by M(patchops.docker.image_rebuild) on the image, if any.
      type: str
    excluded:
      description: Whether the container carries the label C(patchops.docker.enable=false).
      type: bool
    systemd_unit:
      description:
        - On a Podman host, the systemd unit that runs the container (its label C(PODMAN_SYSTEMD_UNIT), set by
          C(podman generate systemd --new) and Quadlet); V(null) otherwise.
        - M(patchops.docker.container_update) leaves such a container to systemd.
      type: str
      sample: container-web.service
  sample:
    - name: web
      id: 0b8f2c4e6a1d3f5b7c9e1a3d5f7b9c1e3a5d7f9b1c3e5a7d9f1b3c5e7a9d1f3b
      state: running
      image: registry.example.com/shop/web:1.25
      image_id: sha256:3f1c9a0d5e2b7c4a8f6e1d0b9c8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a
      platform: linux/amd64
      image_created: '2026-10-16T08:12:44Z'
      image_age_days: 45.2
      remote_digest: sha256:9e7c5a3f1d9b7e5c3a1f9d7b5e3c1a9f7d5b3e1c9a7f5d3b1e9c7a5f3d1b9e7c
      update_available: true
      reason: registry has a newer image for tag 1.25
      error: null
      exposed: true
      max_age_days: 7
      stale: true
      labels: {com.docker.compose.project: shop, com.docker.compose.service: web}
      compose_project: shop
      compose_service: web
      build_context: null
      excluded: false
      systemd_unit: null
images:
  description:
    - One entry per distinct image reference in use (each looked up at most once), sorted by reference.
    - With O(include_unused_images=true), also one entry per tag of each local image no reported container uses.
  returned: always
  type: list
  elements: dict
  contains:
    reference:
      description: The fully qualified reference, or the image ID for containers created from an ID.
      type: str
      sample: docker.io/library/nginx:1.25
    repository:
      description: The repository as Docker shows it.
      type: str
      sample: nginx
    tag:
      description: The tag.
      type: str
    digest:
      description: The digest the reference is pinned to, if any.
      type: str
    local_image_id:
      description: The image the reference names on the host now.
      type: str
    remote_digest:
      description: The digest the registry serves for the tag.
      type: str
    update_available:
      description: Whether any container on this reference can be updated.
      type: bool
    reason:
      description: Why.
      type: str
    in_use:
      description: Whether a reported container uses the image.
      type: bool
    containers:
      description: Names of the containers created from this reference.
      type: list
      elements: str
    image_created:
      description: Creation time of an unused image, ISO 8601 UTC.
      type: str
      returned: for unused images
    image_age_days:
      description: Age of an unused image in days.
      type: float
      returned: for unused images
    stale:
      description: Whether an unused image is older than O(max_age_days).
      type: bool
      returned: for unused images
  sample:
    - reference: registry.example.com/shop/web:1.25
      repository: registry.example.com/shop/web
      tag: '1.25'
      digest: sha256:1d3f5b7c9e1a3d5f7b9c1e3a5d7f9b1c3e5a7d9f1b3c5e7a9d1f3b5c7e9a1d3f
      local_image_id: sha256:3f1c9a0d5e2b7c4a8f6e1d0b9c8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a
      remote_digest: sha256:9e7c5a3f1d9b7e5c3a1f9d7b5e3c1a9f7d5b3e1c9a7f5d3b1e9c7a5f3d1b9e7c
      update_available: true
      reason: registry has a newer image for tag 1.25
      in_use: true
      containers: [web]
      image_created: '2026-10-16T08:12:44Z'
      image_age_days: 45.2
      stale: true
summary:
  description: Counts over RV(containers).
  returned: always
  type: dict
  contains:
    containers:
      description: Number of containers reported.
      type: int
    updates_available:
      description: Containers with RV(containers[].update_available=true).
      type: int
    stale:
      description: Containers whose image is older than their limit.
      type: int
    unknown:
      description: Containers with RV(containers[].update_available=null).
      type: int
    errors:
      description: Containers whose registry look-up failed.
      type: int
    oldest_image_age_days:
      description: Age in days of the oldest image in use; V(null) when no container is reported.
      type: float
  sample:
    containers: 12
    updates_available: 3
    stale: 2
    unknown: 1
    errors: 1
    oldest_image_age_days: 212.4
selected:
  description: The value of O(query) evaluated over RV(containers).
  returned: when O(query) is set
  type: raw
  sample:
    - {name: web, age: 45.2, image: 'registry.example.com/shop/web:1.25'}
engine:
  description: The container engine of the host.
  returned: always
  type: dict
  contains:
    version:
      description: The engine's version.
      type: str
      sample: 26.1.5
    api_version:
      description: The newest Engine API version the engine speaks.
      type: str
      sample: '1.45'
    image_store:
      description:
        - V(classic) (graph drivers such as overlay2), V(containerd) (the containerd image store, the default of fresh
          installs of Engine 29) or V(podman).
      type: str
      sample: containerd
    platform:
      description: The platform the engine pulls images for.
      type: str
      sample: linux/amd64
  sample: {version: 26.1.5, api_version: '1.45', image_store: containerd, platform: linux/amd64}
recovered:
  description:
    - With O(recover=true), the containers of an interrupted M(patchops.docker.container_update) run that this
      run put right, as M(patchops.docker.container_update) reports them. Usually empty.
  returned: always
  type: list
  elements: dict
  sample:
    - name: web
      action: restored
      message: An interrupted swap (stage created) was undone; the original container is back.
lookups:
  description:
    - The digests this run found in registries, a dict of reference to digest, for the references it looked up itself
      (not those given in O(remote_digests)). Failed look-ups are left out. Pass it to other hosts'
      O(remote_digests).
  returned: always
  type: dict
  sample: {"registry.example.com/shop/web:1.25": "sha256:3f1c9a0d5e2b7c4a8f6e1d0b9c8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a"}
registry_lookups:
  description: How many tags this run looked up in their registries (one request each, C(HEAD) of the manifest).
  returned: always
  type: int
  sample: 3
interrupted:
  description:
    - The swaps a killed M(patchops.docker.container_update) run left behind and nobody has put right yet
      (after RV(recovered) with O(recover=true)). The next M(patchops.docker.container_update) run, or this
      module with O(recover=true), puts them right. Empty while another run holds the lock. Usually empty.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The container's name.
      type: str
    stage:
      description:
        - How far the swap got. V(stopping) (the old container was being stopped), V(renamed) (it is stopped and
          carries the backup name), V(created) (a new container exists under the name, maybe started) or
          V(healthy) (the new container passed its gate; only the backup's removal is left).
      type: str
    backup:
      description: The name the old container carries while the swap is not finished.
      type: str
  sample:
    - name: web
      stage: created
      backup: web.patchops-backup
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.patchops.docker.plugins.module_utils.client import DockerClient, connection_problem, docker_argument_spec
from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils import engine, platforms
from ansible_collections.patchops.docker.plugins.module_utils.image_age import (
    assess_container,
    mark_podman_builds,
    plan_lookups,
    plan_platform_checks,
    summarize,
    summarize_images,
)
from ansible_collections.patchops.docker.plugins.module_utils.inventory import HostInventory
from ansible_collections.patchops.docker.plugins.module_utils.query import compile_query
from ansible_collections.patchops.docker.plugins.module_utils.registry import (
    as_remote,
    check_platforms,
    client_for,
    lookup_remote_digests,
)
from ansible_collections.patchops.docker.plugins.module_utils import shared_lookups
from ansible_collections.patchops.docker.plugins.module_utils.journal import DEFAULT_STATE_DIR, has_leftovers, interrupted_swaps


def argument_spec():
    return docker_argument_spec(dict(
        containers=dict(type='list', elements='str', default=[]),
        include_stopped=dict(type='bool', default=False),
        check_registry=dict(type='bool', default=True),
        max_age_days=dict(type='int', default=30),
        max_age_days_exposed=dict(type='int', default=7),
        include_unused_images=dict(type='bool', default=False),
        concurrency=dict(type='int', default=8),
        state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
        recover=dict(type='bool', default=False),
        query=dict(type='str'),
        remote_digests=dict(type='dict', default={}),
        share_lookups=dict(type='dict'),
    ))


def validate(params):
    """Refuse values that cannot work, before connecting to anything."""
    for option in ('max_age_days', 'max_age_days_exposed'):
        if params[option] < 0:
            raise PatchopsError('%s must be 0 or more, not %d.' % (option, params[option]))
    if params['concurrency'] < 1:
        raise PatchopsError('concurrency must be 1 or more, not %d.' % params['concurrency'])
    params['remote_digests'] = shared_lookups.normalize(params['remote_digests'])
    if params['share_lookups'] is not None:
        params['share_lookups'] = shared_lookups.check_share(params['share_lookups'])
        if not params['check_registry']:
            raise PatchopsError('share_lookups splits registry look-ups between hosts; it needs check_registry=true.')
    problem = connection_problem(params)
    if problem:
        raise PatchopsError(problem)


def run(client, params, query, check_mode=False):
    recovered = []
    if params['recover'] and not check_mode and has_leftovers(params['state_dir']):
        # the swap machinery (recreate, snapshots, health gates) is loaded only when a killed run left work
        from ansible_collections.patchops.docker.plugins.module_utils.swap import recover_if_idle
        recovered = recover_if_idle(client.api, params['state_dir'], client.module.run_command)
    facts = engine.read(client.api)
    inventory = HostInventory(client.api, client.docker_host)
    records = inventory.containers(params['containers'], params['include_stopped'])
    images = inventory.images()
    for record in records:
        inventory.image(record['image_id'])
    if engine.is_podman(facts):
        mark_podman_builds(images)
    local_tags = inventory.local_tags()
    remote, checked, looked_up = {}, {}, set()
    if params['check_registry']:
        registry = client_for(client.api, facts, params['timeout'])
        shared = params['remote_digests']
        looked_up = shared_lookups.share_of(plan_lookups(records, images) - set(shared), params['share_lookups'])
        remote = lookup_remote_digests(registry, looked_up, params['concurrency'])
        remote.update(as_remote(shared))
        pending = plan_platform_checks(records, images, remote,
                                       lambda image_id: inventory.platform_of(image_id, facts.platform),
                                       facts.image_store == engine.STORE_CLASSIC)
        checked = check_platforms(registry, pending, params['concurrency'])
    now = time.time()
    containers = sorted(
        (assess_container(record, images.get(record['image_id']), local_tags, remote, now,
                          params['max_age_days'], params['max_age_days_exposed'], params['check_registry'],
                          checked, platforms.format_platform(inventory.platform_of(record['image_id'], facts.platform,
                                                                                   inspect=False)),
                          facts.image_store == engine.STORE_CONTAINERD)
         for record in records),
        key=lambda entry: entry['name'])
    result = dict(
        engine=engine.report(facts),
        containers=containers,
        images=summarize_images(containers, images, local_tags, now, params['max_age_days'],
                                params['include_unused_images']),
        summary=summarize(containers),
        recovered=recovered,
        interrupted=interrupted_swaps(params['state_dir']),
        lookups=shared_lookups.found(remote, looked_up),
        registry_lookups=len(looked_up),
    )
    if query is not None:
        result['selected'] = query(containers)
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        validate(module.params)
        query = compile_query(module, module.params['query'])
    except PatchopsError as exc:
        module.fail_json(msg=str(exc))
    client = DockerClient(module)
    result = client.run(run, client, module.params, query, module.check_mode)
    module.exit_json(changed=any(r['action'] != 'failed' for r in result['recovered']), **result)


if __name__ == '__main__':
    main()
