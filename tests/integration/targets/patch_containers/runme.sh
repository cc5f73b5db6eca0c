#!/usr/bin/env bash
# The patch_containers playbook as operators run it (by FQCN, with --check first), on the sandbox engine:
# check mode changes nothing and says what it would do, a patch run updates, a second run changes nothing.
# A script target: a role target of this name would run the collection's role of the same name.
set -eux
export ANSIBLE_ROLES_PATH=..
args=(-i "${INVENTORY_PATH}" -e @../../integration_config.yml -e @vars.yml -e "output_dir=${OUTPUT_DIR}")
trap 'ansible-playbook cleanup.yml "${args[@]}"' EXIT

ansible-playbook setup.yml "${args[@]}" "$@"
for phase in check patch again; do
    check=()
    [[ $phase == check ]] && check=(--check)
    out=$(ansible-playbook patchops.docker.patch_containers "${args[@]}" "${check[@]}" \
        -e "patch_containers_report_dir=${OUTPUT_DIR}/${phase}" "$@" | tee /dev/stderr)
    # the second run reports no change at all, as Ansible counts it
    [[ $phase != again ]] || grep -Eq '^testhost +: .* changed=0 ' <<<"$out"
    ansible-playbook verify.yml "${args[@]}" -e "phase=${phase}" "$@"
done
