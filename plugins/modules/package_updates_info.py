#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: package_updates_info
short_description: Say which images carry packages with updates, and security updates, waiting
version_added: 0.1.0
description:
  - Compares the packages M(patchops.docker.image_packages_info) found in each image with the current package
    indexes of the image's distribution and release, the way apt and apk decide, and returns every package whose
    installed version is older than the version apt (or apk) would upgrade it to, and whether that version comes
    from the distribution's security suite.
  - Debian and Ubuntu (dpkg) - the suites C(CODENAME) and C(CODENAME-updates) of the archive and
    C(CODENAME-security) of the security archive; version order exactly as dpkg orders versions (epochs, C(~),
    revisions); an update is a security update when the security suite offers the version apt would install.
  - Alpine (apk) - the release's C(main) and C(community) C(APKINDEX); version order exactly as apk-tools orders
    versions; an update is a security update when the Alpine security database (C(secdb), given as
    C(mirrors.alpine.secdb)) lists issues fixed after the installed version up to the new one; without it the
    security flags are V(null).
  - Each index is fetched once per run whatever the number of images (run it once, on the controller, with the
    images of every host) and kept in O(cache_dir) for O(cache_max_age) seconds. A C(Packages) index is checked
    against the size and SHA256 its suite's C(InRelease) lists; the C(InRelease) signature is verified with
    C(gpgv) where it and the distribution's keyring are installed, and RV(indexes) says for each suite whether it
    was.
  - It is not a CVE scanner - it says which fixes the distribution has already published that an image does not
    carry yet.
  - An image that cannot be compared (distribution not supported, no mirror, mirror down, an index that does not
    match its InRelease) gets one sentence in RV(images[].error); the others are answered.
author:
  - patchops.docker maintainers (@patchops)
extends_documentation_fragment:
  - patchops.docker.attributes
  - patchops.docker.attributes.info_module
attributes:
  check_mode:
    details:
      - The same in check mode (it fetches indexes and writes its cache).
  idempotent:
    details:
      - Reads only, apart from its own cache in O(cache_dir).
options:
  images:
    description:
      - The RV(patchops.docker.image_packages_info#module:images) lists of one or more C(image_packages_info)
        results (for a fleet - every host's list, joined). An image found on several hosts is compared once.
    type: list
    elements: dict
    required: true
  mirrors:
    description:
      - Where each distribution's indexes are, by os-release C(id) - C(debian), C(ubuntu) or C(alpine).
      - For Debian and Ubuntu a dict with C(archive) (the root holding C(dists/CODENAME) and C(dists/CODENAME-updates))
        and C(security) (the root holding C(dists/CODENAME-security)), and optionally C(keyring) (the keyring
        C(gpgv) checks C(InRelease) against; default the distribution's own under C(/usr/share/keyrings/)).
      - For Alpine a dict with C(archive) (the root holding C(vX.Y/REPO/ARCH/APKINDEX.tar.gz)) and optionally
        C(secdb) (the root holding C(vX.Y/main.json) and C(vX.Y/community.json)).
      - An internal mirror or a caching proxy goes here. When a distribution is not given, each image's own
        package sources are used (what its C(/etc/apt/sources.list*) or C(/etc/apk/repositories) names - in the
        official images, the distribution's official archives).
    type: dict
    default: {}
  components:
    description:
      - The archive components to read. By default C([main]) for Debian and C([main, universe]) for Ubuntu.
    type: list
    elements: str
  cache_dir:
    description:
      - Where fetched indexes are kept between runs (created with mode 0700).
    type: path
    default: ~/.cache/patchops-docker/indexes
  cache_max_age:
    description:
      - Seconds an C(InRelease) or C(APKINDEX) is reused without asking the mirror again. C(Packages) indexes are
        kept by the hash C(InRelease) names, so they are fetched again only when they changed.
    type: int
    default: 3600
  timeout:
    description:
      - Seconds to wait for a mirror's answer.
    type: int
    default: 60
notes:
  - "Runs where the mirrors are reachable - usually the controller (C(delegate_to: localhost), C(run_once: true))."
  - The role C(patchops.docker.patch_containers) runs both modules with C(patch_containers_packages=true).
seealso:
  - module: patchops.docker.image_packages_info
    description: Read the packages inside the images containers run.
'''

EXAMPLES = r'''
- name: Read each host's images
  patchops.docker.image_packages_info:
  register: packages

- name: Compare them all once, on the controller
  patchops.docker.package_updates_info:
    images: "{{ ansible_play_hosts | map('extract', hostvars, ['packages', 'images']) | flatten }}"
  delegate_to: localhost
  run_once: true
  register: updates

- name: The same through an internal mirror
  patchops.docker.package_updates_info:
    images: "{{ packages.images }}"
    mirrors:
      debian:
        archive: https://mirror.example.com/debian
        security: https://mirror.example.com/debian-security
      alpine:
        archive: https://mirror.example.com/alpine
        secdb: https://mirror.example.com/alpine-secdb
  delegate_to: localhost
'''

RETURN = r'''
images:
  description: One entry per distinct image.
  returned: always
  type: list
  elements: dict
  contains:
    image_id:
      description: The image's ID.
      type: str
    os:
      description: The image's os-release facts, as image_packages_info returned them.
      type: dict
    updates:
      description: The installed packages with a newer version waiting, in the order of the package database.
      type: list
      elements: dict
      contains:
        name:
          description: The package.
          type: str
        arch:
          description: Its architecture.
          type: str
        installed:
          description: The version the image carries.
          type: str
        available:
          description: The version apt (or apk) would upgrade it to.
          type: str
        security:
          description: Whether that version comes from the security suite (Alpine - fixes issues the secdb lists);
            V(null) for Alpine without a secdb.
          type: bool
        suite:
          description: The suite (or Alpine C(vX.Y/REPO)) that offers it - the security suite when it does.
          type: str
        fixes:
          description: For Alpine with a secdb, the issues (CVE ids) fixed between the two versions.
          type: list
          elements: str
          returned: for Alpine images when O(mirrors) gives a secdb
    package_updates:
      description: How many packages have an update; V(null) when the image could not be compared.
      type: int
    security_updates:
      description: How many of those are security updates; V(null) when unknown.
      type: int
    error:
      description: Why the image could not be compared, in one sentence; V(null) when it was.
      type: str
  sample:
    - image_id: sha256:3f1c9a0d5e2b7c4a8f6e1d0b9c8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a
      os: {id: debian, id_like: [], version_id: '12', version_codename: bookworm,
           pretty_name: Debian GNU/Linux 12 (bookworm)}
      updates:
        - {name: libssl3, arch: amd64, installed: 3.0.11-1~deb12u2, available: 3.0.15-1~deb12u1, security: true,
           suite: bookworm-security}
        - {name: tzdata, arch: all, installed: 2024a-0+deb12u1, available: 2025b-0+deb12u1, security: false,
           suite: bookworm-updates}
      package_updates: 2
      security_updates: 1
      error: null
indexes:
  description: Every suite whose indexes were read, with whether its InRelease signature was verified.
  returned: always
  type: list
  elements: dict
  sample:
    - {url: 'https://mirror.example.com/debian-security/dists/bookworm-security', suite: bookworm-security,
       signature: verified}
index_requests:
  description: HTTP requests this run made to mirrors (those the cache answered are not counted).
  returned: always
  type: int
  sample: 9
summary:
  description: Images compared, those with security updates, the security updates in all, images not compared.
  returned: always
  type: dict
  sample: {images: 12, with_security_updates: 4, security_updates: 17, unknown: 1}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.patchops.docker.plugins.module_utils.errors import PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.package_updates import (
    Fetcher,
    Indexes,
    compare_image,
    distinct_images,
    summarize,
)

MIRROR_KEYS = ('archive', 'security', 'keyring', 'secdb')


def argument_spec():
    return dict(
        images=dict(type='list', elements='dict', required=True),
        mirrors=dict(type='dict', default={}),
        components=dict(type='list', elements='str'),
        cache_dir=dict(type='path', default='~/.cache/patchops-docker/indexes'),
        cache_max_age=dict(type='int', default=3600),
        timeout=dict(type='int', default=60),
    )


def validate(params):
    for distribution, mirror in (params['mirrors'] or {}).items():
        if not isinstance(mirror, dict) or not mirror.get('archive'):
            raise PatchopsError('mirrors.%s must be a dict with at least archive (a URL).' % distribution)
        unknown = sorted(set(mirror) - set(MIRROR_KEYS))
        if unknown:
            raise PatchopsError('mirrors.%s has unknown keys %s; known are %s.'
                                % (distribution, ', '.join(unknown), ', '.join(MIRROR_KEYS)))
        for key in ('archive', 'security', 'secdb'):
            if mirror.get(key) and not str(mirror[key]).startswith(('http://', 'https://', 'file://')):
                raise PatchopsError('mirrors.%s.%s must be an http, https or file URL, not %r.'
                                    % (distribution, key, mirror[key]))
    if params['cache_max_age'] < 0:
        raise PatchopsError('cache_max_age must be 0 or more, not %d.' % params['cache_max_age'])
    if params['timeout'] < 1:
        raise PatchopsError('timeout must be 1 or more, not %d.' % params['timeout'])


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        validate(params)
        images = distinct_images(params['images'])
    except PatchopsError as exc:
        module.fail_json(msg=str(exc))
    fetcher = Fetcher(params['cache_dir'], params['cache_max_age'], params['timeout'])
    indexes = Indexes(fetcher, params['mirrors'], params['components'], module.run_command)
    compared = [compare_image(indexes, image) for image in images]
    module.exit_json(changed=False, images=compared, indexes=indexes.suites, index_requests=fetcher.requests,
                     summary=summarize(compared))


if __name__ == '__main__':
    main()
