"""Benchmark the role's check and report over a simulated fleet: 50 inventory hosts over real SSH, forks 10/25/50.

    python benchmarks/bench_scale.py [--hosts 50] [--engines 10] [--per-host 10] [--images 10] [--moved 3]
                                     [--forks 10,25,50] [--runs 2] [--mode report|check]
                                     [--share-lookups on|off] [--no-docs]

Run by ``make bench`` (``benchmarks/run.sh``; ``BENCH_ONLY=scale`` runs only this) with
``.venv/core217/bin/python``; the sandbox must be up. It starts the sandbox fleet (``fleet_up(ENGINES)``:
host1..hostE, each its own containerd + dockerd and an sshd on 127.0.0.1) when those hosts are not running, and
stops it again at the end only then. The fleet's ports and bridges are fixed, so run it in namespaces of its own
when anything else may use a fleet (see docs/scale.md for the command).

The simulated fleet: HOSTS inventory hosts ``sim01``..``simNN`` spread over the ENGINES engines round-robin
(sim01 on host1, sim02 on host2, ...). Each has its own ``patch_containers_docker_host`` (its engine's socket),
its own ``patch_containers_state_dir`` (the host lock and journal are per inventory host) and
``patch_containers_include: ['simNN-*']``: PER_HOST running containers ``simNN-app-J`` on the tags
``127.0.0.1:5115/bench-scale/app-I:1`` (IMAGES tags pushed to the sandbox registry, J mod IMAGES), so that every
host runs the same tags. The include pattern narrows what the role selects, not what it checks: the check
(``image_age_info``) lists and inspects every container of the engine, so each host's check and its part of the
report cover HOSTS / ENGINES x PER_HOST containers (50 with the defaults), and the report holds HOSTS times that
(2,500: a twentieth of bench_report.py's 1,000 hosts x 50 containers).

One SSH connection per inventory host. Ansible's ssh plugin names its ControlMaster socket after host, port and
user; every simulated host is ``root@127.0.0.1`` on its engine's sshd port, so ten hosts on one engine would share
one ControlMaster, one TCP connection and one key exchange, and hide the SSH cost a real fleet pays per host. So
every inventory host gets its own ControlPath (``ansible_control_path: '%(directory)s/simNN'``), chosen over
distinct loopback addresses (127.0.0.N) because it needs no sshd besides the sandbox's (whose config listens on
127.0.0.1 only): each host still gets its own TCP connection, key exchange, authentication and sshd session
process, which is what a host costs the controller. Every measured run gets a fresh ControlPath directory
(``ANSIBLE_SSH_CONTROL_PATH_DIR``) and its ControlMasters are ended after it, so each run pays the connections
as an AWX job does (a new execution environment per job, no masters left from the last one).

Measured, per forks value, RUNS rounds (after one warm-up run; forks in alternating order): the role with
nothing new (the quiet night: every tag's digest is the one the hosts run) and with a newer image pushed for
MOVED of the tags (the report says update available for those containers), as
``ansible-playbook patchops.docker.patch_containers`` with ``patch_containers_update: false`` (``--mode report``,
the default: check, select, report, change nothing) or ``--check`` (``--mode check``: also container_update's dry
run on the selected containers), writing the fleet report; and ``ansible -m ping`` over the same hosts with the
same forks (Ansible's own floor: an SSH connection and a Python start-up per host). Every run is checked by its
report (every host ``checked``, exactly the expected containers with an update available, none unknown).

Per run: wall seconds; the controller's start-up (process start to the play's start), the check (every
``image_age_info`` task over all hosts, summed: with shared look-ups the role runs it up to three times per host)
and the report task (``fleet_report_write``, once per play), from a small callback plugin that logs each task's
start and its last host result; controller CPU seconds (user + system of
the ansible-playbook process tree, from ``RUSAGE_CHILDREN``, plus the ControlMaster ssh processes, which detach
from the tree: their CPU is read from /proc with each sample and once more before they are ended, so a master that
ControlPersist ends after 60 s idle counts up to its last sample); the tree's peak memory (PSS and RSS summed over
its processes, sampled every 0.25 s from /proc: PSS counts the pages forked workers share once); and the
registry's manifest requests (HEAD and GET separately, and blob GETs) for the benchmark's repositories in the
sandbox registry's access log. ``--share-lookups on|off`` passes ``-e patch_containers_share_lookups=true|false``
(the role's shared registry look-ups); by default it is not passed.

Prints the table and, unless --no-docs, writes it into docs/scale.md between its markers. Everything made
(containers, images, registry repositories, state and ControlPath directories, ControlMasters) is removed at the
end, also after a failure.
"""

import argparse
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker

import common
from common import LABEL_KEY, SLEEPER, BenchError, ansible_env, med, sandbox, say

common.NAME = 'bench_scale'
BEGIN = '<!-- BEGIN bench_scale: generated by benchmarks/bench_scale.py, edits here are overwritten -->'
END = '<!-- END bench_scale -->'
DOC = os.path.join(common.REPO, 'docs', 'scale.md')

HOSTS = 50
ENGINES = 10
PER_HOST = 10
IMAGES = 10
MOVED = 3
FORKS = (10, 25, 50)
RUNS = 2
REPOSITORY = 'bench-scale'
LABEL = {LABEL_KEY: 'scale'}
GROUP = 'docker_hosts'
STEP_TIMEOUT = 1800
SAMPLE_SECONDS = 0.25
SETUP_THREADS = 6

# Logs, per task, when it started and when its last host result came; written when the play ends.
CALLBACK = '''
import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_scale_times'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.loaded = time.time()
        self.play_start = None
        self.tasks = []

    def v2_playbook_on_play_start(self, play):
        if self.play_start is None:
            self.play_start = time.time()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.tasks.append({'name': task.get_name(), 'action': task.action, 'uuid': task._uuid,
                           'start': time.time(), 'end': None, 'results': 0})

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _result(self, result):
        uuid = result._task._uuid
        for entry in reversed(self.tasks):
            if entry['uuid'] == uuid:
                entry['end'] = time.time()
                entry['results'] += 1
                return

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _result

    def v2_playbook_on_stats(self, stats):
        with open(os.environ['BENCH_SCALE_TIMES'], 'w') as f:
            json.dump({'loaded': self.loaded, 'play_start': self.play_start, 'end': time.time(),
                       'tasks': self.tasks}, f)
'''


def image_ref(index):
    return '%s/%s/app-%d:1' % (sandbox.REGISTRY, REPOSITORY, index)


class ScaleFleet(object):
    """The simulated hosts over the sandbox fleet's engines: images, containers, inventory, and their removal."""

    def __init__(self, args, tmp):
        self.engines = ['host%d' % n for n in range(1, args.engines + 1)]
        info = sandbox.fleet_info()
        self.info = info
        self.docker_hosts = dict((e, info['hosts'][e]['docker_host']) for e in self.engines)
        self.apis = dict((e, docker.APIClient(base_url=self.docker_hosts[e], version='auto', timeout=120))
                         for e in self.engines)
        width = max(2, len(str(args.hosts)))
        self.sims = ['sim%0*d' % (width, k) for k in range(1, args.hosts + 1)]
        self.engine_of = dict((sim, self.engines[k % len(self.engines)]) for k, sim in enumerate(self.sims))
        self.refs = [image_ref(i) for i in range(args.images)]
        self.moved = self.refs[:args.moved]
        self.ref_of = {}  # container name -> tag
        self.names_of = {}  # sim -> its container names
        for sim in self.sims:
            self.names_of[sim] = []
            for j in range(args.per_host):
                name = '%s-app-%d' % (sim, j)
                self.names_of[sim].append(name)
                self.ref_of[name] = self.refs[j % len(self.refs)]
        self.on_engine = dict((e, [n for sim in self.sims if self.engine_of[sim] == e for n in self.names_of[sim]])
                              for e in self.engines)
        self.tmp = tmp
        self.old = {}  # tag -> digest the hosts run
        self.new = {}  # moved tag -> digest of the newer image
        self.pushed = []  # (ref, digest)
        self.state = None

    # ------------------------------------------------------------------ set-up

    def _publish(self, refs):
        with ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda ref: sandbox.publish(ref, cmd=SLEEPER, labels=LABEL), refs))
        for out in outs:
            if not out['digest']:
                raise BenchError('pushing %s gave no digest' % out['ref'])
            self.pushed.append((out['ref'], out['digest']))
        return dict((out['ref'], out['digest']) for out in outs)

    def set_up(self):
        t0 = time.monotonic()
        self.old = self._publish(self.refs)

        def pull(engine):
            api = self.apis[engine]
            for ref in self.refs:
                name, tag = ref.rsplit(':', 1)
                for _line in api.pull(name, tag=tag, stream=True, decode=True):
                    pass
        with ThreadPoolExecutor(len(self.engines)) as pool:
            list(pool.map(pull, self.engines))

        def start(item):
            engine, name = item
            api = self.apis[engine]
            api.start(api.create_container(self.ref_of[name], name=name, command=SLEEPER, labels=LABEL,
                                           host_config=api.create_host_config(network_mode='none'))['Id'])
        items = [(e, n) for e in self.engines for n in self.on_engine[e]]
        with ThreadPoolExecutor(SETUP_THREADS) as pool:
            list(pool.map(start, items))
        self.new = self._publish(self.moved)
        self.state = 'update'
        say('%d inventory hosts over %d engines, %d running containers, %d tags (%d moved) in %.1f s'
            % (len(self.sims), len(self.engines), len(items), len(self.refs), len(self.moved),
               time.monotonic() - t0))

    def set_state(self, state):
        """'quiet': every moved tag back on the digest the hosts run; 'update': on the newer image."""
        if state == self.state:
            return
        digests = self.old if state == 'quiet' else self.new
        for ref in self.moved:
            sandbox.registry_tag(ref, digests[ref])
            if sandbox.registry_digest(ref) != digests[ref]:
                raise BenchError('%s does not serve %s after moving it' % (ref, digests[ref]))
        self.state = state

    def expected_updates(self, state):
        """Per engine, the container names the check must find behind their registry."""
        if state == 'quiet':
            return dict((e, set()) for e in self.engines)
        moved = set(self.moved)
        return dict((e, set(n for n in self.on_engine[e] if self.ref_of[n] in moved)) for e in self.engines)

    def inventory(self):
        """A YAML (JSON) inventory of the simulated hosts: group docker_hosts, one ControlPath per host."""
        hosts = {}
        for sim in self.sims:
            engine = self.info['hosts'][self.engine_of[sim]]
            state_dir = os.path.join(self.tmp, 'state', sim)
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            hosts[sim] = {
                'ansible_host': engine['ssh_host'],
                'ansible_port': engine['ssh_port'],
                'ansible_user': engine['ssh_user'],
                'ansible_ssh_private_key_file': self.info['ssh_private_key'],
                'ansible_ssh_common_args': self.info['ssh_common_args'],
                'ansible_python_interpreter': self.info['python'],
                'ansible_control_path': '%(directory)s/' + sim,
                'patch_containers_docker_host': engine['docker_host'],
                'patch_containers_state_dir': state_dir,
                'patch_containers_include': [sim + '-*'],
            }
        path = os.path.join(self.tmp, 'inventory.json')
        with open(path, 'w') as f:
            json.dump({'all': {'children': {GROUP: {'hosts': hosts}}}}, f, indent=1)
        return path

    # ------------------------------------------------------------------ clean-up

    def clean_up(self):
        t0 = time.monotonic()
        doomed = []
        for engine, api in self.apis.items():
            ids = set(c['Id'] for c in api.containers(all=True, filters={'label': '%s=scale' % LABEL_KEY}))
            ids |= set(c['Id'] for c in api.containers(all=True)
                       if any(re.match(r'^/?sim[0-9]+-app-', n) for n in c.get('Names') or []))
            doomed += [(engine, cid) for cid in sorted(ids)]
        with ThreadPoolExecutor(SETUP_THREADS) as pool:
            list(pool.map(lambda item: self.apis[item[0]].remove_container(item[1], force=True), doomed))
        removed = len(doomed)
        for engine, api in self.apis.items():
            for image in api.images(filters={'label': '%s=scale' % LABEL_KEY}):
                try:
                    api.remove_image(image['Id'], force=True)
                except docker.errors.APIError as exc:
                    say('%s: removing image %s: %s' % (engine, image['Id'][:19], exc))
        local = sandbox.docker('images', '-q', '--filter', 'label=%s=scale' % LABEL_KEY, check=False).split()
        if local:
            sandbox.docker('rmi', '-f', *sorted(set(local)), check=False)
        for ref, digest in self.pushed:
            repo = ref[len(sandbox.REGISTRY) + 1:].rsplit(':', 1)[0]
            # pylint: disable-next=protected-access
            sandbox._registry_request('DELETE', '/v2/%s/manifests/%s' % (repo, digest))
        state = sandbox.info()['state_dir']
        shutil.rmtree(os.path.join(state, 'registry', 'docker', 'registry', 'v2', 'repositories', REPOSITORY),
                      ignore_errors=True)
        for api in self.apis.values():
            api.close()
        say('removed %d containers, their images and the %s/ repositories in %.1f s'
            % (removed, REPOSITORY, time.monotonic() - t0))


# ---------------------------------------------------------------------- the controller's processes

def _proc_table():
    """{pid: (ppid, cmdline)} of every process /proc shows."""
    table = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                stat = f.read()
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                cmdline = f.read().replace(b'\0', b' ').decode('utf-8', 'replace')
        except OSError:
            continue
        table[int(entry)] = (int(stat[stat.rindex(')') + 2:].split()[1]), cmdline)
    return table


def _masters(table, cp_dir):
    """The ssh ControlMasters with a socket under CP_DIR: a master sets its title to 'ssh: SOCKET [mux]'."""
    under = cp_dir.rstrip('/') + '/'
    return [pid for pid, (_ppid, cmd) in table.items()
            if cmd.startswith('ssh: ') and under in cmd and cmd.rstrip().endswith('[mux]')]


def controller_pids(root, cp_dir, table):
    """The ansible process ROOT and its descendants, plus the ssh ControlMasters of this run (they detach from
    the tree: their parent exits and they are adopted by PID 1; found by the run's ControlPath directory)."""
    children = {}
    for pid, (ppid, _cmd) in table.items():
        children.setdefault(ppid, []).append(pid)
    seeds = [root] + _masters(table, cp_dir)
    found, todo = set(), list(seeds)
    while todo:
        pid = todo.pop()
        if pid in found or pid not in table:
            continue
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def _memory(pid):
    """(PSS, RSS) in KiB of one process, from smaps_rollup; (0, 0) when it is gone."""
    pss = rss = 0
    try:
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    pss = int(line.split()[1])
                elif line.startswith('Rss:'):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


class Sampler(threading.Thread):
    """The peak PSS and RSS summed over the controller's processes, and the most processes at once."""

    def __init__(self, root, cp_dir):
        super().__init__(daemon=True)
        self.root, self.cp_dir = root, cp_dir
        self.stop = threading.Event()
        self.peak_pss = self.peak_rss = self.peak_procs = 0
        self.master_cpu = {}  # pid -> CPU seconds last seen: a master idle for ControlPersist's 60 s ends by itself

    def sample(self):
        table = _proc_table()
        pids = controller_pids(self.root, self.cp_dir, table)
        for pid in _masters(table, self.cp_dir):
            self.master_cpu[pid] = max(self.master_cpu.get(pid, 0.0), _cpu_of(pid))
        pss = rss = 0
        for pid in pids:
            p, r = _memory(pid)
            pss += p
            rss += r
        self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
        self.peak_procs = max(self.peak_procs, len(pids))

    def run(self):
        while not self.stop.wait(SAMPLE_SECONDS):
            self.sample()


def _cpu_of(pid):
    """User + system seconds of one running process (not its children), from /proc/PID/stat."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf('SC_CLK_TCK'))


def _alive(pid):
    """Whether PID runs (a zombie waiting for PID 1 to reap it does not)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def end_masters(cp_dir, seen=None):
    """End the ssh ControlMasters under CP_DIR (by pid, SIGTERM, then SIGKILL); (the CPU seconds of every master
    in SEEN ({pid: CPU seconds sampled}) and of those still running, how many there were)."""
    masters = _masters(_proc_table(), cp_dir)
    cpu_of = dict(seen or {})
    for pid in masters:
        cpu_of[pid] = max(cpu_of.get(pid, 0.0), _cpu_of(pid))
    for pid in masters:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in masters):
        time.sleep(0.05)
    for pid in masters:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return sum(cpu_of.values()), len(cpu_of)


# ---------------------------------------------------------------------- runs

def registry_counts(before):
    counts = dict(head=0, get=0, blob=0, other=0)
    for line in sandbox.registry_requests()[before:]:
        method, path = line.split(' ', 1)
        if not path.startswith('/v2/%s/' % REPOSITORY):
            continue
        if '/manifests/' in path:
            counts['head' if method == 'HEAD' else ('get' if method == 'GET' else 'other')] += 1
        elif '/blobs/' in path and method == 'GET':
            counts['blob'] += 1
        else:
            counts['other'] += 1
    return counts


class Runner(object):
    def __init__(self, fleet, args, tmp):
        self.fleet, self.args, self.tmp = fleet, args, tmp
        self.inventory = fleet.inventory()
        self.env = ansible_env(tmp)
        callbacks = os.path.join(tmp, 'callbacks')
        os.makedirs(callbacks, exist_ok=True)
        with open(os.path.join(callbacks, 'bench_scale_times.py'), 'w') as f:
            f.write(CALLBACK)
        self.env.update(ANSIBLE_CALLBACK_PLUGINS=callbacks, ANSIBLE_CALLBACKS_ENABLED='bench_scale_times')
        self.count = 0
        self.started = None

    def _process(self, cmd, env, cp_dir):
        """Run CMD; (wall, stdout, cpu seconds, sampler, masters ended)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.started = time.time()  # the callback's clock: the play's start-up is measured from here
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=os.path.join(self.tmp, 'cwd'), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        sampler = Sampler(proc.pid, cp_dir)
        sampler.start()
        try:
            out, err = proc.communicate(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise BenchError('%s took more than %d s' % (' '.join(cmd[:2]), STEP_TIMEOUT)) from None
        except BaseException:  # SIGTERM (SystemExit), Ctrl-C: no run left behind
            proc.kill()
            proc.wait()
            raise
        finally:
            sampler.stop.set()
            sampler.join()
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        master_cpu, masters = end_masters(cp_dir, sampler.master_cpu)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) + master_cpu
        out = out.decode('utf-8', 'replace')
        if proc.returncode != 0:
            raise BenchError('%s failed (exit %d):\n%s\n%s' % (' '.join(cmd[:2]), proc.returncode, out[-3000:],
                                                               err.decode('utf-8', 'replace')[-3000:]))
        return wall, out, cpu, sampler, masters

    def _fresh(self, kind, forks):
        self.count += 1
        run_dir = os.path.join(self.tmp, 'r%d' % self.count)
        cp_dir = os.path.join(self.tmp, 'cp', str(self.count))
        os.makedirs(run_dir)
        os.makedirs(cp_dir, mode=0o700)
        env = dict(self.env, ANSIBLE_SSH_CONTROL_PATH_DIR=cp_dir,
                   BENCH_SCALE_TIMES=os.path.join(run_dir, 'times.json'))
        say('%s, forks %d ...' % (kind, forks))
        return run_dir, cp_dir, env

    def playbook(self, state, forks):
        """One run of the role over every simulated host with the registry in STATE ('quiet' or 'update')."""
        self.fleet.set_state(state)
        run_dir, cp_dir, env = self._fresh(state, forks)
        report_dir = os.path.join(run_dir, 'report')
        extra = dict(patch_containers_hosts=GROUP, patch_containers_report_dir=report_dir)
        cmd = ['ansible-playbook', '-i', self.inventory, '--forks', str(forks)]
        if self.args.mode == 'check':
            cmd.append('--check')
        else:
            extra['patch_containers_update'] = False
        if self.args.share_lookups:
            extra['patch_containers_share_lookups'] = self.args.share_lookups == 'on'
        cmd += ['-e', json.dumps(extra), 'patchops.docker.patch_containers']
        time.sleep(0.2)  # the registry's log of the last step written
        before = len(sandbox.registry_requests())
        wall, _out, cpu, sampler, masters = self._process(cmd, env, cp_dir)
        time.sleep(0.2)
        counts = registry_counts(before)
        with open(os.path.join(run_dir, 'times.json')) as f:
            times = json.load(f)
        entries, sizes = self.verify(report_dir, state)
        tasks = times['tasks']

        def task_seconds(action):
            spans = [t['end'] - t['start'] for t in tasks if t['action'].endswith(action) and t['end']]
            return sum(spans) if spans else float('nan')
        result = dict(wall=wall, cpu=cpu, pss=sampler.peak_pss / 1024.0, rss=sampler.peak_rss / 1024.0,
                      procs=sampler.peak_procs, masters=masters, startup=times['play_start'] - self.started,
                      check=task_seconds('image_age_info'), report=task_seconds('fleet_report_write'),
                      play=times['end'] - times['play_start'], entries=entries, sizes=sizes, **counts)
        say('%s, forks %d: %.1f s (check %.1f s, report %.1f s), CPU %.1f s, PSS %.0f MiB, %d HEAD + %d GET '
            'manifests, %d masters' % (state, forks, wall, result['check'], result['report'], cpu, result['pss'],
                                       counts['head'], counts['get'], masters))
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(cp_dir, ignore_errors=True)
        return result

    def ping(self, forks):
        run_dir, cp_dir, env = self._fresh('ping', forks)
        cmd = ['ansible', '-i', self.inventory, GROUP, '--forks', str(forks), '-m', 'ansible.builtin.ping']
        wall, out, cpu, sampler, masters = self._process(cmd, env, cp_dir)
        pongs = len(re.findall(r'"ping": "pong"', out))
        if pongs != len(self.fleet.sims):
            raise BenchError('ping: %d of %d hosts answered:\n%s' % (pongs, len(self.fleet.sims), out[-2000:]))
        say('ping, forks %d: %.1f s, CPU %.1f s, PSS %.0f MiB' % (forks, wall, cpu, sampler.peak_pss / 1024.0))
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(cp_dir, ignore_errors=True)
        return dict(wall=wall, cpu=cpu, pss=sampler.peak_pss / 1024.0, rss=sampler.peak_rss / 1024.0,
                    procs=sampler.peak_procs, masters=masters)

    def verify(self, report_dir, state):
        """The report: every simulated host checked, exactly the expected containers behind their registry.
        Returns its container entries and the sizes of its files."""
        with open(os.path.join(report_dir, 'patch-report.json')) as f:
            written = json.load(f)
        hosts = dict((h['name'], h) for h in written['hosts'])
        if sorted(hosts) != sorted(self.fleet.sims):
            raise BenchError('the report has hosts %s, not %s' % (sorted(hosts)[:5], self.fleet.sims[:5]))
        expected = self.fleet.expected_updates(state)
        entries = 0
        for sim, host in hosts.items():
            if host['status'] != 'checked':
                raise BenchError('%s: status %s, not checked: %s' % (sim, host['status'], host.get('error')))
            mine = [c for c in host['containers'] if c['name'].startswith('sim')]
            entries += len(host['containers'])
            behind = set(c['name'] for c in mine if c['update_available'])
            unknown = [c['name'] for c in mine if c['update_available'] is None]
            want = expected[self.fleet.engine_of[sim]]
            if unknown or behind != want or len(mine) != len(self.fleet.on_engine[self.fleet.engine_of[sim]]):
                raise BenchError('%s (%s): %d containers checked, %d behind (expected %d), unknown: %s'
                                 % (sim, state, len(mine), len(behind), len(want), unknown[:3]))
        paths = dict((ext, os.path.join(report_dir, 'patch-report.' + ext)) for ext in ('json', 'md', 'html'))
        sizes = dict((ext, os.path.getsize(path)) for ext, path in paths.items() if os.path.exists(path))
        return entries, sizes


# ---------------------------------------------------------------------- the table

def _span(values, fmt):
    values = [v for v in values if v is not None and not math.isnan(v)]  # NaN: not measured
    if not values:
        return '-'
    if len(values) == 1:
        return fmt % values[0]
    return (fmt + ' (' + fmt + '-' + fmt + ')') % (med(values), min(values), max(values))


def _same(values):
    values = sorted(set(values))
    return '%d' % values[0] if len(values) == 1 else '/'.join('%d' % v for v in values)


def report(info, fleet, args, results, total):
    n = len(fleet.sims)
    per_check = len(fleet.on_engine[fleet.engines[0]])
    mode = ('`patch_containers_update: false` (report only)' if args.mode == 'report'
            else '`--check`')
    share = ('not passed' if not args.share_lookups
             else '`-e patch_containers_share_lookups=%s`' % ('true' if args.share_lookups == 'on' else 'false'))
    lines = [
        common.machine_line(info), '',
        'Set-up: %d inventory hosts (`sim01`..) over %d sandbox engines (%d hosts each), each host its own SSH '
        'connection (its own ControlPath, a fresh one per run), state dir and `patch_containers_include: '
        '[simNN-*]`; %d running containers per host on %d tags of the sandbox registry, %d containers in all. The '
        'check lists every container of its engine, so each host checks %d containers and the report holds %d. '
        '`ansible-playbook patchops.docker.patch_containers` with %s, writing the fleet report (json, md, html); '
        'share look-ups %s. Quiet: every tag on the digest the hosts run. Update: a newer image for %d of the %d '
        'tags. %d rounds after a warm-up, forks in alternating order; median (min-max).'
        % (n, len(fleet.engines), n // len(fleet.engines), args.per_host, len(fleet.refs),
           sum(len(v) for v in fleet.on_engine.values()), per_check, n * per_check, mode, share,
           len(fleet.moved), len(fleet.refs), args.runs), '',
        '| Run | Forks | Wall s | Start-up s | Check task s | Report task s | Controller CPU s | Peak PSS MiB '
        '| Peak RSS MiB | HEAD manifest | GET manifest | GET blob |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for forks in args.forks:
        for kind, label in (('quiet', 'Quiet night (nothing new)'), ('update', 'Update available (%d tags moved)'
                                                                     % len(fleet.moved)),
                            ('ping', 'Ansible alone: `ansible -m ping`')):
            rs = results[(kind, forks)]
            if not rs:
                continue
            if kind == 'ping':
                lines.append('| %s | %d | %s | - | - | - | %s | %s | %s | - | - | - |'
                             % (label, forks, _span([r['wall'] for r in rs], '%.1f'),
                                _span([r['cpu'] for r in rs], '%.1f'), _span([r['pss'] for r in rs], '%.0f'),
                                _span([r['rss'] for r in rs], '%.0f')))
                continue
            lines.append('| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |'
                         % (label, forks, _span([r['wall'] for r in rs], '%.1f'),
                            _span([r['startup'] for r in rs], '%.1f'), _span([r['check'] for r in rs], '%.1f'),
                            _span([r['report'] for r in rs], '%.2f'), _span([r['cpu'] for r in rs], '%.1f'),
                            _span([r['pss'] for r in rs], '%.0f'), _span([r['rss'] for r in rs], '%.0f'),
                            _same([r['head'] for r in rs]), _same([r['get'] for r in rs]),
                            _same([r['blob'] for r in rs])))
    lines.append('')
    quiet = [r for forks in args.forks for r in results[('quiet', forks)]]
    update = [r for forks in args.forks for r in results[('update', forks)]]
    if quiet and update:
        sizes = quiet[0]['sizes']
        tags = len(set(fleet.ref_of[name] for name in fleet.on_engine[fleet.engines[0]]))
        cpu = ', '.join('%.2f' % (med([r['cpu'] for r in results[('quiet', f)]]) / n) for f in args.forks)
        lines.append(
            'Per host and run: %.1f HEAD + %.1f GET manifest requests with nothing new, %.1f HEAD + %.1f GET with %d '
            'tags moved (%d distinct tags in each host\'s check). Controller CPU per host, quiet night: %s s at '
            'forks %s. SSH ControlMasters per run: %s (one per host). The report of %d hosts x %d containers: '
            '%.1f MiB JSON, %.1f MiB HTML, %.1f MiB Markdown.'
            % (med([r['head'] for r in quiet]) / n, med([r['get'] for r in quiet]) / n,
               med([r['head'] for r in update]) / n, med([r['get'] for r in update]) / n, len(fleet.moved), tags, cpu,
               '/'.join(str(f) for f in args.forks), _same([r['masters'] for r in quiet + update]), n, per_check,
               sizes.get('json', 0) / 1048576.0,
               sizes.get('html', 0) / 1048576.0, sizes.get('md', 0) / 1048576.0))
        lines.append('')
    lines.append('Whole benchmark (set-up, %d measured runs, clean-up): %.0f s.'
                 % (sum(len(v) for v in results.values()), total))
    return '\n'.join(lines)


def write_doc(text):
    common.write_doc(BEGIN, END, text, missing_ok=True, path=DOC, title='A fleet of 1,000 hosts')
    say('wrote %s' % os.path.relpath(DOC, common.REPO))


# ---------------------------------------------------------------------- main

def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


def _forks(text):
    try:
        values = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('forks: numbers separated by commas, not %r' % text) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError('forks: at least one number, each 1 or more')
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--hosts', type=int, default=HOSTS, help='inventory hosts (default %(default)s)')
    parser.add_argument('--engines', type=int, default=ENGINES,
                        help='sandbox fleet engines they share, 1..%d (default %%(default)s)' % sandbox.FLEET_MAX)
    parser.add_argument('--per-host', type=int, default=PER_HOST, help='containers per host (default %(default)s)')
    parser.add_argument('--images', type=int, default=IMAGES, help='tags all hosts run (default %(default)s)')
    parser.add_argument('--moved', type=int, default=MOVED,
                        help='tags with a newer image in the update runs (default %(default)s)')
    parser.add_argument('--forks', type=_forks, default=list(FORKS), help='comma separated (default 10,25,50)')
    parser.add_argument('--runs', type=int, default=int(os.environ.get('BENCH_SCALE_RUNS', RUNS)),
                        help='rounds (default %(default)s)')
    parser.add_argument('--mode', choices=('report', 'check'), default='report',
                        help='report: patch_containers_update=false; check: --check (default %(default)s)')
    parser.add_argument('--share-lookups', choices=('on', 'off'), default=None,
                        help='pass -e patch_containers_share_lookups=true|false (default: not passed)')
    parser.add_argument('--no-docs', action='store_true', help='do not write docs/scale.md')
    parser.add_argument('--profile', help='ignored (only the module benchmarks profile)')
    parser.add_argument('--per-image', type=int, help='ignored (make bench passes it to every benchmark)')
    args = parser.parse_args(argv)
    if not 1 <= args.engines <= sandbox.FLEET_MAX:
        parser.error('--engines is 1..%d' % sandbox.FLEET_MAX)
    if not (args.hosts >= 1 and args.per_host >= 1 and 1 <= args.moved <= args.images and args.runs >= 1):
        parser.error('--hosts, --per-host and --runs are 1 or more, --moved 1..--images')
    if args.per_host < args.images:
        say('note: %d containers per host run only %d of the %d tags' % (args.per_host, args.per_host, args.images))
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    docker_host = common.sandbox_info()['docker_host']
    running = sandbox.fleet_info()['hosts']
    started_fleet = not all(running.get('host%d' % n, {}).get('running', {}).get('engine')
                            and running.get('host%d' % n, {}).get('running', {}).get('sshd')
                            for n in range(1, args.engines + 1))
    sandbox.fleet_up(args.engines)
    api = docker.APIClient(base_url=docker_host, version='auto', timeout=60)
    machine_info = common.machine(api)
    api.close()
    tmp = tempfile.mkdtemp(prefix='bench-scale-')  # short: ControlPath sockets live under it
    fleet = ScaleFleet(args, tmp)
    results = dict(((kind, forks), []) for kind in ('quiet', 'update', 'ping') for forks in args.forks)
    try:
        fleet.clean_up()  # leftovers of an earlier, killed run
        fleet = ScaleFleet(args, tmp)
        fleet.set_up()
        runner = Runner(fleet, args, tmp)
        say('warm-up')
        runner.playbook('quiet', max(args.forks))
        for i in range(args.runs):
            say('round %d of %d' % (i + 1, args.runs))
            for forks in (args.forks if i % 2 == 0 else args.forks[::-1]):
                states = ('quiet', 'update') if i % 2 == 0 else ('update', 'quiet')
                results[(states[0], forks)].append(runner.playbook(states[0], forks))
                results[('ping', forks)].append(runner.ping(forks))
                results[(states[1], forks)].append(runner.playbook(states[1], forks))
    finally:
        try:
            end_masters(tmp)
            fleet.clean_up()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if started_fleet:
                sandbox.fleet_down()
    text = report(machine_info, fleet, args, results, time.monotonic() - started)
    print(text)
    if not args.no_docs:
        write_doc(text)
    return 0


if __name__ == '__main__':
    common.run(main)
