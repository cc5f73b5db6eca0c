"""``python3 -m sandbox VERB ...`` (with tests/sandbox on sys.path): the command line of cli.py."""

import sys

from .cli import main

if __name__ == '__main__':
    sys.exit(main())
