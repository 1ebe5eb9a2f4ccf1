# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Spread: under steady load every VM serves a share (read from each VM's own /metrics).

before=()
for name in "${members[@]}"; do
    before+=("$(vm_metric "$name" 'hashd_requests_total{route="/v1/hash",method="POST",status="200"}')")
done
load spread --mode hash --rate 20 --duration 12
wait "$load_pid"
figure "load: $(load_report spread)"
shares=() total=0 i=0
for name in "${members[@]}"; do
    after=$(vm_metric "$name" 'hashd_requests_total{route="/v1/hash",method="POST",status="200"}')
    shares+=($((after - before[i])))
    total=$((total + after - before[i]))
    i=$((i + 1))
done
figure "served per VM (from each VM's /metrics): vm1 ${shares[0]}, vm2 ${shares[1]}, vm3 ${shares[2]} (total $total)"
if [ "$(load_field spread 's["errors"]')" = 0 ]; then
    pass no-error "$(load_report spread)"
else
    fail no-error "$(load_report spread)"
fi
sent=$(load_field spread 's["sent"]')
min_share=$((sent / 6))
if [ "$total" -eq "$sent" ] && [ "${shares[0]}" -ge "$min_share" ] && [ "${shares[1]}" -ge "$min_share" ] &&
    [ "${shares[2]}" -ge "$min_share" ]; then
    pass every-vm-serves "each VM served at least a sixth of $sent (half its fair share); the VMs count all of them"
else
    fail every-vm-serves "shares ${shares[*]} of $sent (want each >= $min_share, total = sent)"
fi
