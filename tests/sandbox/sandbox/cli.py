"""The command line, ``python3 tests/sandbox VERB ...``: every verb of the sandbox and the fleet, JSON out.

tests/sandbox/__main__.py runs main(), and so does ``python3 -m sandbox`` with tests/sandbox on sys.path
(sandbox/__main__.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from .cleanup import reset
from .docker_cli import _client_env, _docker_bin
from .errors import SandboxError
from .fleet import fleet_down, fleet_info, fleet_inventory, fleet_reset, fleet_ssh_argv, fleet_up, _host
from .images import aged, publish
from .lifecycle import down, info, prepare, up
from .package_mirror import mirror_down, mirror_info, mirror_up
from .paths import _paths
from .podman_engine import (_PodmanPaths, _podman_argv, _podman_env, _require_private_namespaces, podman_down,
                            podman_info, podman_up)
from .registry import registry_start, registry_stop
from .registry_api import registry_requests
from .settings import DEFAULT_ENGINE, ENGINE_ENV, ENGINES

DESCRIPTION = 'The patchops.docker test sandbox: a private Docker engine and a registry on loopback.'


def _kv(items):
    out = {}
    for item in items or []:
        k, sep, v = item.partition('=')
        if not sep:
            raise SystemExit('expected KEY=VALUE, got %r' % item)
        out[k] = v
    return out


def _json_or_str(value):
    if value is None:
        return None
    if value.strip().startswith(('[', '{')):
        return json.loads(value)
    return value


def _image_opts(args):
    return dict(labels=_kv(args.label) or None, env=_kv(args.env) or None, cmd=_json_or_str(args.cmd),
                entrypoint=_json_or_str(args.entrypoint), healthcheck=_json_or_str(args.healthcheck),
                expose=args.expose or None, volumes=args.volume or None, user=args.user, workdir=args.workdir,
                stopsignal=args.stopsignal, base=args.base, files=_kv(args.file) or None)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['docker']:  # pass everything after "docker" through untouched
        p = _paths()
        os.makedirs(p.client_config, exist_ok=True)
        return subprocess.call([_docker_bin(), '-H', 'unix://' + p.sock] + argv[1:], env=_client_env(p))
    if argv[:1] == ['podman']:  # the podman CLI on the Podman engine's storage, everything after "podman" untouched
        t = _PodmanPaths(_paths())
        if not os.path.exists(t.conf):
            sys.stderr.write('sandbox: error: the Podman engine is not set up; run "podman-up" first\n')
            return 1
        try:
            _require_private_namespaces()
        except SandboxError as exc:
            sys.stderr.write('sandbox: error: %s\n' % exc)
            return 1
        return subprocess.call(_podman_argv(t, *argv[1:]), env=_podman_env(t))
    host_first = len(argv) > 1 and argv[1] not in ('-h', '--help')  # else argparse prints the verb's help
    if argv[:1] in (['fleet-docker'], ['fleet_docker']) and host_first:  # fleet-docker HOST ARGS...
        p = _paths()
        os.makedirs(p.client_config, exist_ok=True)
        sock = _host(p, argv[1]).sock
        return subprocess.call([_docker_bin(), '-H', 'unix://' + sock] + argv[2:],
                               env=_client_env(p, {'DOCKER_HOST': 'unix://' + sock}))
    if argv[:1] in (['fleet-ssh'], ['fleet_ssh']) and host_first:  # fleet-ssh HOST [COMMAND...]
        ssh = fleet_ssh_argv(argv[1])
        if argv[2:]:
            ssh.append(' '.join(argv[2:]))  # like ssh itself: the remote shell reads the words
        else:
            ssh.insert(1, '-t')
        return subprocess.call(ssh)
    parser = argparse.ArgumentParser(prog='python3 tests/sandbox', description=DESCRIPTION)
    sub = parser.add_subparsers(dest='command', required=True)
    u = sub.add_parser('up', help='start engine + registry + base image (idempotent); prints info')
    u.add_argument('--engine', choices=ENGINES,
                   help='engine kind (default $%s, else the one that runs, else %s)' % (ENGINE_ENV, DEFAULT_ENGINE))
    d = sub.add_parser('down', help='stop everything up started')
    d.add_argument('--purge', action='store_true', help='also delete the state and runtime dirs')
    sub.add_parser('info', help='print where things are and what runs')
    sub.add_parser('prepare', help='install the Debian packages and fetch Engine 26, start nothing')
    sub.add_parser('env', help='print "export DOCKER_HOST=..." for a shell')
    r = sub.add_parser('reset', help='remove containers, non-base images, networks, volumes')
    r.add_argument('--registry', action='store_true', help='also delete all non-base registry repositories')
    for name in ('registry_stop', 'registry_start'):
        sub.add_parser(name, aliases=[name.replace('_', '-')], help=name.replace('_', ' ') + ' only')
    rq = sub.add_parser('registry_requests', aliases=['registry-requests'], help='requests the registry served')
    rq.add_argument('name', nargs='?')
    sub.add_parser('mirror_up', aliases=['mirror-up'],
                   help='serve the fetched Debian package indexes on 127.0.0.1:5118 (idempotent); prints mirror-info')
    sub.add_parser('mirror_down', aliases=['mirror-down'], help='stop the package mirror (the fetched cache stays)')
    sub.add_parser('mirror_info', aliases=['mirror-info'], help='print the package mirror\'s URLs, files and state')
    dk = sub.add_parser('docker', help='run the docker CLI against the sandbox engine')
    dk.add_argument('args', nargs=argparse.REMAINDER)
    sub.add_parser('podman_up', aliases=['podman-up'],
                   help='start the Podman engine (only in a network namespace of its own; idempotent); prints info')
    pd = sub.add_parser('podman_down', aliases=['podman-down'], help='stop the Podman engine and its containers')
    pd.add_argument('--purge', action='store_true', help='also delete its state (images, volumes, networks)')
    sub.add_parser('podman_info', aliases=['podman-info'], help='print where the Podman engine listens and what runs')
    pm = sub.add_parser('podman', help='ARGS...: the podman CLI on the Podman engine (its root, runroot, config)')
    pm.add_argument('args', nargs=argparse.REMAINDER)
    fu = sub.add_parser('fleet_up', aliases=['fleet-up'], help='start fleet hosts host1..hostN (idempotent)')
    fu.add_argument('n', nargs='?', type=int, default=3)
    sub.add_parser('fleet_info', aliases=['fleet-info'], help='print the fleet hosts, ports, sockets, keys')
    fi = sub.add_parser('fleet_inventory', aliases=['fleet-inventory'], help='write an Ansible YAML inventory')
    fi.add_argument('path')
    fi.add_argument('--host', action='append', help='only this host (repeatable); default all')
    fd = sub.add_parser('fleet_down', aliases=['fleet-down'], help='stop the fleet (main engine untouched)')
    fd.add_argument('--purge', action='store_true', help='also delete the fleet state (data, keys, journals)')
    fr = sub.add_parser('fleet_reset', aliases=['fleet-reset'], help='reset fleet engines and journals')
    fr.add_argument('hosts', nargs='*')
    for name, text in (('fleet-docker', 'HOST ARGS...: the docker CLI against a fleet host'),
                       ('fleet-ssh', 'HOST [COMMAND...]: ssh into a fleet host as root')):
        fx = sub.add_parser(name, help=text)
        fx.add_argument('args', nargs=argparse.REMAINDER)
    for name in ('publish', 'aged'):
        sp = sub.add_parser(name, help='build (and push) a new image' if name == 'publish'
                            else 'build an image created DAYS ago')
        sp.add_argument('ref')
        if name == 'aged':
            sp.add_argument('days', type=float)
            sp.add_argument('--push', action='store_true')
        else:
            sp.add_argument('--no-push', action='store_true')
        sp.add_argument('--label', action='append', metavar='K=V')
        sp.add_argument('--env', action='append', metavar='K=V')
        sp.add_argument('--cmd', help='JSON list (exec form) or a string (shell form)')
        sp.add_argument('--entrypoint', help='JSON list (exec form) or a string (shell form)')
        sp.add_argument('--healthcheck', help='JSON object {"test": ..., "interval": ...} or NONE')
        sp.add_argument('--expose', action='append')
        sp.add_argument('--volume', action='append')
        sp.add_argument('--user')
        sp.add_argument('--workdir')
        sp.add_argument('--stopsignal')
        sp.add_argument('--base')
        sp.add_argument('--file', action='append', metavar='PATH=TEXT')
    args = parser.parse_args(argv)
    cmd = args.command.replace('-', '_')

    def show(value):
        print(json.dumps(value, indent=2, sort_keys=True))

    try:
        if cmd == 'up':
            show(up(engine=args.engine))
        elif cmd == 'down':
            show(down(purge=args.purge))
        elif cmd == 'info':
            show(info())
        elif cmd == 'prepare':
            show(prepare())
        elif cmd == 'env':
            i = info()
            print('export DOCKER_HOST=%s' % i['docker_host'])
            print('export DOCKER_BUILDKIT=0')
        elif cmd == 'reset':
            show(reset(registry=args.registry))
        elif cmd == 'registry_stop':
            registry_stop()
        elif cmd == 'registry_start':
            registry_start()
        elif cmd == 'registry_requests':
            show(registry_requests(args.name))
        elif cmd == 'publish':
            show(publish(args.ref, push=not args.no_push, **_image_opts(args)))
        elif cmd == 'aged':
            show(aged(args.ref, args.days, push=args.push, **_image_opts(args)))
        elif cmd == 'mirror_up':
            show(mirror_up())
        elif cmd == 'mirror_down':
            show(mirror_down())
        elif cmd == 'mirror_info':
            show(mirror_info())
        elif cmd == 'podman_up':
            show(podman_up())
        elif cmd == 'podman_down':
            show(podman_down(purge=args.purge))
        elif cmd == 'podman_info':
            show(podman_info())
        elif cmd == 'fleet_up':
            show(fleet_up(args.n))
        elif cmd == 'fleet_info':
            show(fleet_info())
        elif cmd == 'fleet_inventory':
            print(fleet_inventory(args.path, hosts=args.host))
        elif cmd == 'fleet_down':
            show(fleet_down(purge=args.purge))
        elif cmd == 'fleet_reset':
            show(fleet_reset(args.hosts or None))
        elif cmd in ('fleet_docker', 'fleet_ssh'):
            parser.error('%s needs a HOST' % args.command)
    except (SandboxError, ValueError) as exc:
        sys.stderr.write('sandbox: error: %s\n' % exc)
        return 1
    return 0
