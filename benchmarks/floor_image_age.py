"""The floor: the least a careful person would write to answer what image_age_info answers.

A plain, sequential Docker SDK script: one container list, ``inspect_container``
for each container, ``inspect_image`` for each distinct image, one
``inspect_distribution`` per distinct reference; then each container's image age
and whether the registry serves a digest its image does not carry.

    python floor_image_age.py DOCKER_HOST NAMES.json

NAMES.json is a JSON list of the container names to report on (the benchmark's
own containers; others may share the engine). Prints one JSON object: the
per-container results and ``work_seconds`` (client creation to results, i.e.
without interpreter start-up and imports).
"""

import calendar
import json
import sys
import time

T_START = time.perf_counter()

import docker  # noqa: E402  (imports are part of what the process pays; timed from T_START)

T_IMPORTED = time.perf_counter()


def main(docker_host, names_file):
    with open(names_file) as f:
        wanted = set(json.load(f))
    t0 = time.perf_counter()
    api = docker.APIClient(base_url=docker_host, version='auto')
    summaries = [c for c in api.containers(all=True)
                 if any(n.lstrip('/') in wanted for n in c.get('Names') or [])]
    containers = [api.inspect_container(c['Id']) for c in summaries]
    images = {}
    for c in containers:
        if c['Image'] not in images:
            images[c['Image']] = api.inspect_image(c['Image'])
    remote = {}
    for c in containers:
        ref = c['Config']['Image']
        if ref not in remote:
            remote[ref] = api.inspect_distribution(ref)['Descriptor']['digest']
    now = time.time()
    results = []
    for c in containers:
        image = images[c['Image']]
        created = image['Created']  # RFC 3339 with nanoseconds: cut to seconds
        epoch = calendar.timegm(time.strptime(created[:19], '%Y-%m-%dT%H:%M:%S'))
        repo = c['Config']['Image'].rsplit(':', 1)[0]
        digest = remote[c['Config']['Image']]
        results.append(dict(
            name=c['Name'].lstrip('/'),
            image=c['Config']['Image'],
            image_age_days=round((now - epoch) / 86400.0, 2),
            update_available=('%s@%s' % (repo, digest)) not in (image.get('RepoDigests') or []),
        ))
    t1 = time.perf_counter()
    api.close()
    return dict(containers=results, work_seconds=t1 - t0, import_seconds=T_IMPORTED - T_START,
                requests=dict(containers=1, inspect_container=len(containers), inspect_image=len(images),
                              inspect_distribution=len(remote)))


if __name__ == '__main__':
    json.dump(main(sys.argv[1], sys.argv[2]), sys.stdout)
