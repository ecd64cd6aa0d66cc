#!/usr/bin/env bash
# cluster.sh: a real Corosync + Pacemaker + Redis + Sentinel + HAProxy cluster of 1 to 5
# nodes on one machine, in network namespaces, for `make demo` and the failover drills.
#
#   cluster.sh up [N]              build N nodes (default 3) and return once ready
#   cluster.sh down                tear everything down: idempotent, works from any shell and
#                                  after a failed or killed `up` (needs no more than the fixed
#                                  names: rha-* namespaces and cgroups, and the state dir)
#   cluster.sh exec NODE CMD...    run CMD in nodeN's net+mount+UTS namespaces (and cgroup),
#                                  with REDIS_HA_CONFIG set to the node's redis-ha.conf
#   cluster.sh exec client CMD...  run CMD in the client namespace (HAProxy's)
#   cluster.sh pid NODE [DAEMON]   the holder pid of NODE (nsenter -t PID --net --mount --uts),
#                                  or the pid of DAEMON: corosync pacemakerd redis sentinel sync
#                                  (sync: only with RHA_SYNC_EVERY), haproxy (NODE = client)
#   cluster.sh status              crm_mon -1 -A from node1, HAProxy's server states
#   cluster.sh kill-node NODE      SIGKILL every process of NODE (its cgroup); the namespaces,
#                                  the node's firewall rules and its /run stay, like a crash
#   cluster.sh start-node NODE     start a killed node's daemons again, wait until it is online;
#                                  first `redis-ha ports install --closed`, as the package's
#                                  boot unit does
#   cluster.sh stop-redis NODE     SIGKILL NODE's redis-server (by recorded pid)
#   cluster.sh start-redis NODE    start it again with its config (Sentinel may have rewritten it)
#   cluster.sh stop-sentinel NODE / start-sentinel NODE     the same for redis-sentinel
#   cluster.sh stop-pacemaker NODE     clean Pacemaker shutdown (SIGTERM pacemakerd: the node's
#                                      resources stop, so its ports OPEN), bounded by RHA_TIMEOUT
#   cluster.sh start-pacemaker NODE    start pacemakerd, wait until the node is online
#   cluster.sh restart-pacemaker NODE  both
#   cluster.sh cut NODE PEER...    a network partition: DROP every IPv4 packet between NODE and
#                                  each PEER, both directions, in both nodes' netns (INPUT and
#                                  OUTPUT; established connections stall too: corosync, Redis
#                                  replication, Sentinel). The client still reaches every node.
#                                  Rules in chain RHA-CUT of each node's filter table, jumped to
#                                  from the top of INPUT and OUTPUT, tagged rha-cut (never
#                                  redis-ha*, which the agents and the guard own); chain REDIS-HA
#                                  and the nat rules are left alone. Cumulative, idempotent
#   cluster.sh cut-in NODE PEER... a one-way partition: what each PEER sends NODE is dropped
#                                  (in NODE's INPUT and the PEER's OUTPUT), what NODE sends
#                                  still arrives. Same chain and tag as cut; heal removes it
#   cluster.sh cut-out NODE PEER.. the other way: what NODE sends each PEER is dropped
#   cluster.sh heal                remove every cut on every node (idempotent); `down` needs no
#                                  heal (the rules go with the namespaces)
#   cluster.sh strip               take our setup out of the running cluster, leaving HAProxy's
#                                  checks alone to steer (the baseline of make bench-failover):
#                                  the isolation guard off (its rules removed) and the periodic
#                                  sync stopped, the block clones stopped (their rules removed),
#                                  every Sentinel restarted without our scripts. Idempotent
#
# Layout (the addresses are 10.213.0.x only; nothing touches the host's interfaces or
# firewall):
#   - netns rha-client, 10.213.0.1/24 on bridge rha-br; HAProxy runs there with
#     crm-snippets/haproxy.cfg plus haproxy-extra.cfg.in (stats socket, log to stdout).
#   - netns rha-nodeN, 10.213.0.1N/24 on eth0, a veth into rha-br; in it a holder process
#     (`sleep infinity`) owns a private mount + UTS namespace: hostname nodeN, tmpfs on /run
#     and /dev/shm, the node's own directories bind-mounted over /etc/corosync,
#     /var/lib/{pacemaker,corosync}, /var/log/{pacemaker,corosync} and /var/log/crmsh.
#     corosync -f, pacemakerd, redis-server (6379) and redis-sentinel (26379) run in it,
#     in cgroup <cgroup2>/rha-nodeN; the holders live in <cgroup2>/rha-holders, HAProxy in
#     <cgroup2>/rha-client.
#   - Pacemaker's CLI tools only reach a node from inside both its netns (libqb's abstract
#     sockets) and its mount namespace (libqb's rings in /dev/shm): use `exec`.
#
# State: $RHA_CLUSTER_DIR (default /run/rha-cluster):
#   nodes, cgroup2             the node count, the cgroup2 mount used
#   client/                    haproxy.cfg (extra), haproxy.out (its log), haproxy.pid, haproxy.sock
#   nodeN/                     holder.pid; corosync|pacemakerd|redis|sentinel|sync .pid and .out;
#                              redis.conf, redis.log, sentinel.conf, sentinel.log, redis-ha.conf,
#                              log-corosync/corosync.log, log-pacemaker/pacemaker.log,
#                              log-pacemaker/redis-ha.log (HA_LOGFILE of Sentinel's scripts
#                              and the periodic sync: one summary line per sync; the agents'
#                              start/stop lines are in pacemaker.log, execd's HA_LOGFILE),
#                              sentinel-scripts.conf (what Sentinel's scripts read: a copy of
#                              redis-ha.conf), every daemon with TZ=UTC,
#                              lib-pacemaker/cib/ (the node's CIB), sync-initial.log
#   Inside the nodes the state dir has the same path (re-mounted into their /run).
#
# Environment:
#   RHA_CLUSTER_DIR   state directory (default /run/rha-cluster); not under /dev/shm
#   RHA_TIMEOUT       seconds `up` may take in all, and bound of the other waits (default 60)
#   RHA_SNIPPETS      the crm-snippets directory (default: the repository's)
#   RHA_SYNC_EVERY    e.g. 5s: also run `redis-ha sync --every $RHA_SYNC_EVERY` on every node
#                     once the cluster is up (the periodic reconciliation); default: off
#   RHA_KEEP_ON_FAIL  1: when `up` fails, leave everything running to debug (then `down`)
#   RHA_TOKEN_MS      corosync's totem token in ms (default 3000, corosync's own): a killed
#                     node is seen lost after about token + consensus (1.2 x token)
#
# Needs: root, cgroup2 (optional: without it only namespace members are killed), iproute2,
# util-linux (nsenter, unshare), corosync, pacemaker, crmsh, redis-server, redis-sentinel,
# redis-tools, haproxy, iptables, socat (or python3) for HAProxy's stats socket, and the
# suite installed by `make install` (`up` checks and says so; it does not build).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${RHA_CLUSTER_DIR:-/run/rha-cluster}
TIMEOUT=${RHA_TIMEOUT:-60}
SNIPPETS=${RHA_SNIPPETS:-$REPO/crm-snippets}
SYNC_EVERY=${RHA_SYNC_EVERY:-}
KEEP_ON_FAIL=${RHA_KEEP_ON_FAIL:-0}
TOKEN_MS=${RHA_TOKEN_MS:-3000}

MAX_NODES=5
NET=10.213.0            # node i = $NET.1i, client = $NET.1
CLIENT_NS=rha-client
BRIDGE=rha-br
MARKER=.rha-cluster     # `down` only deletes a state directory that holds this file
DAEMON_PATH=/usr/sbin:/usr/bin:/sbin:/bin
OCF_AGENTS=/usr/lib/ocf/resource.d/redis-ha
# Inside a node: the Sentinel helper's and the periodic sync's log (their HA_LOGFILE),
# NODEDIR/log-pacemaker/redis-ha.log. The agents' lines are in pacemaker.log.
HA_LOG=/var/log/pacemaker/redis-ha.log

# ---------------------------------------------------------------------------------------
# Small helpers

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
START_MS=$(now_ms)
DEADLINE_MS=$((START_MS + TIMEOUT * 1000))

elapsed() { local e=$(($(now_ms) - START_MS)); printf '%d.%d' $((e / 1000)) $((e % 1000 / 100)); }
# Progress lines go to stderr so that stdout stays clean for `pid`, `exec` and `status`.
say() { printf '[%5ss] %s\n' "$(elapsed)" "$*" >&2; }
die() {
    printf 'cluster.sh: %s\n' "$*" >&2
    exit 1
}

node_ip() { echo "$NET.1${1#node}"; }
node_dir() { echo "$STATE/$1"; }
node_count() { cat "$STATE/nodes" 2>/dev/null || echo 0; }
nodes() {
    local i n
    n=$(node_count)
    for ((i = 1; i <= n; i++)); do echo "node$i"; done
}
check_node() {
    if ! [[ $1 =~ ^node[1-9]$ ]] || ((${1#node} > $(node_count))); then
        die "unknown node '$1' (the cluster has node1..node$(node_count))"
    fi
}

# The cgroup2 mount: /sys/fs/cgroup on a pure cgroup2 host, /sys/fs/cgroup/unified in
# the hybrid layout. Empty when there is none (then only namespace members are killed).
cg2_root() { awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts; }
cg_path() {
    local root
    root=$(cg2_root)
    if [[ -n $root ]]; then echo "$root/$1"; fi
}

ns_inode() { stat -L -c %i "$1" 2>/dev/null || true; }

# pid_alive PID: running, not a zombie.
pid_alive() {
    local state
    [[ -n ${1:-} ]] && state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [[ $state != Z ]]
}

# The holder of NODE: alive, and in NODE's network namespace (guards against a stale pid).
holder_pid() {
    local node=$1 pid
    pid=$(cat "$STATE/$node/holder.pid" 2>/dev/null) || die "$node: no holder.pid (is the cluster up?)"
    if ! pid_alive "$pid" || [[ $(ns_inode "/proc/$pid/ns/net") != "$(ns_inode "/run/netns/rha-$node")" ]]; then
        die "$node: holder $pid is gone (the cluster was torn down or died: run down, then up)"
    fi
    echo "$pid"
}

# launch CGROUP OUT PIDFILE CMD...: start CMD in a session of its own (a Ctrl-C of the
# caller does not reach it), in CGROUP (if any), output appended to OUT, pid to PIDFILE.
# sh writes its own pid into cgroup.procs, then execs CMD; nsenter (without --pid) and
# env exec too, so the recorded pid is the daemon's own.
launch() {
    local cg=$1 out=$2 pidfile=$3
    shift 3
    # shellcheck disable=SC2016 # $$ and $1 belong to the inner sh
    setsid sh -c '[ -z "$1" ] || echo $$ >"$1/cgroup.procs" || exit 126; shift; exec "$@"' \
        launch "$cg" "$@" </dev/null >>"$out" 2>&1 &
    echo $! >"$pidfile"
    # Not a job of ours: no "Killed" line from bash when teardown kills it.
    disown $!
}

# in_node NODE CMD...: run CMD (foreground) in NODE's namespaces with a clean environment.
in_node() {
    local node=$1 h
    shift
    h=$(holder_pid "$node")
    nsenter -t "$h" --net --mount --uts -- env -i PATH="$DAEMON_PATH" LANG=C.UTF-8 \
        HOME="$STATE/$node/home" REDIS_HA_CONFIG="$STATE/$node/redis-ha.conf" "$@"
}
in_client() { nsenter --net="/run/netns/$CLIENT_NS" -- "$@"; }

# start_daemon NODE NAME CMD...: a node daemon, recorded in NODE/NAME.pid, output NAME.out.
start_daemon() {
    local node=$1 name=$2 h nd
    shift 2
    nd=$(node_dir "$node")
    h=$(holder_pid "$node")
    launch "$(cg_path "rha-$node")" "$nd/$name.out" "$nd/$name.pid" \
        nsenter -t "$h" --net --mount --uts -- env -i PATH="$DAEMON_PATH" LANG=C.UTF-8 TZ=UTC \
        HOME="$nd/home" "$@"
}

# stop_daemon NODE NAME SIGNAL: signal the recorded pid, wait (bounded) until it is gone.
stop_daemon() {
    local node=$1 name=$2 sig=$3 pidfile pid i
    pidfile=$STATE/$node/$name.pid
    pid=$(cat "$pidfile" 2>/dev/null) || {
        echo "$node: $name is not running (no pid file)" >&2
        return 0
    }
    if pid_alive "$pid"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < TIMEOUT * 10; i++)); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        pid_alive "$pid" && die "$node: $name ($pid) still runs ${TIMEOUT}s after SIG$sig"
    fi
    rm -f "$pidfile"
}

# wait_until WHAT CMD...: poll CMD every 0.2 s until it succeeds; fail at the deadline or
# as soon as a daemon of ours has died.
wait_until() {
    local what=$1
    shift
    until "$@" >/dev/null 2>&1; do
        check_daemons
        (($(now_ms) < DEADLINE_MS)) || die "timed out (RHA_TIMEOUT=${TIMEOUT}s) waiting for $what"
        sleep 0.2
    done
}

# Every recorded daemon must still run; if one died, show the end of its logs and fail.
check_daemons() {
    local f pid name dir log
    for f in "$STATE"/*/*.pid; do
        [[ -e $f ]] || continue
        pid=$(cat "$f")
        pid_alive "$pid" && continue
        name=$(basename "$f" .pid)
        dir=$(dirname "$f")
        echo "cluster.sh: $(basename "$dir") $name (pid $pid) exited; end of its logs:" >&2
        for log in "$dir/$name.out" "$dir/$name.log" "$dir/log-$name/$name.log" \
            "$dir/log-pacemaker/pacemaker.log"; do
            [[ $name == pacemakerd || $log != */log-pacemaker/* ]] || continue
            [[ -s $log ]] && { echo "--- $log" && tail -n 15 "$log"; } >&2
        done
        die "$(basename "$dir") $name died"
    done
}

# HAProxy's stats socket.
hap_cmd() {
    local sock=$STATE/client/haproxy.sock
    if command -v socat >/dev/null; then
        echo "$1" | socat -t 2 - "UNIX-CONNECT:$sock"
    else
        python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()+b"\n")
b=b""
while True:
    d=s.recv(65536)
    if not d: break
    b+=d
sys.stdout.write(b.decode())' "$sock" "$1"
    fi
}

# ---------------------------------------------------------------------------------------
# Building blocks of `up`

# The client namespace with the bridge every node plugs into.
make_client() {
    ip netns add "$CLIENT_NS"
    ip -n "$CLIENT_NS" link set lo up
    ip -n "$CLIENT_NS" link add "$BRIDGE" type bridge
    ip -n "$CLIENT_NS" addr add "$NET.1/24" dev "$BRIDGE"
    ip -n "$CLIENT_NS" link set "$BRIDGE" up
    mkdir -p "$STATE/client"
}

# Runs as root inside the holder's namespaces (nsenter): mounts of one node.
# $1 node, $2 state dir, $3 node dir.
# shellcheck disable=SC2016 # expanded by the inner sh
NODE_MOUNTS='set -eu
node=$1 state=$2 nd=$3
hostname "$node"
# The package directories: the node'"'"'s own (CIB, corosync ring ids, logs, config).
mount -n --bind "$nd/etc-corosync" /etc/corosync
mount -n --bind "$nd/lib-corosync" /var/lib/corosync
mount -n --bind "$nd/log-corosync" /var/log/corosync
mount -n --bind "$nd/lib-pacemaker" /var/lib/pacemaker
mount -n --bind "$nd/log-pacemaker" /var/log/pacemaker
if [ -d /var/log/crmsh ]; then mount -n --bind "$nd/log-crmsh" /var/log/crmsh; fi
# libqb rings and corosync'"'"'s blackbox.
mount -n -t tmpfs -o mode=1777,size=512m rha-shm /dev/shm
# A fresh /run (/var/run links to it): pid files and locks of corosync, xtables, our
# agents (/run/redis-ha/host.lock, /run/resource-agents) must be per node. It is built
# in the node dir, the state dir is mounted into it at its own path (the daemons read
# their configs there), then it is moved over /run.
mount -n -t tmpfs -o mode=0755,size=64m rha-run "$nd/run"
mkdir -m 1777 "$nd/run/lock"
mkdir -m 1755 "$nd/run/resource-agents"
mkdir -m 0750 "$nd/run/crm"
chown hacluster:haclient "$nd/run/crm"
ln -s /dev/shm "$nd/run/shm"
case $state in
/run/*) mkdir -p "$nd/run/${state#/run/}"; mount -n --bind "$state" "$nd/run/${state#/run/}" ;;
esac
# The copies of /run/netns/* (nsfs mounts) would keep every netns that exists now alive
# as long as this node: drop them.
if mountpoint -q /run/netns; then umount -n -R -l /run/netns; fi
mount -n --move "$nd/run" /run
'

# make_node NODE: netns, veth, directories, holder, mounts, REDIRECT rules.
make_node() {
    local node=$1 i=${1#node} ns=rha-$1 nd h d
    nd=$(node_dir "$node")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$CLIENT_NS" link add "veth-$node" type veth peer name eth0 netns "$ns"
    ip -n "$CLIENT_NS" link set "veth-$node" master "$BRIDGE" up
    ip -n "$ns" addr add "$(node_ip "$node")/24" dev eth0
    ip -n "$ns" link set eth0 up

    # Directories, with the owners and modes of Debian's pacemaker and corosync packages.
    mkdir -p "$nd"/{run,home,redis-data,sentinel-data,etc-corosync/uidgid.d,lib-corosync,log-corosync}
    install -d -m 0755 "$nd/lib-pacemaker"
    for d in cib pengine blackbox cores; do
        install -d -m 0750 -o hacluster -g haclient "$nd/lib-pacemaker/$d"
    done
    install -d -m 0770 -o hacluster -g haclient "$nd/log-pacemaker" "$nd/log-pacemaker/bundles"
    install -d -m 0775 -o hacluster -g haclient "$nd/log-crmsh"

    # The holder: `ip netns exec` enters the netns, unshare makes the mount + UTS
    # namespaces (private propagation: nothing mounted in the node reaches the host).
    launch "$(cg_path rha-holders)" "$nd/holder.out" "$nd/holder.pid" \
        ip netns exec "$ns" unshare --mount --uts --propagation private sleep infinity
    h=$(cat "$nd/holder.pid")
    # Wait until the exec chain has arrived at sleep, in namespaces of its own.
    wait_until "$node's holder" holder_ready "$h"
    nsenter -t "$h" --net --mount --uts -- sh -c "$NODE_MOUNTS" sh "$node" "$STATE" "$nd"
    # 6380/6381 -> 6379 (nat REDIRECT), in the node's netns.
    in_node "$node" redis-ha ports install >"$nd/ports-install.log" 2>&1 ||
        die "$node: redis-ha ports install failed: $(cat "$nd/ports-install.log")"
}
holder_ready() {
    [[ $(cat "/proc/$1/comm" 2>/dev/null) == sleep ]] &&
        [[ $(ns_inode "/proc/$1/ns/mnt") != "$(ns_inode /proc/self/ns/mnt)" ]]
}

# One corosync.conf and one authkey for all nodes; a seeded CIB per node.
write_cluster_config() {
    local n=$1 node i conf=$STATE/corosync.conf
    {
        local extra="# (no extra quorum option)"
        if ((n == 2)); then extra="two_node: 1"; fi
        sed -e "s|# @QUORUM_EXTRA@.*|$extra|" -e "s|@TOKEN@|$TOKEN_MS|" "$HERE/corosync.conf.in"
        printf '\nnodelist {\n'
        for ((i = 1; i <= n; i++)); do
            printf '    node {\n        ring0_addr: %s\n        nodeid: %d\n        name: node%d\n    }\n' \
                "$(node_ip "node$i")" "$i" "$i"
        done
        printf '}\n'
    } >"$conf"
    corosync-keygen -k "$STATE/authkey" >/dev/null 2>&1 ||
        dd if=/dev/urandom of="$STATE/authkey" bs=256 count=1 status=none

    # The first election waits dc-deadtime (stock 20 s) for an existing DC: seed every
    # node's CIB with 5 s. Pacemaker accepts a cib.xml without cib.xml.sig (it logs
    # "No on-disk digest present") and writes the signature itself on the next update.
    cibadmin --empty >"$STATE/cib-seed.xml"
    CIB_file=$STATE/cib-seed.xml crm_attribute --type crm_config --name dc-deadtime --update 5s

    for node in $(nodes); do
        install -m 0644 "$conf" "$STATE/$node/etc-corosync/corosync.conf"
        install -m 0400 "$STATE/authkey" "$STATE/$node/etc-corosync/authkey"
        install -m 0600 -o hacluster -g haclient "$STATE/cib-seed.xml" \
            "$STATE/$node/lib-pacemaker/cib/cib.xml"
    done
}

# corosync must answer on its IPC before pacemakerd connects to it.
start_corosync() { start_daemon "$1" corosync corosync -f; }
corosync_ipc_up() { in_node "$1" corosync-cfgtool -s; }
start_pacemaker() {
    # No syslog in a namespace: Pacemaker logs to /var/log/pacemaker/pacemaker.log only.
    # execd sets the agents' HA_LOGFILE to that file (whatever its own environment
    # says): their start/stop lines are there, in HA_LOGFILE's format.
    start_daemon "$1" pacemakerd env PCMK_logfile=/var/log/pacemaker/pacemaker.log \
        PCMK_logfacility=none pacemakerd
}

# Redis on 6379 at the node's address and 127.0.0.1; node2.. replicate node1.
write_redis_config() {
    local node=$1 nd
    nd=$(node_dir "$node")
    {
        echo "# redis-server of $node (tests/cluster/cluster.sh); Sentinel may rewrite it"
        echo "port 6379"
        echo "bind $(node_ip "$node") 127.0.0.1"
        echo "protected-mode no"
        echo "daemonize no"
        echo "dir $nd/redis-data"
        echo "logfile $nd/redis.log"
        echo 'save ""'
        echo "appendonly no"
        # Diskless full sync starts after 5 s by default: start it at once.
        echo "repl-diskless-sync-delay 0"
        [[ $node == node1 ]] || echo "replicaof $(node_ip node1) 6379"
    } >"$nd/redis.conf"
}
start_redis() { start_daemon "$1" redis redis-server "$STATE/$1/redis.conf"; }

# Sentinel: crm-snippets/sentinel.conf plus what a node needs. The helper's scripts
# run with Sentinel's environment, so REDIS_HA_CONFIG points them at the node's config.
write_sentinel_config() {
    local node=$1 nd i n
    nd=$(node_dir "$node")
    n=$(node_count)
    {
        cat "$SNIPPETS/sentinel.conf"
        echo
        echo "# Added by tests/cluster/cluster.sh for $node"
        echo "bind $(node_ip "$node") 127.0.0.1"
        echo "protected-mode no"
        echo "sentinel announce-ip $(node_ip "$node")"
        echo "daemonize no"
        echo "dir $nd/sentinel-data"
        echo "logfile $nd/sentinel.log"
    } >"$nd/sentinel.conf"
    # redis-ha.conf: the snippet with the node map and Sentinel list of this cluster.
    {
        grep -Ev '^[[:space:]]*(sentinel[[:space:]]*=|node[[:space:]])' "$SNIPPETS/redis-ha.conf"
        echo "# Added by tests/cluster/cluster.sh"
        for ((i = 1; i <= n; i++)); do echo "sentinel = $(node_ip "node$i"):26379"; done
        for ((i = 1; i <= n; i++)); do echo "node node$i = $(node_ip "node$i")"; done
    } >"$nd/redis-ha.conf"
    cp "$nd/redis-ha.conf" "$nd/sentinel-scripts.conf"
}
# Sentinel's scripts read sentinel-scripts.conf, a copy of redis-ha.conf: a drill can
# break the scripts alone (the periodic sync reads redis-ha.conf).
start_sentinel() {
    start_daemon "$1" sentinel env REDIS_HA_CONFIG="$STATE/$1/sentinel-scripts.conf" \
        HA_LOGFILE="$HA_LOG" redis-sentinel "$STATE/$1/sentinel.conf"
}
# Niced as crm-snippets/redis-ha-sync.service runs it (Nice=5).
start_sync_every() {
    start_daemon "$1" sync env REDIS_HA_CONFIG="$STATE/$1/redis-ha.conf" \
        HA_LOGFILE="$HA_LOG" nice -n 5 redis-ha sync --every "$SYNC_EVERY"
}

start_haproxy() {
    sed "s|@DIR@|$STATE/client|g" "$HERE/haproxy-extra.cfg.in" >"$STATE/client/haproxy-extra.cfg"
    haproxy -c -q -f "$STATE/client/haproxy-extra.cfg" -f "$SNIPPETS/haproxy.cfg" ||
        die "haproxy -c rejects the configuration"
    launch "$(cg_path rha-client)" "$STATE/client/haproxy.out" "$STATE/client/haproxy.pid" \
        nsenter --net="/run/netns/$CLIENT_NS" -- \
        haproxy -db -f "$STATE/client/haproxy-extra.cfg" -f "$SNIPPETS/haproxy.cfg"
}

# crm_load FILE: `crm configure load update FILE` on node1. crm prints crm_verify's
# warnings (e.g. "Blind faith: not fencing unseen nodes" without fencing): keep them in
# crm.log, show them only when the load fails.
crm_load() {
    local log=$STATE/node1/crm.log
    echo "### crm configure load update $1" >>"$log"
    in_node node1 crm configure load update "$1" >>"$log" 2>&1 || {
        tail -n 20 "$log" >&2
        die "crm configure load update $1 failed"
    }
}

# --- readiness probes (each succeeds or fails; wait_until polls them) ---

redis_replicas_synced() {
    local node
    for node in $(nodes); do
        [[ $node == node1 ]] && continue
        in_client redis-cli -h "$(node_ip "$node")" -p 6379 info replication |
            grep -q '^master_link_status:up' || return 1
    done
}

# Every Sentinel knows every other Sentinel and every replica, synced and up.
sentinels_converged() {
    local node ip want fields
    want=$(($(node_count) - 1))
    for node in $(nodes); do
        ip=$(node_ip "$node")
        fields=$(in_client redis-cli -h "$ip" -p 26379 sentinel master redis-ha |
            paste -d= - -) || return 1
        grep -qx "num-other-sentinels=$want" <<<"$fields" || return 1
        grep -qx "num-slaves=$want" <<<"$fields" || return 1
        grep -qx "flags=master" <<<"$fields" || return 1
        fields=$(in_client redis-cli -h "$ip" -p 26379 sentinel replicas redis-ha |
            paste -d= - -) || return 1
        (($(grep -cx 'master-link-status=ok' <<<"$fields") == want)) || return 1
        (($(grep -cx 'flags=slave' <<<"$fields") == want)) || return 1
    done
}

# From node1: a DC with quorum, every node online and not pending.
pacemaker_up() {
    local xml n
    n=$(node_count)
    xml=$(in_node node1 crm_mon -1 --output-as=xml) || return 1
    grep -q '<current_dc present="true".*with_quorum="true"' <<<"$xml" || return 1
    (($(grep -c '<node name=.* online="true" .*pending="false"' <<<"$xml") == n))
}

# The DC has finished its transition (S_IDLE).
dc_idle() {
    local dc
    dc=$(in_node node1 crmadmin -D -q 2>&1) || return 1
    in_node node1 crmadmin -S "$dc" -q 2>&1 | grep -q S_IDLE
}

# The blocks run exactly where the rules put them for the current redis_role values.
blocks_placed() {
    local node role want_w="" want_r="" got_w got_r
    for node in $(nodes); do
        role=$(in_node node1 crm_attribute --node "$node" --name redis_role --query -q 2>/dev/null) || role=""
        role=${role,,}
        [[ $role == primary ]] || want_w+="$node "
        [[ -z $role || $role == fail ]] && want_r+="$node "
    done
    got_w=$(in_node node1 crm_resource --locate -r RedisLBWriteBlock-clone -Q 2>/dev/null | sort | tr '\n' ' ')
    got_r=$(in_node node1 crm_resource --locate -r RedisLBReadBlock-clone -Q 2>/dev/null | sort | tr '\n' ' ')
    [[ $got_w == "$want_w" && $got_r == "$want_r" ]] && dc_idle
}

# HAProxy: exactly node1 up in redis-write; every node (of the snippet's node1..3) up in
# redis-read.
haproxy_ready() {
    local stat want_r="" i
    stat=$(hap_cmd "show stat" | awk -F, '$2 ~ /^node/ { print $1 "/" $2 "=" $18 }' | sort) || return 1
    for ((i = 1; i <= 3; i++)); do
        if ((i <= $(node_count))); then want_r+="redis-read/node$i=UP"$'\n'; else want_r+="redis-read/node$i=DOWN"$'\n'; fi
    done
    [[ $(grep '^redis-write/' <<<"$stat" | tr '\n' ' ') == \
        "redis-write/node1=UP redis-write/node2=DOWN redis-write/node3=DOWN " ]] &&
        [[ $(grep '^redis-read/' <<<"$stat") == "${want_r%$'\n'}" ]]
}

# ---------------------------------------------------------------------------------------
# Commands

preflight() {
    local c f
    ((EUID == 0)) || die "run as root"
    for c in ip nsenter unshare setsid corosync corosync-keygen pacemakerd crm crm_mon cibadmin \
        crm_attribute crm_resource crmadmin redis-server redis-sentinel redis-cli haproxy iptables redis-ha; do
        command -v "$c" >/dev/null || die "$c is missing (apt-get install corosync pacemaker crmsh redis-server redis-sentinel redis-tools haproxy iptables)"
    done
    for f in "$OCF_AGENTS/RedisLBReadBlock" "$OCF_AGENTS/RedisLBWriteBlock" \
        /usr/lib/redis-ha/sentinel-reconfig /usr/lib/redis-ha/sentinel-notify; do
        [[ -x $f ]] || die "$f is missing: run 'make install' first"
    done
    for f in cluster-properties.crm redis-ha.crm sentinel.conf haproxy.cfg redis-ha.conf; do
        [[ -f $SNIPPETS/$f ]] || die "$SNIPPETS/$f is missing (RHA_SNIPPETS)"
    done
    [[ $STATE == /* && $STATE != / ]] || die "RHA_CLUSTER_DIR must be an absolute path"
    [[ $STATE != /dev/shm* ]] || die "RHA_CLUSTER_DIR must not be under /dev/shm"
    [[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "RHA_TIMEOUT must be a number of seconds"
    [[ $TOKEN_MS =~ ^[1-9][0-9]*$ ]] || die "RHA_TOKEN_MS must be a number of milliseconds"
}

leftovers() {
    local i
    [[ -e $STATE ]] && echo "state directory $STATE"
    ip netns list | awk '{ print $1 }' | grep -x -e "$CLIENT_NS" -e 'rha-node[1-9]' | sed 's/^/netns /' || true
    for i in rha-holders rha-client rha-node{1..9}; do
        [[ -n $(cg_path "$i") && -d $(cg_path "$i") ]] && echo "cgroup $(cg_path "$i")"
    done
    return 0
}

# What the cluster looked like when `up` failed (before the teardown deletes the logs).
diagnose() {
    [[ -e $STATE/node1/holder.pid ]] || return 0
    {
        echo "--- crm_mon -1 -A on node1 at the failure:"
        timeout 5 "$0" exec node1 crm_mon -1 -A 2>&1 | sed -n '/Node List/,$p' || true
        if [[ -S $STATE/client/haproxy.sock ]]; then
            echo "--- HAProxy:"
            hap_cmd "show stat" 2>/dev/null | awk -F, '$2 ~ /^node/ { print "    " $1, $2, $18 }' || true
        fi
    } >&2
}

UP_DONE=0
up_exit() {
    local rc=$?
    trap - EXIT INT TERM HUP
    ((UP_DONE)) && return 0
    if [[ $KEEP_ON_FAIL == 1 ]]; then
        echo "cluster.sh: up failed (exit $rc); RHA_KEEP_ON_FAIL=1: left running, see $STATE, then run: $0 down" >&2
    else
        diagnose
        echo "cluster.sh: up failed (exit $rc): tearing down (RHA_KEEP_ON_FAIL=1 keeps it)" >&2
        teardown || true
    fi
    exit "$rc"
}

cmd_up() {
    local n=${1:-3} node cg left rc
    if ! [[ $n =~ ^[1-9]$ ]] || ((n > MAX_NODES)); then die "up: N must be 1..$MAX_NODES"; fi
    preflight
    left=$(leftovers)
    [[ -z $left ]] || die "a cluster (or its remains) exists; run '$0 down' first:"$'\n'"$left"

    trap up_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    say "up: $n nodes, state in $STATE"
    mkdir -p "$STATE"
    chmod 0755 "$STATE"
    : >"$STATE/$MARKER"
    echo "$n" >"$STATE/nodes"
    cg2_root >"$STATE/cgroup2" || true
    if [[ -n $(cg2_root) ]]; then
        for cg in rha-holders rha-client $(for node in $(nodes); do echo "rha-$node"; done); do
            mkdir -p "$(cg_path "$cg")"
        done
    else
        say "warning: no cgroup2 mount: down kills the members of our namespaces only"
    fi

    make_client
    for node in $(nodes); do make_node "$node"; done
    say "namespaces, mounts and REDIRECT rules of $n nodes ready"

    write_cluster_config "$n"
    for node in $(nodes); do start_corosync "$node"; done
    for node in $(nodes); do
        wait_until "corosync IPC on $node" corosync_ipc_up "$node"
        start_pacemaker "$node"
    done
    say "corosync and pacemakerd started"

    for node in $(nodes); do
        write_redis_config "$node"
        start_redis "$node"
    done
    start_haproxy
    wait_until "redis replicas in sync" redis_replicas_synced
    for node in $(nodes); do
        write_sentinel_config "$node"
        start_sentinel "$node"
    done
    say "redis, sentinel and haproxy started"

    wait_until "Pacemaker: a DC and $n nodes online" pacemaker_up
    say "Pacemaker: DC elected, $n nodes online (cluster up in $(elapsed) s)"

    # No fencing device in the test cluster, so stonith-enabled=false (Pacemaker would
    # start no resource, and crm refuses to load any while it is true). Production keeps
    # fencing on: see crm-snippets/cluster-properties.crm.
    in_node node1 crm_attribute --type crm_config --name stonith-enabled --update false
    crm_load "$SNIPPETS/cluster-properties.crm"
    say "cluster properties loaded (stonith-enabled=false + crm-snippets/cluster-properties.crm)"

    wait_until "every Sentinel to know all Sentinels and synced replicas" sentinels_converged
    say "sentinels converged"
    rc=0
    in_node node1 redis-ha sync >"$STATE/node1/sync-initial.log" 2>&1 || rc=$?
    if ((rc != 0)); then
        cat "$STATE/node1/sync-initial.log" >&2
        die "redis-ha sync on node1 failed with exit $rc (its stderr above)"
    fi
    for node in $(nodes); do
        echo "$node=$(in_node node1 crm_attribute --node "$node" --name redis_role --query -q 2>/dev/null || echo '(unset)')"
    done | paste -sd' ' >"$STATE/roles-initial"
    say "redis-ha sync: $(cat "$STATE/roles-initial")"

    crm_load "$SNIPPETS/redis-ha.crm"
    wait_until "the block clones placed per the rules" blocks_placed
    say "block clones placed: WriteBlock on [$(in_node node1 crm_resource --locate -r RedisLBWriteBlock-clone -Q 2>/dev/null | sort | paste -sd' ')], ReadBlock on [$(in_node node1 crm_resource --locate -r RedisLBReadBlock-clone -Q 2>/dev/null | sort | paste -sd' ')]"

    wait_until "HAProxy: only node1 up in redis-write" haproxy_ready
    say "HAProxy: redis-write has node1 only, redis-read has every node"

    if [[ -n $SYNC_EVERY ]]; then
        for node in $(nodes); do start_sync_every "$node"; done
        say "redis-ha sync --every $SYNC_EVERY started on every node"
    fi
    UP_DONE=1
    trap - EXIT INT TERM HUP
    say "ready: client $NET.1 (HAProxy :6380 reads, :6381 writes), nodes $NET.11$( ((n == 1)) || echo "-1$n"); '$0 down' removes it"
}

# teardown: kill, wait, remove. Works from whatever is left (no state dir needed).
teardown() {
    local names=() name cg i pids f dir
    for i in $(seq 1 9); do names+=("rha-node$i"); done
    names+=("$CLIENT_NS")
    # 1. SIGKILL the cgroups (daemons, their children, the holders, HAProxy) and every
    #    process still inside one of our namespaces (e.g. a drill's `ip netns exec`).
    for ((i = 0; i < 50; i++)); do
        pids=""
        for cg in rha-holders rha-client rha-node{1..9}; do
            cg=$(cg_path "$cg")
            [[ -n $cg && -d $cg ]] || continue
            if [[ -e $cg/cgroup.kill ]]; then
                echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
            else
                xargs -r kill -9 <"$cg/cgroup.procs" 2>/dev/null || true
            fi
            pids+=$(cat "$cg/cgroup.procs" 2>/dev/null)
        done
        for name in "${names[@]}"; do
            [[ -e /run/netns/$name ]] || continue
            f=$(ip netns pids "$name" 2>/dev/null | tr '\n' ' ')
            # shellcheck disable=SC2086 # a list of pids
            [[ -z ${f// /} ]] || kill -9 $f 2>/dev/null || true
            pids+=$f
        done
        [[ -z ${pids//[[:space:]]/} ]] && break
        sleep 0.1
    done
    [[ -z ${pids//[[:space:]]/} ]] || echo "cluster.sh: warning: processes survive: $pids" >&2
    # 2. The cgroups (empty now).
    for cg in rha-holders rha-client rha-node{1..9}; do
        cg=$(cg_path "$cg")
        [[ -n $cg && -d $cg ]] || continue
        for ((i = 0; i < 50; i++)); do
            rmdir "$cg" 2>/dev/null && break
            sleep 0.1
        done
        [[ -d $cg ]] && echo "cluster.sh: warning: cannot remove $cg" >&2
    done
    # 3. The namespaces (veths and the bridge go with them). The mount namespaces went
    #    with their last process; nothing was ever mounted in the host's.
    for name in "${names[@]}"; do
        if ip netns list | awk '{ print $1 }' | grep -qx "$name"; then
            ip netns del "$name" || echo "cluster.sh: warning: cannot delete netns $name" >&2
        fi
    done
    # 4. The state directory, only if it is ours; never across a mount still there.
    if [[ -d $STATE ]]; then
        if [[ -e $STATE/$MARKER ]]; then
            dir=$(realpath "$STATE")
            if awk -v d="$dir/" '{ gsub(/\\040/, " ", $5) } index($5 "/", d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
                echo "cluster.sh: warning: mounts remain under $dir, leaving it" >&2
            else
                rm -rf --one-file-system "$STATE"
            fi
        else
            echo "cluster.sh: warning: $STATE has no $MARKER, not deleting it" >&2
        fi
    fi
}

cmd_down() {
    ((EUID == 0)) || die "run as root"
    teardown
    local left
    left=$(leftovers)
    [[ -z $left ]] || die "down: left behind:"$'\n'"$left"
    say "down: nothing left"
}

cmd_exec() {
    local node=${1:-} h wd=/
    [[ -n $node ]] || die "usage: $0 exec NODE|client CMD..."
    shift
    (($# > 0)) || die "usage: $0 exec NODE|client CMD..."
    [[ -d $PWD ]] && wd=$PWD
    if [[ $node == client ]]; then
        exec nsenter --net="/run/netns/$CLIENT_NS" --wd="$wd" -- "$@"
    fi
    check_node "$node"
    h=$(holder_pid "$node")
    # Join the node's cgroup (kill-node and down catch what CMD leaves running), then
    # become CMD in the node's namespaces. --wd opens the directory before entering.
    local cg
    cg=$(cg_path "rha-$node")
    [[ -z $cg || ! -d $cg ]] || echo $$ >"$cg/cgroup.procs"
    REDIS_HA_CONFIG=$STATE/$node/redis-ha.conf exec nsenter -t "$h" --net --mount --uts --wd="$wd" -- "$@"
}

cmd_pid() {
    local node=${1:-} daemon=${2:-} pid
    [[ -n $node ]] || die "usage: $0 pid NODE [DAEMON]"
    if [[ $node == client ]]; then
        daemon=${daemon:-haproxy}
        pid=$(cat "$STATE/client/$daemon.pid" 2>/dev/null) || pid=""
        pid_alive "$pid" || die "client: $daemon is not running"
        echo "$pid"
        return
    fi
    check_node "$node"
    if [[ -z $daemon ]]; then
        holder_pid "$node"
        return
    fi
    pid=$(cat "$STATE/$node/$daemon.pid" 2>/dev/null) || pid=""
    pid_alive "$pid" || die "$node: $daemon is not running"
    echo "$pid"
}

cmd_status() {
    [[ -e $STATE/nodes ]] || die "no cluster (state directory $STATE missing)"
    echo "=== crm_mon -1 -A (node1)"
    in_node node1 crm_mon -1 -A || true
    echo "=== HAProxy (show stat: proxy server status check)"
    hap_cmd "show stat" | awk -F, '$2 ~ /^node/ { printf "%-12s %-6s %-5s %s\n", $1, $2, $18, $37 }' || true
}

node_online() { in_node "$1" crm_mon -1 --output-as=xml | grep -q "<node name=\"$1\" .* online=\"true\" .*pending=\"false\""; }

cmd_kill_node() {
    local node=$1 cg i name
    check_node "$node"
    cg=$(cg_path "rha-$node")
    if [[ -n $cg && -e $cg/cgroup.kill ]]; then
        echo 1 >"$cg/cgroup.kill"
        for ((i = 0; i < 100; i++)); do
            [[ -z $(cat "$cg/cgroup.procs") ]] && break
            sleep 0.1
        done
        [[ -z $(cat "$cg/cgroup.procs") ]] || die "$node: processes survive cgroup.kill"
    else
        for name in sync sentinel redis pacemakerd corosync; do
            [[ -e $STATE/$node/$name.pid ]] && stop_daemon "$node" "$name" KILL
        done
    fi
    for name in sync sentinel redis pacemakerd corosync; do rm -f "$STATE/$node/$name.pid"; done
    say "$node killed (namespaces kept)"
}

cmd_start_node() {
    local node=$1
    check_node "$node"
    [[ -e $STATE/$node/corosync.pid ]] && die "$node runs (kill-node first)"
    # What the package's redis-ha-ports.service does at boot, before any daemon: both
    # ports refused (the guard's rules) until the guard can confirm this node. A killed
    # primary's Redis comes back a master, and HAProxy's role:master check would send it
    # writes before its blocks or the guard's first round (README, "redis-ha ports").
    in_node "$node" redis-ha ports install --closed >>"$STATE/$node/ports-install.log" 2>&1 ||
        die "$node: redis-ha ports install --closed failed: $(tail -n 5 "$STATE/$node/ports-install.log")"
    start_corosync "$node"
    wait_until "corosync IPC on $node" corosync_ipc_up "$node"
    start_pacemaker "$node"
    start_redis "$node"
    start_sentinel "$node"
    [[ -z $SYNC_EVERY ]] || start_sync_every "$node"
    wait_until "$node online" node_online "$node"
    wait_until "the DC to finish its transition" dc_idle
    say "$node started and online, DC idle"
}

cmd_stop_pacemaker() {
    local node=$1
    check_node "$node"
    stop_daemon "$node" pacemakerd TERM
    say "$node: pacemaker stopped"
}

cmd_start_pacemaker() {
    local node=$1
    check_node "$node"
    [[ -e $STATE/$node/pacemakerd.pid ]] && pid_alive "$(cat "$STATE/$node/pacemakerd.pid")" &&
        die "$node: pacemakerd already runs"
    start_pacemaker "$node"
    wait_until "$node online" node_online "$node"
    wait_until "the DC to finish its transition" dc_idle
    say "$node: pacemaker started, node online, DC idle"
}

# Partitions: our own chain in each node's filter table. The agents and the guard delete
# only rules tagged redis-ha*, and insert their jump to REDIS-HA at the top of INPUT: a cut
# stays whatever they do (REDIS-HA only refuses 6380/6381, which nodes do not use between
# themselves).
CUT_CHAIN=RHA-CUT
CUT_TAG=rha-cut

# Runs in a node's netns (in_node NODE sh -c "$CUT_RULES" sh CHAIN TAG DIRS PEER_IP...):
# the rules for every peer first, then the jumps, so that the node is cut from all peers
# at once. DIRS says which way: "-s -d" both, "-s" what the peers send (a packet from a
# peer only ever passes INPUT here), "-d" what this node sends them (OUTPUT only).
# shellcheck disable=SC2016 # expanded by the inner sh
CUT_RULES='set -eu
ipt() { iptables -w 5 "$@"; }
chain=$1 tag=$2 dirs=$3
shift 3
ipt -S "$chain" >/dev/null 2>&1 || ipt -N "$chain"
for ip in "$@"; do
    for dir in $dirs; do
        ipt -C "$chain" "$dir" "$ip" -m comment --comment "$tag" -j DROP 2>/dev/null ||
            ipt -A "$chain" "$dir" "$ip" -m comment --comment "$tag" -j DROP
    done
done
for from in INPUT OUTPUT; do
    ipt -C "$from" -m comment --comment "$tag" -j "$chain" 2>/dev/null ||
        ipt -I "$from" 1 -m comment --comment "$tag" -j "$chain"
done
'
# The jumps out (as often as they are there), then the chain.
# shellcheck disable=SC2016 # expanded by the inner sh
HEAL_RULES='set -eu
ipt() { iptables -w 5 "$@"; }
chain=$1 tag=$2
ipt -S "$chain" >/dev/null 2>&1 || exit 0
for from in INPUT OUTPUT; do
    while ipt -C "$from" -m comment --comment "$tag" -j "$chain" 2>/dev/null; do
        ipt -D "$from" -m comment --comment "$tag" -j "$chain"
    done
done
ipt -F "$chain"
ipt -X "$chain"
'

# cmd_cut WAY NODE PEER...: WAY is both, in (what the peers send NODE is dropped) or out
# (what NODE sends them). Each side drops the same packets: NODE with its rules, each PEER
# with the mirror image (what NODE receives, a peer sends).
cmd_cut() {
    local way=$1 node=$2 peer ips=() mine theirs
    shift 2
    (($# > 0)) || die "cut: no PEER given"
    case $way in
    both) mine="-s -d" theirs="-s -d" ;;
    in) mine="-s" theirs="-d" ;;
    out) mine="-d" theirs="-s" ;;
    *) die "cut: unknown direction $way" ;;
    esac
    check_node "$node"
    for peer in "$@"; do
        check_node "$peer"
        [[ $peer != "$node" ]] || die "cut: $node cannot be cut from itself"
        ips+=("$(node_ip "$peer")")
    done
    # NODE first: once its rules are in, it is cut from every peer.
    in_node "$node" sh -c "$CUT_RULES" sh "$CUT_CHAIN" "$CUT_TAG" "$mine" "${ips[@]}" ||
        die "cut: iptables in $node failed"
    for peer in "$@"; do
        in_node "$peer" sh -c "$CUT_RULES" sh "$CUT_CHAIN" "$CUT_TAG" "$theirs" "$(node_ip "$node")" ||
            die "cut: iptables in $peer failed"
    done
    say "cut ($way): $node from $*"
}

cmd_heal() {
    local node
    [[ -e $STATE/nodes ]] || die "no cluster (state directory $STATE missing)"
    for node in $(nodes); do
        in_node "$node" sh -c "$HEAL_RULES" sh "$CUT_CHAIN" "$CUT_TAG" ||
            die "heal: iptables in $node failed"
    done
    say "heal: no cut left"
}

# Strip: what makes our setup goes, in the order that never leaves a rule of ours behind:
# the guard's rules stay when its process ends, so it is switched off first (it re-reads
# its config every round and removes its rules); then the sync, the clones, the scripts.
# Sentinel's scripts cannot be changed at run time (deny-scripts-reconfig, the default):
# each Sentinel is stopped, its config loses the two lines, and it starts again.
guard_rules_gone() { ! in_node "$1" iptables -w 5 -S REDIS-HA 2>/dev/null | grep -q 'redis-ha:guard:'; }
blocks_stopped() {
    local node clone
    for clone in RedisLBWriteBlock-clone RedisLBReadBlock-clone; do
        [[ -z $(in_node node1 crm_resource --locate -r "$clone" -Q 2>/dev/null) ]] || return 1
    done
    # The agents remove chain REDIS-HA with their last rule (the guard's are gone already).
    for node in $(nodes); do
        ! in_node "$node" iptables -w 5 -S REDIS-HA >/dev/null 2>&1 || return 1
    done
    dc_idle
}

cmd_strip() {
    local node clone conf
    [[ -e $STATE/nodes ]] || die "no cluster (state directory $STATE missing)"
    for node in $(nodes); do
        conf=$STATE/$node/redis-ha.conf
        grep -qx 'guard = off' "$conf" || echo 'guard = off' >>"$conf"
    done
    for node in $(nodes); do
        if [[ -e $STATE/$node/sync.pid ]]; then
            wait_until "$node: the guard's rules removed" guard_rules_gone "$node"
            stop_daemon "$node" sync TERM
        fi
    done
    say "strip: the guard off, its rules removed, the periodic sync stopped"
    for clone in RedisLBWriteBlock-clone RedisLBReadBlock-clone; do
        in_node node1 crm_resource --resource "$clone" --meta --set-parameter target-role \
            --parameter-value Stopped >/dev/null
    done
    wait_until "the block clones stopped and their rules removed" blocks_stopped
    say "strip: the block clones stopped, no rule of ours on any node"
    for node in $(nodes); do
        stop_daemon "$node" sentinel TERM
        sed -i -E '/^[[:space:]]*sentinel[[:space:]]+(client-reconfig-script|notification-script)[[:space:]]/d' \
            "$STATE/$node/sentinel.conf"
        start_sentinel "$node"
    done
    wait_until "every Sentinel to know all Sentinels and synced replicas" sentinels_converged
    say "strip: every Sentinel restarted without our scripts; HAProxy's checks alone steer"
}

main() {
    local cmd=${1:-}
    (($# > 0)) && shift
    case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    exec) cmd_exec "$@" ;;
    pid) cmd_pid "$@" ;;
    status) cmd_status ;;
    cut) (($# >= 2)) || die "usage: $0 cut NODE PEER..."; cmd_cut both "$@" ;;
    cut-in) (($# >= 2)) || die "usage: $0 cut-in NODE PEER..."; cmd_cut in "$@" ;;
    cut-out) (($# >= 2)) || die "usage: $0 cut-out NODE PEER..."; cmd_cut out "$@" ;;
    heal) cmd_heal ;;
    strip) cmd_strip ;;
    kill-node | start-node | stop-redis | start-redis | stop-sentinel | start-sentinel | \
        stop-pacemaker | start-pacemaker | restart-pacemaker)
        (($# == 1)) || die "usage: $0 $cmd NODE"
        check_node "$1"
        case $cmd in
        kill-node) cmd_kill_node "$1" ;;
        start-node) cmd_start_node "$1" ;;
        stop-redis) stop_daemon "$1" redis KILL ;;
        start-redis) start_redis "$1" ;;
        stop-sentinel) stop_daemon "$1" sentinel KILL ;;
        start-sentinel) start_sentinel "$1" ;;
        stop-pacemaker) cmd_stop_pacemaker "$1" ;;
        start-pacemaker) cmd_start_pacemaker "$1" ;;
        restart-pacemaker) cmd_stop_pacemaker "$1" && cmd_start_pacemaker "$1" ;;
        esac
        ;;
    *)
        sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
    esac
}

main "$@"
