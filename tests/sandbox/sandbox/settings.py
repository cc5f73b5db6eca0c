"""Fixed addresses, names, timeouts and engine kinds of the sandbox, and the environment variables that
change them.
"""

from __future__ import annotations

import os


# tests/sandbox, the folder that holds this package
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(HERE))

REGISTRY_ADDR = '127.0.0.1:5115'
REGISTRY = REGISTRY_ADDR
BASE_LOCAL = 'sandbox/busybox:base'
BASE_IMAGE = REGISTRY + '/' + BASE_LOCAL
BRIDGE = 'br-patchops0'
BRIDGE_CIDR = '172.31.250.1/24'
# user-defined networks of the sandbox engine come from here (does not overlap the bridge)
ADDRESS_POOL_BASE = '172.31.224.0/20'
ADDRESS_POOL = 'base=%s,size=24' % ADDRESS_POOL_BASE
BUILD_LABEL = 'sandbox.build'

START_TIMEOUT = 60
STOP_TIMEOUT = 20
PACKAGES = ('docker.io', 'docker-registry', 'busybox-static', 'docker-compose')
SYS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# The engine kinds the sandbox runs (env PATCHOPS_SANDBOX_ENGINE, `up --engine`): Debian 12's dockerd 20.10,
# or Engine 26.1 from Debian 13's packages (unpacked into a machine-wide cache, never installed) with the
# classic image store or with the containerd image store.
ENGINE_ENV = 'PATCHOPS_SANDBOX_ENGINE'
ENGINES = ('20.10', '26', '26-containerd')
DEFAULT_ENGINE = '26'
# one cache per machine, shared by every sandbox (state dir, namespace) and later runs
ENGINE_CACHE = os.environ.get('PATCHOPS_SANDBOX_ENGINE_CACHE') or '/var/cache/patchops-sandbox'
ENGINE26 = {'dir': 'engine-26.1', 'suite': 'trixie', 'packages': ('docker.io', 'docker-compose', 'containerd')}
# the docker CLI the sandbox runs (default: `docker` on PATH)
DOCKER_CLI_ENV = 'PATCHOPS_SANDBOX_DOCKER'
