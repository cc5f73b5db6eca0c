#!/usr/bin/env bash
# make demo: a fleet of three Docker hosts reached over SSH, some of their containers on old
# images; report them (image_age_report), patch them (patch_containers), report again.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_ROOT=$PWD
VENV=${PATCHOPS_DEMO_VENV:-$REPO_ROOT/.venv/core217}
REPORT_DIR=$REPO_ROOT/.build/demo-report
INVENTORY=$REPO_ROOT/.build/demo-inventory.yml
export PATCHOPS_TARGET_PYTHON=$VENV/bin/python

echo "Starting the sandbox: a registry and three Docker hosts reached over SSH on 127.0.0.1..."
python3 - "$INVENTORY" <<'PY'
import sys
sys.path.insert(0, 'tests/sandbox')
import sandbox

inventory = sys.argv[1]
sandbox.up()
fleet = sandbox.fleet_up(3)
registry = sandbox.info()['registry']
sleeper = ['sh', '-c', "trap 'exit 0' TERM; sleep 86400 & wait"]
names = ['legacy-api', 'web', 'worker']
for host in ('host1', 'host2', 'host3'):
    sandbox.fleet_docker(host, 'rm', '-f', *names, *[n + '.patchops-backup' for n in names], check=False)
# What the hosts pull today: a 120-day-old API image, and current web and worker images.
sandbox.aged(registry + '/shop/legacy-api:2.3', 120, cmd=sleeper, push=True)
sandbox.publish(registry + '/shop/web:1.25', cmd=sleeper)
sandbox.publish(registry + '/shop/worker:3', cmd=sleeper)
for host in ('host1', 'host2', 'host3'):
    for name, ref, extra in (('legacy-api', 'shop/legacy-api:2.3', ['-p', '8080']),
                             ('web', 'shop/web:1.25', ['-p', '127.0.0.1::80']),
                             ('worker', 'shop/worker:3', [])):
        sandbox.fleet_docker(host, 'pull', '-q', registry + '/' + ref)
        sandbox.fleet_docker(host, 'run', '-d', '--name', name, *extra, registry + '/' + ref)
# The vendors push fixes for the API and web images; the worker stays current.
sandbox.publish(registry + '/shop/legacy-api:2.3', cmd=sleeper, labels={'release': '2.3.1'})
sandbox.publish(registry + '/shop/web:1.25', cmd=sleeper, labels={'release': '1.25.1'})
sandbox.fleet_inventory(inventory, hosts=['host1', 'host2', 'host3'])
PY

mkdir -p "$REPO_ROOT/.build/collections/ansible_collections/patchops"
ln -sfn ../../../.. "$REPO_ROOT/.build/collections/ansible_collections/patchops/docker"
export ANSIBLE_COLLECTIONS_PATH=$REPO_ROOT/.build/collections ANSIBLE_HOST_KEY_CHECKING=False
export ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_DISPLAY_SKIPPED_HOSTS=0 ANSIBLE_DISPLAY_OK_HOSTS=0
rm -rf "$REPORT_DIR"

# run_step TITLE PLAYBOOK REPORT_DIR [ansible-playbook options]: run it, show its recap, print its report.
run_step() {
  local title=$1 playbook=$2 dir=$3
  shift 3
  echo
  echo "== $title: ansible-playbook $playbook =="
  "$VENV/bin/ansible-playbook" -i "$INVENTORY" "$playbook" -e patch_containers_report_dir="$dir" "$@" \
    | sed -n '/PLAY RECAP/,$p' | grep -v '^$'
  "$VENV/bin/python" demo/table.py "$dir/patch-report.json"
}

run_step Before patchops.docker.image_age_report "$REPORT_DIR/before"
run_step Patch patchops.docker.patch_containers "$REPORT_DIR" -e patch_containers_stable_seconds=2
run_step After patchops.docker.image_age_report "$REPORT_DIR/after"

echo
echo "The fleet report: $REPORT_DIR/patch-report.html (also .md and .json)"
echo "The sandbox keeps running; stop it with: python3 tests/sandbox down"
