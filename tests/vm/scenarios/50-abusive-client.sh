# An abusive client in its own namespace: rate-limited (429), then banned by fail2ban;
# other clients are still served.

urls=()
for i in $(seq 1 80); do urls+=("https://$vm1_client_side_ip/v1/hash"); done
ip netns exec "$client_ns" curl -sk --max-time 20 --parallel --parallel-max 8 \
    -H 'Content-Type: application/json' --data-binary '{"password":"hammer"}' \
    -o /dev/null -w '%{http_code}\n' "${urls[@]}" >"$work/hammer.txt" 2>/dev/null
n429=$(grep -c '^429$' "$work/hammer.txt")
if [ "$n429" -gt 0 ]; then
    pass rate-limited "$n429 of 80 rapid requests rate-limited with 429"
else
    fail rate-limited "no 429 in 80 rapid requests ($(sort "$work/hammer.txt" | uniq -c | tr '\n' ' '))"
fi
banned=0
for _ in $(seq 1 40); do
    if on_vm vm1 "fail2ban-client status hashd-nginx-limit-req" 2>/dev/null | grep -qF "$client_ip"; then
        banned=1
        break
    fi
    sleep 0.5
done
if [ "$banned" -eq 1 ] &&
    ! ip netns exec "$client_ns" curl -sk --max-time 3 -o /dev/null "https://$vm1_client_side_ip/healthz" 2>/dev/null; then
    pass banned "banned by fail2ban (nginx-limit-req from the journal), its connections now fail"
else
    on_vm vm1 "fail2ban-client status hashd-nginx-limit-req" 2>&1 | tail -5
    fail banned "not banned (listed=$banned)"
fi
status=$(post_hash vm1 "$work/after-ban.json" "after-ban-$run_id")
if [ "$status" = 200 ]; then
    pass others-served "other clients are still served after the ban"
else
    fail others-served "after the ban, the harness's own request got $status"
fi
