#!/usr/bin/env bash
# smoke.sh: proves cluster.sh. `up`, check the traffic and the cluster, a `cut` and a
# `heal`, `down`, check that nothing is left (namespaces, processes, mounts, cgroups, links,
# state dir, the host's firewall untouched).
#
#   tests/cluster/smoke.sh [ROUNDS]        (default 1; as root; the suite installed)
#   tests/cluster/smoke.sh --interrupt S   start `up`, SIGINT it after S seconds, run `down`,
#                                          check that nothing is left
#   tests/cluster/smoke.sh --sigterm S     the same with SIGTERM
#   tests/cluster/smoke.sh --sigkill S     the same with SIGKILL (no trap runs: only `down`)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
C=$HERE/cluster.sh
STATE=${RHA_CLUSTER_DIR:-/run/rha-cluster}
FAILS=0

ok() { printf '  ok   %s\n' "$*"; }
bad() {
    printf '  FAIL %s\n' "$*"
    FAILS=$((FAILS + 1))
}
# expect WHAT WANT CMD...: CMD's output (stdout+stderr) must match the regex WANT.
expect() {
    local what=$1 want=$2 out
    shift 2
    out=$("$@" 2>&1) || true
    if [[ $out =~ $want ]]; then ok "$what: ${out//$'\n'/ | }"; else bad "$what: got '${out//$'\n'/ | }', want /$want/"; fi
}

cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
host_fw() { { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } | sed '/^#/d' | md5sum; }

# Everything of ours that could be left behind; empty when clean.
remains() {
    ip netns list | awk '{ print $1 }' | grep -E '^rha-(node[0-9]|client)$' | sed 's/^/netns /' || true
    [[ -e $STATE ]] && echo "state dir $STATE"
    if [[ -n $cg2 ]]; then
        find "$cg2" -maxdepth 1 -name 'rha-*' | grep -E '/rha-(node[0-9]|client|holders)$' | sed 's/^/cgroup /' || true
    fi
    # Our tmpfs are named rha-run / rha-shm: any mount namespace still holding one shows.
    grep -l -E ' (rha-run|rha-shm) ' /proc/[0-9]*/mountinfo 2>/dev/null | sed 's/^/mount ns of /' || true
    grep -F "$STATE" /proc/self/mountinfo | sed 's/^/host mount /' || true
    ip -o link | grep -E 'rha-br|veth-node' | sed 's/^/host link /' || true
    # A killed daemon stays a zombie until init reaps it (its parent, `up`, is gone):
    # only a live one counts.
    local p st
    for p in ${PIDS:-}; do
        st=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) || continue
        [[ $st == Z ]] || echo "process $p ($(cat "/proc/$p/comm" 2>/dev/null), state $st)"
    done
    return 0
}

check_clean() {
    local r fw
    local p z=0 i
    r=$(remains)
    if [[ -z $r ]]; then ok "nothing left after down"; else bad "left after down:"$'\n'"$r"; fi
    # Zombies: how long init takes to reap them (informational).
    for ((i = 0; i < 100; i++)); do
        z=0
        for p in ${PIDS:-}; do [[ -e /proc/$p ]] && z=$((z + 1)); done
        ((z == 0)) && break
        sleep 0.1
    done
    if ((z == 0)); then ok "every process of ours reaped (after $((i * 100)) ms)"; else bad "$z zombies of ours after 10 s"; fi
    fw=$(host_fw)
    if [[ $fw == "$FW0" ]]; then ok "host firewall unchanged"; else bad "host firewall changed"; fi
}

# Every pid of ours while it runs (cgroups + namespace members), to prove they are gone.
collect_pids() {
    local p=""
    if [[ -n $cg2 ]]; then p+=$(cat "$cg2"/rha-{node?,client,holders}/cgroup.procs 2>/dev/null | tr '\n' ' '); fi
    for ns in rha-client rha-node{1..5}; do p+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"; done
    echo "$p"
}

round() {
    local t0 t1 i
    echo "== round $1: up"
    t0=$(date +%s%N)
    "$C" up 3
    t1=$(date +%s%N)
    ok "up took $(((t1 - t0) / 1000000)) ms"
    PIDS=$(collect_pids)
    echo "   $(wc -w <<<"$PIDS") processes of ours"

    echo "== round $1: traffic (from the client namespace)"
    expect "node1 :6381 (primary writes)" '^PONG$' "$C" exec client redis-cli -h 10.213.0.11 -p 6381 ping
    for i in 2 3; do
        # redis-cli names the reset of the SYN "Connection refused".
        expect "node$i :6381 refused" 'Connection refused|Connection reset' \
            timeout 3 "$C" exec client redis-cli -h "10.213.0.1$i" -p 6381 ping
    done
    for i in 1 2 3; do
        expect "node$i :6380 (reads)" '^PONG$' "$C" exec client redis-cli -h "10.213.0.1$i" -p 6380 ping
    done
    expect "write through HAProxy" '^OK$' "$C" exec client redis-cli -h 10.213.0.1 -p 6381 set smoke "round$1"
    expect "read through HAProxy" "^round$1\$" "$C" exec client redis-cli -h 10.213.0.1 -p 6380 get smoke
    expect "node2 refuses a local write on :6381" 'Connection refused|Connection reset' \
        timeout 3 "$C" exec node2 redis-cli -p 6381 ping

    echo "== round $1: cluster (crm_mon -1 -A on node1)"
    local mon
    mon=$("$C" exec node1 crm_mon -1 -A)
    if grep -q 'Online: \[ node1 node2 node3 \]' <<<"$mon"; then ok "3 nodes online"; else bad "not 3 nodes online"; fi
    for i in 1 2 3; do
        local want=replica
        ((i == 1)) && want=primary
        if awk -v n="node$i:" '$0 ~ "Node: " n { f = 1; next } f && /redis_role/ { print; exit }' <<<"$mon" | grep -q ": $want"; then
            ok "node$i redis_role=$want"
        else
            bad "node$i redis_role is not $want"
        fi
    done
    expect "WriteBlock runs on node2 node3" '^node2 node3$' \
        bash -c "'$C' exec node1 crm_resource --locate -r RedisLBWriteBlock-clone -Q | sort | paste -sd' '"
    expect "pid node1 is a holder in rha-node1" '^sleep$' bash -c "cat /proc/\$('$C' pid node1)/comm"
    expect "hostname inside node2" '^node2$' "$C" exec node2 hostname
    if "$C" status >/dev/null; then ok "status works"; else bad "status fails"; fi

    echo "== round $1: cut and heal"
    "$C" cut node3 node1 node2 2>/dev/null
    expect "cut: node3 -> node1" '^unreachable$' reach node3 10.213.0.11
    expect "cut: node1 -> node3" '^unreachable$' reach node1 10.213.0.13
    expect "cut: node1 -> node2 untouched" '^reached$' reach node1 10.213.0.12
    expect "cut: client -> node3 :6380" '^PONG$' "$C" exec client redis-cli -h 10.213.0.13 -p 6380 ping
    "$C" heal 2>/dev/null
    expect "heal: node3 -> node1" '^reached$' reach node3 10.213.0.11
    expect "heal again (idempotent)" 'no cut left' "$C" heal
    expect "heal: no RHA-CUT rule left on node3" '^0$' \
        bash -c "'$C' exec node3 iptables -S | grep -c RHA-CUT || true"

    echo "== round $1: down"
    "$C" down
    check_clean
}

# reach NODE IP: whether NODE gets a PONG from the Redis at IP within 2 s.
reach() {
    if timeout 2 "$C" exec "$1" redis-cli -h "$2" -p 6379 ping 2>/dev/null | grep -q PONG; then
        echo reached
    else
        echo unreachable
    fi
}

interrupted() {
    local sig=$1 after=$2 pid rc=0
    echo "== up, $sig after ${after}s, then down"
    # Job control on: `up` runs in a process group of its own with the default signal
    # dispositions (without it, a background job ignores SIGINT), and the signal goes to
    # the whole group, as a Ctrl-C in a terminal does.
    set -m
    "$C" up 3 &
    pid=$!
    set +m
    sleep "$after"
    PIDS=$(collect_pids)
    kill "-$sig" -- "-$pid" 2>/dev/null || true
    wait "$pid" || rc=$?
    echo "   up exited with $rc; $(wc -w <<<"$PIDS") processes of ours seen before the signal"
    "$C" down
    check_clean
}

((EUID == 0)) || { echo "smoke.sh: run as root" >&2; exit 1; }
FW0=$(host_fw)
case ${1:-} in
--interrupt) interrupted INT "${2:-5}" ;;
--sigterm) interrupted TERM "${2:-5}" ;;
--sigkill) interrupted KILL "${2:-5}" ;;
*) for ((r = 1; r <= ${1:-1}; r++)); do round "$r"; done ;;
esac
if ((FAILS)); then
    echo "smoke: $FAILS failure(s)"
    exit 1
fi
echo "smoke: all ok"
