"""The floor of the check on any engine that serves the Docker API, Podman included: the least a careful script does.

One container list, ``inspect_container`` per container, ``inspect_image`` per image, one registry ``HEAD`` of the
manifest per tag, asked of the registry directly (Podman 4.3 does not serve the daemon's ``/distribution``
look-up), then whether the registry's digest is one the image carries.

    python floor_podman.py DOCKER_HOST NAMES.json

Prints {name: update available} as JSON. Used by bench_podman.py, which times the whole process.
"""

import json
import sys
import time
import urllib.request

import docker

ACCEPT = ', '.join(['application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json',
                    'application/vnd.docker.distribution.manifest.list.v2+json',
                    'application/vnd.docker.distribution.manifest.v2+json'])


def floor(docker_host, names):
    """The check by hand; returns (seconds, {name: update available})."""
    began = time.perf_counter()
    api = docker.APIClient(base_url=docker_host, version='auto')
    wanted = set(names)
    summaries = [c for c in api.containers() if any(n.lstrip('/') in wanted for n in c.get('Names') or [])]
    containers = [api.inspect_container(c['Id']) for c in summaries]
    images = {}
    for c in containers:
        if c['Image'] not in images:
            images[c['Image']] = api.inspect_image(c['Image'])
    remote = {}
    for c in containers:
        ref = c['Config']['Image']
        if ref not in remote:
            host, rest = ref.split('/', 1)
            repo, tag = rest.rsplit(':', 1)
            request = urllib.request.Request('http://%s/v2/%s/manifests/%s' % (host, repo, tag), method='HEAD',
                                             headers={'Accept': ACCEPT})
            with urllib.request.urlopen(request, timeout=30) as response:
                remote[ref] = response.headers['Docker-Content-Digest']
    result = {}
    for c in containers:
        ref = c['Config']['Image']
        digests = [d.split('@', 1)[1] for d in images[c['Image']].get('RepoDigests') or []]
        result[c['Name'].lstrip('/')] = remote[ref] not in digests
    api.close()
    return time.perf_counter() - began, result


if __name__ == '__main__':
    with open(sys.argv[2]) as names_file:
        print(json.dumps(floor(sys.argv[1], json.load(names_file))[1]))
