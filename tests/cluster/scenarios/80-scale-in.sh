# Sourced by tests/cluster/run (bash), whose variables (work, inventory, run_id, ...) and
# helpers it uses: shellcheck cannot see them from here.
# shellcheck shell=bash disable=SC2154
# Scale in: vm4 is drained (its /readyz answers 503 draining, the LB takes it out, its
# requests finish), removed from the inventory, and one playbook run removes it from the
# LB; then it is powered off. 0 client errors throughout.

rm -f "$work/stop-scale-in"
load scale-in --mode hash --rate 10 --duration 1200 --stop-file "$work/stop-scale-in"
sleep 2
t0=$(date +%s)
if lab_playbook "$work/drain.log" "$inventory" drain.yml --limit vm4; then
    pass drain "ansible-playbook drain.yml --limit vm4: the LB shows vm4 DOWN with nothing in flight ($(($(date +%s) - t0)) s)"
else
    lab_playbook_failed "$work/drain.log" vm4
    fail drain "the drain playbook failed"
fi
readyz=$(on_vm vm4 "curl -sk https://127.0.0.1/readyz")
if grep -q '"draining"' <<<"$readyz"; then
    pass readyz-draining "vm4's /readyz answers 503 draining"
else
    fail readyz-draining "vm4's /readyz: $readyz"
fi
members=(vm1 vm2 vm3)
write_inventory "${members[@]}"
if lab_playbook "$work/scale-in.log" "$inventory" site.yml --limit lb; then
    pass playbook "ansible-playbook site.yml --limit lb without vm4"
else
    lab_playbook_failed "$work/scale-in.log" lb
    fail playbook "the scale-in playbook run failed"
fi
vm_stop vm4
sleep 4
touch "$work/stop-scale-in"
wait "$load_pid"
figure "scale-in: drained and removed in $(($(date +%s) - t0)) s; load: $(load_report scale-in)"
if [ "$(load_field scale-in 's["errors"]')" = 0 ] && [ -z "$(lb_state vm4)" ]; then
    pass no-error "vm4 left the LB with 0 client errors"
else
    fail no-error "LB still lists vm4: '$(lb_state vm4)'; $(load_report scale-in)"
fi
