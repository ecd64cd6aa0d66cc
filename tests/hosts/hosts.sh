#!/usr/bin/env bash
# hosts.sh: real Debian 12 hosts with systemd as PID 1 (systemd-nspawn containers) on one
# machine, deployed with the Ansible role deploy/ansible/roles/redis_ha, then drilled.
# `make test-hosts` runs `hosts.sh test`. The recipe is ../shared/HOSTS.md's.
#
#   hosts.sh test          everything: host tools, rootfs (cached), hosts up, the role (twice),
#                          the drills, tear-down (also on failure; RHA_HOSTS_KEEP=1 keeps them)
#   hosts.sh rootfs        only build (or find) the cached rootfs tarball
#   hosts.sh down          tear down whatever a previous run left (recorded PIDs, names)
#
# Layout (addresses 10.213.50.x only; the machine's own interfaces, routes, forwarding and
# firewall are never touched):
#   - bridge rha-hbr0 10.213.50.1/24 in the machine's namespace; tinyproxy listens on
#     10.213.50.1:3128 only, and is the hosts' only way to the Debian mirror (apt);
#   - hosts rha-h1..3 (10.213.50.11-13: Corosync, Pacemaker, Redis, Sentinel, redis-ha) and
#     rha-lb (10.213.50.20: HAProxy, the drills' clients), each in netns rha-<name> with a
#     veth (machine end rha-<name>-v on the bridge, eth0 inside), booted by systemd-nspawn
#     from cgroups made for it (the machine has no systemd), detached, its PID recorded; a
#     loop restarts it when it exits 133 (a `systemctl reboot` inside);
#   - commands inside: nsenter into the container's PID 1; Ansible over ssh as root.
#
# State: $RHA_HOSTS_DIR (default /var/tmp/rha-hosts), removed at tear-down.
# Cache: $RHA_HOSTS_CACHE (default /var/cache/rha-hosts): the rootfs tarball, keyed by
# what goes into it. The big cluster packages are pre-installed there to save time; the
# role installs them itself all the same (apt, idempotent) and would on a bare host.
#
# Environment: RHA_HOSTS_DEB (the .deb to deploy; default target/debian/ of this
# checkout), RHA_HOSTS_KEEP=1 (leave the hosts running at the end, then `hosts.sh down`),
# RHA_HOSTS_DRILLS (default "acl,a,b,c,a2,d"), RHA_HOSTS_ACL (default 1: the role's ACL
# mode with every user, passwords made per run, redis_ha_sentinel_password too; the
# clients authenticate as an application user, the checks as an admin user; 0: no
# password, as before), RHA_REDIS_PASSWORD (deploy with redis_ha_redis_password set to
# it instead of the ACL mode; the drills' clients and checks authenticate).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${RHA_HOSTS_DIR:-/var/tmp/rha-hosts}
CACHE=${RHA_HOSTS_CACHE:-/var/cache/rha-hosts}
KEEP=${RHA_HOSTS_KEEP:-0}
# The last run's logs (role runs, client reports, each host's journal): kept after tear-down.
LOGS=${RHA_HOSTS_LOGS:-/var/tmp/rha-hosts-logs}
DRILLS=${RHA_HOSTS_DRILLS:-acl,a,b,c,a2,d}
# ACL mode by default (the production-like setup); a Redis password instead replaces it.
if [[ -n ${RHA_REDIS_PASSWORD:-} ]]; then ACL=${RHA_HOSTS_ACL:-0}; else ACL=${RHA_HOSTS_ACL:-1}; fi
# This run's passwords (ACL mode), printable ASCII as the role wants.
secret() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
declare -A ACL_PW=()
for u in repl sentinel helper haproxy app admin sentinel-default; do ACL_PW[$u]=$(secret); done
# The drills' clients (an application user) and checks (an admin user) authenticate.
if ((ACL)); then
    APP_USER=rha-app APP_PASSWORD=${ACL_PW[app]}
    CHECK_AUTH=(--user rha-admin -a "${ACL_PW[admin]}")
elif [[ -n ${RHA_REDIS_PASSWORD:-} ]]; then
    APP_USER='' APP_PASSWORD=$RHA_REDIS_PASSWORD
    CHECK_AUTH=(-a "$RHA_REDIS_PASSWORD")
else
    APP_USER='' APP_PASSWORD=''
    CHECK_AUTH=()
fi
APP_AUTH=(${APP_USER:+--user "$APP_USER"} ${APP_PASSWORD:+-a "$APP_PASSWORD"})
ANSIBLE_DIR=$REPO/deploy/ansible

NET=10.213.50
BRIDGE=rha-hbr0
PROXY_PORT=3128
CLUSTER_HOSTS=(rha-h1 rha-h2 rha-h3)
LB_HOST=rha-lb
ALL_HOSTS=("${CLUSTER_HOSTS[@]}" "$LB_HOST")
MARKER=.rha-hosts
SUITE=bookworm
PATH_IN=/usr/sbin:/usr/bin:/sbin:/bin

# What the rootfs holds; a change of either list (or of this version) makes a new tarball.
ROOTFS_VERSION=1
BASE_PKGS=systemd,systemd-sysv,dbus,openssh-server,python3,python3-apt,iproute2,iputils-ping,procps,ca-certificates,less
# The big ones, pre-installed to save minutes; the role installs them again (a no-op here).
PRE_PKGS="corosync pacemaker pacemaker-cli-utils redis-server redis-sentinel redis-tools iptables"

# ---------------------------------------------------------------------------------------
# Logging and timing

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
T0=$(now_ms)
secs() { local e=$1; printf '%d.%d' $((e / 1000)) $((e % 1000 / 100)); }
say() { printf '[%6ss] %s\n' "$(secs $(($(now_ms) - T0)))" "$*" >&2; }
die() {
    printf '[%6ss] FAIL: %s\n' "$(secs $(($(now_ms) - T0)))" "$*" >&2
    exit 1
}
# Figures, printed again in the summary at the end (a file: drills run in subshells).
FIGFILE=$(mktemp /tmp/rha-hosts-figures.XXXXXX)
figure() {
    echo "$*" >>"$FIGFILE"
    say "figure: $*"
}
STEP_NAME='' STEP_T=0
step() {
    step_end
    STEP_NAME=$* STEP_T=$(now_ms)
    say "== $STEP_NAME"
}
step_end() {
    if [[ -n $STEP_NAME ]]; then
        say "   ($STEP_NAME: $(secs $(($(now_ms) - STEP_T))) s)"
        STEP_NAME=''
    fi
}

host_ip() {
    case $1 in
    rha-h[1-9]) echo "$NET.1${1#rha-h}" ;;
    "$LB_HOST") echo "$NET.20" ;;
    *) die "unknown host $1" ;;
    esac
}
pid_alive() {
    local st
    [[ -n ${1:-} ]] && st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [[ $st != Z ]]
}

# ---------------------------------------------------------------------------------------
# Tools on the machine

host_tools() {
    local missing=() c
    for c in debootstrap:debootstrap systemd-nspawn:systemd-container tinyproxy:tinyproxy-bin \
        ansible-playbook:ansible-core ssh:openssh-client ssh-keygen:openssh-client nsenter:util-linux; do
        command -v "${c%%:*}" >/dev/null || missing+=("${c#*:}")
    done
    if ((${#missing[@]})); then
        say "installing on the machine: ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# ---------------------------------------------------------------------------------------
# The cached rootfs tarball

rootfs_key() {
    printf '%s\n' "$ROOTFS_VERSION" "$SUITE" "$BASE_PKGS" "$PRE_PKGS" "$(mirror_url)" | sha256sum | cut -c1-12
}
mirror_url() {
    awk '/^URIs:/ && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
        true
}
rootfs_tarball() { echo "$CACHE/rootfs-$SUITE-$(rootfs_key).tar"; }

build_rootfs() {
    local tar mirror tmp r
    tar=$(rootfs_tarball)
    if [[ -s $tar ]]; then
        say "rootfs tarball cached: $tar ($(du -m "$tar" | cut -f1) MiB)"
        return 0
    fi
    mirror=$(mirror_url)
    [[ -n $mirror ]] || mirror=http://deb.debian.org/debian
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "$CACHE/build.XXXXXX")
    r=$tmp/rootfs
    say "debootstrap $SUITE from $mirror into $r"
    debootstrap --variant=minbase --include="$BASE_PKGS" "$SUITE" "$r" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
        tail -n 20 "$tmp/debootstrap.log" >&2
        rm -rf "$tmp"
        die "debootstrap failed"
    }
    # The machine's apt sources, so the hosts see the same archive (snapshot or not).
    rm -f "$r/etc/apt/sources.list"
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        cp /etc/apt/sources.list.d/debian.sources "$r/etc/apt/sources.list.d/"
    else
        echo "deb $mirror $SUITE main" >"$r/etc/apt/sources.list"
    fi
    say "pre-installing into the rootfs: $PRE_PKGS"
    cp /etc/resolv.conf "$r/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
    chmod 0755 "$r/usr/sbin/policy-rc.d"
    # A private mount namespace: /proc and /dev for the maintainer scripts, gone after.
    # shellcheck disable=SC2086 # the package list splits on purpose
    unshare --mount --propagation private sh -c '
        set -e
        r=$1; shift
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            apt-get update -q
        chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "$@"
        chroot "$r" apt-get clean
    ' sh "$r" $PRE_PKGS >"$tmp/apt.log" 2>&1 || {
        tail -n 30 "$tmp/apt.log" >&2
        rm -rf "$tmp"
        die "pre-installing the packages into the rootfs failed"
    }
    rm -f "$r/usr/sbin/policy-rc.d" "$r/etc/resolv.conf"
    rm -rf "$r/var/lib/apt/lists/"*
    # First-boot identity: a new machine-id and new ssh host keys per host.
    : >"$r/etc/machine-id"
    rm -f "$r/etc/ssh/ssh_host_"*
    cat >"$r/etc/systemd/system/rha-ssh-keygen.service" <<'EOF'
[Unit]
Description=Generate the ssh host keys at first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
EOF
    ln -sf /etc/systemd/system/rha-ssh-keygen.service "$r/etc/systemd/system/multi-user.target.wants/"
    ln -sf /lib/systemd/system/systemd-networkd.service "$r/etc/systemd/system/multi-user.target.wants/"
    say "writing $tar"
    tar --numeric-owner --xattrs -C "$r" -cf "$tar.part" .
    mv "$tar.part" "$tar"
    rm -rf "$tmp"
    say "rootfs tarball: $tar ($(du -m "$tar" | cut -f1) MiB)"
}

# ---------------------------------------------------------------------------------------
# Network and proxy

# detached CMD...: exec CMD with every descriptor above 2 closed, so a daemon of ours
# never inherits the caller's lock (`flock /tmp/rha-cluster.lock make test-hosts`) and
# cannot hold it after a failed run.
detached() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        ((fd > 2)) && eval "exec $fd>&-"
    done
    exec "$@"
}

net_up() {
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    cat >"$STATE/tinyproxy.conf" <<EOF
Listen $NET.1
Port $PROXY_PORT
Allow $NET.0/24
Timeout 600
MaxClients 64
LogLevel Warning
LogFile "$STATE/tinyproxy.log"
EOF
    detached tinyproxy -d -c "$STATE/tinyproxy.conf" >>"$STATE/tinyproxy.out" 2>&1 &
    echo $! >"$STATE/tinyproxy.pid"
    disown $!
}

# ---------------------------------------------------------------------------------------
# Hosts

cg_dirs() { echo "/sys/fs/cgroup/systemd/$1" "/sys/fs/cgroup/unified/$1"; }

prepare_host() {
    local h=$1 ip d ns=rha-$1 veth=$1-v
    ip=$(host_ip "$h")
    d=$STATE/$h/root
    mkdir -p "$d"
    tar --numeric-owner --xattrs -C "$d" -xf "$(rootfs_tarball)"
    echo "$h" >"$d/etc/hostname"
    {
        echo "127.0.0.1 localhost"
        for o in "${ALL_HOSTS[@]}"; do echo "$(host_ip "$o") $o"; done
    } >"$d/etc/hosts"
    cat >"$d/etc/systemd/network/10-eth0.network" <<EOF
[Match]
Name=eth0

[Network]
Address=$ip/24
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
    echo "Acquire::http::Proxy \"http://$NET.1:$PROXY_PORT\";" >"$d/etc/apt/apt.conf.d/90rha-proxy"
    install -d -m 0700 "$d/root/.ssh"
    install -m 0600 "$STATE/ssh/id_ed25519.pub" "$d/root/.ssh/authorized_keys"

    for c in $(cg_dirs "$h"); do mkdir -p "$c"; done
}

# A new network namespace for every boot of HOST, as a real reboot starts with an empty
# firewall: the REDIRECT rules must come back from the host's own units, not survive
# in a namespace that outlived the boot. Run by the boot loop before each nspawn.
# shellcheck disable=SC2016 # expanded by the boot loop
FRESH_NETNS='
    ip netns del "$ns" 2>/dev/null
    ip link del "$h-v" 2>/dev/null
    ip netns add "$ns" &&
        ip link add "$h-v" type veth peer name "$ns-eth0" &&
        ip link set "$h-v" master '"$BRIDGE"' up &&
        ip link set "$ns-eth0" netns "$ns" &&
        ip -n "$ns" link set "$ns-eth0" name eth0 || exit 90
'


# The boot loop: its own cgroups, nspawn in the foreground, again while it exits 133.
boot_host() {
    local h=$1
    # shellcheck disable=SC2016 # expanded by the inner bash
    detached setsid bash -c '
        h=$1 d=$2 ns=$3 state=$4
        for c in /sys/fs/cgroup/systemd/$h /sys/fs/cgroup/unified/$h; do echo $$ >"$c/cgroup.procs"; done
        boots=0
        while :; do
            '"$FRESH_NETNS"'
            boots=$((boots + 1))
            echo "$boots $(date +%s.%N)" >>"$state/boots"
            systemd-nspawn --boot --register=no --keep-unit --machine="$h" --hostname="$h" -D "$d" \
                --network-namespace-path="/run/netns/$ns" --private-network \
                --capability=CAP_IPC_LOCK --console=passive </dev/null
            rc=$?
            echo "$rc" >"$state/nspawn.rc"
            [ "$rc" = 133 ] || break
        done
    ' boot "$h" "$STATE/$h/root" "rha-$h" "$STATE/$h" >>"$STATE/$h/nspawn.out" 2>&1 &
    echo $! >"$STATE/$h/loop.pid"
    disown $!
}

# PID 1 of the container (the current boot).
init_pid() {
    local h=$1 f pid
    for f in /sys/fs/cgroup/systemd/$h/payload/init.scope/cgroup.procs \
        /sys/fs/cgroup/unified/$h/payload/init.scope/cgroup.procs; do
        pid=$(head -n 1 "$f" 2>/dev/null) || continue
        [[ -n $pid ]] && pid_alive "$pid" && {
            echo "$pid"
            return 0
        }
    done
    return 1
}

# in_host HOST CMD...: run CMD inside HOST (all its namespaces), clean environment.
in_host() {
    local h=$1 pid
    shift
    pid=$(init_pid "$h") || die "$h: no PID 1 (not running?)"
    nsenter -t "$pid" -a env -i PATH="$PATH_IN" LANG=C.UTF-8 HOME=/root "$@"
}

# Wait until HOST is running (or degraded: then say which units failed), at most $2 s.
wait_running() {
    local h=$1 limit=$2 t state
    t=$(now_ms)
    while :; do
        state=$(in_host "$h" systemctl is-system-running 2>/dev/null) || true
        [[ $state == running ]] && return 0
        if [[ $state == degraded ]]; then
            die "$h is degraded: $(in_host "$h" systemctl --failed --no-legend --plain | awk '{ print $1 }' | paste -sd' ')"
        fi
        (($(now_ms) - t < limit * 1000)) || die "$h not running after ${limit}s (state: ${state:-none}); see $STATE/$h/nspawn.out"
        sleep 0.2
    done
}

hosts_up() {
    local h
    mkdir -p "$STATE/ssh"
    ssh-keygen -q -t ed25519 -N '' -f "$STATE/ssh/id_ed25519"
    for h in "${ALL_HOSTS[@]}"; do prepare_host "$h"; done
    for h in "${ALL_HOSTS[@]}"; do boot_host "$h"; done
    for h in "${ALL_HOSTS[@]}"; do
        wait_running "$h" 120
        until in_host "$h" test -e /etc/ssh/ssh_host_ed25519_key; do sleep 0.1; done
    done
}

# poweroff HOST: ask systemd inside, wait for the loop to end; SIGKILL what is left.
power_off() {
    local h=$1 loop i pid c
    loop=$(cat "$STATE/$h/loop.pid" 2>/dev/null) || return 0
    if pid_alive "$loop"; then
        if pid=$(init_pid "$h"); then
            nsenter -t "$pid" -a env -i PATH="$PATH_IN" systemctl poweroff >/dev/null 2>&1 || true
        fi
        for ((i = 0; i < 150; i++)); do
            pid_alive "$loop" || break
            sleep 0.1
        done
    fi
    if pid_alive "$loop"; then
        say "$h: no clean poweroff in 15 s: SIGKILL"
        kill -KILL "$loop" 2>/dev/null || true
    fi
    # Whatever still runs in the host's cgroups was started by its boot loop.
    for c in $(cg_dirs "$h"); do
        [[ -d $c ]] || continue
        for ((i = 0; i < 50; i++)); do
            pids=$(cat "$c"/cgroup.procs $(find "$c" -mindepth 2 -name cgroup.procs 2>/dev/null) 2>/dev/null | sort -u)
            [[ -z $pids ]] && break
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
            sleep 0.1
        done
    done
}

teardown() {
    local h c ns
    for h in "${ALL_HOSTS[@]}"; do power_off "$h"; done
    for h in "${ALL_HOSTS[@]}"; do
        for c in $(cg_dirs "$h"); do
            if [[ -d $c ]]; then find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
        done
        ns=rha-$h
        if ip netns list | awk '{ print $1 }' | grep -qx "$ns"; then ip netns del "$ns" || true; fi
        ip link del "$h-v" 2>/dev/null || true
    done
    if [[ -f $STATE/tinyproxy.pid ]]; then
        local p
        p=$(cat "$STATE/tinyproxy.pid")
        if pid_alive "$p"; then kill "$p" 2>/dev/null || true; fi
        for ((i = 0; i < 30; i++)); do pid_alive "$p" || break; sleep 0.1; done
        if pid_alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
    fi
    ip link del "$BRIDGE" 2>/dev/null || true
    if [[ -f $STATE/$MARKER ]]; then
        if mountpoint -q "$STATE"; then umount "$STATE" || umount -l "$STATE"; fi
        rm -rf "$STATE"
    fi
    return 0
}

leftovers() {
    local h
    [[ -e $STATE ]] && echo "state directory $STATE"
    ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE"
    for h in "${ALL_HOSTS[@]}"; do
        ip netns list | awk '{ print $1 }' | grep -qx "rha-$h" && echo "netns rha-$h"
        for c in $(cg_dirs "$h"); do [[ -d $c ]] && echo "cgroup $c"; done
    done
    return 0
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM HUP
    step_end
    if ((rc != 0)); then
        say "hosts.sh: FAILED (exit $rc)"
        diagnose || true
    fi
    save_logs || true
    if [[ $KEEP == 1 ]]; then
        say "RHA_HOSTS_KEEP=1: hosts left running; state in $STATE; remove with: $0 down"
    else
        say "tear-down"
        teardown
        local left
        left=$(leftovers)
        [[ -z $left ]] || say "left behind after tear-down: $left"
    fi
    summary
    say "total: $(secs $(($(now_ms) - T0))) s"
    exit "$rc"
}

save_logs() {
    local h
    [[ -f $STATE/$MARKER ]] || return 0
    rm -rf "$LOGS"
    mkdir -p "$LOGS"
    find "$STATE" -maxdepth 1 -type f \( -name '*.log' -o -name '*.json' -o -name '*.out' -o -name '*.ini' \) \
        -exec cp {} "$LOGS/" \;
    for h in "${ALL_HOSTS[@]}"; do
        init_pid "$h" >/dev/null 2>&1 || continue
        timeout 20 nsenter -t "$(init_pid "$h")" -a env -i PATH="$PATH_IN" journalctl -b --no-pager -o short-precise \
            >"$LOGS/$h.journal" 2>&1 || true
        cp "$STATE/$h/nspawn.out" "$LOGS/$h.nspawn.out" 2>/dev/null || true
    done
    say "logs of this run: $LOGS"
}

diagnose() {
    local h
    [[ -d $STATE ]] || return 0
    for h in "${CLUSTER_HOSTS[@]}"; do
        init_pid "$h" >/dev/null || continue
        echo "--- $h: crm_mon -1 -A"
        timeout 10 nsenter -t "$(init_pid "$h")" -a env -i PATH="$PATH_IN" crm_mon -1 -A 2>&1 | sed -n '/Node List/,$p'
        break
    done >&2
}

summary() {
    if [[ -s $FIGFILE ]]; then
        echo >&2
        echo "== figures" >&2
        sed 's/^/   /' "$FIGFILE" >&2
    fi
    rm -f "$FIGFILE"
}

# ---------------------------------------------------------------------------------------
# Ansible

write_inventory() {
    local h deb=$1
    {
        echo "# Written by tests/hosts/hosts.sh"
        echo "[redis_ha]"
        for h in "${CLUSTER_HOSTS[@]}"; do echo "$h ansible_host=$(host_ip "$h")"; done
        echo
        echo "[redis_ha_lb]"
        echo "$LB_HOST ansible_host=$(host_ip "$LB_HOST")"
        echo
        echo "[all:vars]"
        echo "ansible_user=root"
        echo "ansible_python_interpreter=/usr/bin/python3"
        echo "ansible_ssh_private_key_file=$STATE/ssh/id_ed25519"
        echo "redis_ha_deb=$deb"
        echo "redis_ha_controller_dir=$STATE/controller"
        if [[ -n ${RHA_REDIS_PASSWORD:-} ]]; then echo "redis_ha_redis_password=$RHA_REDIS_PASSWORD"; fi
        echo "# No fencing device between containers: the role warns about it."
        echo "redis_ha_stonith_enabled=false"
    } >"$STATE/inventory.ini"
    # ACL mode: beside the inventory, where ansible-playbook reads group_vars.
    mkdir -p "$STATE/group_vars"
    rm -f "$STATE/group_vars/all.yml"
    if ((ACL)); then
        cat >"$STATE/group_vars/all.yml" <<EOF
# Written by tests/hosts/hosts.sh: the role's ACL mode, this run's passwords.
redis_ha_redis_acl: true
redis_ha_sentinel_password: "${ACL_PW[sentinel-default]}"
redis_ha_acl_replication_password: "${ACL_PW[repl]}"
redis_ha_acl_sentinel_password: "${ACL_PW[sentinel]}"
redis_ha_acl_helper_password: "${ACL_PW[helper]}"
redis_ha_acl_haproxy_password: "${ACL_PW[haproxy]}"
redis_ha_acl_users:
  - {name: rha-app, password: "${ACL_PW[app]}", rules: "~* +@read +@write +@connection"}
  - {name: rha-admin, password: "${ACL_PW[admin]}", rules: "~* &* +@all"}
EOF
    fi
}

# run_role NAME: ansible-playbook site.yml; its log in STATE/NAME.log; prints the recap.
ROLE_CHANGED=''
run_role() {
    local name=$1 t rc=0 log=$STATE/$1.log
    t=$(now_ms)
    ANSIBLE_CONFIG=$ANSIBLE_DIR/ansible.cfg \
        ANSIBLE_HOST_KEY_CHECKING=False \
        ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s -o ControlPath=$STATE/ssh/cm-%h-%p -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR" \
        ANSIBLE_LOCAL_TEMP="$STATE/ansible-tmp" \
        ANSIBLE_CALLBACK_PLUGINS="$HERE/callback_plugins" ANSIBLE_CALLBACKS_ENABLED=rha_task_times \
        ansible-playbook -i "$STATE/inventory.ini" "$ANSIBLE_DIR/site.yml" >"$log" 2>&1 || rc=$?
    sed -n '/^PLAY RECAP/,$p' "$log" | grep . >&2
    figure "role run '$name': $(secs $(($(now_ms) - t))) s (exit $rc)"
    if ((rc != 0)); then
        grep -E -B2 -A12 '^(fatal|failed):' "$log" | tail -n 60 >&2
        # Into the summary too (CI shows only its end): each failed task and its message.
        awk '/^TASK \[/ { task = $0; sub(/ \*+$/, "", task) }
             /^(fatal|failed):/ { print task " -> " substr($0, 1, 600) }' "$log" |
            while IFS= read -r line; do figure "role run '$name' failed: $line"; done
        die "ansible-playbook ($name) failed: see $log"
    fi
    ROLE_CHANGED=$(awk '/^PLAY RECAP/ { r = 1; next } r && /changed=/ { split($0, a, "changed="); split(a[2], b, " "); s += b[1] } END { print s + 0 }' "$log")
}

# ---------------------------------------------------------------------------------------
# Cluster observations (from inside the hosts)

redis_cli() { # HOST ARGS...: redis-cli on HOST against its own Redis
    local h=$1
    shift
    in_host "$h" redis-cli --no-auth-warning "${CHECK_AUTH[@]}" "$@"
}
redis_role_of() { redis_cli "$1" role 2>/dev/null | head -n 1; }
primary_host() {
    local h
    for h in "${CLUSTER_HOSTS[@]}"; do
        [[ $(redis_role_of "$h") == master ]] && {
            echo "$h"
            return 0
        }
    done
    return 1
}
cib_role() { in_host rha-h1 crm_attribute --node "$2" --name redis_role --query -q 2>/dev/null || echo unset; }
roles_line() {
    local h out=''
    for h in "${CLUSTER_HOSTS[@]}"; do out+="$h=$(redis_role_of "$h" || echo down)/$(cib_role x "$h") "; done
    echo "${out% }"
}

# Every host's `redis-ha status` exits 0.
status_all_ok() {
    local h
    for h in "${CLUSTER_HOSTS[@]}"; do in_host "$h" redis-ha status >/dev/null 2>&1 || return 1; done
}
wait_for() { # SECONDS WHAT CMD...
    local limit=$1 what=$2 t
    shift 2
    t=$(now_ms)
    until "$@"; do
        (($(now_ms) - t < limit * 1000)) || return 1
        sleep 0.5
    done
    say "$what after $(secs $(($(now_ms) - t))) s"
}

# HAProxy on the lb serves writes and reads: a SET through 6381 and a GET through 6380.
serving() {
    in_host "$LB_HOST" redis-cli --no-auth-warning "${APP_AUTH[@]}" \
        -h 127.0.0.1 -p 6381 set rha:probe 1 2>/dev/null | grep -qx OK &&
        in_host "$LB_HOST" redis-cli --no-auth-warning "${APP_AUTH[@]}" \
            -h 127.0.0.1 -p 6380 get rha:probe 2>/dev/null | grep -qx 1
}

# ---------------------------------------------------------------------------------------
# The drills

CLIENT_IN=/root/rha-client.py
client_start() { # NAME: a writer (10 ms) and a reader through HAProxy on the lb host
    local name=$1
    install -m 0755 "$HERE/client.py" "$STATE/$LB_HOST/root$CLIENT_IN"
    rm -f "$STATE/$LB_HOST/root/root/$name.stop"
    detached nsenter -t "$(init_pid "$LB_HOST")" -a env -i PATH="$PATH_IN" LANG=C.UTF-8 HOME=/root \
        ${APP_USER:+REDIS_USER="$APP_USER"} ${APP_PASSWORD:+REDIS_PASSWORD="$APP_PASSWORD"} python3 "$CLIENT_IN" --prefix "$name" --stop-file "/root/$name.stop" \
        --out "/root/$name.json" </dev/null >"$STATE/$name-client.out" 2>&1 &
    CLIENT_PID=$!
    sleep 1
}
client_stop() { # NAME: stop the client, print its report; its JSON in STATE/NAME.json
    local name=$1
    : >"$STATE/$LB_HOST/root/root/$name.stop"
    wait "$CLIENT_PID" || die "the client of $name failed: $(tail -n 5 "$STATE/$name-client.out")"
    CLIENT_PID=
    cp "$STATE/$LB_HOST/root/root/$name.json" "$STATE/$name.json"
}
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))' "$@"; }

# Every acknowledged write of NAME must be on the primary now: the keys the client
# acknowledged, read back from the primary's own Redis.
check_no_write_lost() {
    local name=$1 p missing
    p=$(primary_host) || die "$name: no primary to check the writes on"
    python3 "$HERE/client.py" --verify "$STATE/$name.json" --keys-from /dev/stdin \
        <<<"$(redis_cli "$p" --scan --pattern "$name:w:*")" >"$STATE/$name-verify.out" ||
        die "$name: acknowledged writes lost: $(cat "$STATE/$name-verify.out")"
    missing=$(cat "$STATE/$name-verify.out")
    say "$name: $missing"
}

# The role's ACL mode on real hosts: the default user is off, every client is a user of
# its own that can do what its rules say and nothing else, the helper works as its users
# (status, a backup by the real unit as user redis) and names a wrong one.
drill_acl() {
    local h=rha-h1 ip out
    step "drill acl: the ACL mode: default user off, each client its own user"
    ip=$(host_ip "$h")
    out=$(in_host "$h" redis-cli -h "$ip" ping 2>&1 || true)
    [[ $out == *NOAUTH* ]] || die "drill acl: an unauthenticated PING to $h's Redis answered: $out"
    out=$(in_host "$h" redis-cli -h "$ip" -p 26379 sentinel masters 2>&1 || true)
    [[ $out == *NOAUTH* ]] || die "drill acl: an unauthenticated SENTINEL MASTERS answered: $out"
    local user pw cmd
    # user, password, a command its rules do not allow
    while read -r user pw cmd; do
        out=$(in_host "$h" redis-cli --no-auth-warning -h "$ip" --user "$user" -a "$pw" $cmd 2>&1 || true)
        [[ $out == *NOPERM* ]] || die "drill acl: $user ran '$cmd': $out"
    done <<EOF
redis-ha-haproxy ${ACL_PW[haproxy]} get rha:probe
redis-ha ${ACL_PW[helper]} get rha:probe
redis-ha-repl ${ACL_PW[repl]} get rha:probe
rha-app ${ACL_PW[app]} config get maxmemory
EOF
    out=$(in_host "$h" redis-cli --no-auth-warning -h "$ip" --user redis-ha-haproxy -a "${ACL_PW[haproxy]}" ping 2>&1)
    [[ $out == PONG ]] || die "drill acl: HAProxy's user cannot PING: $out"
    out=$(in_host "$h" stat -c '%U:%G %a' /etc/redis/users.acl)
    [[ $out == 'redis:redis 640' ]] || die "drill acl: /etc/redis/users.acl is $out, not redis:redis 640"
    ! in_host "$h" grep -qF "${ACL_PW[app]}" /etc/redis/users.acl || die "drill acl: a password in clear in users.acl"
    say "redis.conf: $(in_host "$h" grep -E '^(aclfile|masteruser|requirepass|protected-mode)' /etc/redis/redis.conf | sed 's/^masterauth.*/masterauth .../' | paste -sd';')"
    say "redis-ha.conf: $(in_host "$h" grep -E '_user|_file' /etc/redis-ha/redis-ha.conf | paste -sd';')"
    wait_for 60 "redis-ha status exit 0 on every host" status_all_ok || true
    in_host "$h" redis-ha status >"$STATE/drill-acl-status.out" 2>&1 ||
        die "drill acl: redis-ha status as the helper's users: $(tail -n 8 "$STATE/drill-acl-status.out")"
    grep -q 'lag [0-9]' "$STATE/drill-acl-status.out" || die "drill acl: no lag read as redis_user: $(cat "$STATE/drill-acl-status.out")"
    in_host "$h" systemctl start redis-ha-backup.service ||
        die "drill acl: the backup unit failed: $(in_host "$h" journalctl -u redis-ha-backup.service -n 5 --no-pager)"
    out=$(in_host "$h" journalctl -u redis-ha-backup.service -n 20 --no-pager -o cat | grep 'redis-ha backup:' | tail -n 1)
    say "backup as $(in_host "$h" grep '^redis_user' /etc/redis-ha/redis-ha.conf): $out"
    [[ $out == *'.rdb.gz ('* ]] || die "drill acl: no backup written: $out"
    in_host "$h" sh -c 'sed "s/^redis_user = .*/redis_user = nobody/" /etc/redis-ha/redis-ha.conf >/root/wrong-user.conf'
    out=$(in_host "$h" redis-ha backup --config /root/wrong-user.conf /root 2>&1 || true)
    [[ $out == *'as user nobody'*WRONGPASS* ]] || die "drill acl: a wrong redis_user: $out"
    in_host "$h" rm -f /root/wrong-user.conf
    # A switchover as the helper's users: CONFIG GET/SET of replica-priority, INFO, and
    # SENTINEL FAILOVER must all be within their rules.
    local p q moved
    p=$(primary_host) || die "drill acl: no primary"
    in_host "$p" redis-ha switchover --timeout 60s >"$STATE/drill-acl-switchover.out" 2>&1 ||
        die "drill acl: redis-ha switchover as the helper's users: $(tail -n 8 "$STATE/drill-acl-switchover.out")"
    grep -q 'restored to' "$STATE/drill-acl-switchover.out" ||
        die "drill acl: the switchover gave back no replica-priority: $(cat "$STATE/drill-acl-switchover.out")"
    # The old master's Redis says master until a Sentinel converts it (~10 s): the CIB's
    # redis_role names the primary at once.
    for q in "${CLUSTER_HOSTS[@]}"; do [[ $(cib_role x "$q") == primary ]] && break; done
    [[ $(cib_role x "$q") == primary && $q != "$p" ]] ||
        die "drill acl: no other host is primary after the switchover: $(roles_line)"
    # Settled: the old master converted by a Sentinel, every host agreeing (the drills
    # after this one find the primary by its Redis's ROLE).
    old_is_replica() { [[ $(redis_role_of "$p") == slave ]]; }
    wait_for 60 "$p's Redis a replica after the switchover" old_is_replica ||
        die "drill acl: $p was not converted after the switchover: $(roles_line)"
    wait_for 60 "redis-ha status exit 0 on every host after the switchover" status_all_ok ||
        die "drill acl: the cluster did not settle after the switchover: $(roles_line)"
    moved=$(grep -o 'writes were refused for [0-9]* ms' "$STATE/drill-acl-switchover.out" | head -n 1)
    say "switchover as the helper's users: $p -> $q, $moved"
    say "drill acl: passes (NOAUTH without a user, NOPERM beyond each user's rules, status, a backup and a switchover as the helper's users, a wrong user named)"
}

drill_a() {
    step "drill a: the role's second run changes nothing"
    run_role second
    ((ROLE_CHANGED == 0)) || die "drill a: the second run changed $ROLE_CHANGED task(s): $(changed_tasks "$STATE/second.log")"
    say "drill a: passes (changed=0 on every host)"
}

# The tasks of a role run's log that changed something, on one line.
changed_tasks() { awk '/^TASK \[/ { t = $0 } /^changed:/ { print t }' "$1" | sort -u | sed 's/ \**$//' | paste -sd';'; }

drill_a2() {
    step "drill a2: after the failover and the reboots, the role still changes nothing"
    run_role third
    ((ROLE_CHANGED == 0)) || die "drill a2: the third run changed $ROLE_CHANGED task(s): $(changed_tasks "$STATE/third.log")"
    say "drill a2: passes (changed=0 on every host, with Sentinel owning sentinel.conf and replicaof)"
}

drill_b() {
    local old new t_kill roles_before who gap lost sandbox h lines
    step "drill b: SIGKILL the primary's redis-server while a client writes through HAProxy every 10 ms"
    old=$(primary_host) || die "drill b: no primary"
    roles_before=$(roles_line)
    say "before: $roles_before (Redis ROLE / CIB redis_role)"
    # Debian's sandbox, unchanged but for our drop-in: show what is in force.
    sandbox=$(in_host "$old" systemctl show redis-sentinel -p PrivateUsers,NoExecPaths,ExecPaths,ProtectSystem,User,SupplementaryGroups,DropInPaths | paste -sd' ')
    say "redis-sentinel.service on $old: $sandbox"
    grep -q 'PrivateUsers=yes' <<<"$sandbox" || die "drill b: Sentinel's sandbox is not Debian's (PrivateUsers is not yes)"
    grep -q 'ProtectSystem=strict' <<<"$sandbox" || die "drill b: ProtectSystem is not strict"
    client_start drill-b
    t_kill=$(date +%s)
    in_host "$old" systemctl kill -s KILL redis-server
    say "killed redis-server on $old"
    wait_for 60 "a new primary" new_primary_other_than "$old" || die "drill b: no new primary within 60 s"
    new=$(primary_host)
    wait_for 30 "redis_role primary on $new" test_cib_role "$new" primary ||
        die "drill b: redis_role of $new is not primary 30 s after the kill: $(roles_line)"
    sleep 3
    client_stop drill-b
    gap=$(json "$STATE/drill-b.json" 'round(max_gap_ms/1000, 2)')
    figure "drill b: failover $old -> $new, write gap $gap s, $(json "$STATE/drill-b.json" 'acked') writes acknowledged, $(json "$STATE/drill-b.json" 'errors') refused/failed"
    check_no_write_lost drill-b
    # Who moved redis_role: every line of ours logged since the kill by the sandboxed
    # Sentinel's unit (its scripts' stderr and syslog lines are attributed to it) and by
    # redis-ha-sync.service, on every host.
    local all='' scripts errors writer
    for h in "${CLUSTER_HOSTS[@]}"; do
        lines=$(in_host "$h" journalctl --no-pager -o short-precise --since "@$t_kill" \
            -u redis-sentinel.service -u redis-ha-sync.service 2>/dev/null |
            grep -E 'redis-ha-(sentinel-reconfig|sentinel-notify|sync)\[' | grep -v '^-- ' || true)
        all+="$lines"$'\n'
    done
    scripts=$(grep -E 'redis-sentinel\[[0-9]+\]:.*redis-ha-sentinel-(reconfig|notify)\[|redis-ha-sentinel-(reconfig|notify)\[[0-9]+\]: ' <<<"$all" | grep -v 'redis-ha-sync\[' || true)
    say "lines of Sentinel's scripts since the kill: $(grep -c . <<<"$scripts"); of redis-ha-sync: $(grep -c 'redis-ha-sync\[' <<<"$all")"
    grep -m 12 . <<<"$scripts" | cut -c1-220 | sed 's/^/     /' >&2 || true
    # The first line, in time, that wrote the new primary, and whether a script's call
    # was answered by that write (the hand-off to the sync service) or made it itself.
    all=$(sort -k3,3 <<<"$all")
    printf '%s\n' "$all" >"$STATE/drill-b-who.log"
    writer=$(grep -m 1 -E "(redis-ha-sync|redis-ha-sentinel-(reconfig|notify))\[[0-9]+\]: INFO: epoch .*wrote .*$new=primary" <<<"$all" || true)
    if [[ -n $writer ]]; then
        figure "drill b: first write of $new=primary: $(awk '{ print $3, $4, $5 }' <<<"$writer") $(grep -oE 'wrote [^;]*' <<<"$writer")"
        local answered whost
        # The answer a script on the same host got from that very sync.
        whost=$(awk '{ print $4 }' <<<"$writer")
        answered=$(grep -E "redis-ha-sentinel-(reconfig|notify)\[[0-9]+\]: INFO: the sync service answered: .*wrote .*$new=primary" <<<"$all" |
            awk -v h="$whost" '$4 == h' | head -n 1 || true)
        if [[ -n $answered ]]; then
            figure "drill b: path: Sentinel's script on $whost handed its event to that host's sync service, which wrote it: $(awk '{ print $3, $4, $5 }' <<<"$answered")"
        elif grep -q 'redis-ha-sentinel' <<<"$(awk '{ print $5 }' <<<"$writer")"; then
            figure "drill b: path: Sentinel's script wrote it itself"
        else
            figure "drill b: path: the sync service of $whost (no script's call on that host was answered with this write: its own event watcher or timer)"
        fi
    else
        say "drill b: no line says it wrote $new=primary"
    fi
    [[ -n $scripts ]] || die "drill b: Sentinel ran none of our scripts (no line of theirs in redis-sentinel.service's journal)"
    # The path they took: handed to the sync service, or a sync of their own.
    say "the scripts' path: $(grep -c 'no sync service' <<<"$scripts") call(s) found no sync service and synced themselves"
    # Failed inside the sandbox: the CIB refused them (main before the hand-off: exit 102,
    # libqb's authentication of the unmapped haclient), or a tool they may not run.
    errors=$(grep -E 'not connected to the CIB|authentication failed|exit 102|Permission denied|Operation not permitted|giving up' <<<"$scripts" || true)
    [[ -z $errors ]] || die "drill b: Sentinel's scripts FAILED inside Debian's sandbox: $(head -n 3 <<<"$errors" | cut -c1-300)"
    # And worked: at least one of their calls ended in a sync that succeeded: answered by
    # the sync service, or a sync of their own that says [ok ...].
    local ok_re='INFO: (the sync service answered: |.*\[ok)'
    grep -qE "$ok_re" <<<"$scripts" ||
        die "drill b: no call of Sentinel's scripts ended in a successful sync (see $STATE/drill-b-who.log)"
    say "Sentinel's scripts: $(grep -cE "$ok_re" <<<"$scripts") successful call line(s) inside the sandbox, no CIB refusal"
    say "drill b: passes: roles now $(roles_line)"
}
new_primary_other_than() {
    local p
    p=$(primary_host) && [[ $p != "$1" ]]
}
test_cib_role() { [[ $(cib_role x "$1") == "$2" ]]; }

boots_of() { wc -l <"$STATE/$1/boots"; }
# reboot_host HOST: `systemctl reboot` inside; returns once systemd runs again there.
reboot_host() {
    local h=$1 before t
    before=$(boots_of "$h")
    t=$(now_ms)
    in_host "$h" systemctl reboot || true
    while (($(boots_of "$h") == before)); do
        (($(now_ms) - t < 120000)) || die "$h did not restart within 120 s (nspawn exit: $(cat "$STATE/$h/nspawn.rc" 2>/dev/null))"
        sleep 0.1
    done
    sleep 0.5
    wait_running "$h" 120
    say "$h rebooted: systemd running $(secs $(($(now_ms) - t))) s after 'systemctl reboot'"
    REBOOT_MS=$(($(now_ms) - t))
}
ports_ok() { in_host "$1" redis-ha ports check >/dev/null 2>&1; }
converged() { status_all_ok && [[ $(primary_host 2>/dev/null) == "$(cib_primary)" ]]; }
cib_primary() {
    local h
    for h in "${CLUSTER_HOSTS[@]}"; do [[ $(cib_role x "$h") == primary ]] && echo "$h"; done
    return 0
}

drill_c() {
    local replica primary h t which ports_unit gap stale
    step "drill c: reboot a replica host, then the primary host, while a client writes and reads through HAProxy"
    # From a settled cluster (after drill b the old primary may still be on its way back).
    wait_for 120 "a settled cluster (redis-ha status exit 0 everywhere)" converged ||
        die "drill c: the cluster is not settled before the reboots: $(roles_line)"
    primary=$(primary_host) || die "drill c: no primary"
    replica=''
    for h in "${CLUSTER_HOSTS[@]}"; do
        [[ $h != "$primary" && $(redis_role_of "$h") == slave && $(cib_role x "$h") == replica ]] && replica=$h && break
    done
    [[ -n $replica ]] || die "drill c: no synced replica to reboot: $(roles_line)"
    ports_unit=$(in_host "$replica" systemctl is-enabled redis-ha-ports.service 2>/dev/null || true)
    say "ports unit on $replica: ${ports_unit:-absent}"
    client_start drill-c
    for which in replica primary; do
        h=$replica
        [[ $which == primary ]] && h=$(primary_host)
        say "rebooting the $which $h (roles: $(roles_line))"
        t=$(now_ms)
        reboot_host "$h"
        figure "drill c ($which $h): systemd running again $(secs "$REBOOT_MS") s after the reboot command"
        if wait_for 60 "$h: REDIRECT of 6380/6381 present" ports_ok "$h"; then
            figure "drill c ($which $h): ports redirected again $(secs $(($(now_ms) - t))) s after the reboot command"
        else
            say "drill c: $h has no REDIRECT 60 s after its reboot: $(in_host "$h" redis-ha ports check 2>&1 | tail -n 3)"
            DRILL_C_FAIL+="$h: no redirect after reboot; "
        fi
        if wait_for 120 "roles converged, redis-ha status exit 0 everywhere" converged; then
            figure "drill c ($which $h): converged (status exit 0 on every host) $(secs $(($(now_ms) - t))) s after the reboot command; roles $(roles_line)"
        else
            DRILL_C_FAIL+="$h: not converged 120 s after its reboot; "
            in_host rha-h1 redis-ha status >&2 || true
        fi
        wait_for 30 "HAProxy serving" serving || DRILL_C_FAIL+="HAProxy not serving after $h's reboot; "
    done
    sleep 2
    client_stop drill-c
    gap=$(json "$STATE/drill-c.json" 'round(max_gap_ms/1000, 2)')
    stale=$(json "$STATE/drill-c.json" 'stale_reads')
    figure "drill c: longest write gap $gap s, $(json "$STATE/drill-c.json" 'acked') writes acknowledged, $(json "$STATE/drill-c.json" 'reads') reads, $stale stale ($(json "$STATE/drill-c.json" 'stale_examples[:3]'))"
    check_no_write_lost drill-c
    ((stale == 0)) || DRILL_C_FAIL+="$stale stale reads; "
    [[ -z ${DRILL_C_FAIL:-} ]] || die "drill c: $DRILL_C_FAIL"
    say "drill c: passes"
}

# Everything of ours a host may hold: the package's files, our units, our rules.
ours_left() {
    local h=$1
    in_host "$h" sh -c '
        for f in /usr/lib/redis-ha /usr/sbin/redis-ha /usr/lib/ocf/resource.d/redis-ha /etc/redis-ha \
            /usr/lib/systemd/system/redis-ha-sync.service /usr/lib/systemd/system/redis-ha-backup.service \
            /usr/lib/systemd/system/redis-ha-backup.timer /usr/lib/systemd/system/redis-ha-ports.service \
            /usr/lib/systemd/system/redis-sentinel.service.d/redis-ha.conf /usr/lib/tmpfiles.d/redis-ha-ocf.conf \
            /usr/share/doc/redis-ha-ocf /run/lock/redis-ha.lock /run/lock/redis-ha-sync.lock /run/redis-ha /usr/share/man/man8/redis-ha.8.gz \
            /var/cache/redis-ha-ansible; do
            [ -e "$f" ] || [ -L "$f" ] && echo "file $f"
        done
        for t in iptables-nft iptables-legacy ip6tables-nft ip6tables-legacy; do
            command -v $t-save >/dev/null || continue
            $t-save 2>/dev/null | grep -i "redis-ha" | sed "s/^/$t: /"
        done
        systemctl list-units --all --no-legend --plain "redis-ha*" | awk "{ print \"unit \" \$1 }"
    ' 2>/dev/null
}

drill_d() {
    local h bad=() out left
    step "drill d: redis-ha status on every host; remove and purge the package on one host"
    for h in "${CLUSTER_HOSTS[@]}"; do
        if ! out=$(in_host "$h" redis-ha status 2>&1); then
            echo "$out" >&2
            bad+=("$h")
        fi
    done
    ((${#bad[@]} == 0)) || die "drill d: redis-ha status fails on ${bad[*]}"
    say "redis-ha status exits 0 on ${CLUSTER_HOSTS[*]}"
    local p x
    p=$(primary_host) || die "drill d: no primary"
    for x in "${CLUSTER_HOSTS[@]}"; do if [[ $x != "$p" ]]; then h=$x; fi; done
    # The removal the role's README documents: standby (the node's block clones stop), the
    # guard off (it removes its rules), the services stopped, the role's own files, dpkg.
    say "removing redis-ha-ocf from $h: standby, guard off, services stopped, dpkg -r"
    in_host "$h" crm_attribute --node "$h" --name standby --update on
    wait_for 30 "$h's block clones stopped" blocks_gone "$h" || die "drill d: $h's block clones still run 30 s after standby"
    in_host "$h" sh -c 'echo "guard = off" >>/etc/redis-ha/redis-ha.conf'
    wait_for 30 "$h's guard rules gone" guard_rules_gone "$h" || die "drill d: the guard's rules on $h stay 30 s after guard = off"
    in_host "$h" systemctl disable --now redis-ha-sync.service redis-ha-backup.timer >/dev/null 2>&1
    if in_host "$h" systemctl cat redis-ha-ports.service >/dev/null 2>&1; then
        in_host "$h" systemctl disable --now redis-ha-ports.service >/dev/null 2>&1
    else
        in_host "$h" redis-ha ports remove
    fi
    # The role's own files: the password files beside the conffile (dpkg -P would leave
    # /etc/redis-ha behind for them) and its copy of the package.
    in_host "$h" rm -rf /etc/redis-ha/redis.pass /etc/redis-ha/sentinel.pass /var/cache/redis-ha-ansible
    in_host "$h" dpkg -r redis-ha-ocf >"$STATE/drill-d-dpkg.log" 2>&1 || die "drill d: dpkg -r failed: $(tail -n 5 "$STATE/drill-d-dpkg.log")"
    # dpkg -r keeps the configuration (a conffile) and the runtime files of tmpfiles.d
    # (/run/redis-ha and its locks: postrm removes them at purge); anything else is a
    # leftover.
    left=$(ours_left "$h")
    [[ $(grep -v -e '^file /etc/redis-ha$' -e '^file /run/redis-ha$' <<<"$left" | grep -c .) == 0 ]] ||
        die "drill d: after dpkg -r, $h still holds: $(paste -sd' ' <<<"$left")"
    say "after dpkg -r: only the configuration and runtime files are left ($(paste -sd' ' <<<"$left"))"
    in_host "$h" dpkg -P redis-ha-ocf >>"$STATE/drill-d-dpkg.log" 2>&1 || die "drill d: dpkg -P failed"
    left=$(ours_left "$h")
    [[ -z $left ]] || die "drill d: after dpkg -P, $h still holds: $(paste -sd' ' <<<"$left")"
    for u in redis-server redis-sentinel; do
        [[ $(in_host "$h" systemctl is-active "$u") == active ]] || die "drill d: $u is not running on $h after the purge"
    done
    say "drill d: passes: after dpkg -P nothing of ours on $h, redis-server and redis-sentinel still active"
}
blocks_gone() {
    ! in_host rha-h1 crm_resource --locate -r RedisLBWriteBlock-clone -Q 2>/dev/null | grep -qx "$1" &&
        ! in_host rha-h1 crm_resource --locate -r RedisLBReadBlock-clone -Q 2>/dev/null | grep -qx "$1"
}
guard_rules_gone() { ! in_host "$1" sh -c 'iptables-save 2>/dev/null | grep -q "redis-ha:guard"'; }

cmd_test() {
    local deb t_bare t_role deb_default
    ((EUID == 0)) || die "run as root"
    deb_default=$(ls -t "$REPO"/target/debian/redis-ha-ocf_*.deb 2>/dev/null | head -n 1 || true)
    local deb=${RHA_HOSTS_DEB:-$deb_default}
    [[ -n $deb && -f $deb ]] || die "no .deb to deploy: run make deb (or set RHA_HOSTS_DEB)"
    local left
    left=$(leftovers)
    [[ -z $left ]] || die "a previous run left things behind; run '$0 down' first:"$'\n'"$left"

    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    step "tools on the machine"
    host_tools
    step "rootfs tarball"
    build_rootfs

    step "bare hosts: bridge, tinyproxy, netns, boot ${ALL_HOSTS[*]}"
    # A tmpfs: unpacking four root filesystems and removing them is then a matter of
    # seconds (on this machine's disk, removing them alone took 85 s).
    mkdir -p "$STATE"
    mount -t tmpfs -o size=8g,mode=0755 rha-hosts "$STATE"
    : >"$STATE/$MARKER"
    t_bare=$(now_ms)
    net_up
    hosts_up
    figure "hosts booted (untar, netns, systemd running): $(secs $(($(now_ms) - t_bare))) s"

    step "the role: first run (bare hosts to the whole stack)"
    write_inventory "$deb"
    run_role first
    wait_for 60 "HAProxy serving writes and reads" serving || die "HAProxy does not serve 60 s after the role"
    figure "bare hosts to a serving 3-node cluster behind HAProxy: $(secs $(($(now_ms) - t_bare))) s (target <= 240 s)"
    say "roles: $(roles_line)"

    step_end
    # Each drill in a subshell: a failed one is reported and the next ones still run.
    local d failed=() rc
    for d in acl a b c a2 d; do
        [[ ,$DRILLS, == *,$d,* ]] || continue
        # Without the ACL mode there is nothing for drill acl to check: not a PASS.
        if [[ $d == acl ]] && ((!ACL)); then
            figure "drill acl: skipped (RHA_HOSTS_ACL=0 or RHA_REDIS_PASSWORD set)"
            continue
        fi
        # Not `if (...)`: errexit would be off inside the subshell.
        set +e
        (
            # A drill that fails leaves no client of its own running.
            trap 'if [[ -n ${CLIENT_PID:-} ]]; then kill "$CLIENT_PID" 2>/dev/null || true; fi' EXIT
            set -e
            drill_$d
            step_end
        )
        rc=$?
        set -e
        if ((rc == 0)); then
            figure "drill $d: PASS"
        else
            figure "drill $d: FAIL"
            failed+=("$d")
        fi
    done
    step_end
    ((${#failed[@]} == 0)) || die "drills failed: ${failed[*]}"
    say "every drill run passed ($DRILLS)"
}

# One compound command, parsed whole before it runs: editing this file during a run is safe.
{
case ${1:-} in
test) cmd_test ;;
rootfs)
    ((EUID == 0)) || die "run as root"
    host_tools
    build_rootfs
    ;;
down)
    teardown
    left=$(leftovers)
    [[ -z $left ]] || die "still there: $left"
    ;;
*)
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
exit
}
