#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: container_update
short_description: Recreate containers on the newest image of their tag, keeping everything, health-gated
version_added: 0.1.0
description:
  - Pulls the newest image for the tag each named container was created from and recreates the container on it
    with exactly the configuration it had. The new container differs from the old one only in its image.
  - Kept as they are, from the old container (B(what the user set)) - env, cmd, entrypoint, user, working
    directory, hostname and domain name when set explicitly, labels, exposed ports, healthcheck, stop signal and
    timeout, tty/stdin; the whole host configuration (binds, mounts, port bindings, restart policy, resources,
    capabilities, devices, log configuration, security options, tmpfs, ulimits, sysctls, DNS, extra hosts, PID and
    IPC modes, ...); every network with its aliases, static IPv4/IPv6 and MAC address; every volume, anonymous
    volumes included, re-mounted by name so their data stays; the run state.
  - Taken from the new image (B(what the old container only inherited)) - env entries, cmd, entrypoint, working
    directory, user, labels, healthcheck, exposed ports, declared volumes and stop signal the old container had
    only because the old image had them.
  - "The swap, per container: pull first (no downtime while pulling); run the C(patchops.docker.pre-update) label's
    command in the old container (a non-zero exit, or not finishing within O(health_timeout) seconds, skips the
    container); write a journal entry under O(state_dir);
    stop the old container; rename it to C(<name>.patchops-backup); create and start the new one under the name;
    wait until it is healthy (or, without a healthcheck, running for O(stable_seconds)); remove the backup, never
    its volumes; run the C(patchops.docker.post-update) label's command in the new container."
  - Any failure after the stop restores the original container (same container ID) under its name and state, and
    the container ends V(rolled_back). A run killed at any point is put right by the next run of this module,
    reported under RV(recovered). Two runs on one host never interleave (a lock in O(state_dir)).
  - Containers that depend on a recreated one - C(network_mode container:X), links, or the label
    C(patchops.docker.depends-on) (comma-separated names) - are recreated after it. Containers that share its
    network namespace or link to it are recreated too, on their own image, even when not named, since they
    stop working otherwise.
author:
  - patchops.docker maintainers (@patchops)
extends_documentation_fragment:
  - patchops.docker.docker
  - patchops.docker.attributes
  - patchops.docker.attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
    details:
      - Pulls nothing and changes nothing; reports what would be updated from the registry digest.
  diff_mode:
    support: full
    details:
      - Shows the old and new image per recreated container.
  idempotent:
    support: full
    details:
      - A second run finds every container on the newest image and reports it V(unchanged).
options:
  containers:
    description:
      - Names or IDs (full or a unique prefix) of the containers to update. A name that matches no container
        fails the module before anything is touched.
    type: list
    elements: str
    required: true
  target:
    description:
      - V(newest) recreates each container on the newest image of its tag.
      - V(previous) recreates each container the last run updated on the image it ran before that run (recorded in
        the journal under O(state_dir)), and points the tag at that image again. Containers the last run did not
        update, or that changed since, end V(unchanged). This is what the C(patchops.docker.rollback_containers)
        playbook uses. Nothing is pulled.
    type: str
    choices: [newest, previous]
    default: newest
  pull:
    description:
      - V(always) pulls the tag and recreates when it names a newer image than the container runs.
      - V(missing) pulls only when the tag is not on the host; otherwise recreates onto the local tag.
      - V(never) never pulls; recreates onto the local tag when it names a newer image (for images rebuilt on the
        host).
      - A tag whose local image was built on the host is never pulled and never looked up in a registry, whatever
        this option says - no registry has it; the container is recreated when the local tag names a newer build.
        Built on the host means built by M(patchops.docker.image_rebuild) (label C(patchops.docker.build-context)),
        built without a repo digest (Docker's classic image store), or on Podman, which gives its own builds a
        repo digest too, built from another image on the host (the image has a parent) or named C(localhost/...).
    type: str
    choices: [always, missing, never]
    default: always
  force:
    description:
      - Recreate even when the container already runs the newest image.
    type: bool
    default: false
  min_image_age_days:
    description:
      - Defer a new image younger than this many days (the container ends V(deferred) and is not touched),
        a cooldown against bad fresh releases. V(0) accepts every image.
    type: int
    default: 0
  health_timeout:
    description:
      - Seconds the new container has to become healthy when its image or configuration has a healthcheck.
    type: int
    default: 120
  stable_seconds:
    description:
      - Seconds a new container without a healthcheck must keep running, without a restart, to count as good.
    type: int
    default: 5
  max_parallel:
    description:
      - How many containers to swap at the same time. V(1) swaps them one after another.
      - Only independent containers are swapped side by side. Containers that depend on each other (network
        namespace, links, C(patchops.docker.depends-on)), directly or through others, are swapped one after
        another in dependency order, and so are the replicas of one Compose service (same
        C(com.docker.compose.project) and C(com.docker.compose.service) labels), so that a service never loses
        all its replicas at once.
      - Each swap's downtime stays the same; the health gates (O(stable_seconds), O(health_timeout)) then run side
        by side, which is where a run over many containers spends its time.
    type: int
    default: 1
  rollback:
    description:
      - Restore the original container when the new one fails its gate.
      - With V(false) the failed new container is left under the name as it is, the original is kept, stopped,
        as C(<name>.patchops-backup), and the container ends V(failed).
    type: bool
    default: true
  stop_timeout:
    description:
      - Seconds to wait for the old container to stop before it is killed. By default the container's own stop
        timeout applies (Docker's default is 10 seconds).
    type: int
  cleanup:
    description:
      - Remove the images this run superseded, once no container (running or not) uses them.
    type: bool
    default: false
  keep_previous:
    description:
      - With O(cleanup=true), keep the images this run superseded until the next run, so that O(target=previous)
        can still return to them; the next run with O(cleanup=true) removes them once nothing uses them.
    type: bool
    default: false
  run_hooks:
    description:
      - Run the commands of the C(patchops.docker.pre-update) and C(patchops.docker.post-update) labels.
    type: bool
    default: true
  snapshot:
    description:
      - V(volumes) copies the data of each container's volumes (named and anonymous, local driver) under
        O(state_dir) before the new container starts, and puts it back, byte for byte, when the swap is rolled
        back - before the original container starts again, so that it never runs on data a new image already
        migrated. Owners, modes, hard and symbolic links, timestamps, ACLs and xattrs are kept (GNU C(cp -a)).
      - The label C(patchops.docker.snapshot=volumes) on a container opts it in whatever this option says.
      - Checked before anything is touched, refused in one sentence (the container V(failed), untouched) when a
        volume's driver is not C(local), a local volume mounts another filesystem (C(type)/C(device) options,
        e.g. NFS), its data is not on the host the module runs on, or the filesystem of O(state_dir) lacks the
        room or inodes. The copy is taken once the old container has stopped, so that nothing writes to the data
        while it is copied; the downtime grows by the copy's time.
      - A run killed during the copy or during the restore is put right by the next run (the partial copy
        removed, or the data put back again before the original container starts).
      - V(none) takes no snapshot. Bind mounts and tmpfs mounts are never copied.
    type: str
    choices: [none, volumes]
    default: none
  snapshot_keep:
    description:
      - How many snapshots to keep per container (the newest). The snapshot the last run recorded for
        O(target=previous) with O(restore_data=true) is kept as well.
    type: int
    default: 1
  restore_data:
    description:
      - With O(target=previous), also put back the data the volumes held before the last run updated the
        container (the snapshot that run took with O(snapshot=volumes)), before the container starts on its
        previous image. The data as it is now is snapshotted first, so that a failed return is rolled back too.
      - A container the last run took no snapshot of ends V(failed), untouched.
    type: bool
    default: false
  restart_systemd_units:
    description:
      - On a Podman host, a container that a systemd unit runs (label C(PODMAN_SYSTEMD_UNIT), set by
        C(podman generate systemd --new) and by Quadlet) is by default left alone and ends V(skipped) with the
        message V(Managed by systemd unit <unit>; left alone...). Recreated behind systemd's back, the unit would
        stop or start a container it no longer knows.
      - V(true) pulls its new image like any other, then restarts the unit with C(systemctl restart <unit>)
        (C(systemctl --user) behind a rootless socket C(unix:///run/user/UID/podman/podman.sock)) on the managed
        node, and checks that the container the unit made runs the new image; the unit's own configuration
        decides everything else. There is no health gate or rollback beyond what the unit does.
      - Needs C(systemctl) on the managed node, which must be the Podman host itself.
    type: bool
    default: false
  state_dir:
    description:
      - Directory on the managed node for the journal, the lock and the snapshots (created with mode 0700, files
        0600).
    type: path
    default: /var/lib/patchops-docker
  remote_digests:
    description:
      - Digests of tags another host already looked up, a dict of reference to digest (the RV(patchops.docker.image_age_info#module:lookups)
        of its M(patchops.docker.image_age_info) run).
      - A container whose image is known by its tag's digest here is V(unchanged) without asking the registry
        (in check mode) and without a pull; any other container is decided as without this option. Ignored with
        O(force=true).
    type: dict
    default: {}
notes:
  - The module fails when any container ended V(rolled_back) or V(failed); it still returns every key.
  - Compose - a container created by C(docker-compose) keeps its name, every C(com.docker.compose.*) label, its
    project network and aliases, and still shows in C(docker-compose ps). A later C(docker-compose up -d)
    recreates it once more (Compose 1.x hashes the ID of the image the tag names, and the tag moved), on the same
    new image with the same volumes; after that C(up -d) leaves it alone.
  - Formerly anonymous volumes are mounted by name after an update, so C(docker rm -v) and
    C(docker-compose down -v) no longer remove them; C(docker volume prune) does.
  - Podman 4.3+ (through C(podman system service), see the collection's C(docs/podman.md)) - the same guarantees,
    with these differences. What Podman fills in by itself (its default ulimits, IPC/PID/UTS modes, runtime,
    C(TERM) and C(container) in the environment, stop signal and timeout) is read from a probe container
    (C(patchops-probe-<random>), created and removed at once) and left for Podman to fill in again; ulimits the
    user set are kept. Podman does not report which IP and MAC addresses were asked for, so a running container
    keeps the addresses it holds on every network (a stopped one gets new ones). A container in a Podman pod ends
    V(skipped) - Podman's Docker-compatible API cannot create a container inside a pod. A container that a
    systemd unit runs ends V(skipped) unless O(restart_systemd_units=true).
seealso:
  - module: patchops.docker.image_age_info
    description: Report which containers have a newer image waiting.
'''

EXAMPLES = r'''
- name: Update two containers to the newest image of their tag
  patchops.docker.container_update:
    containers: [web, worker]
  register: update

- name: Show what would be updated, without pulling or changing anything
  patchops.docker.container_update:
    containers: [web, worker]
  check_mode: true
  diff: true

- name: Update everything image_age_info found, with a cooldown and a strict health gate
  patchops.docker.container_update:
    containers: "{{ ages.containers | selectattr('update_available') | map(attribute='name') | list }}"
    min_image_age_days: 3
    health_timeout: 60
    cleanup: true

- name: Update fifty independent containers four at a time (replicas of one Compose service still one by one)
  patchops.docker.container_update:
    containers: "{{ ages.containers | selectattr('update_available') | map(attribute='name') | list }}"
    max_parallel: 4

- name: Update a database, its volumes snapshotted first and put back if the new image fails its health check
  patchops.docker.container_update:
    containers: [db]
    snapshot: volumes
    health_timeout: 300
  become: true

- name: Recreate containers on images rebuilt on the host
  patchops.docker.container_update:
    containers: [reports]
    pull: never
'''

RETURN = r'''
containers:
  description: One entry per container, in the order they were handled (dependencies first).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The container's name.
      type: str
    action:
      description: What happened.
      type: str
      choices: [updated, unchanged, deferred, rolled_back, failed, skipped]
    image:
      description: The image reference the container was created from (kept by the new container).
      type: str
    old_image_id:
      description: The image the container ran before.
      type: str
    new_image_id:
      description: The image it runs now (V(updated)), or the newer image found (V(unchanged), V(deferred)).
      type: str
    downtime_seconds:
      description:
        - Seconds from the start of the stop to the new container running, or healthy when it has a healthcheck.
      type: float
    message:
      description: One or two sentences saying what happened and why.
      type: str
    version_before:
      description:
        - The version the image the container ran says it is (its label C(org.opencontainers.image.version)), or
          V(null) when the image sets none or is no longer on the host.
      type: str
    version_after:
      description:
        - The version of the image it runs now, for V(updated) (in check mode, of the newer image when it is already
          on the host); V(null) otherwise or when the image sets none.
      type: str
    revision_before:
      description: The label C(org.opencontainers.image.revision) of the image it ran (a commit, usually).
      type: str
      returned: when that image sets it
    revision_after:
      description: The same label of the image it runs now, for V(updated).
      type: str
      returned: when that image sets it
    source_before:
      description: The label C(org.opencontainers.image.source) of the image it ran (where its source lives).
      type: str
      returned: when that image sets it
    source_after:
      description: The same label of the image it runs now, for V(updated).
      type: str
      returned: when that image sets it
    snapshot:
      description:
        - The snapshot of its volumes taken before the swap (O(snapshot=volumes) or the container's label) -
          C(path) under O(state_dir), C(bytes) copied, C(seconds) the copy took; V(null) when none was taken.
      type: dict
    pre_update:
      description: The pre-update hook's command, exit code and output (last 4 KiB), when one ran.
      type: dict
      returned: when a pre-update hook ran
    post_update:
      description: The post-update hook's command, exit code and output (last 4 KiB), when one ran.
      type: dict
      returned: when a post-update hook ran
  sample:
    - name: web
      action: updated
      image: registry.example.com/shop/web:1.25
      old_image_id: sha256:3f1c9a0d5e2b7c4a8f6e1d0b9c8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a
      new_image_id: sha256:8b2e4d6f1a3c5e7b9d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b
      downtime_seconds: 2.31
      message: Recreated on the new image.
      version_before: 1.25.3
      version_after: 1.25.4
      revision_before: 4f2a9c1
      revision_after: 9b0e3d7
      snapshot:
        path: /var/lib/patchops-docker/snapshots/web/20261202T031502Z-3f1c9a0d5e2b
        bytes: 52428800
        seconds: 0.41
    - name: cache
      action: unchanged
      image: redis:7.2
      old_image_id: sha256:5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c
      new_image_id: null
      downtime_seconds: null
      message: Already on the newest image.
      version_before: '7.2.5'
      version_after: null
      snapshot: null
summary:
  description: How many containers ended with each action.
  returned: always
  type: dict
  sample: {updated: 2, unchanged: 5, deferred: 0, rolled_back: 0, failed: 0, skipped: 0}
registry_lookups:
  description: How many tags this run asked of their registries (a look-up in check mode, a pull otherwise).
  returned: always
  type: int
  sample: 2
recovered:
  description: Containers of an interrupted earlier run that this run put right.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The container's name.
      type: str
    action:
      description: V(restored) (the original container is back), V(completed) (the new one had passed its gate),
        or V(failed).
      type: str
    message:
      description: What was done.
      type: str
  sample:
    - name: web
      action: restored
      message: An interrupted swap (stage created) was undone; the original container is back.
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.patchops.docker.plugins.module_utils.client import DockerClient, docker_argument_spec
from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.updater import Updater, validate
from ansible_collections.patchops.docker.plugins.module_utils.journal import DEFAULT_STATE_DIR


def argument_spec():
    return docker_argument_spec(dict(
        containers=dict(type='list', elements='str', required=True),
        pull=dict(type='str', choices=['always', 'missing', 'never'], default='always'),
        force=dict(type='bool', default=False),
        min_image_age_days=dict(type='int', default=0),
        health_timeout=dict(type='int', default=120),
        stable_seconds=dict(type='int', default=5),
        max_parallel=dict(type='int', default=1),
        rollback=dict(type='bool', default=True),
        stop_timeout=dict(type='int'),
        cleanup=dict(type='bool', default=False),
        keep_previous=dict(type='bool', default=False),
        target=dict(type='str', choices=['newest', 'previous'], default='newest'),
        run_hooks=dict(type='bool', default=True),
        snapshot=dict(type='str', choices=['none', 'volumes'], default='none'),
        snapshot_keep=dict(type='int', default=1),
        restore_data=dict(type='bool', default=False),
        restart_systemd_units=dict(type='bool', default=False),
        state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
        remote_digests=dict(type='dict', default={}),
    ))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        validate(module.params)
    except PatchopsError as exc:
        module.fail_json(msg=str(exc))
    client = DockerClient(module)
    result = client.run(Updater(client, module.params, check_mode=module.check_mode).run)
    if not module._diff:
        result.pop('diff', None)
    bad = [c['name'] for c in result['containers'] if c['action'] in ('rolled_back', 'failed')]
    if bad:
        module.fail_json(msg='%d of %d containers were not updated: %s.'
                         % (len(bad), len(result['containers']), ', '.join(bad)), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
