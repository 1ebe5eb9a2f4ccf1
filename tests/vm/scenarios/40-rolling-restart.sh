# Sourced by tests/vm/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Rolling restart under load: one instance at a time, each back (Type=notify) before the
# next, while four clients send concurrently (requests really are in flight when a process
# stops). Four loops 0.5 s apart stay under the per-client limit (10/s, burst 20).
# Cost 10 (~50 ms a hash): while one of the two processes restarts, all four clients queue on
# the other's single hashing thread, and at the default cost 12 on this busy 2-core host four
# hashes (~0.3-0.5 s each) do not fit in the 1 s queue deadline, so admission would rightly
# refuse some (503 overloaded). This check is about restarts losing no request, not about
# capacity, which bench/ and the admission tests measure.

name=vm1
loops=()
for c in 1 2 3 4; do
    client_loop $name 25 "$work/restart-$c.txt" 0.5 10 &
    loops+=($!)
done
sleep 1
restart_ok=1
for i in 1 2; do
    on_vm $name "systemctl restart hashd@$i.service" || restart_ok=0
    sleep 1
done
wait "${loops[@]}"
errors=$(cat "$work"/restart-[1-4].txt)
if [ "$restart_ok" -eq 1 ] && [ -z "$errors" ]; then
    pass no-client-error "systemctl restart hashd@1, hashd@2 one at a time under 4 concurrent clients (100 requests): no client error"
else
    # nginx's side of the failure (which upstream, which error), for whoever reads the run.
    on_vm $name "journalctl -t nginx_error --since -2min --no-pager -o cat | grep -v limiting | tail -8" 2>&1
    fail no-client-error "restart ok=$restart_ok, client errors: $(head -5 <<<"$errors")"
fi
