# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Deploy: one playbook run provisions the store, the three hashd VMs and the LB from one
# inventory; the LB answers through the client namespace.

log "ansible-playbook site.yml (store, vm1-3, lb)"
t0=$(date +%s)
if lab_playbook "$work/deploy.log" "$inventory" site.yml; then
    pass site-yml "ansible-playbook site.yml provisions store, vm1..vm3 and lb ($(($(date +%s) - t0)) s)"
else
    lab_playbook_failed "$work/deploy.log" store lb "${members[@]}"
    die site-yml "ansible-playbook site.yml failed"
fi
figure "first provisioning of 5 VMs: $(($(date +%s) - t0)) s"

for name in "${members[@]}" vm4; do
    on_vm "$name" cat /etc/hashd/tls/hashd.crt >"$work/$name.crt" 2>/dev/null
done
on_vm lb cat /etc/haproxy/lb.crt >"$work/lb.crt"

up=0
for name in "${members[@]}"; do
    wait_lb "$name" UP 30 >/dev/null && up=$((up + 1))
done
status=$(ip netns exec "$client_ns" curl -sS --max-time 10 --cacert "$work/lb.crt" \
    -H 'Content-Type: application/json' -H "Authorization: Bearer ${tokens[0]}" \
    --data-binary '{"password":"through-the-lb"}' \
    -o "$work/first.json" -w '%{http_code}' "https://$lb_public/v1/hash")
if [ "$up" -eq 3 ] && [ "$status" = 200 ] && grep -q '"bcrypt"' "$work/first.json"; then
    pass lb-serves "the LB shows vm1..vm3 UP and answers POST /v1/hash from the client namespace"
else
    lb_state >&2
    fail lb-serves "UP: $up of 3, POST /v1/hash through the LB: $status $(head -c 200 "$work/first.json")"
fi
