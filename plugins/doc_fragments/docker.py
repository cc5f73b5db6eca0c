# -*- coding: utf-8 -*-
# Copyright (c) patchops.docker contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """The Docker connection options every patchops.docker module shares.

    Named as community.docker names them, so that existing ``module_defaults``
    carry over unchanged.
    """

    DOCUMENTATION = r'''
options:
  docker_host:
    description:
      - The URL or Unix socket path of the Docker API to talk to, for example V(unix:///var/run/docker.sock)
        or V(tcp://192.0.2.23:2376).
      - With O(tls) or O(validate_certs), V(tcp://) is switched to V(https://).
      - If not set in the task, E(DOCKER_HOST) is used; if that is not set either, the default.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  tls_hostname:
    description:
      - The server name expected in the Docker host's certificate when O(validate_certs=true).
      - If not set in the task, E(DOCKER_TLS_HOSTNAME) is used; otherwise the host name of O(docker_host).
    type: str
  api_version:
    description:
      - The Docker API version to use. V(auto) negotiates the newest version both the daemon and the
        Docker SDK for Python support.
      - If not set in the task, E(DOCKER_API_VERSION) is used; if that is not set either, the default.
    type: str
    default: auto
    aliases: [docker_api_version]
  timeout:
    description:
      - Seconds to wait for an answer from the Docker API before giving up. For a pull, the longest the Docker
        daemon may send no progress before the pull is given up; for a registry look-up, the longest it may take.
      - If not set in the task, E(DOCKER_TIMEOUT) is used; if that is not set either, the default.
    type: int
    default: 60
  ca_path:
    description:
      - Path of a CA certificate file used to verify the Docker host's certificate.
      - If not set in the task and E(DOCKER_CERT_PATH) is set, C(ca.pem) in that directory is used.
    type: path
    aliases: [ca_cert, tls_ca_cert, cacert_path]
  client_cert:
    description:
      - Path of the client's TLS certificate file.
      - If not set in the task and E(DOCKER_CERT_PATH) is set, C(cert.pem) in that directory is used.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Path of the client's TLS key file.
      - If not set in the task and E(DOCKER_CERT_PATH) is set, C(key.pem) in that directory is used.
    type: path
    aliases: [tls_client_key, key_path]
  tls:
    description:
      - Encrypt the connection with TLS without verifying the Docker host's certificate.
        O(validate_certs=true) takes precedence.
      - If not set in the task, E(DOCKER_TLS) is used; if that is not set either, the default.
    type: bool
    default: false
  validate_certs:
    description:
      - Encrypt the connection with TLS and verify the Docker host's certificate against O(ca_path).
      - If not set in the task, E(DOCKER_TLS_VERIFY) is used; if that is not set either, the default.
    type: bool
    default: false
    aliases: [tls_verify]
notes:
  - The connection options can also be set for every module of the collection at once with
    C(module_defaults) and the action group C(group/patchops.docker.docker).
  - Registry look-ups and pulls go through the Docker daemon, which uses the registry credentials
    stored for the user the module runs as (C(~/.docker/config.json), or C($DOCKER_CONFIG/config.json)).
    Credentials never appear in the module's results.
requirements:
  - Docker SDK for Python 7.0.0 or newer (the C(docker) package) on the managed node.
  - Docker API 1.41 or newer (Docker Engine 20.10 or newer).
'''
