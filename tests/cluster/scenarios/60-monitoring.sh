# Monitoring: the Prometheus on the LB VM scrapes every hashd VM from the target list the
# playbook wrote, and the pool-wide request rate it computes matches the load sent.

promql() {
    on_vm lb "curl -s --max-time 5 http://127.0.0.1:9090/api/v1/query --data-urlencode 'query=$1'" |
        /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'
}
rate=15
load monitoring --mode hash --rate $rate --duration 40
sleep 35
up=$(promql 'sum(up{job="hashd"})')
targets=$(promql 'count(up{job="hashd"})')
measured=$(promql 'sum(rate(hashd_requests_total{route="/v1/hash"}[20s]))')
wait "$load_pid"
figure "load: $(load_report monitoring)"
figure "Prometheus on the LB: $up of $targets hashd targets up; pool-wide POST /v1/hash rate $measured/s (sent $rate/s)"
if [ "$up" = "${#members[@]}" ] && [ "$targets" = "${#members[@]}" ]; then
    pass scrapes-every-vm "the playbook-written target list has ${#members[@]} VMs, all up"
else
    fail scrapes-every-vm "up $up of $targets targets (want ${#members[@]})"
fi
if awk -v m="$measured" -v r="$rate" 'BEGIN {exit !(m != "none" && m >= 0.8 * r && m <= 1.2 * r)}'; then
    pass pool-rate-matches "Prometheus's pool-wide rate $measured/s is within 20 % of the $rate/s sent"
else
    fail pool-rate-matches "Prometheus's pool-wide rate $measured/s, sent $rate/s"
fi
