"""Print the integration matrix: test file x engine, from the JUnit XML files of the runs.

    python3 tests/tooling/matrix_table.py COLUMN=RUN.xml[,RUN.xml...] ...

Each argument names a column (an engine, a controller) and the JUnit XML files of the runs that make
it up (run 1a and 1b together are Engine 26 with the first controller). A cell reads
``12 passed``, ``11 passed, 1 failed`` or ``-`` (the file has no test in that column's runs).
Standard library only.
"""
import collections
import sys
import xml.etree.ElementTree as ET


def outcomes(paths):
    """{test file: Counter(passed=, failed=, skipped=)} over the test cases of the JUnit files."""
    per_file = collections.defaultdict(collections.Counter)
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            continue
        for case in root.iter('testcase'):
            parts = case.get('classname', '').split('.')
            name = next((part for part in parts if part.startswith('test_')), parts[-1]) + '.py'
            if case.find('failure') is not None or case.find('error') is not None:
                per_file[name]['failed'] += 1
            elif case.find('skipped') is not None:
                per_file[name]['skipped'] += 1
            else:
                per_file[name]['passed'] += 1
    return per_file


def cell(counts):
    if not counts:
        return '-'
    return ', '.join('%d %s' % (counts[key], key) for key in ('passed', 'failed', 'skipped') if counts[key])


def main(argv):
    columns = []
    for arg in argv:
        title, paths = arg.split('=', 1)
        columns.append((title, outcomes(paths.split(','))))
    titles = [column[0] for column in columns]
    results = [column[1] for column in columns]
    files = sorted(set(name for per_file in results for name in per_file))
    rows = [['test file'] + titles]
    rows += [[name] + [cell(per_file.get(name)) for per_file in results] for name in files]
    totals = ['all'] + [cell(sum(per_file.values(), collections.Counter())) for per_file in results]
    rows.append(totals)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print('| ' + ' | '.join(text.ljust(width) for text, width in zip(row, widths)) + ' |')
        if n == 0:
            print('|' + '|'.join('-' * (width + 2) for width in widths) + '|')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
