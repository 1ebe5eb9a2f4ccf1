# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Monitoring: the Prometheus on the LB VM scrapes every hashd VM from the target list the
# playbook wrote, and the pool-wide request count and rate it computes match the load sent.

promql() {
    on_vm lb "curl -s --max-time 5 http://127.0.0.1:9090/api/v1/query --data-urlencode 'query=$1'" |
        /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(round(float(r[0]["value"][1]), 1) if r else "none")'
}
rate=12
t0=$(date +%s)
load monitoring --mode hash --rate $rate --duration 40
sleep 30
up=$(promql 'sum(up{job="hashd"})')
targets=$(promql 'count(up{job="hashd"})')
wait "$load_pid"
# Two more scrapes, so that the last requests are in Prometheus too; the window covers the
# whole load (a host this busy sends in bursts: compare counts, not one instant's rate).
sleep 11
window=$(($(date +%s) - t0))
sent=$(load_field monitoring 's["sent"]')
counted=$(promql "sum(increase(hashd_requests_total{route=\"/v1/hash\"}[${window}s]))")
figure "load: $(load_report monitoring)"
figure "Prometheus on the LB: $up of $targets hashd targets up; pool-wide POST /v1/hash over the last $window s: $counted ($(awk -v c="$counted" -v w="$window" 'BEGIN {printf "%.1f", c / w}')/s), sent $sent ($(awk -v c="$sent" -v w="$window" 'BEGIN {printf "%.1f", c / w}')/s)"
if [ "$up" = "${#members[@]}.0" ] && [ "$targets" = "${#members[@]}.0" ]; then
    pass scrapes-every-vm "the playbook-written target list has ${#members[@]} VMs, all up"
else
    fail scrapes-every-vm "up $up of $targets targets (want ${#members[@]})"
fi
# increase() extrapolates to the window's edges: allow 15 %.
if awk -v m="$counted" -v s="$sent" 'BEGIN {exit !(m != "none" && m >= 0.85 * s && m <= 1.15 * s)}'; then
    pass pool-rate-matches "Prometheus counts $counted hashes in the window, $sent were sent (within 15 %)"
else
    fail pool-rate-matches "Prometheus counts $counted hashes in the window, $sent were sent"
fi
