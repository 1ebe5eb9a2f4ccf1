# Sourced by tests/vm/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# kill -9 of one worker under load: systemd restarts it, nginx retries elsewhere.

name=vm1
old_pid=$(on_vm $name systemctl show -p MainPID --value hashd@1.service)
client_loop $name 24 "$work/kill-a.txt" &
ca=$!
client_loop $name 24 "$work/kill-b.txt" &
cb=$!
sleep 2
# The VM's CLOCK_MONOTONIC at the kill, the clock of systemd's *TimestampMonotonic.
kill_us=$(on_vm $name "python3 -c 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)'; kill -9 $old_pid" | head -1)
new_pid=0
for _ in $(seq 1 50); do
    state=$(on_vm $name systemctl show -p ActiveState --value hashd@1.service)
    new_pid=$(on_vm $name systemctl show -p MainPID --value hashd@1.service)
    if [ "$state" = active ] && [ "$new_pid" != 0 ] && [ "$new_pid" != "$old_pid" ]; then break; fi
    sleep 0.2
done
wait $ca $cb
# systemd's own record of when the unit was active (READY=1) again, minus the kill time.
active_us=$(on_vm $name systemctl show -p ActiveEnterTimestampMonotonic --value hashd@1.service)
restart_us=$((${active_us:-0} - ${kill_us:-0}))
if [ "$new_pid" != "$old_pid" ] && [ "$new_pid" != 0 ] && [ "$restart_us" -gt 0 ] &&
    [ "$restart_us" -le 2000000 ]; then
    pass restarted-within-2s "kill -9 of hashd@1 (pid $old_pid): systemd restarted it as pid $new_pid, ready $((restart_us / 1000)) ms after the kill"
else
    fail restarted-within-2s "kill -9 of hashd@1: not ready again within 2 s (new pid $new_pid, ${restart_us} us after the kill)"
fi
if [ ! -s "$work/kill-a.txt" ] && [ ! -s "$work/kill-b.txt" ]; then
    pass no-client-error "kill -9 of a worker: 48 concurrent client requests, no error"
else
    fail no-client-error "client errors: $(cat "$work/kill-a.txt" "$work/kill-b.txt" | head -5)"
fi
