# Sourced by tests/vm/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Each VM answers POST /v1/hash over HTTPS with a hash that verifies; the request shows in
# the app's journal and nginx's access log under its request id, and the password nowhere.

declare -A request_id=() password=()
for name in "${vms[@]}"; do
    pw="vm-suite-$run_id-$name-$RANDOM$RANDOM"
    password[$name]=$pw
    status=$(post_hash "$name" "$work/hash-$name.json" "$pw")
    rid=$(awk -F': ' 'tolower($1)=="x-request-id" {gsub("\r",""); print $2}' "$work/hash-$name.json.headers")
    request_id[$name]=$rid
    if [ "$status" = 200 ] && [ -n "$rid" ] && /usr/bin/python3 - "$work/hash-$name.json" "$pw" <<'PY'; then
import bcrypt, json, sys
body = json.load(open(sys.argv[1]))
pw = sys.argv[2].encode()
assert bcrypt.checkpw(pw, body["bcrypt"].encode()), "bcrypt string does not verify"
assert bytes.fromhex(body["hash"]).decode() == body["bcrypt"], "hash is not the hex of bcrypt"
assert bytes.fromhex(body["salt"]).decode() == body["bcrypt"][:29], "salt is not the setting"
PY
        pass "$name-hash-verifies" "HTTPS POST /v1/hash through nginx returns a hash that verifies (request $rid)"
    else
        fail "$name-hash-verifies" "POST /v1/hash answered $status: $(head -c 300 "$work/hash-$name.json" 2>/dev/null)"
    fi
done

for name in "${vms[@]}"; do
    rid=${request_id[$name]:-none}
    pw=${password[$name]}
    found_app=0 found_access=0
    for _ in $(seq 1 20); do
        on_vm "$name" "journalctl -u 'hashd@*' -o json --no-pager" >"$work/$name-app.json" 2>/dev/null
        on_vm "$name" "journalctl -t nginx_access -o json --no-pager" >"$work/$name-access.json" 2>/dev/null
        grep -q "\"REQUEST_ID\":\"$rid\"" "$work/$name-app.json" && found_app=1
        grep -qF "$rid" "$work/$name-access.json" && found_access=1
        [ "$found_app" -eq 1 ] && [ "$found_access" -eq 1 ] && break
        sleep 0.5
    done
    if [ "$found_app" -eq 1 ]; then
        pass "$name-app-journal" "journalctl -u 'hashd@*' shows REQUEST_ID=$rid"
    else
        fail "$name-app-journal" "journalctl -u 'hashd@*' has no entry with REQUEST_ID=$rid"
    fi
    if [ "$found_access" -eq 1 ] && ! grep -qF "$pw" "$work/$name-access.json" "$work/$name-app.json"; then
        pass "$name-access-log-no-password" "journalctl -t nginx_access shows the request's access line, and no log has the password"
    else
        fail "$name-access-log-no-password" "access line for $rid missing ($found_access) or the password is in the journal"
    fi
done
