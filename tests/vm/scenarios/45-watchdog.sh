# Sourced by tests/vm/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# The systemd watchdog restarts a wedged worker. SIGSTOP freezes every thread of hashd@2,
# the one that sends WATCHDOG=1 included; after WatchdogSec (20 s) systemd sends
# WatchdogSignal (SIGABRT) followed by SIGCONT, so even a stopped process dies, and
# Restart=always starts a fresh one. (kill -9 is the crash case, 30-worker-kill; this is
# the hang.)

name=vm1
unit=hashd@2.service
old_pid=$(on_vm $name systemctl show -p MainPID --value $unit)
watchdog=$(on_vm $name systemctl show -p WatchdogUSec --value $unit)
restarts_before=$(on_vm $name systemctl show -p NRestarts --value $unit)
stopped_at=$(date +%s)
on_vm $name "kill -STOP $old_pid"
new_pid=$old_pid
for _ in $(seq 1 180); do # 90 s at most: the 20 s watchdog plus a restart on a busy machine
    state=$(on_vm $name systemctl show -p ActiveState --value $unit)
    new_pid=$(on_vm $name systemctl show -p MainPID --value $unit)
    if [ "$state" = active ] && [ "$new_pid" != 0 ] && [ "$new_pid" != "$old_pid" ]; then break; fi
    sleep 0.5
done
restarted_after=$(($(date +%s) - stopped_at))
restarts_after=$(on_vm $name systemctl show -p NRestarts --value $unit)
journal=no
on_vm $name "journalctl -u $unit --no-pager -o cat" 2>/dev/null | grep -q 'Watchdog timeout' && journal=yes
figure "SIGSTOP of $unit to a new ready process: ${restarted_after}s (WatchdogSec $watchdog)"
if [ "$new_pid" != "$old_pid" ] && [ "$new_pid" != 0 ] && [ "$journal" = yes ] &&
    [ "${restarts_after:-0}" -gt "${restarts_before:-0}" ]; then
    pass watchdog-restarts-wedged-worker "$unit frozen with SIGSTOP (pid $old_pid) was killed by the watchdog ($watchdog) and restarted as pid $new_pid after ${restarted_after}s"
else
    on_vm $name "journalctl -u $unit --no-pager -n 15" 2>&1 | tail -15
    on_vm $name "kill -CONT $old_pid" 2>/dev/null
    fail watchdog-restarts-wedged-worker "new pid $new_pid (was $old_pid), journal 'Watchdog timeout': $journal, NRestarts $restarts_before -> $restarts_after"
fi
status=$(post_hash $name "$work/after-watchdog.json" "after-watchdog-$run_id")
if [ "$status" = 200 ]; then
    pass served-after-watchdog-restart "POST /v1/hash answers 200 after the restart"
else
    fail served-after-watchdog-restart "POST /v1/hash answered $status after the restart"
fi
