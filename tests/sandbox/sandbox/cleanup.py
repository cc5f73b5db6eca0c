"""reset(): a clean engine (and registry) between tests; _reset_engine(), the engine part, also serves fleet_reset()."""

from __future__ import annotations

import contextlib
import os
import shutil

from .docker_cli import _run_docker
from .images import _image_id
from .paths import _paths
from .registry_api import _split_ref
from .settings import BASE_IMAGE, BASE_LOCAL


def reset(*, registry=False) -> dict:
    """Remove all containers, non-base images, user networks and volumes of the sandbox engine.

    With registry=True also delete every repository but the base one from the registry storage.
    """
    removed = _reset_engine(None)
    removed['repositories'] = 0
    if registry:
        repos_root = os.path.join(_paths().reg_root, 'docker', 'registry', 'v2', 'repositories')
        keep = _split_ref(BASE_LOCAL)[0]
        for dirpath, dirnames, _files in os.walk(repos_root):
            if '_manifests' in dirnames:
                name = os.path.relpath(dirpath, repos_root)
                dirnames[:] = []
                if name != keep:
                    shutil.rmtree(dirpath, ignore_errors=True)
                    removed['repositories'] += 1
        for dirpath in sorted((w[0] for w in os.walk(repos_root)), key=len, reverse=True):
            if dirpath != repos_root:
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)
    return removed


def _reset_engine(sock):
    """Containers (with anonymous volumes), images but the base, user networks and volumes of one engine."""
    def dk(*args, check=True):
        return _run_docker(list(args), check=check, sock=sock)

    base_id = _image_id(BASE_IMAGE, sock=sock)
    removed = {'containers': 0, 'images': 0, 'networks': 0, 'volumes': 0}
    ids = dk('ps', '-aq', '--no-trunc').split()
    if ids:
        dk('rm', '-f', '-v', *ids, check=False)
        removed['containers'] = len(ids)
    for _attempt in range(5):
        listing = dk('image', 'ls', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}')
        victims, extra_tags = [], []
        for line in listing.splitlines():
            image_id, _sep, name = line.partition(' ')
            if image_id == base_id:
                if name not in (BASE_LOCAL, BASE_IMAGE) and '<none>' not in name:
                    extra_tags.append(name)
            elif image_id not in victims:
                victims.append(image_id)
        if extra_tags:
            dk('rmi', *extra_tags, check=False)
        if not victims:
            break
        dk('rmi', '-f', *victims, check=False)
        removed['images'] += len(victims)
    nets = dk('network', 'ls', '-q', '--filter', 'type=custom').split()
    if nets:
        dk('network', 'rm', *nets, check=False)
        removed['networks'] = len(nets)
    vols = dk('volume', 'ls', '-q').split()
    if vols:
        dk('volume', 'rm', '-f', *vols, check=False)
        removed['volumes'] = len(vols)
    return removed
