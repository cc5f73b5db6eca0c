"""Make ``ansible_collections.patchops.docker`` importable for every test run.

The repository root is the collection root, but Python and Ansible find a
collection only under an ``ansible_collections/<namespace>/<name>`` path. A
symlink in ``.build/collections`` (git-ignored) provides that path; it is put
first on ``sys.path`` for imports in this process and exported as
``ANSIBLE_COLLECTIONS_PATH`` for ``ansible``, ``ansible-playbook`` and
``ansible-doc`` started from the tests.
"""

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS_PATH = REPO_ROOT / ".build" / "collections"
COLLECTION_LINK = COLLECTIONS_PATH / "ansible_collections" / "patchops" / "docker"


def _link_collection():
    """Point COLLECTION_LINK at the repository root, replacing anything else there."""
    if COLLECTION_LINK.is_symlink() and COLLECTION_LINK.resolve() == REPO_ROOT:
        return
    COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
    if COLLECTION_LINK.is_symlink() or COLLECTION_LINK.is_file():
        COLLECTION_LINK.unlink()
    elif COLLECTION_LINK.exists():
        raise RuntimeError(f"{COLLECTION_LINK} is a directory; remove it so the tests can link the collection there")
    try:
        # relative, so that the link stays right when the checkout moves
        COLLECTION_LINK.symlink_to(os.path.relpath(REPO_ROOT, COLLECTION_LINK.parent), target_is_directory=True)
    except FileExistsError:
        # another test run made it at the same moment; fine if it points here
        if COLLECTION_LINK.resolve() != REPO_ROOT:
            raise


_link_collection()
if str(COLLECTIONS_PATH) in sys.path:
    sys.path.remove(str(COLLECTIONS_PATH))
sys.path.insert(0, str(COLLECTIONS_PATH))
os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_PATH)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "once: the test exercises the module side in detail (modules, faults, load), which the controller does not "
        "change; tests/tooling/integration runs it under the first controller (modules on the oldest target Python) "
        "and deselects it under the second")
    config.addinivalue_line(
        "markers",
        "engines: the test touches what differs between Docker engines (image stores, pulls, indexes, Compose); "
        "tests/tooling/integration also runs it on Engine 20.10 and on Engine 26 with the containerd image store "
        "(everything runs on Engine 26 with the classic store)")
    config.addinivalue_line(
        "markers",
        "podman: the test runs against the sandbox's Podman engine (sandbox.podman_up(): Debian 12's Podman 4.3 "
        "serving the Docker-compatible API), which runs only in network and mount namespaces of its own, as "
        "tests/tooling/integration's runs are; elsewhere it is skipped")
