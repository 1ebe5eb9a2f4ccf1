# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Client identity behind the LB: the VMs' logs and rate limits see the client's own
# address (the LB's X-Forwarded-For, believed from the LB alone), a forged X-Forwarded-For
# is not believed, /metrics is not reachable through the LB, and the LB's Cloud Armor-like
# ban stops a flooding client while others are served. Access control is on (the run's
# hashd_auth): a client is its API token where it sends one, at the VMs and at the LB.

a=${clients[9]} b=${clients[8]} c=${clients[7]}
token_a=${tokens[9]} token_b=${tokens[8]}
lbcurl() { ip netns exec "$client_ns" curl -sS --max-time 10 --cacert "$work/lb.crt" "$@"; }

# 1. A forged X-Forwarded-For: the access log names the real client.
lbcurl --interface "$a" -H 'X-Forwarded-For: 203.0.113.66' -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $token_a" \
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
#    names client B) and is limited; client B, sending slowly at the same time, is not. Each
#    sends its own token, which is what nginx keys the limit by.
urls=()
for _ in $(seq 1 90); do urls+=("https://$lb_public/v1/hash"); done
lbcurl --interface "$a" --parallel --parallel-max 12 -H 'X-Forwarded-For: '"$b" -H "Authorization: Bearer $token_a" \
    -H 'Content-Type: application/json' --data-binary '{"password":"flood"}' \
    -o /dev/null -w '%{http_code}\n' "${urls[@]}" >"$work/flood-a.txt" 2>/dev/null &
flood=$!
: >"$work/slow-b.txt"
for _ in $(seq 1 5); do
    lbcurl --interface "$b" -H 'Content-Type: application/json' -H "Authorization: Bearer $token_b" \
        --data-binary '{"password":"slow"}' \
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

# 5. Who may call, through the LB: no token on a gated route is 401 unauthenticated; a known
#    client on a route group it was not given is 403 forbidden; the compatibility route stays
#    open without any token.
no_token=$(lbcurl --interface "$b" -H 'Content-Type: application/json' --data-binary '{"password":"anon"}' \
    -o "$work/anon.json" -w '%{http_code}' "https://$lb_public/v1/hash")
wrong_route=$(lbcurl --interface "$b" -H 'Content-Type: application/json' -H "Authorization: Bearer $verifier_token" \
    --data-binary '{"password":"verifier"}' -o "$work/verifier.json" -w '%{http_code}' "https://$lb_public/v1/hash")
legacy=$(lbcurl --interface "$b" -o /dev/null -w '%{http_code}' "https://$lb_public/gethash/open-route/")
figure "through the LB: no token $no_token, the verify-only client on /v1/hash $wrong_route, GET /gethash/ without a token $legacy"
if [ "$no_token" = 401 ] && grep -q '"unauthenticated"' "$work/anon.json" &&
    [ "$wrong_route" = 403 ] && grep -q '"forbidden"' "$work/verifier.json" && [ "$legacy" = 200 ]; then
    pass access-control-through-lb "401 without a token, 403 for a route the client was not given, legacy route open"
else
    fail access-control-through-lb "no token: $no_token $(head -c 150 "$work/anon.json"); verifier: $wrong_route $(head -c 150 "$work/verifier.json"); legacy: $legacy"
fi

# 6. The LB's ban keyed by token: B floods with token T1 (made up: the LB cannot tell, the VMs
#    answer 401, a ban counts requests) past the threshold: T1 is banned from B's address and
#    from A's (one client behind many addresses), while B with another token, and B without
#    any, are served (clients behind one address are told apart).
t1="hashd_lb-one_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
t2="hashd_lb-two_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
urls=()
for _ in $(seq 1 150); do urls+=("https://$lb_public/healthz"); done
lbcurl --interface "$b" --parallel --parallel-max 12 -H "Authorization: Bearer $t1" -o /dev/null \
    -w '%{http_code}\n' "${urls[@]}" >"$work/ban-t1.txt" 2>/dev/null
# The VMs' own probe limit (5 r/s per address, burst 10) drains in 2 s; the LB's ban lasts 60 s.
sleep 2
t1_b=$(lbcurl --interface "$b" -H "Authorization: Bearer $t1" -o /dev/null -w '%{http_code}' "https://$lb_public/healthz")
t1_a=$(lbcurl --interface "$a" -H "Authorization: Bearer $t1" -o /dev/null -w '%{http_code}' "https://$lb_public/healthz")
t2_b=$(lbcurl --interface "$b" -H "Authorization: Bearer $t2" -o /dev/null -w '%{http_code}' "https://$lb_public/healthz")
none_b=$(lbcurl --interface "$b" -o /dev/null -w '%{http_code}' "https://$lb_public/healthz")
figure "token T1: $(grep -c '^429$' "$work/ban-t1.txt") of 150 refused 429 by the LB; afterwards T1 from B $t1_b, from A $t1_a; T2 from B $t2_b; no token from B $none_b"
if [ "$t1_b" = 429 ] && [ "$t1_a" = 429 ] && [ "$t2_b" = 200 ] && [ "$none_b" = 200 ]; then
    pass lb-ban-per-token "the LB bans the flooding token wherever it comes from, and serves other tokens and the address"
else
    fail lb-ban-per-token "T1 from B $t1_b, from A $t1_a; T2 from B $t2_b; no token $none_b"
fi

# 7. The LB's per-address ceiling on tokened requests: 210 requests from C, each with a fresh
#    made-up token (each its own counter), pass the ceiling of 200: C's tokened requests are
#    then refused, with any token.
# (A curl config of one transfer per token: options do not carry over `next`, so each
# transfer names its own address, CA and time limit.)
/usr/bin/python3 - "$lb_public" "$c" "$work/lb.crt" >"$work/ceiling.curl" <<'PY'
import base64, os, sys
host, source, cafile = sys.argv[1:4]
for i in range(210):
    token = f"hashd_made-up-{i}_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    print(("next\n" if i else "") + f'url = "https://{host}/healthz"\n'
          f'header = "Authorization: Bearer {token}"\ninterface = "{source}"\ncacert = "{cafile}"\n'
          'max-time = 10\noutput = "/dev/null"\nwrite-out = "%{http_code}\\n"')
PY
ip netns exec "$client_ns" curl -sS --parallel --parallel-max 12 --config "$work/ceiling.curl" \
    >"$work/ceiling.txt" 2>/dev/null
sleep 2
ceiling_c=$(lbcurl --interface "$c" -H "Authorization: Bearer $t2" -o /dev/null -w '%{http_code}' "https://$lb_public/healthz")
t2_b=$(lbcurl --interface "$b" -H "Authorization: Bearer $t2" -o /dev/null -w '%{http_code}' "https://$lb_public/healthz")
figure "C with 210 made-up tokens: $(grep -c '^429$' "$work/ceiling.txt") refused 429; afterwards C with T2 $ceiling_c, B with T2 $t2_b"
if [ "$ceiling_c" = 429 ] && [ "$t2_b" = 200 ]; then
    pass lb-token-ceiling-per-address "made-up tokens do not escape the LB: past the ceiling the address's tokened requests are refused"
else
    fail lb-token-ceiling-per-address "C with T2 $ceiling_c, B with T2 $t2_b; C's codes: $(sort "$work/ceiling.txt" | uniq -c | tr '\n' ' ')"
fi
