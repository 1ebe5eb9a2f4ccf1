# Sourced by tests/gce/run (bash), whose variables and helpers it uses.
# `check && pass || fail` is the scenarios' idiom (pass returns 0); vm_ip and friends are read by
# the helpers it sources.
# shellcheck shell=bash disable=SC2154,SC2015,SC2004,SC2034
# site.yml with the README's command (an uploaded certificate instead of a managed one):
# the group's VMs boot from the baked image, hashd-gce-config reads their metadata at boot,
# autohealing's health check (/healthz, probed by the stand-in as Google's probers do) sees
# each healthy; the play waits for the group to be stable. Boot-to-healthy is printed
# against the group's initialDelaySec.
# Google's probe and IAP ranges are variables, pointed at private ranges here.
site_args=(-e hashd_version="$hashd_version"
    -e gcp_tls_certificate_file="$keys/lb.pem" -e gcp_tls_private_key_file="$keys/lb.key"
    -e gcp_machine_type=e2-highcpu-2 -e '{"gcp_machine_vcpus": 2}'
    -e '{"gcp_lb_source_ranges": ["10.219.250.0/24"], "gcp_iap_source_ranges": ["10.219.251.0/24"]}'
    -e "{\"hashd_settings\": {\"HASHD_STORE\": \"redis://$store_addr:6379/0\", \"HASHD_COST_DEFAULT\": 4, \"HASHD_COST_MIN\": 4}}"
    -e hashd_gce_store_password_secret="projects/$project/secrets/hashd-store-password"
    -e "{\"hashd_gce_store_allow\": [\"$store_addr/32\"]}"
    -e gcp_poll_interval_s=1 -e gcp_rollout_timeout_s=300)
# The VMs' own TLS certificate comes from Secret Manager (hashd_gce_tls_secret), read at boot
# with the VM's token over Private Google Access; the first read is answered 503.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=hashd-vm-tls \
    -days 2 -keyout "$work/vm-tls.key" -out "$work/vm-tls.crt" 2>/dev/null
tls_secret="projects/$project/secrets/hashd-tls"
/usr/bin/python3 -c 'import json,sys; print(json.dumps({"secrets": {sys.argv[1]: open(sys.argv[2]).read() + open(sys.argv[3]).read(),
    sys.argv[4]: sys.argv[5]}, "faults": [{"host": "secretmanager.googleapis.com", "status": 503, "count": 1}]}))' \
    "$tls_secret" "$work/vm-tls.crt" "$work/vm-tls.key" "projects/$project/secrets/hashd-store-password" "$store_password" |
    curl -sf -X POST -H 'Content-Type: application/json' --data-binary @- "$GCE_PROXY/_standin/seed" ||
    fail seed "could not seed the TLS secret"
site_args+=(-e hashd_gce_tls_secret="$tls_secret")
t0=$(date +%s.%N)
if gcp_playbook "$work/site.log" ansible/gcp/site.yml "${A[@]}" "${site_args[@]}"; then
    pass site.yml "deployed $hashd_version; the play waited for a stable group"
    figure "site: ansible-playbook ansible/gcp/site.yml took $(elapsed "$t0") s (graph, 2 VMs booted, healthy, stable)"
else
    fail site.yml "$( (grep -B2 -A14 -E 'fatal:|UNREACHABLE|ERROR!' "$work/site.log" || tail -40 "$work/site.log") | head -60)"
fi
check_api_clean site.yml

mig="projects/$project/regions/$region/instanceGroupManagers/hashd"
stable=$(api call GET "$mig" | /usr/bin/python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["status"]["isStable"], m["targetSize"], m["autoHealingPolicies"][0]["initialDelaySec"])')
read -r is_stable target_size initial_delay <<<"$stable"
group=$(api state "'\n'.join(f\"{p.rsplit('/', 1)[-1]} {v['ip']} {v.get('health')} {v.get('boot_to_healthy_s')}\" for p, v in s['fleet'].items())")
n_healthy=$(grep -c ' HEALTHY ' <<<"$group")
if [ "$is_stable" = True ] && [ "$n_healthy" = "$target_size" ] && [ "$target_size" -ge 2 ]; then
    pass group-healthy "isStable, $n_healthy of $target_size VMs healthy"
else
    fail group-healthy "isStable=$is_stable target=$target_size; VMs: $group; probes: $(api state "[(v.get('probes'), v.get('last_probe')) for v in s['fleet'].values()]")"
fi
while read -r name ip health secs; do
    [ -n "$name" ] || continue
    figure "site: $name boot-to-healthy ${secs} s (initialDelaySec $initial_delay)"
    vm_ip[$name]=$ip
    # The metadata the template carries reached the app's environment at boot.
    if on_vm "$name" 'grep -qx HASHD_COST_DEFAULT=4 /run/hashd-gce/hashd.env && systemctl is-active --quiet nginx hashd-gce-config' </dev/null; then
        pass "metadata-applied-$name" "hashd-gce-config wrote HASHD_COST_DEFAULT=4 from the instance metadata"
    else
        fail "metadata-applied-$name" "$(on_vm "$name" 'cat /run/hashd-gce/hashd.env; systemctl --failed --no-legend; journalctl -u hashd-gce-config -n 10 --no-pager' </dev/null 2>&1 | tail -15)"
    fi
    # The store password from Secret Manager, percent-encoded into HASHD_STORE, in a file only
    # root reads; nginx's user cannot; the app and the worker both reach the shared store.
    encoded=$(/usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$store_password")
    if on_vm "$name" "grep -qxF 'HASHD_STORE=redis://:$encoded@$store_addr:6379/0' /run/hashd-gce/hashd.env &&
            ! runuser -u www-data -- cat /run/hashd-gce/hashd.env 2>/dev/null &&
            curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1/readyz | grep -qx 200 &&
            systemctl is-active --quiet hashd-worker" </dev/null; then
        pass "store-password-$name" "HASHD_STORE carries the percent-encoded password, www-data cannot read it, /readyz 200 (the store answers), hashd-worker active"
    else
        fail "store-password-$name" "$(on_vm "$name" 'sed "s/:[^:@]*@/:***@/" /run/hashd-gce/hashd.env; ls -l /run/hashd-gce; curl -sk https://127.0.0.1/readyz; systemctl status hashd-worker --no-pager -n 5' </dev/null 2>&1 | tail -20)"
    fi
done <<<"$group"

faults=$(api state "len(s['faults_served'])")
[ "$faults" = 1 ] && pass secret-fault-injected "one Secret Manager read answered 503" ||
    fail secret-fault-injected "faults served: $faults"
while read -r name ip _; do
    [ -n "$name" ] || continue
    subject=$(openssl s_client -connect "$ip:443" </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null)
    if grep -q 'CN *= *hashd-vm-tls' <<<"$subject"; then
        pass "secret-tls-$name" "nginx serves the certificate from Secret Manager"
    else
        fail "secret-tls-$name" "serves ${subject:-nothing} (a boot that gave up on the 503 keeps the image's own certificate)"
    fi
done <<<"$group"
