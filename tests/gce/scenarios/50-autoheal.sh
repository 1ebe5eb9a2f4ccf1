# Sourced by tests/gce/run (bash), whose variables and helpers it uses.
# shellcheck shell=bash disable=SC2154,SC2015,SC2004,SC2034
# Autohealing, twice: a VM whose nginx is stopped (the VM runs, its app does not answer: what
# a health-check autohealing policy is for) and a VM that dies (its systemd-nspawn killed, as a
# host failure would). Each stops answering its autohealing check (/healthz on 443, from the
# probe range) for unhealthyThreshold probes, past the group's initialDelaySec, and is
# recreated by the group from its template under the same name, on a new disk; meanwhile the
# front end serves from the other VM; the group is stable again once the new VM is healthy, and
# every message acknowledged before is still readable (it is in the shared store, not on the
# disk that went).
names=()
for name in "${!vm_ip[@]}"; do [ "$name" = probe-1 ] || names+=("$name"); done
mapfile -t names < <(printf '%s\n' "${names[@]}" | sort)

# autoheal_case TAG HOW VICTIM: HOW is "nginx" (systemctl stop nginx on the VM) or "kill".
autoheal_case() {
    local tag=$1 how=$2 victim=$3 old_ip t0 healed lb_ok lb_bad code took new_ip health stable mig
    old_ip=${vm_ip[$victim]:-}
    local broken=false
    if ! on_vm "$victim" 'touch /var/lib/hashd-gce-box-marker' </dev/null; then
        broken=true
    elif [ "$how" = nginx ]; then
        on_vm "$victim" 'systemctl stop nginx' </dev/null || broken=true
    else
        GCE_WORK=$work GCE_RUN_ID=$run_id "$here/vmctl" kill "$victim" || broken=true
    fi
    if $broken; then
        fail "$tag-setup" "could not break $victim ($how)"
        return
    fi
    t0=$(date +%s.%N)
    healed="" lb_ok=0 lb_bad=0
    for _ in $(seq 1 120); do
        code=$(lb_curl -o /dev/null -w '%{http_code}' https://hashd.example.com/healthz 2>/dev/null)
        [ "$code" = 200 ] && lb_ok=$((lb_ok + 1)) || lb_bad=$((lb_bad + 1))
        healed=$(api state "next(((f\"{h.get('took_s')} {v['ip']} {v.get('health')}\" if 'error' not in h else 'error ' + h['error'])
            for p, v in s['fleet'].items() if p.endswith('/$victim') for h in v['healed']), '')")
        [ -n "$healed" ] && [ "${healed##* }" = HEALTHY ] && break
        sleep 2
    done
    read -r took new_ip health <<<"$healed"
    figure "$tag: $victim recreated after $how: healthy again after $(elapsed "$t0") s (recreate $took s); front end /healthz meanwhile: $lb_ok x 200, $lb_bad other"
    if [ "$health" = HEALTHY ] && [ "$took" != error ]; then
        vm_ip[$victim]=$new_ip
        pass "$tag-recreated" "$victim recreated (was $old_ip, now $new_ip) and healthy"
        if on_vm "$victim" 'test ! -e /var/lib/hashd-gce-box-marker && systemctl is-active --quiet nginx hashd-worker' </dev/null; then
            pass "$tag-new-disk" "the recreated $victim booted from the image (the old disk's marker is gone), nginx and hashd-worker active"
        else
            fail "$tag-new-disk" "$(on_vm "$victim" 'ls -l /var/lib/hashd-gce-box-marker; systemctl --failed --no-legend' </dev/null 2>&1 | tail -5)"
        fi
    else
        fail "$tag-recreated" "no recreation of $victim within the wait: ${healed:-none}; $(api state "[(p, v.get('health'), v.get('last_probe')) for p, v in s['fleet'].items()]")"
    fi
    mig="projects/$project/regions/$region/instanceGroupManagers/hashd"
    stable=False
    for _ in $(seq 1 60); do
        stable=$(api call GET "$mig" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["isStable"])')
        [ "$stable" = True ] && break
        sleep 2
    done
    [ "$stable" = True ] && pass "$tag-stable" "the group is stable again" || fail "$tag-stable" "isStable=$stable"
}

if [ "${#names[@]}" -lt 2 ]; then
    fail autoheal-setup "need two group VMs (have: ${names[*]})"
else
    autoheal_case autoheal-nginx nginx "${names[0]}"
    autoheal_case autoheal-kill kill "${names[1]}"
    # What was acknowledged before the VMs went is all still there.
    in_client /usr/bin/python3 "$repo/tests/cluster/load.py" --host "$lb_addr" --cafile "$keys/lb.pem" \
        --sources "$load_sources" --mode verify --acked "$work/acked.txt" >"$work/readback-healed.json" 2>"$work/readback-healed.err"
    read -r hsent hok herrors _ hkinds <<<"$(summary "$work/readback-healed.json")"
    acked=$(wc -l <"$work/acked.txt" 2>/dev/null || echo 0)
    [ "$acked" -gt 0 ] && [ "$hok" = "$acked" ] && [ "$herrors" = 0 ] &&
        pass autoheal-messages-kept "all $acked acknowledged messages read back after both recreations" ||
        fail autoheal-messages-kept "acked $acked, read back ok ${hok:-?} of ${hsent:-?}, errors ${herrors:-?} $hkinds"
fi
check_api_clean autoheal
