# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# A VM dies (its nspawn killed: no shutdown, no FIN from its processes' clean exit) under
# load: the LB stops sending to it within its health check's fall time, client errors are
# at most what the VM had in flight (the LB replays requests whose connection failed), and
# once it boots again it rejoins after `rise` checks with no error.

victim=vm2
load vm-death --mode hash --rate 12 --duration 45
sleep 5
inflight=$(lb_state "$victim" | cut -d' ' -f3)
served_before=$(lb_state "$victim" | cut -d' ' -f4)
vm_kill "$victim"
log "killed $victim (the LB showed ${inflight:-?} requests in flight there)"
detect=$(wait_lb "$victim" DOWN 30)
figure "$victim killed: the LB marked it DOWN after ${detect} s (fall 2 x 2 s checks; ${inflight:-?} requests were in flight there)"
sleep 3
vm_boot "$victim"
rejoin=$(wait_lb "$victim" UP 90)
figure "$victim rebooted: back UP in the LB ${rejoin} s after its nspawn started"
wait "$load_pid"
served_after=$(lb_state "$victim" | cut -d' ' -f4)
figure "load: $(load_report vm-death)"
errors=$(load_field vm-death 's["errors"]')
if [ "$detect" != timeout ]; then
    pass detected "the LB took $victim out ${detect} s after the kill"
else
    fail detected "the LB still showed $victim as not DOWN 30 s after the kill"
fi
if [ "$errors" -le "${inflight:-0}" ]; then
    pass errors-at-most-in-flight "$errors client errors (at most the ${inflight:-0} in flight at the kill)"
else
    fail errors-at-most-in-flight "$errors client errors, ${inflight:-0} were in flight: $(load_field vm-death 'json.dumps(s["by_kind"])')"
fi
if [ "$rejoin" != timeout ] && [ "${served_after:-0}" -gt "${served_before:-0}" ]; then
    pass rejoined "$victim rejoined and served again ($((served_after - served_before)) LB sessions since the kill)"
else
    fail rejoined "$victim: rejoin $rejoin, LB sessions before $served_before, after $served_after"
fi
# SSH to the rebooted VM: a new connection (the old shared one died with it).
vm_wait_up "$victim" || fail rejoined "$victim is not reachable over SSH after its reboot"
