# Sourced by tests/vm/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# MultiVAC on a deployed VM: the hashd role runs hashd-worker.service (active, enabled,
# sandboxed), a datum posted over HTTPS becomes the answer of GET /multivac, the journal
# names the datum by id only, and a kill -9 of the worker is restarted by systemd. Each VM
# has its own LMDB queue (the role's default store).

for name in "${vms[@]}"; do
    state=$(on_vm "$name" "systemctl is-active hashd-worker.service; systemctl is-enabled hashd-worker.service" 2>/dev/null | tr '\n' ' ')
    if [ "$state" = "active enabled " ]; then
        pass "$name-worker-running" "hashd-worker.service is active and enabled"
    else
        fail "$name-worker-running" "hashd-worker.service: '$state'"
    fi

    datum="vm-suite-datum-$run_id-$name-$RANDOM$RANDOM"
    status=$(curl -sS --max-time 10 --cacert "$work/$name.crt" --data-urlencode "data=$datum" \
        -o "$work/$name-multivac-post.json" -w '%{http_code}' "https://${vm_ip[$name]}/multivac/data")
    answer=""
    for _ in $(seq 1 40); do
        answer=$(curl -sS --max-time 10 --cacert "$work/$name.crt" "https://${vm_ip[$name]}/multivac")
        [ "$answer" = "$datum" ] && break
        sleep 0.5
    done
    if [ "$status" = 200 ] && [ "$answer" = "$datum" ]; then
        pass "$name-multivac-first-datum" "POST /multivac/data answered 200 and GET /multivac became the datum"
    else
        fail "$name-multivac-first-datum" "POST answered $status ($(head -c 200 "$work/$name-multivac-post.json")), GET /multivac: '$answer'"
    fi
    on_vm "$name" "journalctl -u hashd-worker -o json --no-pager" >"$work/$name-worker.json" 2>/dev/null
    if grep -q '"DATUM_ID"' "$work/$name-worker.json" && ! grep -qF "$datum" "$work/$name-worker.json" &&
        ! on_vm "$name" "journalctl --no-pager -o cat" 2>/dev/null | grep -qF "$datum"; then
        pass "$name-worker-journal" "journalctl -u hashd-worker has DATUM_ID entries; the datum is in no journal entry"
    else
        fail "$name-worker-journal" "no DATUM_ID entry, or the datum was logged"
    fi
done

old_pid=$(on_vm vm1 systemctl show -p MainPID --value hashd-worker.service)
on_vm vm1 "kill -9 $old_pid"
new_pid=$old_pid
for _ in $(seq 1 40); do
    sleep 0.5
    state=$(on_vm vm1 systemctl show -p ActiveState --value hashd-worker.service)
    new_pid=$(on_vm vm1 systemctl show -p MainPID --value hashd-worker.service)
    [ "$state" = active ] && [ "$new_pid" != "$old_pid" ] && [ "$new_pid" != 0 ] && break
done
if [ "$state" = active ] && [ "$new_pid" != "$old_pid" ]; then
    pass worker-restarted "kill -9 of hashd-worker (pid $old_pid): systemd restarted it as pid $new_pid"
else
    fail worker-restarted "after kill -9 of pid $old_pid: state $state, pid $new_pid"
fi

score=$(on_vm vm1 "systemd-analyze security --no-pager hashd-worker.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for hashd-worker.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN {exit !(s <= 2.0)}'; then
    pass worker-exposure "systemd-analyze security hashd-worker.service: exposure $score (<= 2.0)"
else
    fail worker-exposure "systemd-analyze security hashd-worker.service: exposure '${score:-none}' (want <= 2.0)"
fi
