"""SandboxError, what every sandbox step raises, and _say, how the sandbox speaks (on stderr)."""

from __future__ import annotations

import sys


class SandboxError(RuntimeError):
    """A sandbox step failed; for a failed command, ``stderr``/``stdout``/``returncode`` are set."""

    def __init__(self, message, cmd=None, returncode=None, stdout='', stderr=''):
        super().__init__(message)
        self.cmd = cmd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def _say(msg):
    sys.stderr.write('sandbox: %s\n' % msg)
    sys.stderr.flush()
