# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Scale out: a fourth VM is added to the inventory and one playbook run (limited to the new
# VM and the LB, as an operator would) provisions it and adds it to the LB, under load, with
# 0 client errors; it then takes traffic.

rm -f "$work/stop-scale-out"
load scale-out --mode hash --rate 10 --duration 1200 --stop-file "$work/stop-scale-out"
members=(vm1 vm2 vm3 vm4)
write_inventory "${members[@]}"
t0=$(date +%s)
if lab_playbook "$work/scale-out.log" "$inventory" site.yml --limit vm4,lb; then
    pass playbook "ansible-playbook site.yml --limit vm4,lb with vm4 in the inventory ($(($(date +%s) - t0)) s)"
else
    lab_playbook_failed "$work/scale-out.log" vm4 lb
    fail playbook "the scale-out playbook run failed"
fi
in_service=$(wait_lb vm4 UP 30)
served_before=$(vm_metric vm4 'hashd_requests_total{route="/v1/hash",method="POST",status="200"}')
sleep 8
served=$(( $(vm_metric vm4 'hashd_requests_total{route="/v1/hash",method="POST",status="200"}') - served_before ))
touch "$work/stop-scale-out"
wait "$load_pid"
figure "scale-out: playbook $(($(date +%s) - t0)) s; vm4 UP in the LB $in_service s after the run; vm4 served $served hashes in the next 8 s"
figure "load: $(load_report scale-out)"
if [ "$(load_field scale-out 's["errors"]')" = 0 ] && [ "$served" -gt 0 ]; then
    pass takes-traffic-no-error "vm4 takes traffic, 0 client errors during the scale-out"
else
    fail takes-traffic-no-error "vm4 served $served; $(load_report scale-out)"
fi
