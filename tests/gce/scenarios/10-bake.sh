# Sourced by tests/gce/run (bash), whose variables and helpers it uses.
# `check && pass || fail` is the scenarios' idiom (pass returns 0); vm_ip and friends are read by
# the helpers it sources.
# shellcheck shell=bash disable=SC2154,SC2015,SC2004,SC2034
# image.yml bakes the image on a real builder VM, with the README's command and
# gcp_builder_ssh_via=external: the builder boots from debian-cloud's debian-12 with a
# temporary external address, ansible reaches it over SSH at that address with the key
# image.yml put in its ssh-keys metadata (the guest agent made the account), the roles
# run, the builder is stopped, its disk becomes the image, the builder and its firewall rule
# are deleted.
slug=$(tr -c 'a-z0-9\n' '-' <<<"${hashd_version,,}" | sed 's/-\+/-/g')
image=hashd-$slug
t0=$(date +%s.%N)
# gcp_builder_ssh_key: in this run's folder, not the default in the repository's tree.
# gce_image_ops_agent=false: Google's package archive is not reachable offline.
if gcp_playbook "$work/image.log" ansible/gcp/image.yml "${A[@]}" -e hashd_version="$hashd_version" \
    -e gcp_builder_ssh_via=external -e "gcp_builder_ssh_sources=[\"$host_addr/32\"]" \
    -e '{"gcp_iap_source_ranges": ["10.219.251.0/24"]}' -e gcp_builder_ssh_key="$work/builder_key" \
    -e gce_image_ops_agent=false; then
    bake_s=$(elapsed "$t0")
    pass image.yml "baked $image"
    figure "bake: ansible-playbook ansible/gcp/image.yml took ${bake_s} s (builder boot, roles, stop, snapshot, delete)"
else
    fail image.yml "$( (grep -B2 -A14 -E 'fatal:|UNREACHABLE|ERROR!' "$work/image.log" || tail -40 "$work/image.log") | head -60)"
fi
check_api_clean image.yml

got=$(api call GET "projects/$project/global/images/family/hashd" 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; i=json.load(sys.stdin); print(i["name"], i["status"], i["family"])')
if [ "$got" = "$image READY hashd" ]; then
    pass image-in-family "images.getFromFamily(hashd) = $image, READY"
else
    fail image-in-family "got: $got"
fi
left=$(api state "' '.join(sorted(p.rsplit('/', 1)[-1] for p in s['resources'] if '/instances/' in p or '/firewalls/' in p or '/disks/' in p) + sorted(s['fleet']))")
if [ -z "$left" ]; then
    pass builder-removed "no instance, disk, firewall rule or VM left"
else
    fail builder-removed "left: $left"
fi
# The image is the builder's disk: the .deb of this version installed in it.
status=$images/$image/layer/var/lib/dpkg/status
if [ -f "$status" ] && awk -v v="$hashd_version" '/^Package: hashd$/ {p = 1} p && /^Version:/ {print ($2 == v) ? "ok" : $2; exit}' "$status" | grep -qx ok; then
    pass image-has-the-version "hashd $hashd_version in the image's dpkg status"
    figure "bake: the image's own layer (the builder's disk changes) is $(du -sm "$images/$image/layer" | cut -f1) MiB over debian-12"
else
    fail image-has-the-version "no hashd $hashd_version in $status"
fi
