"""What the benchmarks share: the sandbox, the removal of what they made, running and timing processes and
calls, the redo when other tests stop the shared registry, medians, the machine, docs/performance.md, main().

Imported by bench_image_age.py and bench_update.py (run as scripts from this folder), and by
module_inprocess.py for its call timing (after its own imports were timed).
"""

import argparse
import contextlib
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import docker

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tests', 'sandbox'))
import sandbox  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS = os.path.join(REPO, '.build', 'collections')
DOC = os.path.join(REPO, 'docs', 'performance.md')

VENV_BIN = os.path.dirname(os.path.abspath(sys.executable))
PYTHON = os.path.join(VENV_BIN, 'python')

LABEL_KEY = 'patchops.bench'
SLEEPER = ['sh', '-c', "trap 'exit 0' TERM; sleep 86400 & wait"]
SETUP_THREADS = 4
STEP_TIMEOUT = 180
REGISTRY_WAIT = 180

NAME = 'bench'  # what say() starts its lines with; a benchmark may set its own

_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BenchError(Exception):
    """A wrong result or a failed step: the benchmark stops and says why."""


def say(msg):
    sys.stderr.write('%s: %s\n' % (NAME, msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------- set-up and clean-up

class Fixture(object):
    """What a benchmark made on the engine and in the registry, to remove it again.

    Everything carries the label ``patchops.bench=<bench>``; the containers' names start with
    ``name_prefix``, the images are ``<registry>/<repository>/...``. Removed by label and name only,
    so that nothing of others sharing the engine is touched.
    """

    bench = None
    name_prefix = None
    repository = None
    step_timeout = STEP_TIMEOUT

    def __init__(self, api, images, per_image):
        self.api = api
        self.images = images
        self.per_image = per_image
        self.image_ids = set()
        self.pushed = []  # (ref, digest)

    @property
    def label(self):
        return {LABEL_KEY: self.bench}

    @property
    def label_filter(self):
        return '%s=%s' % (LABEL_KEY, self.bench)

    @property
    def repo_prefix(self):
        return '%s/%s/' % (sandbox.REGISTRY, self.repository)

    def push(self, ref):
        return sandbox.publish(ref, cmd=SLEEPER, labels=self.label)

    def publish(self, ref):
        out = self.push(ref)
        self.image_ids.add(out['id'])
        if not out['digest']:
            raise BenchError('pushing %s gave no digest' % ref)
        self.pushed.append((ref, out['digest']))
        return out

    def named_containers(self, filters=None):
        """The IDs of the containers (filtered so) whose names start with the prefix."""
        return set(summary['Id'] for summary in self.api.containers(all=True, filters=filters)
                   if any(n.lstrip('/').startswith(self.name_prefix) for n in summary.get('Names') or []))

    def containers_to_remove(self):
        return self.named_containers({'label': self.label_filter})

    def clean_up(self):
        """Remove what this run made, and leftovers of earlier runs (by label and name only)."""
        t0 = time.monotonic()
        ids = self.containers_to_remove()
        if ids:
            sandbox.docker('rm', '-f', *sorted(ids), check=False, timeout=self.step_timeout)
        images = set(self.image_ids)
        for image in self.api.images(all=True, filters={'label': self.label_filter}):
            names = (image.get('RepoTags') or []) + (image.get('RepoDigests') or [])
            if all(n.startswith(self.repo_prefix) or n.startswith('<none>') for n in names):
                images.add(image['Id'])
        if images:
            sandbox.docker('rmi', '-f', *sorted(images), check=False, timeout=self.step_timeout)
        for ref, digest in self.pushed:
            repo = ref[len(sandbox.REGISTRY) + 1:].rsplit(':', 1)[0]
            request = urllib.request.Request('http://%s/v2/%s/manifests/%s' % (sandbox.REGISTRY, repo, digest),
                                             method='DELETE')
            try:
                _no_proxy.open(request, timeout=10).close()
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    say('registry: deleting %s@%s: HTTP %s' % (repo, digest, exc.code))
            except OSError as exc:
                say('registry: deleting %s@%s: %s' % (repo, digest, exc))
        # the repositories themselves (deleting manifests leaves them listed)
        state = sandbox.info()['state_dir']
        shutil.rmtree(os.path.join(state, 'registry', 'docker', 'registry', 'v2', 'repositories', self.repository),
                      ignore_errors=True)
        say('removed %d containers, %d images and the %s/ repositories in %.1f s'
            % (len(ids), len(images), self.repository, time.monotonic() - t0))


# --------------------------------------------------------------------------- the registry going away

def registry_disturbed(message):
    """Whether a failure comes from the registry being down (integration tests stop it for a while)."""
    if not sandbox.info()['running']['registry']:
        return True
    return bool(re.search(r'registry error|%s.*connection refused|connection refused.*%s'
                          % (re.escape(sandbox.REGISTRY), re.escape(sandbox.REGISTRY)), message))


def wait_for_registry():
    deadline = time.monotonic() + REGISTRY_WAIT
    while time.monotonic() < deadline:
        state = sandbox.info()['running']
        if not state['engine']:
            raise BenchError('the sandbox engine went down while the benchmark ran')
        if state['registry']:
            time.sleep(1.0)  # let whoever stopped it finish starting it
            return
        time.sleep(0.5)
    raise BenchError('the sandbox registry stayed down for %d s' % REGISTRY_WAIT)


def redo_after_registry_outage(attempt, max_redo, message, note):
    """Whether to redo what failed with MESSAGE at ATTEMPT (0 to MAX_REDO): only when the registry went away
    meanwhile; then says NOTE and waits until the registry is back."""
    if attempt == max_redo or not registry_disturbed(message):
        return False
    say(note)
    wait_for_registry()
    return True


# --------------------------------------------------------------------------- running and timing

def clean_env(**extra):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(('DOCKER_', 'ANSIBLE_', 'PYTHON')))
    env.update(extra)
    return env


def ansible_env(tmp):
    """The environment of the benchmarks' ansible-playbook runs: our collection, temp dirs under ``tmp``."""
    os.makedirs(os.path.join(tmp, 'cwd'), exist_ok=True)
    return clean_env(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
        ANSIBLE_LOCALHOST_WARNING='0',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_LOCAL_TEMP=os.path.join(tmp, 'ansible-local'),
        ANSIBLE_REMOTE_TEMP=os.path.join(tmp, 'ansible-remote'),
        PATH=VENV_BIN + os.pathsep + os.environ.get('PATH', ''),
    )


def run_process(cmd, env=None, cwd=None, timeout=STEP_TIMEOUT):
    """Wall time of one process, and the process (its output captured, as bytes)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, check=False)
    return time.perf_counter() - t0, proc


def run_timed(cmd, env=None, cwd=None, timeout=STEP_TIMEOUT):
    """Wall time of one process; its stdout. Raises BenchError when it fails."""
    seconds, proc = run_process(cmd, env, cwd, timeout)
    out = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0:
        err = proc.stderr.decode('utf-8', 'replace')
        raise BenchError('%s failed (exit %d):\n%s\n%s' % (' '.join(cmd[:3]), proc.returncode, out[-3000:], err[-3000:]))
    return seconds, out


def time_calls(owner, attr, record):
    """Replace OWNER.ATTR by a wrapper that calls it, then ``record(t0)`` with the call's start
    (``time.perf_counter()``), also when it raised."""
    original = getattr(owner, attr)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            record(t0)
    setattr(owner, attr, timed)


def module_params(mod, args):
    """A module's parameters: ARGS over its argument spec's defaults (what AnsibleModule does for plain options)."""
    params = dict((name, spec.get('default')) for name, spec in mod.argument_spec().items())
    params.update(args)
    return params


# --------------------------------------------------------------------------- reporting

def med(values):
    return statistics.median(values) if values else float('nan')


def machine(api):
    version = api.version()
    cpu = ''
    try:
        with open('/proc/cpuinfo') as f:
            match = re.search(r'^model name\s*:\s*(.+)$', f.read(), re.M)
            cpu = match.group(1).strip() if match else ''
    except OSError:
        pass
    from ansible.release import __version__ as ansible_version  # pylint: disable=import-outside-toplevel
    return dict(nproc=len(os.sched_getaffinity(0)), cpu=cpu, engine=version.get('Version'),
                api=version.get('ApiVersion'), python=platform.python_version(), ansible=ansible_version,
                sdk=docker.__version__,
                date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))


def machine_line(info):
    """The report's first line: what machine(), as INFO, found."""
    return ('Machine: %(nproc)d CPUs (`nproc`)%(cpu)s; Docker Engine %(engine)s (API %(api)s) in the test sandbox; '
            'Python %(python)s, ansible-core %(ansible)s, Docker SDK %(sdk)s. Run of %(date)s.'
            % dict(info, cpu=(', ' + info['cpu']) if info['cpu'] else ''))


def write_doc(begin, end, text, missing_ok=False, path=None, title='Performance'):
    """TEXT between the markers BEGIN and END in PATH, docs/performance.md by default (at its end when they are not
    there yet; when MISSING_OK, in a new file headed TITLE when there is none)."""
    path = path or DOC
    block = begin + '\n' + text + '\n' + end
    try:
        with open(path) as f:
            doc = f.read()
    except FileNotFoundError:
        if not missing_ok:
            raise
        doc = '# %s\n\n' % title
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip('\n') + '\n\n' + block + '\n'
    with open(path, 'w') as f:
        f.write(doc)


# --------------------------------------------------------------------------- main

def parse_args(doc, argv, runs, images, per_image, profile_help):
    """The options every benchmark takes; RUNS, IMAGES and PER_IMAGE are their defaults."""
    parser = argparse.ArgumentParser(description=doc.split('\n\n', 1)[0])
    parser.add_argument('--runs', type=int, default=runs)
    parser.add_argument('--images', type=int, default=images, help='distinct images (default %(default)s)')
    parser.add_argument('--per-image', type=int, default=per_image, help='containers per image (default %(default)s)')
    parser.add_argument('--no-docs', action='store_true', help='do not write docs/performance.md')
    parser.add_argument('--profile', metavar='PYTHON', default=os.environ.get('BENCH_PROFILE_PYTHON'),
                        help=profile_help)
    return parser.parse_args(argv)


def sandbox_info():
    """The sandbox's info; BenchError unless it runs and the collection is linked where Ansible finds it."""
    info = sandbox.info()
    if not (info['running']['engine'] and info['running']['registry']):
        raise BenchError('the sandbox is not running: python3 tests/sandbox up')
    link = os.path.join(COLLECTIONS, 'ansible_collections', 'patchops', 'docker')
    if not os.path.isdir(os.path.join(link, 'plugins')):
        raise BenchError('%s must link to the repository (see benchmarks/run.sh)' % link)
    return info


@contextlib.contextmanager
def fixture_set_up(fixture_class, args, docker_host, tmp_prefix):
    """(fixture, machine(), a temporary directory): the fixture set up after leftovers of an earlier, killed
    run are removed; afterwards all of it is removed again, also after a failure."""
    api = docker.APIClient(base_url=docker_host, version='auto', timeout=120, max_pool_size=SETUP_THREADS * 2)
    machine_info = machine(api)
    fixture = fixture_class(api, args.images, args.per_image)
    tmp = tempfile.mkdtemp(prefix=tmp_prefix)
    try:
        fixture.clean_up()  # leftovers of an earlier, killed run
        fixture.set_up()
        yield fixture, machine_info, tmp
    finally:
        try:
            fixture.clean_up()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            api.close()


def show(args, text, profile, profile_title, begin, end, missing_doc_ok=False):
    """Print the report (and the profile), and unless --no-docs write it into docs/performance.md."""
    print(text)
    if profile:
        print('\npyinstrument, %s:\n' % profile_title + profile)
    if not args.no_docs:
        write_doc(begin, end, text, missing_doc_ok)
        say('wrote %s' % os.path.relpath(DOC, REPO))


def run(main):
    """Exit with what MAIN returns; a BenchError is said and exits 1."""
    try:
        sys.exit(main())
    except BenchError as exc:
        say('FAILED: %s' % exc)
        sys.exit(1)
