#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: image_rebuild
short_description: Rebuild the images you own from their build context when their base moved or they aged
version_added: 0.1.0
description:
  - For images nobody upstream rebuilds - built on the host, or from a maintainer who stopped updating them.
    Rebuilds each from its build context on the managed node, with its base images pulled fresh and without the
    build cache, so that package-upgrade steps run again and the containers on it get the same security updates
    as everything else.
  - "What an image is built from is read from its Dockerfile, the way Docker's builder reads it - the C(FROM) line of
    every stage up to O(images[].target), with C(ARG)s declared before the first C(FROM) (their defaults, or
    O(images[].build_args)); C(FROM scratch) and C(FROM <earlier stage>) are no images; C(COPY --from=<image>)
    images count like base images."
  - "Every image it builds carries two labels. C(patchops.docker.build-context) holds the build context's absolute
    path. C(patchops.docker.base-images) records, as JSON, each base image's registry digest and image ID at build
    time - C({\"<reference>\": {\"digest\": \"sha256:...\", \"id\": \"sha256:...\"}}). The next run compares them
    with what the registry serves now for each base's tag (looked up through the Docker daemon), or, for a base that
    is itself one of O(images) or with O(pull_base=false), with the image the tag names on the host."
  - An image is built untagged first; only a successful build moves the tag to it. A failed build leaves the old
    image and its tag as they were, ends V(failed) with the reason and the last lines of the build log, and fails
    the module after the other images were handled.
  - Containers on a rebuilt tag keep running the old image until they are recreated, for example by
    M(patchops.docker.container_update), as the role C(patchops.docker.patch_containers) does; it never pulls a
    tag this module built (the label C(patchops.docker.build-context)).
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
      - Builds and pulls nothing; says per image whether it would be rebuilt and why.
  diff_mode:
    support: full
    details:
      - Shows per rebuilt image the old and new image ID and the base images before and after.
  idempotent:
    support: full
    details:
      - A second run finds every base image unchanged and rebuilds nothing, unless O(max_age_days) has
        passed since the last build.
options:
  images:
    description:
      - The images to keep rebuilt. Bad input - a context that is no directory, a missing Dockerfile, a C(FROM)
        line that cannot be read - fails the module before anything is pulled or built.
      - An image built C(FROM) another image of the list is handled after it, and is rebuilt when that one is.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The tag to build, for example V(shop/reports:1) or V(registry.example.com/shop/reports:1). Without a
            tag, V(latest).
        type: str
        required: true
      context:
        description:
          - The build context, a directory on the managed node. Its C(.dockerignore) applies.
        type: path
        required: true
      dockerfile:
        description:
          - The Dockerfile, relative to O(images[].context) or an absolute path.
        type: str
        default: Dockerfile
      build_args:
        description:
          - Build arguments (C(--build-arg)). They also choose the base image when a C(FROM) line uses an C(ARG)
            declared before the first C(FROM).
        type: dict
        default: {}
      target:
        description:
          - The stage to build (C(--target)); later stages are not built and their base images do not count.
        type: str
  pull_base:
    description:
      - Pull every base image fresh before a rebuild, and judge whether a base moved by its registry's digest.
      - With V(false), nothing is pulled that is already on the host, and a base counts as moved when its tag names
        a different image on the host than the one the image was built from.
    type: bool
    default: true
  when:
    description:
      - V(base_changed) rebuilds an image when a base image moved (see O(pull_base)), when it has no record of its
        base images (not built by this module), or when it is older than O(max_age_days).
      - V(older_than) rebuilds only images older than O(max_age_days); the base images are not compared.
      - V(security_updates) rebuilds an image whose packages have security updates waiting in its
        distribution (as M(patchops.docker.package_updates_info) decides - Debian, Ubuntu, Alpine), or that is
        older than O(max_age_days). Its packages are read from the image on the host and the indexes are fetched
        from the host (O(mirrors); by default the sources the image names), once per run and cached in
        O(cache_dir).
      - V(always) rebuilds every image.
      - An image whose tag is not on the host is always built.
    type: str
    choices: [base_changed, older_than, security_updates, always]
    default: base_changed
  max_age_days:
    description:
      - An image older than this many days is rebuilt (with O(when=base_changed), O(when=older_than) or
        O(when=security_updates)), even
        when its bases did not move - to pick up the package updates its own build steps install.
    type: int
    default: 30
  mirrors:
    description:
      - With O(when=security_updates), where each distribution's package indexes are, as the C(mirrors) option of
        M(patchops.docker.package_updates_info) takes them. By default the sources each image names.
    type: dict
    default: {}
  cache_dir:
    description:
      - With O(when=security_updates), where the fetched indexes are kept between runs, on the managed node.
    type: path
    default: ~/.cache/patchops-docker/indexes
notes:
  - A registry that cannot be asked about a base image leaves that base unjudged; the image is then rebuilt only
    for another reason, and the reason says which base could not be looked up.
  - Changes to the Dockerfile or the build context itself are not detected; rebuild with O(when=always) after
    changing them.
  - The build uses Docker's API builder (as C(docker build) with C(DOCKER_BUILDKIT=0) does), with C(--no-cache)
    and C(--force-rm). A build may stay silent for up to an hour (one long C(RUN) step) before the call gives up.
seealso:
  - module: patchops.docker.container_update
    description: Recreate the containers on a rebuilt tag (it never pulls a tag this module built).
  - module: patchops.docker.image_age_info
    description: Shows the build context of images built by this module (RV(patchops.docker.image_age_info#module:containers[].build_context)).
'''

EXAMPLES = r'''
- name: Rebuild two images we own when their base moved or they are older than 30 days
  patchops.docker.image_rebuild:
    images:
      - name: shop/reports:1
        context: /srv/build/reports
      - name: registry.example.com/shop/worker:2
        context: /srv/build/worker
        dockerfile: docker/Dockerfile.prod
        build_args:
          BASE_TAG: "3.20"
        target: runtime
  register: rebuilt

- name: Recreate the containers on the rebuilt tags, without pulling them
  patchops.docker.container_update:
    containers: [reports, worker]
    pull: never
  when: rebuilt is changed

- name: Say what would be rebuilt and why, changing nothing
  patchops.docker.image_rebuild:
    images:
      - name: shop/reports:1
        context: /srv/build/reports
  check_mode: true
  diff: true

- name: Rebuild every month whatever the base does
  patchops.docker.image_rebuild:
    images:
      - name: shop/legacy:latest
        context: /srv/build/legacy
    when: older_than
    max_age_days: 30
'''

RETURN = r'''
images:
  description: One entry per image of O(images), in the order they were handled (bases first).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The tag, as given in O(images[].name).
      type: str
      sample: shop/reports:1
    reference:
      description: The tag, fully qualified.
      type: str
      sample: docker.io/shop/reports:1
    action:
      description:
        - V(rebuilt) (in check mode - would be rebuilt), V(unchanged), or V(failed) (the old image and its tag are
          kept).
      type: str
      choices: [rebuilt, unchanged, failed]
    old_image_id:
      description: The image the tag named before this run; V(null) when the tag was not on the host.
      type: str
    new_image_id:
      description: The image built by this run; V(null) when nothing was built (and in check mode).
      type: str
    reason:
      description: One sentence saying why the image was (or would be) rebuilt, or not, or why the build failed.
      type: str
      sample: "Rebuilt: registry has a newer image for base registry.example.com/base/debian:12."
    base_images:
      description: The images the build uses, in Dockerfile order.
      type: list
      elements: dict
      contains:
        reference:
          description: The base image, fully qualified.
          type: str
        kind:
          description:
            - How it is compared - V(registry) (its registry's digest for the tag), V(local) (the image the tag
              names on the host; bases that are themselves in O(images), or O(pull_base=false)), V(pinned) (pinned
              by digest, never moves).
          type: str
          choices: [registry, local, pinned]
        previous:
          description: The digest (or, for V(local), the image ID) the image on the host was built from; V(null) when not recorded.
          type: str
        current:
          description: The digest (or image ID) now; after a rebuild, the one the new image was built from.
          type: str
        moved:
          description: Whether the base differs from what the image was built from; V(null) when the registry could not be asked.
          type: bool
        error:
          description: Why the registry could not be asked, or V(null).
          type: str
    build_log:
      description: The last lines of the build's output.
      returned: when the image failed
      type: list
      elements: str
  sample:
    - name: shop/reports:1
      reference: shop/reports:1
      action: rebuilt
      old_image_id: sha256:7c9e1a3d5f7b9c1e3a5d7f9b1c3e5a7d9f1b3c5e7a9d1f3b5c7e9a1d3f5b7c9e
      new_image_id: sha256:2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c
      reason: 'Rebuilt: registry has a newer image for base debian:12.'
      base_images:
        - reference: debian:12
          kind: registry
          previous: sha256:4e6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a
          current: sha256:6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e
          moved: true
          error: null
      build_log: ['Step 1/4 : FROM debian:12', 'Step 2/4 : RUN apt-get update && apt-get -y upgrade']
changed:
  description: Whether any image was rebuilt (in check mode - would be).
  returned: always
  type: bool
  sample: true
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.patchops.docker.plugins.module_utils.client import DockerClient, docker_argument_spec
from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.rebuild import (
    WHEN_CHOICES,
    Rebuilder,
    failure_message,
    prepare,
    validate,
)


def argument_spec():
    return docker_argument_spec(dict(
        images=dict(type='list', elements='dict', required=True, options=dict(
            name=dict(type='str', required=True),
            context=dict(type='path', required=True),
            dockerfile=dict(type='str', default='Dockerfile'),
            build_args=dict(type='dict', default={}),
            target=dict(type='str'),
        )),
        pull_base=dict(type='bool', default=True),
        when=dict(type='str', choices=list(WHEN_CHOICES), default='base_changed'),
        max_age_days=dict(type='int', default=30),
        mirrors=dict(type='dict', default={}),
        cache_dir=dict(type='path', default='~/.cache/patchops-docker/indexes'),
    ))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        validate(module.params)
        prepare(module.params['images'])
    except PatchopsError as exc:
        module.fail_json(msg=str(exc))
    client = DockerClient(module)
    result = client.run(Rebuilder(client, module.params, check_mode=module.check_mode).run)
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    changed = any(entry['action'] == 'rebuilt' for entry in result['images'])
    message = failure_message(result['images'])
    if message:
        module.fail_json(msg=message, changed=changed, **result)
    module.exit_json(changed=changed, **result)


if __name__ == '__main__':
    main()
