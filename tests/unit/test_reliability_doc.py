"""docs/reliability.md stays true: every test its table names exists, and every fault test is in the table."""
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / 'docs' / 'reliability.md'
REFERENCE = re.compile(r'`(tests/[\w/.-]+\.py)::(\w+)`')
# Integration test files whose every test is a fault, bad input or load case: each must be in the table.
FAULT_FILES = ('test_faults_*.py', 'test_bad_input.py', 'test_load.py', 'test_fleet_faults.py')


def table_rows():
    return [line for line in DOC.read_text().splitlines() if line.startswith('| ') and '`tests/' in line]


def functions_in(path):
    tree = ast.parse((REPO / path).read_text())
    return set(node.name for node in ast.walk(tree)
               if isinstance(node, ast.FunctionDef) and node.name.startswith('test_'))


def test_every_row_names_a_test_that_exists():
    rows = table_rows()
    assert len(rows) >= 20
    missing = []
    for row in rows:
        references = REFERENCE.findall(row)
        assert references, 'a row names no test: %s' % row
        for path, function in references:
            if not (REPO / path).is_file() or function not in functions_in(path):
                missing.append('%s::%s' % (path, function))
    assert not missing, 'docs/reliability.md names tests that do not exist: %s' % ', '.join(missing)


def test_every_fault_test_is_in_the_table():
    named = set(REFERENCE.findall(DOC.read_text()))
    unnamed = []
    for pattern in FAULT_FILES:
        for path in sorted((REPO / 'tests' / 'integration').glob(pattern)):
            relative = str(path.relative_to(REPO))
            unnamed += ['%s::%s' % (relative, f) for f in sorted(functions_in(relative))
                        if (relative, f) not in named]
    assert not unnamed, 'fault tests docs/reliability.md does not list: %s' % ', '.join(unnamed)
