# Sourced by tests/vm/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Sandbox scores of hashd's unit and of nginx with the role's drop-in, from the VM's own
# systemd; the settings file's mode (it may hold the store's password).

score=$(on_vm vm1 "systemd-analyze security --no-pager hashd@1.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for hashd@1.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN {exit !(s <= 2.0)}'; then
    pass exposure "systemd-analyze security hashd@1.service: exposure $score (<= 2.0)"
else
    fail exposure "systemd-analyze security hashd@1.service: exposure '${score:-none}' (want <= 2.0)"
fi

score=$(on_vm vm1 "systemd-analyze security --no-pager nginx.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for nginx.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN {exit !(s <= 3.5)}'; then
    pass nginx-exposure "systemd-analyze security nginx.service: exposure $score (<= 3.5; 9.6 stock)"
else
    fail nginx-exposure "systemd-analyze security nginx.service: exposure '${score:-none}' (want <= 3.5)"
fi

for vm in vm1 vm2; do
    perms=$(on_vm "$vm" "stat -c '%a %U:%G' /etc/default/hashd" 2>/dev/null)
    if [ "$perms" = "600 root:root" ]; then
        pass settings-mode "$vm: /etc/default/hashd is 600 root:root"
    else
        fail settings-mode "$vm: /etc/default/hashd is '${perms:-missing}' (want 600 root:root)"
    fi
done
