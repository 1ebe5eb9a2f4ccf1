# Sourced by tests/cluster/scenarios (bash), with tests/cluster/run's variables and helpers.
# shellcheck shell=bash disable=SC2154
# The shared-store checks, run on Redis (scenario 30) and again on PostgreSQL (scenario 95):
#   shared_store_checks KIND
# 1. a message posted through one VM is read through every other;
# 2. the store VM restarted under mixed load: /messages answers 503 store_unavailable
#    meanwhile, hashing never fails, recovery is automatic, and every message acknowledged
#    with 201 before, during and after reads back afterwards.

shared_store_checks() {
    local kind=$1 msg digest status name ok_reads=0 t_boot t_back i
    msg="cross-vm-$kind-$run_id-$RANDOM"
    status=$(on_https vm1 POST /messages "{\"message\":\"$msg\"}")
    digest=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("digest",""))' "$work/last.json" 2>/dev/null)
    for name in vm2 vm3; do
        [ "$(on_https "$name" GET "/messages/$digest")" = 200 ] && grep -qF "\"$msg\"" "$work/last.json" &&
            ok_reads=$((ok_reads + 1))
    done
    if [ "$status" = 201 ] && [ "$ok_reads" -eq 2 ]; then
        pass "$kind-cross-vm-read" "posted through vm1 (201), read back through vm2 and vm3"
    else
        fail "$kind-cross-vm-read" "POST via vm1: $status, reads via vm2/vm3 that matched: $ok_reads of 2"
    fi

    : >"$work/acked-$kind.txt"
    load "store-$kind" --mode mixed --rate 12 --duration 40 --acked "$work/acked-$kind.txt"
    sleep 5
    log "restarting the store VM under load"
    vm_stop store
    t_boot=$(date +%s.%N)
    vm_boot store
    vm_wait_up store || fail "$kind-store-back" "the store VM did not boot again"
    # Recovery: the first 201 through the LB after the store VM was started again.
    t_back=""
    for i in $(seq 1 120); do
        status=$(ip netns exec "$client_ns" curl -s --max-time 5 --cacert "$work/lb.crt" \
            -H 'Content-Type: application/json' -H "Authorization: Bearer ${tokens[0]}" \
            --data-binary "{\"message\":\"probe-$kind-$run_id-$i\"}" \
            -o /dev/null -w '%{http_code}' "https://$lb_public/messages")
        if [ "$status" = 201 ]; then t_back=$(date +%s.%N); break; fi
        sleep 0.5
    done
    wait "$load_pid"
    figure "$kind store restart under load: $(load_report "store-$kind")"
    figure "$kind: /messages failed from $(load_field "store-$kind" 's["first_error_s"].get("messages 503 store_unavailable", "-")') s to $(load_field "store-$kind" 's["last_error_s"].get("messages 503 store_unavailable", "-")') s of the load; first 201 $(awk -v a="$t_boot" -v b="${t_back:-0}" 'BEGIN {printf "%.1f", b - a}') s after the store VM was started again"
    if [ -n "$t_back" ]; then
        pass "$kind-recovers" "POST /messages answered 201 again without intervention"
    else
        fail "$kind-recovers" "no 201 within 60 s of the store VM's start"
    fi
    local hash_errors other_errors
    hash_errors=$(load_field "store-$kind" 'sum(v for k, v in s["by_kind"].items() if k.startswith("hash"))')
    other_errors=$(load_field "store-$kind" 'json.dumps({k: v for k, v in s["by_kind"].items() if k != "messages 503 store_unavailable"})')
    if [ "$hash_errors" = 0 ]; then
        pass "$kind-hashing-never-fails" "no hashing error while the store was down"
    else
        fail "$kind-hashing-never-fails" "hashing errors: $other_errors"
    fi
    if [ "$other_errors" = "{}" ] && [ "$(load_field "store-$kind" 's["by_kind"].get("messages 503 store_unavailable", 0) > 0')" = True ]; then
        pass "$kind-503-store-unavailable" "every failed /messages answered 503 store_unavailable (the store really was down)"
    else
        fail "$kind-503-store-unavailable" "errors other than 503 store_unavailable (or none at all): $(load_field "store-$kind" 'json.dumps(s["by_kind"])')"
    fi
    ip netns exec "$client_ns" /usr/bin/python3 "$here/load.py" --host "$lb_public" --cafile "$work/lb.crt" \
        --sources "$load_sources" --tokens "$load_tokens" --mode verify --acked "$work/acked-$kind.txt" >"$work/verify-$kind.json"
    local acked
    acked=$(wc -l <"$work/acked-$kind.txt")
    figure "$kind: $acked messages acknowledged with 201 before, during and after; $(load_field "verify-$kind" 's["ok"]') read back"
    if [ "$acked" -gt 0 ] && [ "$(load_field "verify-$kind" 's["errors"]')" = 0 ]; then
        pass "$kind-acknowledged-durable" "all $acked acknowledged messages read back whole"
    else
        fail "$kind-acknowledged-durable" "read-back: $(load_report "verify-$kind")"
    fi
}
