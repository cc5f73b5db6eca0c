"""Print a fleet report (patch-report.json) as one table: what make demo shows."""
import json
import sys


def main(path):
    with open(path) as handle:
        report = json.load(handle)
    row = '%-7s %-11s %-40s %7s  %-6s %-8s %-13s %s'
    print(row % ('HOST', 'CONTAINER', 'IMAGE', 'AGE(d)', 'STALE', 'EXPOSED', 'ACTION', 'WHY'))
    for host in report['hosts']:
        for c in host['containers']:
            why = c.get('message') or c.get('reason') or ''
            print(row % (host['name'], c['name'], c['image'][-40:], c['image_age_days'],
                         'yes' if c['stale'] else 'no', 'yes' if c['exposed'] else 'no',
                         c.get('action') or {True: 'update waiting', False: 'current'}.get(c.get('update_available'),
                                                                                           'unknown'),
                         why[:70]))
    s = report['summary']
    print('%d hosts, %d containers: %d updated, %d rolled back, %d with an update waiting, %d stale before the run.'
          % (s['hosts'], s['containers'], s.get('updated', 0), s.get('rolled_back', 0),
             s.get('updates_available', 0), s.get('stale', 0)))


if __name__ == '__main__':
    main(sys.argv[1])
