#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: image_packages_info
short_description: Read the operating-system packages inside the images containers run, without running them
version_added: 0.1.0
description:
  - Reads, for each distinct image of one Docker host, the operating system it is built on (C(/etc/os-release),
    else C(/usr/lib/os-release)) and its package database - dpkg (C(/var/lib/dpkg/status), or the
    C(/var/lib/dpkg/status.d/) files of distroless images), apk (C(/lib/apk/db/installed)) or rpm (the sqlite
    C(rpmdb.sqlite) of current releases; older Berkeley DB and ndb databases are reported as unreadable) - and the
    package sources the image's own package manager is configured with (apt's C(sources.list) and C(.sources)
    files, apk's C(repositories)).
  - Nothing of the image runs. For each image a container is created, never started, with no network; its files are
    read through the Docker archive API and the container is removed with the anonymous volumes its creation made.
  - An image without a package database (busybox, scratch, distroless without status files) is
    RV(images[].package_manager=null) without an error. An image whose database cannot be read gets one sentence in
    RV(images[].error); the other images are still answered.
  - Feed RV(images) to M(patchops.docker.package_updates_info) to learn which packages have updates, and which are
    security updates, waiting.
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
      - The same in check mode; the containers it creates to read images are removed before it returns.
  idempotent:
    details:
      - Reads only; its temporary containers are removed (a run killed mid-way leaves one, labelled
        C(patchops.docker.temporary), that the next run removes).
options:
  containers:
    description:
      - Names or IDs of containers whose images to read.
      - When both this and O(images) are empty, the images of every running container are read.
    type: list
    elements: str
    default: []
  images:
    description:
      - Image references or IDs to read, besides those of O(containers).
    type: list
    elements: str
    default: []
notes:
  - Run it on the Docker host (or with O(docker_host) pointing at its engine); the Docker SDK for Python is needed
    there, nothing else.
seealso:
  - module: patchops.docker.package_updates_info
    description: Compare what this module found with the distributions' package indexes.
'''

EXAMPLES = r'''
- name: Read the packages of every running container's image
  patchops.docker.image_packages_info:
  register: packages

- name: Only two containers and one image that no container runs yet
  patchops.docker.image_packages_info:
    containers: [web, worker]
    images: [registry.example.com/shop/web:1.26]
'''

RETURN = r'''
images:
  description: One entry per distinct image, in the order of the image IDs.
  returned: always
  type: list
  elements: dict
  contains:
    image_id:
      description: The image's ID.
      type: str
    references:
      description: The references the image is known by on the host (its tags; those the containers were created
        from).
      type: list
      elements: str
    containers:
      description: Names of the containers (of those read) that run this image.
      type: list
      elements: str
    os:
      description:
        - From os-release - C(id), C(id_like) (list), C(version_id), C(version_codename), C(pretty_name); V(null)
          when the image has no os-release file.
      type: dict
    package_manager:
      description: V(dpkg), V(apk), V(rpm), or V(null) when the image has no package database.
      type: str
    packages:
      description: The installed packages, in the order of the database.
      type: list
      elements: dict
      contains:
        name:
          description: The package's name.
          type: str
        version:
          description: Its installed version, as the package manager writes it (epoch included where set).
          type: str
        source:
          description: The source package it was built from (dpkg C(Source), apk origin, rpm source rpm's name).
          type: str
        source_version:
          description: The source package's version.
          type: str
        arch:
          description: Its architecture (V(all)/V(noarch) for architecture-independent packages).
          type: str
    sources:
      description:
        - The archive roots the image's own package manager is configured with - C(archive) (for apt, the source
          of its release; for apk, the root above C(vX.Y/REPO)) and C(security) (apt's C(CODENAME-security)
          source) - or V(null) where it names none. M(patchops.docker.package_updates_info) uses them unless
          given C(mirrors).
      type: dict
    error:
      description: Why this image's packages could not be read, in one sentence; V(null) when they were.
      type: str
  sample:
    - image_id: sha256:3f1c9a0d5e2b7c4a8f6e1d0b9c8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a
      references: [registry.example.com/shop/web:1.25]
      containers: [web]
      os: {id: debian, id_like: [], version_id: '12', version_codename: bookworm,
           pretty_name: Debian GNU/Linux 12 (bookworm)}
      package_manager: dpkg
      packages:
        - {name: libssl3, version: 3.0.11-1~deb12u2, source: openssl, source_version: 3.0.11-1~deb12u2, arch: amd64}
      sources: {archive: 'http://deb.example.org/debian', security: 'http://deb.example.org/debian-security'}
      error: null
summary:
  description: How many images were read, how many have a package database, and how many could not be read.
  returned: always
  type: dict
  sample: {images: 3, with_packages: 2, errors: 0}
'''

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.patchops.docker.plugins.module_utils.client import (
    DockerClient,
    DockerException,
    connection_problem,
    docker_argument_spec,
    not_found,
)
from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.image_packages import read_image, remove_leftovers
from ansible_collections.patchops.docker.plugins.module_utils.inventory import HostInventory

WORKERS = 4


def argument_spec():
    return docker_argument_spec(dict(
        containers=dict(type='list', elements='str', default=[]),
        images=dict(type='list', elements='str', default=[]),
    ))


def _wanted_images(client, params):
    """{image ID: {references, containers}} for the containers and images asked for."""
    wanted = {}
    if params['containers'] or not params['images']:
        records = HostInventory(client.api, client.docker_host).containers(params['containers'])
        for record in records:
            entry = wanted.setdefault(record['image_id'], dict(references=[], containers=[]))
            entry['containers'].append(record['name'])
            reference = record.get('reference')
            if reference and reference not in entry['references'] and not reference.startswith('sha256:'):
                entry['references'].append(reference)
    for reference in params['images']:
        try:
            image = client.api.inspect_image(reference)
        except DockerException as exc:
            if not_found(exc):
                raise PatchopsError("Image '%s' not found on %s." % (reference, client.docker_host))
            raise
        entry = wanted.setdefault(image['Id'], dict(references=[], containers=[]))
        if reference not in entry['references'] and not reference.startswith('sha256:'):
            entry['references'].append(reference)
    return wanted


def run(client, params):
    remove_leftovers(client.api)
    wanted = _wanted_images(client, params)
    image_ids = sorted(wanted)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        read = list(pool.map(lambda image_id: read_image(client.api, image_id), image_ids))
    images = []
    for image_id, found in zip(image_ids, read):
        entry = dict(image_id=image_id, references=wanted[image_id]['references'],
                     containers=sorted(wanted[image_id]['containers']))
        entry.update(found)
        images.append(entry)
    summary = dict(images=len(images), with_packages=sum(1 for i in images if i['package_manager'] and not i['error']),
                   errors=sum(1 for i in images if i['error']))
    return dict(images=images, summary=summary)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problem = connection_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    client = DockerClient(module)
    result = client.run(run, client, module.params)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
