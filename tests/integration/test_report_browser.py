"""The HTML fleet report in a real browser: rendered by the filters inside a real playbook, opened offline
in Debian's headless Chromium, its DOM read back and a screenshot checked for actually showing something.

Needs Debian's ``chromium`` (``make venv`` installs it). Needs no sandbox.
"""
import json
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ansible_collections.patchops.docker.plugins.filter.fleet_report import fleet_report, fleet_report_html

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')


@pytest.fixture(autouse=True)
def chromium_present():
    assert CHROMIUM, 'Chromium is missing: make venv installs it (apt-get install -y chromium)'


RUN = {'playbook': 'Patch containers (browser test)', 'check_mode': False}
PLANTED = 'PLANTED-SECRET-5e1f'


def age_entry(name, image, age, stale, exposed, update, reason):
    return {'name': name, 'id': name * 4, 'state': 'running', 'image': image, 'image_id': 'sha256:%064x' % len(name),
            'image_created': '2026-01-01T00:00:00Z', 'image_age_days': age, 'remote_digest': None,
            'update_available': update, 'reason': reason, 'error': None, 'exposed': exposed, 'max_age_days': 30,
            'stale': stale, 'labels': {'com.example.api-key': PLANTED}, 'environment': ['TOKEN=' + PLANTED],
            'compose_project': 'shop', 'compose_service': name, 'build_context': None, 'excluded': False}


def update_entry(name, action, image, message, downtime=None):
    return {'name': name, 'action': action, 'image': image, 'old_image_id': 'sha256:%064x' % len(name),
            'new_image_id': 'sha256:%064x' % (len(name) + 100) if action in ('updated', 'rolled_back') else None,
            'downtime_seconds': downtime, 'message': message,
            'pre_update': {'command': 'backup', 'rc': 0, 'output': PLANTED}}


def host(name, status, age, update, error=None, excluded=()):
    summary = {}
    for entry in update:
        summary[entry['action']] = summary.get(entry['action'], 0) + 1
    return {'host': name, 'docker_host': 'unix:///var/run/docker.sock', 'status': status, 'error': error,
            'check_mode': False, 'age': {'containers': age, 'summary': {'containers': len(age)}},
            'patch': {'containers': update, 'summary': summary, 'recovered': []} if update else None,
            'selected': [e['name'] for e in update], 'excluded': [{'name': n, 'why': w} for n, w in excluded]}


REG = 'registry.example.com/shop/'
HOST_RESULTS = {
    'web-01.example.net': host('web-01.example.net', 'patched', [
        age_entry('shop-frontend', REG + 'frontend:4.2', 41.6, True, True, True, 'registry has a newer image for tag 4.2'),
        age_entry('shop-api', REG + 'api:2.14', 35.2, True, False, True, 'registry has a newer image for tag 2.14'),
        age_entry('nginx-proxy', 'docker.io/library/nginx:1.27', 9.3, True, True, True,
                  'registry has a newer image for tag 1.27'),
        age_entry('shop-worker', REG + 'worker:2.14', 12.0, False, False, False, 'up to date'),
        age_entry('metrics-agent', 'docker.io/prom/node-exporter:v1.8.2', 88.4, True, False, False,
                  'no newer image for tag v1.8.2'),
    ], [
        update_entry('nginx-proxy', 'updated', 'docker.io/library/nginx:1.27', 'Recreated on the newer image.', 1.42),
        update_entry('shop-frontend', 'updated', REG + 'frontend:4.2', 'Recreated on the newer image.', 3.1),
        update_entry('shop-api', 'deferred', REG + 'api:2.14', 'The new image is 0.4 days old; min_image_age_days is 2.'),
    ], excluded=[('shop-worker', 'up to date (up to date)'), ('metrics-agent', 'in patch_containers_exclude')]),
    'app-02.example.net': host('app-02.example.net', 'failed', [
        age_entry('billing', REG + 'billing:7.0', 63.0, True, True, True, 'registry has a newer image for tag 7.0'),
        age_entry('billing-db', 'docker.io/library/postgres:15', 120.5, True, False, True,
                  'registry has a newer image for tag 15'),
        age_entry('mailer', REG + 'mailer:1.3', 18.9, False, False, None, 'registry error: 503 Service Unavailable'),
        age_entry('redis-cache', 'docker.io/library/redis:7.2', 5.5, False, False, False, 'up to date'),
    ], [
        update_entry('billing-db', 'updated', 'docker.io/library/postgres:15', 'Recreated on the newer image.', 6.8),
        update_entry('billing', 'rolled_back', REG + 'billing:7.0',
                     'Not healthy within 120 s (health check: curl -f localhost:8080/health exited 7); '
                     'the old container is back under its name.', 124.2),
        update_entry('mailer', 'failed', REG + 'mailer:1.3', 'Nothing was changed: registry error: 503.'),
    ], error='Container billing was rolled back and mailer failed on app-02.example.net; see the report.',
        excluded=[('redis-cache', 'up to date (up to date)')]),
    'batch-03.example.net': {'status': 'unreachable',
                             'error': 'Failed to connect to the host via ssh: connect to host batch-03 port 22: '
                                      'Connection timed out.'},
}

PLAYBOOK = """\
- name: Render the fleet report
  hosts: localhost
  gather_facts: false
  vars_files:
    - results.json
  tasks:
    - name: Write the HTML page
      ansible.builtin.copy:
        content: "{{ host_results | patchops.docker.fleet_report(run) | patchops.docker.fleet_report_html }}"
        dest: "{{ out }}"
        mode: "0644"
"""


def names():
    yield from HOST_RESULTS
    for result in HOST_RESULTS.values():
        for container in (result.get('age') or {}).get('containers', []):
            yield container['name']


def without_timestamp(page):
    return re.sub(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', 'TIME', page)


@pytest.fixture(scope='module')
def page(tmp_path_factory):
    """The page as the role would write it: the filters run by ansible-playbook."""
    work = tmp_path_factory.mktemp('report')
    (work / 'results.json').write_text(json.dumps({'host_results': HOST_RESULTS, 'run': RUN}))
    (work / 'render.yml').write_text(PLAYBOOK)
    out = work / 'patch-report.html'
    playbook = Path(sys.executable).parent / 'ansible-playbook'
    proc = subprocess.run([str(playbook), '-i', 'localhost,', '-c', 'local', str(work / 'render.yml'),
                           '-e', 'out=%s' % out, '-e', 'ansible_python_interpreter=%s' % sys.executable],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def chromium(tmp_path, *args):
    cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
           '--user-data-dir=%s' % (tmp_path / 'profile')] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_the_playbook_writes_the_page_the_filters_render(page):
    direct = fleet_report_html(fleet_report(HOST_RESULTS, RUN))
    assert without_timestamp(page.read_text()) == without_timestamp(direct)


def test_the_browser_shows_every_host_and_container(page, tmp_path):
    proc = chromium(tmp_path, '--dump-dom', page.as_uri())
    assert proc.returncode == 0, proc.stderr
    dom = proc.stdout
    assert '<svg' in dom and 'Hosts not patched' in dom
    for name in names():
        assert name in dom
    assert PLANTED not in dom


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG, decoded with zlib alone."""
    data = path.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat = 8, []
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b'IHDR':
            width, height, depth, color, _c, _f, interlace = struct.unpack('>IIBBBBB', chunk)
            assert depth == 8 and color in (2, 6) and interlace == 0, 'unexpected PNG format'
        elif kind == b'IDAT':
            idat.append(chunk)
        pos += 12 + length
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = width * bpp
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xff
        elif kind == 2:
            line = bytearray((a + b) & 0xff for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xff
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        previous = line
    return width, height, rows


def test_the_screenshot_shows_the_report(page, tmp_path):
    shot = tmp_path / 'report.png'
    proc = chromium(tmp_path, '--screenshot=%s' % shot, '--window-size=1280,900', '--hide-scrollbars', page.as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr
    width, height, rows = read_png(shot)
    assert (width, height) == (1280, 900)
    pixels = [pixel for row in rows for pixel in row]
    colors = set((r >> 4, g >> 4, b >> 4) for r, g, b in pixels)
    not_white = sum(1 for r, g, b in pixels if min(r, g, b) < 235) / float(len(pixels))
    assert len(colors) >= 20, 'only %d distinct colors: the page looks blank' % len(colors)
    assert not_white > 0.05, 'only %.1f%% of the screen is not white' % (not_white * 100)
    # the status badges and summary accents in the first screen: red (failed/unreachable), green (patched)
    assert any(r > 170 and g < 80 and b < 80 for r, g, b in pixels), 'no red on the first screen'
    assert any(g > 110 and r < 80 and b < 90 for r, g, b in pixels), 'no green on the first screen'
