# Sandbox score of the installed unit, from the VM's own systemd.

score=$(on_vm vm1 "systemd-analyze security --no-pager hashd@1.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for hashd@1.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN {exit !(s <= 2.0)}'; then
    pass exposure "systemd-analyze security hashd@1.service: exposure $score (<= 2.0)"
else
    fail exposure "systemd-analyze security hashd@1.service: exposure '${score:-none}' (want <= 2.0)"
fi
