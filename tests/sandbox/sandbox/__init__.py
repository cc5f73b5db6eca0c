"""The patchops.docker test sandbox: a private Docker engine and a registry on loopback.

Both a CLI (``python3 tests/sandbox up``) and a package the tests import
(``sys.path.insert(0, 'tests/sandbox'); import sandbox``): every name below is ``sandbox.<name>``.
Standard library only, Python 3.9+, needs root (it starts dockerd).

What runs (all started by ``up``, all stopped by ``down``, by their pid files):

* ``containerd`` with its own config, socket and state (never the system one),
* ``dockerd`` on a private unix socket, its own bridge ``br-patchops0`` and
  address pool, its own data-root, exec-root and cgroup parent, ``--iptables=false``
  (it changes no firewall rule and no sysctl of the machine),
* ``docker-registry`` (distribution 2.8) on ``127.0.0.1:5115``.

Beside it, ``fleet_up(n)`` starts a fleet of Docker hosts reached over real SSH: ``hostN`` has its own
containerd + dockerd (bridge ``br-patchopsN``, its own address pool), the base image pulled from the
registry, and an ``sshd`` on ``127.0.0.1:(2220 + N)`` for root with a key pair the sandbox generates.
``fleet_down()`` (and ``down()``) stop it.

Nothing ever talks to the machine's default ``/var/run/docker.sock``.

State lives in ``<repo>/.sandbox`` (or ``$PATCHOPS_SANDBOX_DIR``); sockets and the
exec-root live in ``/run/patchops-sb-<8 hex>/`` because unix socket paths are
limited to 108 bytes. ``down --purge`` removes both.

One concern per file:

* ``lifecycle.py``: ``up()``, ``down()``, ``info()``, ``prepare()``: the whole sandbox
* ``cli.py``: the command line (``python3 tests/sandbox VERB``, or ``python3 -m sandbox``)
* ``engines.py``: start and stop one engine (containerd + dockerd); ``engine_stop/start/restart()``
* ``engine26.py``: Engine 26 from Debian 13's packages, unpacked into the machine-wide cache
* ``tls_engine.py``: ``tls_engine_*()``: an engine with TLS on tcp://127.0.0.1:5117, and its certificates
* ``small_engine.py``: ``small_engine_*()``: an engine whose data root is a small tmpfs
* ``podman_engine.py``: ``podman_*()``: Debian 12's Podman serving the Docker-compatible API on a private
  socket (only in network and mount namespaces of its own)
* ``network.py``: the engines' bridges and address pools
* ``docker_cli.py``: ``docker()``, ``compose()``: the docker CLI and Compose against an engine
* ``registry.py``: the registry on 127.0.0.1:5115: start, stop, ``registry_stop/start()``
* ``registry_api.py``: what it serves: ``registry_digest/manifest/tag/requests()``, blobs
* ``auth_registry.py``: ``auth_registry_*()``: a registry with basic auth on 127.0.0.1:5116
* ``package_mirror.py``: ``mirror_*()``: real Debian package indexes (fetched with apt into the machine-wide
  cache by ``prepare()``) served on 127.0.0.1:5118 in the archive's layout, with faults and a request log
* ``faultproxy.py``: a fault-injecting proxy in front of the registry (imported by its tests, not here)
* ``base_image.py``: the base image sandbox/busybox:base, made from busybox-static
* ``dockerfile.py``: the Dockerfile ``publish()`` builds
* ``images.py``: ``publish()``, ``aged()``
* ``indexes.py``: ``publish_index()``: multi-platform images
* ``cleanup.py``: ``reset()``
* ``fleet.py``: ``fleet_*()``: Docker hosts reached over SSH
* ``sshd.py``: the fleet's sshd and key pair
* ``settings.py``: fixed addresses, names, timeouts, engine kinds
* ``paths.py``: where files live (state dir, runtime dir, each engine's files)
* ``processes.py``: finding, starting and stopping processes
* ``loopback.py``: HTTP to an engine's socket and to the registry; ports
* ``packages.py``: the Debian packages, installed when missing
* ``lock.py``: one operation at a time per state dir
* ``files.py``: small file reads and writes
* ``errors.py``: ``SandboxError``

Imports go one way, from the plumbing up to ``lifecycle.py`` and ``cli.py``; only ``fleet_up()``,
``tls_engine_up()``, ``small_engine_up()``, ``podman_up()`` and ``auth_registry_up()`` import ``up()`` where they
call it (``down()`` stops what they start). The only state kept between calls is ``lock.py``'s per-thread lock
depth; everything else is read again from the state dir on every call.
"""

from __future__ import annotations

from .auth_registry import (AUTH_REGISTRY_ADDR, AUTH_REGISTRY_USER, auth_registry_down, auth_registry_info,
                            auth_registry_up)
from .cleanup import reset
from .cli import main
from .docker_cli import _run_docker, compose, docker
from .engines import engine_restart, engine_start, engine_stop
from .errors import SandboxError
from .fleet import (FLEET_BRIDGE_CIDR, FLEET_GROUP, FLEET_MAX, FLEET_POOL_BASE, FLEET_SSH_COMMON_ARGS, FLEET_SSH_PORT,
                    fleet_docker, fleet_down, fleet_info, fleet_inventory, fleet_reset, fleet_ssh, fleet_ssh_argv,
                    fleet_up)
from .images import _retime_save_tar, aged, publish
from .indexes import (ATTESTATION_PLATFORM, INDEX_TYPES, MT_DOCKER_CONFIG, MT_DOCKER_LIST, MT_DOCKER_MANIFEST,
                      MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_MANIFEST, publish_index)
from .lifecycle import down, info, prepare, up
from .loopback import _registry_request
from .package_mirror import (MIRROR_ADDR, MIRROR_CODENAME, MIRROR_SUITES, MIRROR_URL, mirror_apt_upgradable, mirror_down,
                             mirror_fault, mirror_info, mirror_put, mirror_requests, mirror_reset, mirror_up)
from .podman_engine import (PODMAN_NETWORK, PODMAN_POOL_BASE, PODMAN_SUBNET, podman, podman_down, podman_info,
                            podman_up)
from .registry import registry_start, registry_stop
from .registry_api import MANIFEST_ACCEPT, registry_digest, registry_manifest, registry_requests, registry_tag
from .settings import (ADDRESS_POOL, ADDRESS_POOL_BASE, BASE_IMAGE, BASE_LOCAL, BRIDGE, BRIDGE_CIDR, BUILD_LABEL,
                       DEFAULT_ENGINE, DOCKER_CLI_ENV, ENGINE26, ENGINE_CACHE, ENGINE_ENV, ENGINES, HERE, PACKAGES,
                       REGISTRY, REGISTRY_ADDR, REPO, START_TIMEOUT, STOP_TIMEOUT, SYS_PATH)
from .small_engine import (SMALL_DISK_MB, SMALL_POOL_BASE, small_engine_docker, small_engine_down, small_engine_info,
                           small_engine_resize, small_engine_up)
from .sshd import FLEET_AUTH_ENV, FLEET_USER
from .tls_engine import TLS_ENGINE_ADDR, TLS_POOL_BASE, tls_engine_docker, tls_engine_down, tls_engine_info, tls_engine_up

# the tests also use _run_docker, _registry_request and _retime_save_tar (imported above)

__all__ = ['up', 'down', 'info', 'prepare', 'docker', 'compose', 'publish', 'publish_index', 'registry_tag', 'registry_manifest',
           'aged', 'registry_stop', 'registry_start',
           'reset', 'registry_requests', 'registry_digest', 'SandboxError',
           'REGISTRY', 'BASE_IMAGE', 'ENGINES', 'DEFAULT_ENGINE',
           'fleet_up', 'fleet_down', 'fleet_info', 'fleet_inventory', 'fleet_docker', 'fleet_ssh',
           'fleet_ssh_argv', 'fleet_reset',
           'small_engine_up', 'small_engine_down', 'small_engine_info', 'small_engine_resize', 'small_engine_docker',
           'engine_stop', 'engine_start', 'engine_restart',
           'podman_up', 'podman_down', 'podman_info', 'podman',
           'mirror_up', 'mirror_down', 'mirror_info', 'mirror_fault', 'mirror_put', 'mirror_reset', 'mirror_requests',
           'mirror_apt_upgradable']
