"""``python3 tests/sandbox VERB ...``: the sandbox's command line (sandbox/cli.py; README.md lists the verbs)."""

import sys

from sandbox.cli import main

if __name__ == '__main__':
    sys.exit(main())
