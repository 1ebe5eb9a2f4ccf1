# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Shared store on Redis: cross-VM reads, and the store VM restarted under load.
# shellcheck source=../store.sh
source "$here/store.sh"
shared_store_checks redis
