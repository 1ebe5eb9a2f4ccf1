# Sourced by tests/gce/run (bash), whose variables and helpers it uses.
# shellcheck shell=bash disable=SC2154,SC2015,SC2034
# The autoscaler (tests/gcp/fleet.py): Google's CPU-utilization policy computed from the VMs'
# real CPU use (each VM's cgroup v1 cpuacct). At idle it recommends the minimum. With the
# utilization target lowered (regionAutoscalers.update, as an operator would) under a light
# steady load, the VMs' measured utilization is above it: the group grows (new VMs boot from the
# image, turn healthy, serve, with no client error), bounded by maxNumReplicas; with the target
# back, the group shrinks to the minimum once the stabilization period (the box's 30 s;
# Google's 10 minutes) has passed, within scaleInControl. What this does not prove: that
# goodput rises with the VM count (the VMs share this machine's 2 cores), and Google's own
# smoothing and timing.
scaler="projects/$project/regions/$region/autoscalers/hashd"
mig="projects/$project/regions/$region/instanceGroupManagers/hashd"
group_size() { api call GET "$mig" | /usr/bin/python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["targetSize"], m["status"]["isStable"])'; }
idle=$(api call GET "$scaler" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("recommendedSize"))')
cpu=$(api state "' '.join(str(v.get('cpu_s')) for p, v in s['fleet'].items() if '/instances/hashd-' in p)")
read -r size0 _ <<<"$(group_size)"
if [ "$idle" = "$size0" ] && [ -n "$cpu" ] && ! grep -qw None <<<"$cpu"; then
    pass autoscaler-idle "at idle the autoscaler recommends $idle (the minimum); the VMs' CPU seconds: $cpu"
else
    fail autoscaler-idle "recommendedSize $idle, size $size0, CPU seconds '$cpu', events $(api state "s['fleet_autoscaler']" 2>&1 | tail -3)"
fi

# update_target T MAX: the autoscaler's policy with utilizationTarget T and maxNumReplicas MAX.
update_target() {
    api call GET "$scaler" | /usr/bin/python3 -c 'import json,sys
a = json.load(sys.stdin)
a["autoscalingPolicy"]["cpuUtilization"]["utilizationTarget"] = float(sys.argv[1])
a["autoscalingPolicy"]["maxNumReplicas"] = int(sys.argv[2])
print(json.dumps({k: a[k] for k in ("name", "target", "description", "autoscalingPolicy") if k in a}))' "$1" "$2" >"$work/autoscaler.json" &&
        api call PUT "projects/$project/regions/$region/autoscalers?autoscaler=hashd" "$(cat "$work/autoscaler.json")" >/dev/null
}
policy=$(api call GET "$scaler" | /usr/bin/python3 -c 'import json,sys; p=json.load(sys.stdin)["autoscalingPolicy"]; print(p["cpuUtilization"]["utilizationTarget"], p["maxNumReplicas"])')
read -r target0 max0 <<<"$policy"
max_now=$((size0 + 2))
update_target 0.01 "$max_now" || fail autoscaler-update "regionAutoscalers.update refused: $(tail -3 "$work/autoscaler.json")"
in_client /usr/bin/python3 "$repo/tests/cluster/load.py" --host "$lb_addr" --cafile "$keys/lb.pem" \
    --sources "$load_sources" --mode hash --rate 6 --duration 150 --stop-file "$work/autoscale.stop" \
    --tag "autoscale-$run_id" >"$work/autoscale-load.json" 2>"$work/autoscale-load.err" &
load_pid=$!
t0=$(date +%s.%N)
grown="" stable=False
for _ in $(seq 1 70); do
    read -r size stable <<<"$(group_size)"
    [ "$size" -gt "$size0" ] && [ -z "$grown" ] && grown=$(elapsed "$t0")
    [ "$size" = "$max_now" ] && [ "$stable" = True ] && break
    sleep 2
done
touch "$work/autoscale.stop"
wait "$load_pid"
read -r sent ok errors _ kinds <<<"$(summary "$work/autoscale-load.json")"
events=$(api state "s['fleet_autoscaler']")
figure "autoscaler: target 0.01 under 6 hashes/s: $size0 -> $size VMs (first growth after ${grown:-never} s, stable at $max_now after $(elapsed "$t0") s); load sent $sent, ok $ok, errors $errors $kinds"
if [ "$size" = "$max_now" ] && [ "$stable" = True ]; then
    pass autoscaler-out "the group grew to maxNumReplicas $max_now from measured utilization; the new VMs are healthy (isStable)"
else
    fail autoscaler-out "size $size, isStable $stable; events: $events"
fi
[ "${errors:-1}" = 0 ] && [ "${sent:-0}" -gt 0 ] &&
    pass autoscaler-out-no-errors "0 client errors while the group grew ($ok of $sent answered)" ||
    fail autoscaler-out-no-errors "sent ${sent:-?}, errors ${errors:-?} $kinds"

update_target "$target0" "$max_now"
t0=$(date +%s.%N)
for _ in $(seq 1 60); do
    read -r size stable <<<"$(group_size)"
    [ "$size" = "$size0" ] && [ "$stable" = True ] && break
    sleep 2
done
shrink_s=$(elapsed "$t0")
figure "autoscaler: target back to $target0 at idle: $max_now -> $size VMs after $shrink_s s (stabilization 30 s)"
steps=$(api state "[(e.get('from'), e.get('to')) for e in s['fleet_autoscaler'] if 'to' in e]")
if [ "$size" = "$size0" ] && awk -v s="$shrink_s" 'BEGIN {exit !(s >= 25)}'; then
    pass autoscaler-in "back to $size0 VMs, not before the stabilization period less one 5-s autoscaler pass ($shrink_s s); steps $steps"
else
    fail autoscaler-in "size $size after $shrink_s s; steps $steps"
fi
update_target "$target0" "$max0"
check_api_clean autoscaler
