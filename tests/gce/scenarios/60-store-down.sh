# Sourced by tests/gce/run (bash), whose variables and helpers it uses.
# shellcheck shell=bash disable=SC2154,SC2015,SC2034
# The shared store down (frozen: Redis stopped with SIGSTOP, so connections hang as with a
# store whose host is gone, the harder case for timeouts): hashing keeps working through the
# load balancer (its health check is /readyz/serving, which leaves the store out, and
# autohealing's is /healthz), POST /messages answers 503 with Retry-After, nothing is
# recreated; once the store is back, messages are stored again.
recreated_before=$(api state "sum(len(v['healed']) for v in s['fleet'].values())")
kill -STOP "$store_pid"
sleep 1
t0=$(date +%s.%N)
hash_ok=0 hash_other=0
for i in $(seq 1 10); do
    code=$(lb_curl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "{\"password\": \"store-down-$i\"}" https://hashd.example.com/v1/hash 2>/dev/null)
    [ "$code" = 200 ] && hash_ok=$((hash_ok + 1)) || hash_other=$((hash_other + 1))
done
mcode=$(lb_curl -o "$work/store-down.json" -D "$work/store-down.headers" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary '{"message": "while the store is down"}' \
    https://hashd.example.com/messages 2>/dev/null)
# Past the LB's and autohealing's thresholds (5 s x 2, 10 s x 3): still every VM in service.
sleep 35
late=$(lb_curl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{"password": "store-down-late"}' https://hashd.example.com/v1/hash 2>/dev/null)
healthy=$(api state "sum(1 for v in s['fleet'].values() if v.get('health') == 'HEALTHY')")
recreated=$(api state "sum(len(v['healed']) for v in s['fleet'].values())")
kill -CONT "$store_pid"
figure "store down: $hash_ok of 10 hashes 200 through the LB (other: $hash_other), POST /messages $mcode, after 35 s: hash $late, $healthy VMs healthy"
[ "$hash_ok" = 10 ] && [ "$late" = 200 ] &&
    pass store-down-hashing "hashing keeps working through the LB with the shared store down (10 of 10, and 200 after 35 s)" ||
    fail store-down-hashing "$hash_ok of 10 hashes 200, late $late"
if [ "$mcode" = 503 ] && grep -qi '^retry-after:' "$work/store-down.headers" && grep -q '"err_msg"' "$work/store-down.json"; then
    pass store-down-messages "POST /messages 503 with Retry-After and a JSON error"
else
    fail store-down-messages "got $mcode: $(cat "$work/store-down.json" 2>/dev/null) $(grep -i retry-after "$work/store-down.headers" 2>/dev/null)"
fi
[ "$healthy" -ge 2 ] && [ "$recreated" = "$recreated_before" ] &&
    pass store-down-no-heal "no VM taken out or recreated for the store ($healthy healthy)" ||
    fail store-down-no-heal "$healthy VMs healthy, $recreated recreations"
t0=$(date +%s.%N)
mcode=""
for _ in $(seq 1 30); do
    mcode=$(lb_curl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary '{"message": "after the store is back"}' https://hashd.example.com/messages 2>/dev/null)
    [ "$mcode" = 201 ] && break
    sleep 1
done
figure "store down: POST /messages 201 again $(elapsed "$t0") s after the store came back"
[ "$mcode" = 201 ] && pass store-back "messages stored again once the store is back" || fail store-back "got $mcode"
