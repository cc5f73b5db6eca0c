"""What AWX and a maintenance window need besides the role: the EE metadata and the example play."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """The collection as a user has it: built into a tarball, installed into a collections path."""
    tmp = tmp_path_factory.mktemp('installed')
    galaxy = os.path.join(os.path.dirname(sys.executable), 'ansible-galaxy')
    build = subprocess.run([galaxy, 'collection', 'build', '--output-path', str(tmp / 'dist'), str(REPO)],
                           capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = (tmp / 'dist').glob('patchops-docker-*.tar.gz')
    # only the new path counts as installed (the tests' own collections path links this checkout)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / 'collections'))
    install = subprocess.run([galaxy, 'collection', 'install', '--offline', '-p', str(tmp / 'collections'),
                              str(tarball)], capture_output=True, text=True, timeout=300, check=False, env=env)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (tmp / 'collections' / 'ansible_collections' / 'patchops' / 'docker' / 'MANIFEST.json').is_file(), \
        install.stdout
    return tarball, tmp / 'collections'


def builder():
    path = REPO / '.venv' / 'tools' / 'bin' / 'ansible-builder'
    assert path.exists(), 'make venv installs ansible-builder into .venv/tools'
    return str(path)


def test_ansible_builder_reads_what_the_installed_collection_needs(installed):
    _tarball, collections = installed
    # what ansible-builder runs inside the EE build on every collection it installed
    proc = subprocess.run([builder(), 'introspect', '--sanitize', str(collections)],
                          capture_output=True, text=True, timeout=300, check=False)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'Expected requirements file not present' not in proc.stdout + proc.stderr, proc.stdout
    found = yaml.safe_load(proc.stdout[proc.stdout.index('python:'):])
    python = dict((line.split('#')[0].strip(), line) for line in found['python'])
    assert {'docker>=7.0', 'jmespath'} <= set(python), found
    assert all('patchops.docker' in line for line in python.values()), found
    assert any(line.startswith('openssh-client [platform:dpkg]') for line in found['system']), found


def test_ansible_builder_writes_the_context_of_an_ee_that_lists_the_tarball(installed, tmp_path):
    tarball, _collections = installed
    definition = yaml.safe_load((REPO / 'docs' / 'examples' / 'execution-environment.yml').read_text())
    (tmp_path / 'requirements.yml').write_text(yaml.safe_dump(
        {'collections': [{'name': str(tarball), 'type': 'file'}]}))
    definition['dependencies']['galaxy'] = 'requirements.yml'
    (tmp_path / 'execution-environment.yml').write_text(yaml.safe_dump(definition))

    # where podman is installed, ansible-builder would write a Containerfile unless told the file name
    proc = subprocess.run([builder(), 'create', '-f', 'execution-environment.yml', '--context', 'context',
                           '--output-filename', 'Dockerfile'],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=300, check=False)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    build_file = (tmp_path / 'context' / 'Dockerfile').read_text()
    assert 'ansible-galaxy' in build_file and 'introspect' in build_file
    assert (tmp_path / 'context' / '_build' / 'requirements.yml').exists()


def test_the_example_ee_names_the_collection():
    requirements = yaml.safe_load((REPO / 'docs' / 'examples' / 'ee-requirements.yml').read_text())
    assert [c['name'] for c in requirements['collections']] == ['patchops.docker']


def test_the_maintenance_window_example_passes_syntax_check():
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    proc = subprocess.run([ansible_playbook, '--syntax-check', '-i', 'localhost,',
                           'docs/examples/maintenance_window.yml'], cwd=str(REPO), capture_output=True, text=True,
                          timeout=300, check=False)

    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_empty_inventory_patches_nothing_and_says_so(tmp_path):
    inventory = tmp_path / 'empty.yml'
    inventory.write_text('all:\n  hosts: {}\n')
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')

    proc = subprocess.run([ansible_playbook, '-i', str(inventory), 'patchops.docker.patch_containers'],
                          capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR='1'))

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'no hosts matched' in (proc.stdout + proc.stderr).lower()


@pytest.mark.once
def test_antsibull_docs_builds_the_docsite(tmp_path):
    """The collection's docsite as antsibull-docs and Sphinx build it: module pages, the guide, the links."""
    tools = REPO / '.venv' / 'tools' / 'bin'
    env = dict(os.environ, PATH='%s:%s' % (os.path.dirname(sys.executable), os.environ['PATH']))
    lint = subprocess.run([str(tools / 'antsibull-docs'), 'lint-collection-docs', '--plugin-docs', '.'],
                          cwd=str(REPO / '.build' / 'collections' / 'ansible_collections' / 'patchops' / 'docker'),
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr

    site = tmp_path / 'site'
    site.mkdir(mode=0o755)
    init = subprocess.run([str(tools / 'antsibull-docs'), 'sphinx-init', '--use-current', '--dest-dir', str(site),
                           'patchops.docker'], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert init.returncode == 0, init.stdout + init.stderr
    with open(site / 'conf.py', 'a') as conf:
        conf.write('\n# offline: no inventories of other docsites (their labels stay unresolved)\n'
                   'intersphinx_mapping = {}\n')
    (site / 'rst').mkdir(exist_ok=True)
    os.chmod(site / 'rst', 0o755)
    rst = subprocess.run([str(tools / 'antsibull-docs'), '--config-file', str(site / 'antsibull-docs.cfg'),
                          'collection', '--cleanup', 'everything', '--use-current', '--dest-dir', str(site / 'rst'),
                          'patchops.docker'], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert rst.returncode == 0, rst.stdout + rst.stderr
    html = subprocess.run([str(tools / 'sphinx-build'), '-M', 'html', str(site / 'rst'), str(site / 'build'), '-c',
                           str(site), '--keep-going'], env=env, capture_output=True, text=True, timeout=600,
                          check=False)

    assert html.returncode == 0, html.stdout + html.stderr
    # the only warnings: references to the Ansible docsite, whose inventory this offline build does not load
    warnings = [line for line in html.stderr.splitlines() if 'WARNING' in line or 'ERROR' in line]
    ours = [line for line in warnings
            if not re.search(r"undefined label: '(?!ansible_collections\.patchops\.)[^']+'", line)]
    assert ours == [], '\n'.join(warnings)
    pages = site / 'build' / 'html' / 'collections' / 'patchops' / 'docker'
    for module in ('container_update', 'image_age_info', 'image_rebuild'):
        page = (pages / ('%s_module.html' % module)).read_text()
        assert 'group/patchops.docker.docker' in page and 'idempotent' in page.lower(), module
    guide = (pages / 'docsite' / 'guide.html').read_text()
    assert 'Patching containers in a maintenance window' in guide
    assert 'https://example.invalid/patchops/docker/issues' in (pages / 'index.html').read_text()
