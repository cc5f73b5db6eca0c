"""One sandbox operation at a time per state dir: an fcntl lock, reentrant within a thread."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading


_local = threading.local()


@contextlib.contextmanager
def _locked(p, path=None):
    """One sandbox operation at a time per state dir (reentrant within a thread, per lock file)."""
    path = path or p.lock
    depths = getattr(_local, 'depths', None)
    if depths is None:
        depths = _local.depths = {}
    if depths.get(path):
        depths[path] += 1
        try:
            yield
        finally:
            depths[path] -= 1
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        depths[path] = 1
        try:
            yield
        finally:
            depths[path] = 0
    finally:
        os.close(fd)
