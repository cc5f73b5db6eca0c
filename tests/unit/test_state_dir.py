"""One state directory: the modules' default (journal.DEFAULT_STATE_DIR) is what every YAML place says."""
import re
from pathlib import Path

import yaml

from ansible_collections.patchops.docker.plugins.module_utils.journal import DEFAULT_STATE_DIR

REPO = Path(__file__).resolve().parents[2]


def _module_doc(name):
    source = (REPO / 'plugins' / 'modules' / ('%s.py' % name)).read_text()
    return yaml.safe_load(re.search(r"DOCUMENTATION = r'''(.*?)'''", source, re.S).group(1))


def test_the_modules_document_the_default_they_use():
    for name in ('container_update', 'image_age_info'):
        assert _module_doc(name)['options']['state_dir']['default'] == DEFAULT_STATE_DIR, name


def test_the_role_and_the_rollback_playbook_use_the_same_directory():
    role = REPO / 'roles' / 'patch_containers'
    assert yaml.safe_load((role / 'defaults' / 'main.yml').read_text())['patch_containers_state_dir'] \
        == DEFAULT_STATE_DIR
    spec = yaml.safe_load((role / 'meta' / 'argument_specs.yml').read_text())
    assert spec['argument_specs']['main']['options']['patch_containers_state_dir']['default'] == DEFAULT_STATE_DIR
    rollback = (REPO / 'playbooks' / 'rollback_containers.yml').read_text()
    assert "default('%s')" % DEFAULT_STATE_DIR in rollback
