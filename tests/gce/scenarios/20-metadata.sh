# Sourced by tests/gce/run (bash), whose variables and helpers it uses.
# `check && pass || fail` is the scenarios' idiom (pass returns 0); vm_ip and friends are read by
# the helpers it sources.
# shellcheck shell=bash disable=SC2154,SC2015,SC2004,SC2034
# A VM booted from the baked image through the API, as a MIG would: its metadata server at
# 169.254.169.254 and metadata.google.internal, Google's paths, Metadata-Flavor required;
# the guest agent's account from ssh-keys; its machine type as a cgroup cpu quota.
vm=probe-1
probe_key=$(cut -d' ' -f1,2 "$work/id_ed25519.pub")
body=$(cat <<BODY
{"name": "$vm", "machineType": "zones/$zone/machineTypes/e2-highcpu-2",
 "disks": [{"boot": true, "autoDelete": true,
            "initializeParams": {"sourceImage": "projects/$project/global/images/family/hashd"}}],
 "networkInterfaces": [{"network": "projects/$project/global/networks/default"}],
 "serviceAccounts": [{"email": "hashd-vm@$project.iam.gserviceaccount.com",
                      "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
 "metadata": {"items": [{"key": "hashd-probe", "value": "from-the-instance"},
                        {"key": "ssh-keys", "value": "alice:$probe_key alice"}]}}
BODY
)
curl -sf -X POST -H 'Content-Type: application/json' "$GCE_PROXY/_standin/seed" \
    --data-binary '{"project_attributes": {"hashd-project-probe": "from-the-project"}}' >/dev/null
t0=$(date +%s.%N)
if op=$(api call POST "projects/$project/zones/$zone/instances" "$body"); then
    pass instances.insert "$vm from family hashd"
else
    fail instances.insert "$op"
    return 0
fi
ip=$(api state "next((v['ip'] for p, v in s['fleet'].items() if p.endswith('/$vm')), '')")
vm_ip[$vm]=$ip
vm_dir[$vm]=$work/vm-$vm
vm_pid[$vm]=$(cat "$work/vm-$vm/pid" 2>/dev/null)
if [ -n "$ip" ] && vm_wait_up "$vm"; then
    pass boot "$vm at $ip booted with systemd from the baked image"
    figure "boot: instances.insert to SSH and systemd up: $(elapsed "$t0") s"
else
    fail boot "$vm did not come up"
    return 0
fi
# IAP's TCP forwarding, image.yml's default route to a VM without an external address: SSH with
# tests/gce/iap-tunnel (gcloud compute start-iap-tunnel's stand-in) as ProxyCommand, in the
# operator's environment (the playbooks'), reaches the guest agent's account.
if iap_out=$("${gcp_env[@]}" ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ConnectTimeout=20 -i "$work/id_ed25519" \
        -o "ProxyCommand=$here/iap-tunnel %h 22 --listen-on-stdin --zone=$zone --project=$project" \
        "alice@$vm" "id -un; echo \"\$SSH_CONNECTION\"" </dev/null 2>&1) &&
    grep -qx alice <<<"$iap_out" && grep -q '^10\.219\.251\.1 ' <<<"$iap_out"; then
    pass iap-ssh "SSH through IAP's range (10.219.251.1) to $vm as alice"
else
    fail iap-ssh "$(tail -15 <<<"$iap_out")"
fi

md=http://169.254.169.254/computeMetadata/v1
code=$(on_vm "$vm" "curl -s -o /dev/null -w '%{http_code}' $md/instance/attributes/hashd-probe")
[ "$code" = 403 ] && pass metadata-flavor-required "403 without Metadata-Flavor" ||
    fail metadata-flavor-required "got $code"
code=$(on_vm "$vm" "curl -s -o /dev/null -w '%{http_code}' -H 'Metadata-Flavor: Google' -H 'X-Forwarded-For: 10.0.0.1' $md/instance/attributes/hashd-probe")
[ "$code" = 403 ] && pass metadata-refuses-forwarded "403 with X-Forwarded-For" ||
    fail metadata-refuses-forwarded "got $code"
got=$(on_vm "$vm" "curl -sf -H 'Metadata-Flavor: Google' http://metadata.google.internal/computeMetadata/v1/instance/attributes/hashd-probe; echo; curl -sf -H 'Metadata-Flavor: Google' $md/project/attributes/hashd-project-probe")
[ "$got" = "from-the-instance
from-the-project" ] && pass metadata-attributes "instance and project attributes, by name and by address" ||
    fail metadata-attributes "got: $got"
got=$(on_vm "$vm" "curl -sf -H 'Metadata-Flavor: Google' '$md/instance/attributes/?recursive=true'" |
    /usr/bin/python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)))')
[ "$got" = "['hashd-probe', 'ssh-keys']" ] && pass metadata-recursive "attributes/?recursive=true as JSON" ||
    fail metadata-recursive "got: $got"
token=$(on_vm "$vm" "curl -sf -H 'Metadata-Flavor: Google' $md/instance/service-accounts/default/token" |
    /usr/bin/python3 -c 'import json,sys; t=json.load(sys.stdin); print(t["token_type"], t["access_token"][:5])')
[ "$token" = "Bearer ya29." ] && pass metadata-token "the service account's token" || fail metadata-token "got: $token"
if on_vm "$vm" 'id -nG alice' 2>/dev/null | grep -qw google-sudoers; then
    pass guest-agent-account "alice made from ssh-keys metadata, in google-sudoers"
else
    fail guest-agent-account "no alice in google-sudoers"
fi

# e2-highcpu-2 = 2 vCPUs x 0.5 host core each: a cpu.cfs_quota_us of 100000 per 100000 us,
# and every process of the VM under it.
cg=/sys/fs/cgroup/cpu/hashd-gce-$run_id/$vm
quota=$(cat "$cg/cpu.cfs_quota_us" 2>/dev/null)
init=$([ -n "${vm_pid[$vm]}" ] && pgrep -P "${vm_pid[$vm]}" | head -1)
if [ "$quota" = 100000 ] && [ -n "$init" ] && grep -qx "$init" "$cg/cgroup.procs" &&
    [ "$(wc -l <"$cg/tasks")" -gt 5 ]; then
    pass machine-type-quota "e2-highcpu-2: cfs_quota_us 100000, the VM's $(wc -l <"$cg/tasks") tasks in its cgroup"
else
    fail machine-type-quota "quota $quota, init $init, in cgroup: $(grep -c . "$cg/cgroup.procs" 2>/dev/null)"
fi

if op=$(api call DELETE "projects/$project/zones/$zone/instances/$vm") &&
    [ -z "$(api state "' '.join(s['fleet'])")" ] && ! ip netns list | grep -q "hashdgce-$run_id-$vm"; then
    pass instances.delete "the VM, its namespace and disk gone"
else
    fail instances.delete "$op"
fi
vm_pid[$vm]=""
check_api_clean probe
