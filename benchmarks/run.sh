#!/usr/bin/env bash
# make bench: benchmark patchops.docker on the test sandbox.
#
# Brings the sandbox up when it is not running (and down again at the end only
# then: others may be using it), links the collection where Ansible finds it,
# and runs under .venv/core217 benchmarks/bench_image_age.py (image_age_info
# against a plain SDK script) and then benchmarks/bench_update.py
# (container_update's downtime against SDK stop/start and stop/recreate), then
# benchmarks/bench_scaling.py (image_age_info at 50-400 containers against the
# floor, a playbook and a naive per-container loop; also writes
# docs/performance-check-scaling.svg), then benchmarks/bench_fleet.py (the
# patch playbook over 4 SSH hosts x 50 containers against one host; it starts
# the sandbox fleet when it is not running), then benchmarks/bench_registry.py (the
# registry requests a check of 40 multi-platform tags makes), then benchmarks/bench_snapshot.py
# (container_update's volume snapshot and restore of 1 GiB beside cp -a), then
# benchmarks/bench_report.py (the fleet report of 1,000 hosts x 50 containers: time, memory,
# size), then benchmarks/bench_packages_read.py (image_packages_info's read of one image beside
# docker export | tar -x); each prints its tables and writes them into docs/performance.md. Then
# benchmarks/bench_scale.py (the role's check and report over 50 simulated inventory hosts over real
# SSH at forks 10, 25 and 50; it starts the sandbox fleet when it is not running; writes docs/scale.md).
# BENCH_ONLY=image_age, update, scaling, fleet, registry, snapshot, report, packages_read or scale
# runs one of them. Arguments go to each benchmark (e.g.
# --runs 3, --no-docs; --images/--per-image mean different set-ups to each, so
# pass them with BENCH_ONLY). BENCH_PROFILE=1 also profiles one module run with
# pyinstrument, installed into a throwaway venv under /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=$repo/.venv/core217/bin/python
sandbox="python3 $repo/tests/sandbox"

[[ -x $python ]] || { echo "bench: $python is missing; run make venv" >&2; exit 1; }
only=${BENCH_ONLY:-}
case $only in
    ''|image_age|update|scaling|fleet|registry|snapshot|report|packages_read|scale) ;;
    *) echo "bench: BENCH_ONLY must be image_age, update, scaling, fleet, registry, snapshot, report, packages_read or scale, not $only" >&2; exit 2 ;;
esac

running=$($sandbox info | python3 -c 'import json,sys; r=json.load(sys.stdin)["running"]; print(int(r["engine"] and r["registry"]))')
started=0
if [[ $running != 1 ]]; then
    $sandbox up >/dev/null
    started=1
fi
status=0
finish() {
    if ((started)); then $sandbox down >/dev/null || { ((status != 0)) || status=$?; }; fi
    if [[ -n ${profile_venv:-} ]]; then rm -rf "$profile_venv"; fi
    exit $status
}
trap finish EXIT
trap 'status=130; exit' INT TERM

mkdir -p .build/collections/ansible_collections/patchops
link=.build/collections/ansible_collections/patchops/docker
if [[ ! -e $link/plugins ]]; then ln -sfn "$repo" "$link"; fi

args=("$@")
if [[ ${BENCH_PROFILE:-0} == 1 ]]; then
    # pyinstrument beside the core217 packages, without touching that venv
    profile_venv=$(mktemp -d /tmp/bench-pyinstrument.XXXXXX)
    "$(readlink -f "$python")" -m venv "$profile_venv"
    "$profile_venv/bin/pip" install -q pyinstrument
    "$python" -c 'import site; print("\n".join(site.getsitepackages()))' \
        >"$("$profile_venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')/core217.pth"
    args+=(--profile "$profile_venv/bin/python")
fi

for bench in image_age update scaling fleet registry snapshot report packages_read scale; do
    [[ -z $only || $only == "$bench" ]] || continue
    "$python" "benchmarks/bench_$bench.py" "${args[@]}" || { rc=$?; ((status != 0)) || status=$rc; }
done
