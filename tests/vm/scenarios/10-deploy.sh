# Sourced by tests/vm/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Deploy: the operator's command (docs/operations.md "Deploy to VMs") provisions both VMs, and a second run
# changes nothing (the roles are idempotent).

log "ansible-playbook (first run)"
if lab_playbook "$work/playbook-1.log" "$inventory" site.yml; then
    pass first-run "ansible-playbook site.yml deploys both VMs"
else
    lab_playbook_failed "$work/playbook-1.log" "${vms[@]}"
    die first-run "ansible-playbook site.yml failed"
fi
grep -A3 'PLAY RECAP' "$work/playbook-1.log" >&2
grep -A12 '^=====' "$work/playbook-1.log" | head -14 >&2

log "ansible-playbook (second run)"
if lab_playbook "$work/playbook-2.log" "$inventory" site.yml &&
    lab_playbook_unchanged "$work/playbook-2.log"; then
    pass second-run-unchanged "second ansible-playbook run reports changed=0"
else
    grep -B2 -A8 '^changed:' "$work/playbook-2.log" | head -60
    sed -n '/PLAY RECAP/,$p' "$work/playbook-2.log"
    fail second-run-unchanged "second ansible-playbook run reports changes"
fi

for name in "${vms[@]}"; do
    on_vm "$name" cat /etc/hashd/tls/hashd.crt >"$work/$name.crt" 2>/dev/null
done

# post_hash VM BODYFILE PASSWORD: POST /v1/hash with PASSWORD; prints the status, the body
# in BODYFILE and the headers in BODYFILE.headers.
post_hash() {
    local name=$1 body=$2 pw=$3 cost=${4:-}
    curl -sS --max-time 10 --cacert "$work/$name.crt" -H 'Content-Type: application/json' \
        --data-binary "{\"password\":\"$pw\"${cost:+,\"cost\":$cost}}" -D "$body.headers" -o "$body" \
        -w '%{http_code}' "https://${vm_ip[$name]}/v1/hash"
}

# client_loop VM COUNT OUT [PAUSE] [COST]: a bounded client loop against VM, COUNT requests,
# each a fresh password, PAUSE seconds apart (default 0.25: under the production per-client
# rate limit of 10/s, burst 20), at COST (default: the service's). Each failure is written to
# OUT.
client_loop() {
    local name=$1 count=$2 out=$3 pause=${4:-0.25} cost=${5:-} i status
    # Named here, not inside $(...): a command substitution has a BASHPID of its own, so the
    # body would be written to one file and read back from another.
    local body="$work/loop-$name-$BASHPID.json"
    : >"$out"
    for i in $(seq 1 "$count"); do
        status=$(post_hash "$name" "$body" "loop-$run_id-$i" "$cost" 2>>"$out.err") || status="curl-error"
        [ "$status" = 200 ] || echo "request $i: $status $(head -c 200 "$body" 2>/dev/null)" >>"$out"
        sleep "$pause"
    done
}
