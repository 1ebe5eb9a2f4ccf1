# Shared store on Redis: cross-VM reads, and the store VM restarted under load.
source "$here/store.sh"
shared_store_checks redis
