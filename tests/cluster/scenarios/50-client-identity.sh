# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Client identity behind the LB: the VMs' logs and rate limits see the client's own
# address (the LB's X-Forwarded-For, believed from the LB alone), a forged X-Forwarded-For
# is not believed, /metrics is not reachable through the LB, and the LB's Cloud Armor-like
# ban stops a flooding client while others are served.

a=${clients[9]} b=${clients[8]} c=${clients[7]}
lbcurl() { ip netns exec "$client_ns" curl -sS --max-time 10 --cacert "$work/lb.crt" "$@"; }

# 1. A forged X-Forwarded-For: the access log names the real client.
lbcurl --interface "$a" -H 'X-Forwarded-For: 203.0.113.66' -H 'Content-Type: application/json' \
    --data-binary '{"password":"identity"}' -D "$work/identity.headers" -o /dev/null "https://$lb_public/v1/hash"
rid=$(awk -F': ' 'tolower($1)=="x-request-id" {gsub("\r",""); print $2}' "$work/identity.headers")
line=""
for _ in $(seq 1 20); do
    for name in "${members[@]}"; do
        line=$(on_vm "$name" "journalctl -t nginx_access -o cat --no-pager | grep -F '$rid'" 2>/dev/null | tail -1)
        [ -n "$line" ] && break 2
    done
    sleep 0.5
done
if [ -n "$rid" ] && grep -qF "\"client\":\"$a\"" <<<"$line" && ! grep -qF 203.0.113.66 <<<"$line"; then
    pass forged-xff-ignored "the access line of $rid names the client $a, not the forged 203.0.113.66 (peer: the LB)"
else
    fail forged-xff-ignored "access line for '${rid:-no id}': ${line:-none}"
fi

# 2. Per-client rate limits: client A floods the hashing route (with a forged header that
#    names client B) and is limited; client B, sending slowly at the same time, is not.
urls=()
for _ in $(seq 1 90); do urls+=("https://$lb_public/v1/hash"); done
lbcurl --interface "$a" --parallel --parallel-max 12 -H 'X-Forwarded-For: '"$b" \
    -H 'Content-Type: application/json' --data-binary '{"password":"flood"}' \
    -o /dev/null -w '%{http_code}\n' "${urls[@]}" >"$work/flood-a.txt" 2>/dev/null &
flood=$!
: >"$work/slow-b.txt"
for _ in $(seq 1 5); do
    lbcurl --interface "$b" -H 'Content-Type: application/json' --data-binary '{"password":"slow"}' \
        -o /dev/null -w '%{http_code}\n' "https://$lb_public/v1/hash" >>"$work/slow-b.txt" 2>/dev/null
    sleep 0.3
done
wait $flood
a429=$(grep -c '^429$' "$work/flood-a.txt")
b_ok=$(grep -c '^200$' "$work/slow-b.txt")
figure "client A: $a429 of 90 flooding requests answered 429 by the VMs' nginx; client B: $b_ok of 5 served meanwhile"
if [ "$a429" -gt 0 ] && [ "$b_ok" -eq 5 ]; then
    pass rate-limit-per-client "the flooding client is limited by its own address, the other client is not"
else
    fail rate-limit-per-client "A: $(sort "$work/flood-a.txt" | uniq -c | tr '\n' ' '); B: $(tr '\n' ' ' <"$work/slow-b.txt")"
fi

# 3. /metrics through the LB: the VMs see the client's address, which is not allowed.
status=$(lbcurl --interface "$b" -o /dev/null -w '%{http_code}' "https://$lb_public/metrics")
if [ "$status" = 403 ]; then
    pass metrics-not-public "GET /metrics through the LB answers 403 (only the monitoring address may read it)"
else
    fail metrics-not-public "GET /metrics through the LB answered $status"
fi

# 4. The LB's ban: client C sends 150 cheap requests (threshold 100 in 10 s) and is then
#    refused by the LB itself; client B is still served.
urls=()
for _ in $(seq 1 150); do urls+=("https://$lb_public/healthz"); done
lbcurl --interface "$c" --parallel --parallel-max 12 -o /dev/null -w '%{http_code}\n' "${urls[@]}" \
    >"$work/ban-c.txt" 2>/dev/null
after_c=$(lbcurl --interface "$c" -o "$work/banned.json" -w '%{http_code}' "https://$lb_public/healthz")
after_b=$(lbcurl --interface "$b" -o /dev/null -w '%{http_code}' "https://$lb_public/healthz")
figure "client C: $(grep -c '^429$' "$work/ban-c.txt") of 150 rapid requests refused 429 by the LB; afterwards C gets $after_c, B gets $after_b"
if [ "$after_c" = 429 ] && grep -q '"rate_limited"' "$work/banned.json" && [ "$after_b" = 200 ]; then
    pass lb-rate-ban "the LB bans the flooding address (429 rate_limited) and serves the others"
else
    fail lb-rate-ban "C: $after_c $(head -c 200 "$work/banned.json"), B: $after_b"
fi
