"""Reading and writing small files: whole, atomically, or their last lines."""

from __future__ import annotations

import os


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = '%s.%d.tmp' % (path, os.getpid())
    with open(tmp, 'w') as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _tail(path, lines=40):
    text = _read(path, '') or ''
    return '\n'.join(text.splitlines()[-lines:])
