# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# The shared-store checks again, with the group switched to PostgreSQL by a playbook run.
# shellcheck source=../store.sh
source "$here/store.sh"
# Read by tests/cluster/run's write_inventory.
# shellcheck disable=SC2034
store_kind=postgresql
write_inventory "${members[@]}"
if lab_playbook "$work/to-postgresql.log" "$inventory" site.yml --limit store,hashd; then
    pass switch-to-postgresql "ansible-playbook site.yml --limit store,hashd points every VM at PostgreSQL"
else
    lab_playbook_failed "$work/to-postgresql.log" "${members[@]}"
    fail switch-to-postgresql "the playbook run failed"
fi
# The store was provisioned already: its second run must change nothing.
if grep -E '^store +:' "$work/to-postgresql.log" | grep -q 'changed=0 '; then
    pass store-role-idempotent "the store role's second run reports changed=0"
else
    fail store-role-idempotent "$(grep -E '^store +:' "$work/to-postgresql.log" | tr -s ' ')"
fi
for name in "${members[@]}"; do wait_lb "$name" UP 30 >/dev/null; done
shared_store_checks postgresql
