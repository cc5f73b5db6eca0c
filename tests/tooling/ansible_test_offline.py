"""Let ansible-test create its virtual environments without the internet.

ansible-test bootstraps pip into every venv it builds (one per sanity test)
with pip's ``get-pip.py``, which it downloads from a host this project's
machines cannot reach. It first looks for the script in its cache,
``~/.ansible/test/cache/get_pip_<pip version with underscores>.py``. This
writes a stand-in there for every pip version the ansible-test of the running
interpreter pins: it installs pip from the interpreter's own ``ensurepip`` and
then lets that pip install the pinned packages from the package index.

Run it with the Python of the venv whose ansible-test will run:
``.venv/core217/bin/python tests/tooling/ansible_test_offline.py``.
"""

import os
import pathlib
import re
import sys

CACHE_DIR = pathlib.Path("~/.ansible/test/cache").expanduser()
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

STAND_IN = '''\
"""Offline stand-in for get-pip.py {version}, written by patchops.docker tests/tooling/ansible_test_offline.py."""
import ensurepip
import os
import subprocess
import sys

# get-pip.py's own switches; the packages named on the command line decide
GET_PIP_ONLY = {{"--no-setuptools", "--no-wheel", "--no-pip"}}
CA_BUNDLE = {ca_bundle!r}

ensurepip.bootstrap()
command = [sys.executable, "-m", "pip", "install"]
if os.path.isfile(CA_BUNDLE):
    # pip in these venvs does not find the system CA bundle by itself
    command += ["--cert", CA_BUNDLE]
command += [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call(command))
'''


def pinned_pip_versions():
    """Return the pip versions the installed ansible-test bootstraps."""
    import ansible_test  # pylint: disable=import-outside-toplevel

    source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    versions = set(re.findall(r"""\bpip\s*=\s*['"]([0-9][0-9.]*)['"]""", source.read_text(encoding="utf-8")))
    if not versions:
        raise SystemExit(f"No pinned pip version found in {source}; ansible-test changed how it bootstraps pip.")
    return sorted(versions)


def main():
    """Write one stand-in per pinned pip version, leaving the others alone."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for version in pinned_pip_versions():
        path = CACHE_DIR / f"get_pip_{version.replace('.', '_')}.py"
        text = STAND_IN.format(version=version, ca_bundle=CA_BUNDLE)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        print(f"wrote ansible-test pip bootstrap stand-in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
