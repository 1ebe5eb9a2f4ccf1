# Sourced by tests/gce/run (bash), whose variables and helpers it uses.
# `check && pass || fail` is the scenarios' idiom (pass returns 0); vm_ip and friends are read by
# the helpers it sources.
# shellcheck shell=bash disable=SC2154,SC2015,SC2004,SC2034
# The external HTTPS load balancer site.yml created, served by HAProxy as the stand-in
# configured it from the forwarding rules, proxies, URL maps, backend service, health check,
# SSL policy and certificate. From the client namespace, at the forwarding rule's address.
lb_addr=$(api state "next(r['IPAddress'] for p, r in s['resources'].items() if p.endswith('/forwardingRules/hashd-https'))" 2>/dev/null)
if [ -z "$lb_addr" ]; then
    fail front-end "no forwarding rule hashd-https"
    return 0
fi
in_client() { ip netns exec "$client_ns" "$@"; }
lb_curl() {
    in_client curl -sS --max-time 15 --cacert "$keys/lb.pem" --resolve "hashd.example.com:443:$lb_addr" \
        --resolve "hashd.example.com:80:$lb_addr" "$@"
}
# The backends turn healthy in HAProxy's own checks (from the probe range) first.
for _ in $(seq 1 120); do
    code=$(lb_curl -o /dev/null -w '%{http_code}' https://hashd.example.com/healthz 2>/dev/null)
    [ "$code" = 200 ] && break
    sleep 1
done
if [ "$code" = 200 ]; then
    pass https "GET /healthz through the LB at $lb_addr, TLS with the uploaded certificate"
else
    fail https "got ${code:-no answer}; front end: $(api state "s['front_end'].get('pid')")"
fi
got=$(lb_curl -o /dev/null -w '%{http_code} %{redirect_url}' http://hashd.example.com/v1/hash)
[ "$got" = "301 https://hashd.example.com/v1/hash" ] && pass http-redirect "port 80 answers 301 to https" ||
    fail http-redirect "got: $got"
if in_client openssl s_client -connect "$lb_addr:443" -servername hashd.example.com -tls1_2 </dev/null >/dev/null 2>&1; then
    pass tls-policy "TLS 1.2 accepted (the SSL policy's minTlsVersion TLS_1_2); ssl-min-ver TLSv1.2 in the front end"
else
    fail tls-policy "TLS 1.2 refused"
fi
grep -q 'ssl-min-ver TLSv1.2' <<<"$(api state "s['front_end']['config']")" || fail tls-policy-config "no ssl-min-ver TLSv1.2"

# hash, verify, messages through the LB.
code=$(lb_curl -o "$work/hash.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{"password": "gce-box-password"}' https://hashd.example.com/v1/hash)
hash=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("bcrypt", ""))' "$work/hash.json" 2>/dev/null)
body=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"password": "gce-box-password", "hash": sys.argv[1]}))' "$hash")
vcode=$(lb_curl -o "$work/verify.json" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$body" \
    https://hashd.example.com/v1/verify)
if [ "$code" = 200 ] && [ -n "$hash" ] && [ "$vcode" = 200 ] && grep -q '"match": *true' "$work/verify.json"; then
    pass hash-verify "POST /v1/hash 200, POST /v1/verify 200 match through the LB"
else
    fail hash-verify "hash $code, verify $vcode: $(cat "$work/verify.json" 2>/dev/null)"
fi
mcode=$(lb_curl -o "$work/message.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{"message": "gce-box"}' https://hashd.example.com/messages)
[ "$mcode" = 201 ] && pass messages "POST /messages 201 through the LB" || fail messages "got $mcode: $(cat "$work/message.json")"

# Client identity: the VM that served a request logged the client's address, not the LB's.
lb_curl -o /dev/null -H 'X-Request-Id: gce-box-identity' https://hashd.example.com/healthz
seen=""
for name in "${!vm_ip[@]}"; do
    [ "$name" = probe-1 ] && continue
    seen+=$(on_vm "$name" "journalctl -u nginx --no-pager -q 2>/dev/null | tail -200; tail -200 /var/log/nginx/*.log 2>/dev/null" | grep -o '10\.219\.201\.[0-9]*' | sort -u | tr '\n' ' ')
done
[ -n "$seen" ] && pass client-identity "the VMs saw the client's own address(es): $seen" ||
    fail client-identity "no client address in the VMs' nginx logs"

# Backend keepalive: Google keeps backend connections up to 600 s idle; the VMs must outlast it.
for name in "${!vm_ip[@]}"; do
    [ "$name" = probe-1 ] && continue
    ka=$(on_vm "$name" "nginx -T 2>/dev/null | awk '\$1 == \"keepalive_timeout\" {gsub(/[s;]/, \"\", \$2); print \$2; exit}'")
    if [ -n "$ka" ] && [ "$ka" -gt 600 ]; then
        pass "backend-keepalive-$name" "nginx keepalive_timeout ${ka}s > the LB's 600 s"
    else
        fail "backend-keepalive-$name" "nginx keepalive_timeout ${ka:-75}s: a connection the LB reuses after that is a 502"
    fi
done

# A short bounded steady load (open loop, tests/cluster/load.py), from six client addresses.
in_client /usr/bin/python3 "$repo/tests/cluster/load.py" --host "$lb_addr" --cafile "$keys/lb.pem" \
    --sources "$load_sources" --tag "gce-$run_id" --mode mixed --rate 8 --duration 20 \
    --acked "$work/acked.txt" >"$work/steady.json" 2>"$work/steady.err"
summary() {
    /usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["sent"], s["ok"], s["errors"], "%.1f" % s["rate"], json.dumps(s["by_kind"], separators=(",", ":")))' "$1" 2>/dev/null
}
read -r sent ok errors rate kinds <<<"$(summary "$work/steady.json")"
figure "front end: steady mixed load (POST /v1/hash + POST /messages), open loop 8/s for 20 s from 6 client addresses: sent $sent, ok $ok, errors $errors $kinds, rate $rate/s"
if [ -n "$sent" ] && [ "$sent" -gt 100 ] && [ "$errors" = 0 ] && [ "$ok" = "$sent" ]; then
    pass steady-load "0 errors, $ok of $sent answered 200/201"
else
    fail steady-load "sent ${sent:-?}, ok ${ok:-?}, errors ${errors:-?} $kinds $(tail -3 "$work/steady.err")"
fi
# Every acknowledged message reads back whole through the LB (GET /messages/<digest>).
in_client /usr/bin/python3 "$repo/tests/cluster/load.py" --host "$lb_addr" --cafile "$keys/lb.pem" \
    --sources "$load_sources" --mode verify --acked "$work/acked.txt" >"$work/readback.json" 2>"$work/readback.err"
read -r rsent rok rerrors _ rkinds <<<"$(summary "$work/readback.json")"
acked=$(wc -l <"$work/acked.txt" 2>/dev/null || echo 0)
figure "front end: read-back of the $acked acknowledged messages: sent $rsent, ok $rok, errors $rerrors $rkinds"
if [ "$acked" -gt 0 ] && [ "$rok" = "$acked" ] && [ "$rerrors" = 0 ]; then
    pass messages-read-back "all $acked acknowledged messages read back through the LB"
else
    fail messages-read-back "acked $acked, read back ok ${rok:-?}, errors ${rerrors:-?} $rkinds"
fi

# The shared store: the acknowledged messages are in it (not on a VM the group may delete), and
# a MultiVAC datum queued through whichever VM answers is processed by a hashd-worker from the
# shared queue (the worker has the store's settings as the app does) and answered by any VM.
in_store=$(store_cli --scan --pattern 'hashd:msg:*' | wc -l)
[ "$acked" -gt 0 ] && [ "$in_store" -ge "$acked" ] &&
    pass messages-in-shared-store "$in_store messages in the shared Redis (>= the $acked acknowledged)" ||
    fail messages-in-shared-store "$in_store messages in the shared Redis, $acked acknowledged"
datum="gce-box datum $run_id"
dcode=$(lb_curl -o "$work/datum.out" -w '%{http_code}' --data-urlencode "data=$datum" https://hashd.example.com/multivac/data)
answer=""
t0=$(date +%s.%N)
for _ in $(seq 1 60); do
    answer=$(lb_curl https://hashd.example.com/multivac 2>/dev/null)
    [ "$answer" = "$datum" ] && break
    sleep 1
done
depth=$(store_cli LLEN hashd:multivac:queue)
if [ "$dcode" = 200 ] && [ "$answer" = "$datum" ] && [ "$depth" = 0 ]; then
    pass multivac-shared-queue "POST /multivac/data 200, processed from the shared queue, GET /multivac answers it"
    figure "front end: MultiVAC datum queued to answered through the LB in $(elapsed "$t0") s"
else
    fail multivac-shared-queue "POST $dcode, GET /multivac '${answer:0:80}', shared queue depth $depth"
fi

# No healthy backend: 502 (no fail-open), and back once a VM is healthy again.
for name in "${!vm_ip[@]}"; do [ "$name" = probe-1 ] || on_vm "$name" 'systemctl stop nginx'; done
for _ in $(seq 1 60); do
    code=$(lb_curl -o /dev/null -w '%{http_code}' https://hashd.example.com/healthz 2>/dev/null)
    [ "$code" = 502 ] && break
    sleep 1
done
[ "$code" = 502 ] && pass no-fail-open "502 once no backend passes the health check" ||
    fail no-fail-open "got $code with nginx stopped on every VM"
for name in "${!vm_ip[@]}"; do [ "$name" = probe-1 ] || on_vm "$name" 'systemctl start nginx'; done
for _ in $(seq 1 60); do
    code=$(lb_curl -o /dev/null -w '%{http_code}' https://hashd.example.com/healthz 2>/dev/null)
    [ "$code" = 200 ] && break
    sleep 1
done
[ "$code" = 200 ] && pass recovers "200 again once the VMs' nginx is back" || fail recovers "got $code"
