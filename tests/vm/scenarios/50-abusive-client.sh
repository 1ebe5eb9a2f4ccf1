# Sourced by tests/vm/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# An abusive client in its own namespace, on the legacy route (the password is in the URL):
# rate-limited (429), then banned by fail2ban, which counts the 429s in nginx's access log;
# its password is in no journal entry; other clients are still served.

hammer_pw="hammer-$run_id-pw"
urls=()
for _ in $(seq 1 80); do urls+=("https://$vm1_client_side_ip/gethash/$hammer_pw/"); done
ip netns exec "$client_ns" curl -sk --max-time 20 --parallel --parallel-max 8 \
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
    pass banned "banned by fail2ban (429s of GET /gethash/ in the access log), its connections now fail"
else
    on_vm vm1 "fail2ban-client status hashd-nginx-limit-req" 2>&1 | tail -5
    fail banned "not banned (listed=$banned)"
fi
if on_vm vm1 "journalctl -o cat --no-pager" 2>/dev/null | grep -qF "$hammer_pw"; then
    fail password-not-logged "the legacy route's password is in VM 1's journal"
else
    pass password-not-logged "its password is in no journal entry of VM 1"
fi
status=$(post_hash vm1 "$work/after-ban.json" "after-ban-$run_id")
if [ "$status" = 200 ]; then
    pass others-served "other clients are still served after the ban"
else
    fail others-served "after the ban, the harness's own request got $status"
fi
