"""The role's argument spec and its defaults describe the same variables, with the same defaults."""
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[3] / 'roles' / 'patch_containers'
DESIGN_VARIABLES = {
    'patch_containers_docker_host', 'patch_containers_include', 'patch_containers_exclude',
    'patch_containers_opt_in', 'patch_containers_query', 'patch_containers_update',
    'patch_containers_max_age_days', 'patch_containers_max_age_days_exposed', 'patch_containers_builds',
    'patch_containers_min_image_age_days', 'patch_containers_health_timeout', 'patch_containers_rollback',
    'patch_containers_cleanup', 'patch_containers_report_dir', 'patch_containers_report_formats',
}


def load(relative):
    return yaml.safe_load((ROLE / relative).read_text())


def test_every_default_is_in_the_spec_with_the_same_default():
    defaults = load('defaults/main.yml')
    options = load('meta/argument_specs.yml')['argument_specs']['main']['options']
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        assert options[name]['default'] == value, name


def test_the_design_variables_are_all_there():
    assert DESIGN_VARIABLES <= set(load('defaults/main.yml'))


def test_every_default_has_a_comment_above_it():
    lines = (ROLE / 'defaults' / 'main.yml').read_text().splitlines()
    for index, line in enumerate(lines):
        if line.startswith('patch_containers_'):
            assert lines[index - 1].startswith('#'), line
