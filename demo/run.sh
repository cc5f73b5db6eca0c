#!/usr/bin/env bash
# make demo: bring up the sandbox with a few containers and report their image age.
#
# Stale: an image created 120 days ago. Update waiting: a newer image pushed for
# the tag it runs. Current: nothing new. Built locally: never pushed anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_ROOT=$PWD
VENV=${PATCHOPS_DEMO_VENV:-$REPO_ROOT/.venv/core217}
SANDBOX="python3 $REPO_ROOT/tests/sandbox/sandbox.py"

info=$($SANDBOX up)
docker_host=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["docker_host"])' <<<"$info")
registry=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["registry"])' <<<"$info")

echo "Setting up demo containers on $docker_host (registry $registry)..."
python3 - "$registry" <<'PY'
import sys
sys.path.insert(0, 'tests/sandbox')
import sandbox

registry = sys.argv[1]
sleeper = ['sh', '-c', "trap 'exit 0' TERM; sleep 86400 & wait"]
# A second `make demo` starts from the same state.
sandbox.docker('rm', '-f', 'legacy-api', 'web', 'worker', 'reports', check=False)
first_run = sandbox.registry_digest(registry + '/shop/web:1.25') is None
demo_refs = [registry + '/shop/legacy-api:2.3', registry + '/shop/web:1.25', registry + '/shop/worker:3',
             'shop/reports:dev']
if first_run:
    sandbox.docker('rmi', '-f', *demo_refs, check=False)
    sandbox.aged(registry + '/shop/legacy-api:2.3', 120, cmd=sleeper, push=True)
    sandbox.publish(registry + '/shop/web:1.25', cmd=sleeper)
    sandbox.publish(registry + '/shop/worker:3', cmd=sleeper)
    sandbox.publish('shop/reports:dev', cmd=sleeper, push=False)
sandbox.docker('run', '-d', '--name', 'legacy-api', '-p', '8080', registry + '/shop/legacy-api:2.3')
sandbox.docker('run', '-d', '--name', 'web', '-p', '127.0.0.1:8081:80', registry + '/shop/web:1.25')
sandbox.docker('run', '-d', '--name', 'worker', registry + '/shop/worker:3')
sandbox.docker('run', '-d', '--name', 'reports', 'shop/reports:dev')
if first_run:
    # The vendor pushes a new web image after the container started; this host still has 1.25.0.
    sandbox.publish(registry + '/shop/web:1.25', cmd=sleeper, labels={'release': '1.25.1'})
PY

mkdir -p "$REPO_ROOT/.build/collections/ansible_collections/patchops"
ln -sfn "$REPO_ROOT" "$REPO_ROOT/.build/collections/ansible_collections/patchops/docker"
export ANSIBLE_COLLECTIONS_PATH=$REPO_ROOT/.build/collections
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-0}
export DOCKER_HOST=$docker_host
"$VENV/bin/ansible-playbook" -i "sandbox-host," -c local \
  -e "ansible_python_interpreter=$VENV/bin/python" demo/image_age.yml

echo
echo "The sandbox keeps running for you to explore: DOCKER_HOST=$docker_host docker ps"
echo "Stop it with: python3 tests/sandbox/sandbox.py down"
