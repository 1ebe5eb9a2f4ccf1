# Secrets and core dumps.
# Sourced by tests/vm/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
#
# Finding 5: nginx's user (www-data) must not be able to read what the workers' settings
# hold (the store's password is part of HASHD_STORE), nor the API token digests: it is in the
# socket group (hashd-sock) only, never in hashd, and the settings files are root-only
# (systemd reads EnvironmentFile= as root before it drops to User=hashd). The service still
# gets its settings (the suite's cost 4 comes from /etc/default/hashd) and reaches its store.
#
# Finding 9: a worker that crashes with a password in memory writes no core: LimitCORE=0 in
# both units (hard limit 0, which the process cannot raise again). The check makes the worst
# case on purpose: a runtime drop-in gives hashd@2 a writable working directory, where the
# kernel's core pattern of this machine ("core", a file in the working directory) would put
# the core; a control process of user hashd crashing there with `ulimit -c unlimited` proves
# that a core would indeed be written, so "no core" is the limit's doing. Before it crashes,
# the worker's soft limit is raised as far as the hard limit lets it (what the process itself
# could do): with systemd's default (soft 0, hard unlimited) that is unlimited, and the core
# holds the password.

name=vm1

# --- Finding 5 ---------------------------------------------------------------------------------

groups=$(on_vm $name "id -nG www-data" 2>/dev/null)
# One group a line, whole-line matches: "hashd" is a word of "hashd-sock" to grep -w.
if [ -n "$groups" ] && ! tr ' ' '\n' <<<"$groups" | grep -qx hashd &&
    tr ' ' '\n' <<<"$groups" | grep -qx hashd-sock; then
    pass www-data-groups "www-data is in: $groups (hashd-sock for the sockets, not hashd)"
else
    fail www-data-groups "www-data is in: '${groups:-?}' (want hashd-sock and not hashd)"
fi

# The running nginx workers' own groups, as the kernel sees them (a group change reaches them
# only through a restart of nginx).
# shellcheck disable=SC2016  # expanded on the VM, not here
nginx_groups=$(on_vm $name 'for p in $(pgrep -u www-data nginx); do getent group $(awk "/^Groups:/ {for (i = 2; i <= NF; i++) print \$i}" /proc/$p/status) | cut -d: -f1; done | sort -u | tr "\n" " "' 2>/dev/null)
if [ -n "$nginx_groups" ] && ! tr ' ' '\n' <<<"$nginx_groups" | grep -qx hashd; then
    pass nginx-worker-groups "nginx workers' supplementary groups: $nginx_groups"
else
    fail nginx-worker-groups "nginx workers' supplementary groups: '${nginx_groups:-none found}' (must not include hashd)"
fi

for file in /etc/default/hashd /etc/hashd/tokens; do
    exists=$(on_vm $name "test -f $file && echo yes" 2>/dev/null)
    if [ "$exists" = yes ] && ! on_vm $name "runuser -u www-data -- cat $file" >/dev/null 2>&1; then
        pass "unreadable-${file//\//_}" "runuser -u www-data -- cat $file fails ($(on_vm $name "stat -c '%a %U:%G' $file"))"
    else
        fail "unreadable-${file//\//_}" "$file: exists='$exists', www-data can read it: $(on_vm $name "stat -c '%a %U:%G' $file" 2>&1)"
    fi
done

# Nor through the workers' environment (another user's /proc/PID/environ).
main_pid=$(on_vm $name systemctl show -p MainPID --value hashd@1.service)
if [ "${main_pid:-0}" != 0 ] && ! on_vm $name "runuser -u www-data -- cat /proc/$main_pid/environ" >/dev/null 2>&1; then
    pass environ-unreadable "www-data cannot read /proc/$main_pid/environ of hashd@1"
else
    fail environ-unreadable "www-data can read hashd@1's environment (pid ${main_pid:-?})"
fi

# The settings still reach the app (the suite's HASHD_COST_DEFAULT=4 lives in the root-only
# file) and the store is reachable: a hash at cost 4, a message stored and read back.
status=$(post_hash $name "$work/secrets-hash.json" "secrets-$run_id")
cost=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("cost"))' "$work/secrets-hash.json" 2>/dev/null)
message="secrets-$run_id-$RANDOM"
created=$(curl -sS --max-time 10 --cacert "$work/$name.crt" -H 'Content-Type: application/json' \
    --data-binary "{\"message\":\"$message\"}" -o "$work/secrets-msg.json" -w '%{http_code}' "https://${vm_ip[$name]}/messages")
digest=$(printf '%s' "$message" | sha256sum | cut -d' ' -f1)
read_back=$(curl -sS --max-time 10 --cacert "$work/$name.crt" "https://${vm_ip[$name]}/messages/$digest")
if [ "$status" = 200 ] && [ "$cost" = 4 ] && [ "$created" = 201 ] && grep -qF "$message" <<<"$read_back"; then
    pass settings-still-applied "hash at cost $cost (from the root-only settings), message stored (201) and read back"
else
    fail settings-still-applied "hash $status cost '$cost', POST /messages $created, read back '$read_back'"
fi

# --- Finding 9 ---------------------------------------------------------------------------------

for unit in hashd@1.service hashd-worker.service; do
    pid=$(on_vm $name systemctl show -p MainPID --value $unit)
    limit=$(on_vm $name "awk '/^Max core file size/ {print \$5, \$6}' /proc/$pid/limits" 2>/dev/null)
    if [ "$limit" = "0 0" ]; then
        pass "core-limit-$unit" "$unit (pid $pid): core file size soft 0, hard 0"
    else
        fail "core-limit-$unit" "$unit (pid ${pid:-?}): core file size soft/hard '${limit:-?}' (want 0 0)"
    fi
done

pattern=$(on_vm $name cat /proc/sys/kernel/core_pattern)
figure "kernel.core_pattern is '$pattern'"
# Control: a process of user hashd that may dump, crashing in /var/lib/hashd.
on_vm $name "rm -f /var/lib/hashd/core*; runuser -u hashd -- sh -c 'cd /var/lib/hashd && ulimit -c unlimited && exec sleep 30' & sleep 0.5; pkill -SEGV -u hashd -x sleep; sleep 1; ls /var/lib/hashd" >"$work/core-control.txt" 2>&1
if grep -q '^core' "$work/core-control.txt"; then
    pass core-control "a dumpable process of user hashd crashing in /var/lib/hashd leaves $(grep '^core' "$work/core-control.txt" | head -1): a core would be written there"
    on_vm $name "rm -f /var/lib/hashd/core*"
    on_vm $name "mkdir -p /run/systemd/system/hashd@2.service.d && printf '[Service]\nWorkingDirectory=/var/lib/hashd\n' >/run/systemd/system/hashd@2.service.d/90-crash-test.conf && systemctl daemon-reload && systemctl restart hashd@2.service"
    victim=$(on_vm $name systemctl show -p MainPID --value hashd@2.service)
    # What the process itself (or a library in it) may do: raise its soft core limit up to
    # the hard one. Only a hard limit of 0 stops that (the soft limit alone did not).
    raised=$(on_vm $name "prlimit --pid $victim --core=unlimited: 2>&1; awk '/^Max core file size/ {print \$5, \$6}' /proc/$victim/limits")
    figure "hashd@2 (pid $victim) after raising its soft core limit: $raised"
    secret="core-canary-$run_id-$RANDOM$RANDOM"
    # Two slow hashes in flight (least_conn puts one on each process), the same password.
    posts=()
    for _ in 1 2; do
        post_hash $name "$work/core-post.json" "$secret" 14 >/dev/null 2>&1 &
        posts+=($!)
    done
    sleep 0.4
    on_vm $name "kill -SEGV $victim"
    # Only these two: a bare `wait` would also wait for the VMs' systemd-nspawn.
    wait "${posts[@]}"
    sleep 2
    found=$(on_vm $name "ls /var/lib/hashd | grep '^core'; grep -rlsF '$secret' /var/lib/hashd /var/lib/systemd/coredump /var/crash /tmp /var/tmp 2>/dev/null" 2>/dev/null)
    restarted=$(on_vm $name systemctl show -p MainPID --value hashd@2.service)
    if [ -z "$found" ] && [ "${restarted:-0}" != 0 ] && [ "$restarted" != "$victim" ]; then
        pass crash-leaves-no-core "SIGSEGV of hashd@2 (pid $victim) mid-hash: no core, the password is in no file; restarted as pid $restarted"
    else
        fail crash-leaves-no-core "after SIGSEGV of hashd@2 (pid $victim): found '$found' (restarted: ${restarted:-?})"
    fi
    on_vm $name "rm -f /var/lib/hashd/core*; rm -rf /run/systemd/system/hashd@2.service.d; systemctl daemon-reload; systemctl restart hashd@2.service"
else
    fail core-control "the control crash left no core (core_pattern '$pattern'): this machine cannot show a core, the check proves nothing: $(head -c 300 "$work/core-control.txt")"
fi
