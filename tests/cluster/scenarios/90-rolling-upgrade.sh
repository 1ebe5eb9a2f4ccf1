# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Rolling upgrade: the .deb of the next version (built by this suite with a bumped
# version) rolled across the group one VM at a time (drain, upgrade, health, undrain) by
# ansible/rolling-upgrade.yml under load: 0 client errors, and hashd_build_info shows the
# new version on every VM at the end.

log "waiting for the $next_version package build"
wait "$next_build"
# shellcheck disable=SC2012 # one file named by dpkg, no odd characters
next_deb=$(ls -1 "$next_dir"/hashd_"$next_version"_*.deb 2>/dev/null | head -1)
if [ -z "$next_deb" ]; then
    tail -20 "$work/next-deb.log"
    fail next-deb "no hashd_$next_version .deb was built"
else
    rm -f "$work/stop-upgrade"
    load upgrade --mode mixed --rate 10 --duration 1200 --stop-file "$work/stop-upgrade" \
        --acked "$work/acked-upgrade.txt"
    t0=$(date +%s)
    if lab_playbook "$work/upgrade.log" "$inventory" rolling-upgrade.yml -e "hashd_deb_path=$next_deb"; then
        pass playbook "ansible-playbook rolling-upgrade.yml rolled $next_version across ${#members[@]} VMs ($(($(date +%s) - t0)) s)"
    else
        lab_playbook_failed "$work/upgrade.log" "${members[@]}"
        fail playbook "the rolling upgrade failed"
    fi
    # The inventory names the new package from now on (a later run must not downgrade).
    # shellcheck disable=SC2034 # read by tests/cluster/run's write_inventory
    hashd_deb_path=$next_deb
    write_inventory "${members[@]}"
    sleep 2
    touch "$work/stop-upgrade"
    wait "$load_pid"
    figure "rolling upgrade $version -> $next_version: $(($(date +%s) - t0)) s; load: $(load_report upgrade)"
    if [ "$(load_field upgrade 's["errors"]')" = 0 ]; then
        pass no-error "0 client errors during the rolling upgrade"
    else
        fail no-error "$(load_report upgrade)"
    fi
    versions=""
    for name in "${members[@]}"; do
        versions+="$name=$(on_vm "$name" "curl -s http://127.0.0.1:8081/metrics" | sed -n 's/^hashd_build_info{.*version="\([^"]*\)".*/\1/p' | head -1) "
    done
    figure "hashd_build_info: $versions"
    if [ "$(grep -o "=$next_version " <<<"$versions" | wc -l)" -eq "${#members[@]}" ]; then
        pass build-info-everywhere "hashd_build_info shows $next_version on every VM"
    else
        fail build-info-everywhere "versions: $versions"
    fi
fi
