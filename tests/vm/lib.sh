# shellcheck shell=bash
# Helpers shared by the VM suite (tests/vm/run) and the cluster suite (tests/cluster/run),
# in the manner of systemd's test/units/util.sh: a suite sources this file, builds its
# lab with the calls below, then sources one file per scenario whose checks are named.
#
# The lab: Debian 12 roots (tests/vm/build-root, one cached root shared by both suites)
# overlaid once per VM and booted with `systemd-nspawn -b`, so systemd is PID 1 of each VM.
# Every VM lives in a network namespace this library creates, reached from the host over a
# veth pair (point-to-point, the VM suite) or over a bridge (one private network, the
# cluster suite). Nothing binds outside those namespaces and the host's own veth/bridge
# ends. Everything registered here is torn down on exit, after a failure or Ctrl-C too.
#
# Contract for a suite:
#   lab_init NAME LOCKFILE   sets $work, $run_id, traps; takes LOCKFILE (one run per subnet)
#   ...lab_* / vm_* calls...
#   lab_scenario FILE        sources FILE; its checks are reported as "NN-name: check"
# and at exit the library prints the duration and "N passed, N failed" and exits 1 when a
# check failed or none passed.
# Every function returns non-zero on failure instead of exiting, except die.

lab_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$lab_here/../.." && pwd)

passed=0
failed=0
# The scenario being run, prefixed to each check's name.
lab_current=setup
declare -A vm_ip=() vm_ns=() vm_pid=() vm_dir=() vm_index=()
lab_links=()
lab_netns=()

log() { printf '[%s %s] %s\n' "$lab_name" "$(date -u +%H:%M:%S)" "$*" >&2; }
# pass/fail CHECK DETAIL...: one named check's outcome.
pass() {
    passed=$((passed + 1))
    local name=$1
    shift
    printf 'PASS %s: %s%s\n' "$lab_current" "$name" "${*:+: $*}"
}
fail() {
    failed=$((failed + 1))
    local name=$1
    shift
    printf 'FAIL %s: %s%s\n' "$lab_current" "$name" "${*:+: $*}"
}
die() {
    fail "${1:-fatal}" "${*:2}"
    exit 1
}
# A figure for the report: printed as "FIGURE scenario: text" so it can be grepped.
figure() { printf 'FIGURE %s: %s\n' "$lab_current" "$*"; }

# lab_init NAME LOCKFILE: a fresh work directory and run id; one run per LOCKFILE at a time.
lab_init() {
    lab_name=$1
    # Host-side interface names: one letter of the suite, a kind letter, the run id and the
    # VM's index ("vh12345i1"), within the kernel's 15 characters.
    lab_tag=${1:0:1}
    run_id=$$
    lab_started=$(date +%s)
    work=$(mktemp -d "/tmp/hashd-$lab_name.$run_id.XXXX")
    trap lab_teardown EXIT
    trap 'exit 130' INT TERM
    [ "$(id -u)" -eq 0 ] || die preconditions "the $lab_name suite needs root (network namespaces, nspawn)"
    exec 9>"$2"
    flock -w 3600 9 || die preconditions "another run holds $2"
    # The suite's own time, not the wait for another run's lock.
    lab_started=$(date +%s)
}

# lab_require TOOL...: each must be on PATH (scripts/install-deps installs them).
lab_require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die preconditions "missing $tool (scripts/install-deps installs it)"
    done
}

# lab_root: the cached Debian root ($lab_root), built on first use.
lab_root() {
    lab_root=$("$lab_here/build-root") || die preconditions "building the Debian root failed"
    log "root: $lab_root"
}

# lab_keys: an SSH key and known_hosts made for this run only.
lab_keys() {
    ssh-keygen -q -t ed25519 -N '' -C "hashd-$lab_name-$run_id" -f "$work/id_ed25519"
    : >"$work/known_hosts"
    # One SSH connection per VM, reused by every on_vm (a check polls a VM many times).
    ssh_opts=(-i "$work/id_ed25519" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes
        -o BatchMode=yes -o ConnectTimeout=3 -o LogLevel=ERROR
        -o ServerAliveInterval=2 -o ServerAliveCountMax=2
        -o ControlMaster=auto -o ControlPath="$work/ssh-%h" -o ControlPersist=120s)
}

# vm_prepare NAME IP: the VM's overlay root (identity, SSH key) and its empty namespace.
# IP is the address the harness reaches it at; the network is wired by net_* below.
vm_prepare() {
    local name=$1 ip=$2 dir=$work/vm-$1
    vm_ip[$name]=$ip
    vm_ns[$name]="hashd$lab_name-$run_id-$name"
    vm_dir[$name]=$dir
    # Kept when the caller set it (tests/gce/vmctl makes one VM per process).
    vm_index[$name]=${vm_index[$name]:-${#vm_index[@]}}
    mkdir -p "$dir/upper" "$dir/work" "$dir/root"
    mount -t overlay overlay -o "lowerdir=$lab_root,upperdir=$dir/upper,workdir=$dir/work" "$dir/root" ||
        return 1
    echo "$name" >"$dir/root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >"$dir/root/etc/hosts"
    install -d -m 0700 "$dir/root/root/.ssh"
    install -m 0600 "$work/id_ed25519.pub" "$dir/root/root/.ssh/authorized_keys"
    # One host key, ed25519: making RSA keys for six VMs takes minutes on a busy machine.
    ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$dir/root/etc/ssh/ssh_host_ed25519_key"
    echo "HostKey /etc/ssh/ssh_host_ed25519_key" >"$dir/root/etc/ssh/sshd_config.d/10-lab-hostkey.conf"
    echo "$ip $(cut -d' ' -f1,2 "$dir/root/etc/ssh/ssh_host_ed25519_key.pub")" >>"$work/known_hosts"
    ip netns add "${vm_ns[$name]}" || return 1
    lab_netns+=("${vm_ns[$name]}")
    ip -n "${vm_ns[$name]}" link set lo up
}

# net_p2p NAME HOST_IP/PREFIX VM_IP/PREFIX: a veth pair host <-> VM (eth0), default route
# to the host.
net_p2p() {
    local name=$1 ns=${vm_ns[$1]} host_if="${lab_tag}h${run_id}i${vm_index[$1]}"
    ip link add "$host_if" type veth peer name eth0 netns "$ns" || return 1
    lab_links+=("$host_if")
    ip addr add "$2" dev "$host_if"
    ip link set "$host_if" up
    ip -n "$ns" addr add "$3" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "${2%/*}"
}

# net_bridge BRIDGE HOST_IP/PREFIX: a bridge on the host (the private network), with the
# host's address on it (the harness and ansible-playbook reach the VMs through it).
net_bridge() {
    ip link add "$1" type bridge || return 1
    lab_links+=("$1")
    ip addr add "$2" dev "$1"
    ip link set "$1" up
}

# net_on_bridge NAME BRIDGE VM_IP/PREFIX GATEWAY: the VM's eth0 plugged into BRIDGE.
net_on_bridge() {
    local name=$1 ns=${vm_ns[$1]} host_if="${lab_tag}b${run_id}i${vm_index[$1]}"
    ip link add "$host_if" type veth peer name eth0 netns "$ns" || return 1
    lab_links+=("$host_if")
    ip link set "$host_if" master "$2"
    ip link set "$host_if" up
    ip -n "$ns" addr add "$3" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$4"
}

# net_client NS PEER_NAME CLIENT_IP/PREFIX PEER_IP/PREFIX [EXTRA_CLIENT_IP...]: a client
# namespace NS linked to VM PEER_NAME only (the VM's eth1): an outside client.
net_client() {
    local ns=$1 peer=$2 if="${lab_tag}c${run_id}"
    ip netns add "$ns" || return 1
    lab_netns+=("$ns")
    ip link add "$if" netns "$ns" type veth peer name eth1 netns "${vm_ns[$peer]}" || return 1
    ip -n "$ns" addr add "$3" dev "$if"
    local extra
    for extra in "${@:5}"; do ip -n "$ns" addr add "$extra" dev "$if"; done
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$if" up
    ip -n "${vm_ns[$peer]}" addr add "$4" dev eth1
    ip -n "${vm_ns[$peer]}" link set eth1 up
}

# vm_boot NAME: systemd-nspawn -b in the VM's namespace, in the background ($vm_pid).
vm_boot() {
    local name=$1 dir=${vm_dir[$1]}
    # No systemd on the host: no machined (--register=no), no scope via D-Bus (--keep-unit).
    # CAP_NET_ADMIN (within the VM's own namespace): nftables and fail2ban need it.
    systemd-nspawn --quiet --register=no --keep-unit --boot --console=passive \
        --capability=CAP_NET_ADMIN \
        --machine="hashd$lab_name$run_id-$name" --hostname="$name" \
        --network-namespace-path="/run/netns/${vm_ns[$name]}" \
        -D "$dir/root" </dev/null >>"$dir/console.log" 2>&1 &
    vm_pid[$name]=$!
}

# vm_kill NAME: the VM dies at once, no shutdown: SIGKILL to its PID 1 (the kernel then kills
# every process of its PID namespace) and to nspawn. SIGKILL to nspawn alone is not enough:
# the VM's systemd outlives it, reparented to the host's PID 1. Its disk (the overlay) and
# network namespace stay.
vm_kill() {
    local pid=${vm_pid[$1]} init
    init=$(pgrep -P "$pid" | head -1)
    [ -n "$init" ] && kill -KILL "$init" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # The namespace's processes are gone once its init is reaped.
    for _ in $(seq 1 40); do [ -z "$init" ] || ! kill -0 "$init" 2>/dev/null && break; sleep 0.25; done
    vm_pid[$1]=""
    return 0
}

# vm_stop NAME: clean poweroff (SIGTERM makes nspawn ask the VM's systemd), SIGKILL after 30 s.
vm_stop() {
    local pid=${vm_pid[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    vm_pid[$1]=""
}

# on_vm NAME CMD...: runs CMD as root in the VM over SSH.
on_vm() {
    local name=$1
    shift
    # The command is the caller's, expanded here and run there (as ssh does).
    # shellcheck disable=SC2029
    ssh "${ssh_opts[@]}" "root@${vm_ip[$name]}" "$@"
}

# vm_wait_up NAME: waits (60 s at most) for sshd, then for systemd to finish booting.
vm_wait_up() {
    local name=$1 up=0
    for _ in $(seq 1 120); do
        if on_vm "$name" true 2>/dev/null; then up=1; break; fi
        kill -0 "${vm_pid[$name]}" 2>/dev/null || break
        sleep 0.5
    done
    if [ "$up" -ne 1 ]; then
        tail -20 "${vm_dir[$name]}/console.log" >&2
        return 1
    fi
    on_vm "$name" 'systemctl is-system-running --wait >/dev/null' || true
}

# lab_playbook LOG INVENTORY PLAYBOOK [ARGS...]: the operator's command, from ansible/ so
# that ansible/ansible.cfg applies. Output in LOG.
lab_playbook() {
    local out=$1 inventory=$2
    shift 2
    (cd "$repo/ansible" && ANSIBLE_NOCOLOR=1 ansible-playbook -i "$inventory" "$@") >"$out" 2>&1
}

# lab_playbook_failed LOG NAME...: prints the fatal tasks of LOG and, on each VM NAME, the
# failed units and the units a fatal task names ("Unable to restart service X"), with their
# journals (what to look at when a playbook run failed). A unit that failed to start and
# is in Restart='s wait is not "failed" yet, hence the named units too.
lab_playbook_failed() {
    local out=$1 name named
    shift
    grep -B2 -A10 'fatal:' "$out" | head -60
    named=$(grep -oE 'service [A-Za-z0-9@_.-]+\.service' "$out" | sort -u | cut -d' ' -f2 | tr '\n' ' ')
    for name in "$@"; do
        echo "--- $name: failed units${named:+ and $named}"
        # shellcheck disable=SC2016 # expanded by the VM's shell, not this one
        on_vm "$name" 'for u in $(systemctl --failed --no-legend --plain | cut -d" " -f1) '"$named"'; do systemctl status --no-pager -n 0 "$u" | head -5; journalctl -u "$u" -n 15 --no-pager; done' 2>&1 | tail -60
    done
}

# lab_playbook_unchanged LOG: true when every host of LOG's recap has changed=0.
lab_playbook_unchanged() {
    local recap
    recap=$(sed -n '/PLAY RECAP/,/^$/p' "$1")
    [ -n "$recap" ] && ! grep -q 'changed=[1-9]' <<<"$recap"
}

# lab_scenario FILE: runs one scenario file in this shell; its checks are named after it.
lab_scenario() {
    lab_current=$(basename "$1" .sh)
    log "scenario $lab_current"
    # shellcheck source=/dev/null
    source "$1"
    lab_current=teardown
}

# lab_keep: with HASHD_VM_KEEP=1, leaves the lab running until Ctrl-C.
lab_keep() {
    [ "${HASHD_VM_KEEP:-0}" = 1 ] || return 0
    local name
    echo "VMs kept (Ctrl-C tears down):"
    for name in "${!vm_ip[@]}"; do
        echo "  $name: ssh -i $work/id_ed25519 -o UserKnownHostsFile=$work/known_hosts root@${vm_ip[$name]}"
    done
    while true; do sleep 60; done
}

lab_teardown() {
    local rc=$? name dir link ns
    trap - EXIT INT TERM
    lab_current=teardown
    log "tearing down"
    # What a suite made outside these arrays (tests/gce/run: the stand-in's VMs) goes first.
    if declare -F lab_before_teardown >/dev/null; then lab_before_teardown; fi
    for name in "${!vm_pid[@]}"; do
        [ -n "${vm_pid[$name]}" ] && kill -TERM "${vm_pid[$name]}" 2>/dev/null
    done
    for name in "${!vm_pid[@]}"; do vm_stop "$name"; done
    for name in "${!vm_dir[@]}"; do
        dir=${vm_dir[$name]}
        if mountpoint -q "$dir/root"; then
            umount "$dir/root" 2>/dev/null || umount -l "$dir/root" || true
        fi
    done
    for ns in "${lab_netns[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    for link in "${lab_links[@]}"; do ip link del "$link" 2>/dev/null || true; done
    rm -rf "$work"
    echo "$lab_name suite duration: $(($(date +%s) - lab_started))s"
    echo "$passed passed, $failed failed"
    if [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ]; then exit 1; fi
    exit "$rc"
}
