#!/usr/bin/env bash
# Benchmark of the installed Sentinel helper, `redis-ha sync`, against what the original
# design's handler ran on every failover (`make bench`: after `make install`, as root).
# Everything runs in one network namespace of its own (rha-bsync-PID, deleted on exit):
# 3 redis-server on 10.213.2.11-13:6379 (node2 and node3 replicate node1) and 3
# redis-sentinel on the same addresses, port 26379, monitoring master `redis-ha` with
# quorum 2. The cluster is a CIB file (CIB_file, which cibadmin, crm_attribute and
# crm_resource honour; `pcs -f FILE` sets it for the tools pcs runs): nodes node1..node3,
# fencing off, the properties of crm-snippets/cluster-properties.crm, the block clones of
# crm-snippets/redis-ha.cib.xml, quorum, and a status section filled by crm_simulate with
# node1=primary, node2/node3=replica, so that crm_resource --locate says
# RedisLBWriteBlock-clone runs on node2 and node3. No scheduler runs during the figures:
# the status section never changes. Each figure is the median wall time over RUNS runs
# (default 30, at least 20; hyperfine -N, 3 warm-up runs) of:
#   no-change sync  `redis-ha sync` when every redis_role already matches Sentinel's view:
#                   one `cibadmin --query`, SENTINEL MASTER/REPLICAS/SENTINELS to each of
#                   the 3 Sentinels, no write (a check run before, with the Pacemaker tools
#                   wrapped to log their calls, must run none that writes and leave the CIB
#                   file's sha256 and epoch as they were; every timed run must log
#                   "no change"; the file must not change during them either)
#   primary move    `redis-ha sync` when the attributes say node2=primary, node1=replica
#                   (hyperfine --prepare writes those two with crm_attribute) while
#                   Sentinel names node1 master: it demotes node2 (crm_attribute), reads
#                   the CIB again (one cibadmin --query: is node2's RedisLBWriteBlock
#                   running, and did nobody else write meanwhile?), then promotes node1
#                   (crm_attribute): 2 writes plus the re-check (a check run must make
#                   exactly these redis_role writes, in this order, with the re-check
#                   between; every timed run must log "wrote node2=replica,
#                   node1=primary"). The block wait is 0 because the status section
#                   still shows the write block on node2 (settled while node2 was a
#                   replica; --prepare touches only the nodes section), so the first
#                   re-read finds it: the sync logs that read as its wait for the block
#                   ("waited N ms (1 CIB read)": after a demotion, reading the CIB is how
#                   a sync waits, and the re-check rides on the same read), reported
#                   apart (median over the timed runs), as is the sync's own total
#   baseline        the original handler's work per failover, as one command:
#                   `bash -c 'pcs -f CIB node attribute node1 redis_role=primary &&
#                   pcs -f CIB node attribute node2 redis_role=replica && cibadmin --query'`,
#                   with the same --prepare as the primary move (so pcs changes both
#                   values too). pcs -f runs `crm_attribute -t nodes --update` with
#                   CIB_file set, the same write the helper makes
#   bash -c true    bash's own start-up, which the baseline pays once: subtracted from the
#                   baseline before the ratios (in the baseline's favour)
#   cibadmin --query, crm_attribute --update, crm_resource --locate   one bare run of each
#                   Pacemaker tool the sync runs, on the same CIB file (the --update
#                   changes node3's value: --prepare sets another one first): the floor a
#                   sync that shells out to them cannot go below. Each sync's tool floor
#                   is the sum over the tools of this median times the runs of that tool in
#                   the sync's check run (no-change: one cibadmin; move: two cibadmin, two
#                   crm_attribute); the rest of its time is the helper's
#                   own (start-up, Sentinel queries included)
# Prints the medians, the sync's logged wait and total, the helper's own share, `baseline /
# move` and `baseline / no-change` as "N× faster", and the targets (no-change <= 30 ms, a
# move <= 100 ms plus its block wait, i.e. its wall time minus the wait it logs; the move
# with the wait included is printed too; >= 10× faster than the baseline, for either sync)
# with pass/miss. Missed targets do not fail the script; a command that exits non-zero or
# does not do what its figure says (wrong writes, wrong log line) does (its figure would be
# meaningless).
# The helper takes a host-wide lock (/run/redis-ha/sync.lock): a sync running
# elsewhere on the host meanwhile (`make test`) would add its wait to these figures.
set -euo pipefail

RUNS=${RUNS:-30}
WARMUP=3
HELPER=/usr/sbin/redis-ha
MASTER=redis-ha
NODES=(node1 node2 node3)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SNIPPETS=$ROOT/crm-snippets

die() {
  echo "bench: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces)"
[ "$RUNS" -ge 20 ] 2>/dev/null || die "RUNS must be a number >= 20, not '$RUNS'"
for tool in hyperfine python3 ip redis-server redis-sentinel redis-cli cibadmin \
  crm_attribute crm_resource crm_simulate pcs sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is missing (.ci/run installs what is needed)"
done
[ -x "$HELPER" ] || die "$HELPER is missing: run 'make install' (make bench does)"
for f in redis-ha.cib.xml cluster-properties.crm; do
  [ -f "$SNIPPETS/$f" ] || die "$SNIPPETS/$f is missing"
done

NS=rha-bsync-$$
TMP=$(mktemp -d /run/rha-bsync.XXXXXX)
PIDS=()
cleanup() {
  # Our servers only, by the PIDs we started them with.
  local pid
  for pid in "${PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$NS"
inns() { ip netns exec "$NS" "$@"; }
ip -n "$NS" link set lo up
# A veth pair inside the namespace carries the nodes' addresses.
ip -n "$NS" link add nodes type veth peer name nodes-peer
for i in 1 2 3; do
  ip -n "$NS" addr add "10.213.2.1$i/24" dev nodes
done
ip -n "$NS" link set nodes up
ip -n "$NS" link set nodes-peer up

# wait_for WHAT COMMAND...: polls COMMAND (every 0.1 s, up to 30 s) until it succeeds.
wait_for() {
  local what=$1 i
  shift
  for ((i = 0; i < 300; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  for i in 1 2 3; do
    echo "--- node$i logs" >&2
    tail -n 5 "$TMP/node$i/redis.log" "$TMP/node$i/sentinel.log" >&2 2>/dev/null || true
  done
  die "timed out waiting until $what"
}

cli() { inns redis-cli --raw -h "$1" -p "$2" "${@:3}" 2>/dev/null; }

# ---- Redis and Sentinel -------------------------------------------------------------

for i in 1 2 3; do
  ip=10.213.2.1$i
  dir=$TMP/node$i
  mkdir -p "$dir"
  cat >"$dir/redis.conf" <<EOF
bind $ip
port 6379
protected-mode no
daemonize no
save ""
appendonly no
dir $dir
logfile $dir/redis.log
replica-announce-ip $ip
bind-source-addr $ip
repl-diskless-sync-delay 0
EOF
  [ "$i" = 1 ] || echo "replicaof 10.213.2.11 6379" >>"$dir/redis.conf"
  cat >"$dir/sentinel.conf" <<EOF
port 26379
bind $ip
protected-mode no
daemonize no
dir $dir
logfile $dir/sentinel.log
sentinel announce-ip $ip
sentinel monitor $MASTER 10.213.2.11 6379 2
sentinel down-after-milliseconds $MASTER 5000
sentinel failover-timeout $MASTER 10000
EOF
done

# `ip netns exec` execs the server: $! is the server's PID.
for i in 1 2 3; do
  ip netns exec "$NS" redis-server "$TMP/node$i/redis.conf" \
    </dev/null >/dev/null 2>"$TMP/node$i/redis.stderr" &
  PIDS+=("$!")
done
pong() { [ "$(cli "$1" "$2" PING)" = PONG ]; }
for i in 1 2 3; do
  wait_for "redis on 10.213.2.1$i answers" pong "10.213.2.1$i" 6379
done
in_sync() {
  [[ $(cli 10.213.2.11 6379 INFO replication) == *connected_slaves:2* ]] &&
    [[ $(cli 10.213.2.12 6379 INFO replication) == *master_link_status:up* ]] &&
    [[ $(cli 10.213.2.13 6379 INFO replication) == *master_link_status:up* ]]
}
# Sentinel reads the master's INFO every 10 s: start it once both replicas are listed.
wait_for "the replicas are in sync" in_sync

for i in 1 2 3; do
  ip netns exec "$NS" redis-sentinel "$TMP/node$i/sentinel.conf" \
    </dev/null >/dev/null 2>"$TMP/node$i/sentinel.stderr" &
  PIDS+=("$!")
done
for i in 1 2 3; do
  wait_for "sentinel on 10.213.2.1$i answers" pong "10.213.2.1$i" 26379
done
# The value after KEY in redis-cli --raw output (key and value lines alternate).
field() { awk -v k="$1" 'NR % 2 == 1 && $0 == k { getline; print; exit }'; }
# Every Sentinel: node1 master, 2 other Sentinels, 2 replicas linked to node1 ("ok").
agreed() {
  local i master replicas
  for i in 1 2 3; do
    master=$(cli "10.213.2.1$i" 26379 SENTINEL MASTER "$MASTER") || return 1
    [ "$(field ip <<<"$master")" = 10.213.2.11 ] &&
      [ "$(field flags <<<"$master")" = master ] &&
      [ "$(field num-slaves <<<"$master")" = 2 ] &&
      [ "$(field num-other-sentinels <<<"$master")" = 2 ] || return 1
    replicas=$(cli "10.213.2.1$i" 26379 SENTINEL REPLICAS "$MASTER") || return 1
    [ "$(grep -cx 'master-link-status' <<<"$replicas")" = 2 ] || return 1
    [ "$(awk 'p == "master-link-status" && $0 == "ok" { n++ } { p = $0 } END { print n + 0 }' \
      <<<"$replicas")" = 2 ] || return 1
  done
}
wait_for "every Sentinel knows 2 replicas (in sync) and 2 other Sentinels" agreed

# ---- The CIB file and the helper's config --------------------------------------------

export CIB_file=$TMP/cib.xml
cibadmin --empty >"$CIB_file"
for i in 1 2 3; do
  cibadmin --create -o nodes --xml-text "<node id=\"$i\" uname=\"node$i\"/>"
done
crm_attribute --name stonith-enabled --update false
read -ra PROPERTIES <<<"$(sed -n 's/^property //p' "$SNIPPETS/cluster-properties.crm")"
[ "${#PROPERTIES[@]}" -gt 0 ] || die "no property line in $SNIPPETS/cluster-properties.crm"
for kv in "${PROPERTIES[@]}"; do
  crm_attribute --name "${kv%%=*}" --update "${kv#*=}"
done
cibadmin --modify --allow-create --scope configuration --xml-file "$SNIPPETS/redis-ha.cib.xml"
cibadmin --modify --xml-text '<cib have-quorum="1"/>'

cat >"$TMP/redis-ha.conf" <<EOF
master_name = $MASTER
sentinel = 10.213.2.11:26379
sentinel = 10.213.2.12:26379
sentinel = 10.213.2.13:26379
node node1 = 10.213.2.11
node node2 = 10.213.2.12
node node3 = 10.213.2.13
EOF
export REDIS_HA_CONFIG=$TMP/redis-ha.conf

# Runs a command in the namespace once and insists on exit 0; its stderr in $TMP/err.
expect0() {
  local rc=0
  inns "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  if [ "$rc" != 0 ]; then
    cat "$TMP/out" "$TMP/err" >&2
    die "'$*' exited $rc, expected 0"
  fi
}

roles() {
  local node out
  for node in "${NODES[@]}"; do
    out=$(crm_attribute --node "$node" --name redis_role --query --quiet --lifetime forever \
      2>/dev/null) || out=-
    printf '%s=%s ' "$node" "$out"
  done
}
want_roles() {
  local got
  got=$(roles)
  [ "$got" = "$*" ] || die "redis_role: '$got', expected '$*'"
}
blocks() { crm_resource --locate -r RedisLBWriteBlock-clone | sed 's/.*running on: //' | sort | xargs; }

# The first sync writes every role; then the scheduler (crm_simulate) settles the status.
expect0 "$HELPER" sync
want_roles "node1=primary node2=replica node3=replica "
for ((i = 0; ; i++)); do
  [ "$i" -lt 10 ] || die "crm_simulate did not settle"
  crm_simulate -x "$CIB_file" -S -O "$TMP/settled.xml" -u node1 -u node2 -u node3 -q 1 >/dev/null
  cmp -s "$TMP/settled.xml" "$CIB_file" && break
  mv "$TMP/settled.xml" "$CIB_file"
done
[ "$(blocks)" = "node2 node3" ] || die "RedisLBWriteBlock runs on '$(blocks)', expected node2 node3"

# Spies for the check runs only: log every Pacemaker tool the helper runs.
mkdir -p "$TMP/spy"
for tool in cibadmin crm_attribute crm_resource; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\nexec %s "$@"\n' \
    "$tool" "$TMP" "$(command -v "$tool")" >"$TMP/spy/$tool"
  chmod +x "$TMP/spy/$tool"
done
spied() {
  : >"$TMP/calls"
  PATH=$TMP/spy:$PATH expect0 "$@"
}
calls() { grep -c "^$1" "$TMP/calls" || true; }
# How many times the last spied run ran each tool: "cibadmin crm_attribute crm_resource".
counts() { echo "$(calls cibadmin) $(calls crm_attribute) $(calls crm_resource)"; }
# Its writes: every call but cibadmin --query, crm_attribute --query, crm_resource --locate.
writes() { grep -v -e '^cibadmin --query' -e '^crm_attribute .*--query' -e '^crm_resource --locate' "$TMP/calls" || true; }
cib_id() { echo "$(sha256sum <"$CIB_file" | cut -c1-16) epoch=$(sed -n 's/^<cib .* epoch="\([0-9]*\)".*/\1/p' "$CIB_file")"; }

# Check: the no-change sync runs no tool that writes, and the CIB file stays as it was.
before=$(cib_id)
spied "$HELPER" sync
after=$(cib_id)
grep -q 'no change' "$TMP/err" || die "no-change sync did not log 'no change': $(cat "$TMP/err")"
[ "$before" = "$after" ] || die "no-change sync changed the CIB file ($before -> $after)"
[ -z "$(writes)" ] || die "no-change sync wrote: $(writes)"
NOCHANGE_COUNTS=$(counts)
NOCHANGE_CHECK="CIB $before unchanged; tools run: $(paste -sd, "$TMP/calls")"

# Check: the primary move demotes node2, checks its block once, promotes node1.
PREPARE="sh -c 'crm_attribute --node node1 --name redis_role --update replica && crm_attribute --node node2 --name redis_role --update primary'"
eval "$PREPARE"
want_roles "node1=replica node2=primary node3=replica "
spied "$HELPER" sync
want_roles "node1=primary node2=replica node3=replica "
grep -q 'wrote node2=replica, node1=primary' "$TMP/err" ||
  die "the move did not log 'wrote node2=replica, node1=primary': $(cat "$TMP/err")"
# Its redis_role writes: exactly the demotion, then the promotion, a re-check between.
if ! { [ "$(writes | grep -c -- '--name redis_role')" = 2 ] &&
  awk '/--node node2 --name redis_role --update replica$/ { d = NR }
       /^cibadmin --query$/ && d && !l { l = NR }
       /--node node1 --name redis_role --update primary$/ { p = NR }
       END { exit !(d && l && p && d < l && l < p) }' "$TMP/calls"; }; then
  die "the move did not demote node2, re-read the CIB, then promote node1: $(cat "$TMP/calls")"
fi
MOVE_COUNTS=$(counts)
[ "$(blocks)" = "node2 node3" ] || die "the status section changed: block on '$(blocks)'"
MOVE_CHECK="tools run: $(paste -sd, "$TMP/calls")"
MOVE_LINE=$(tail -n 1 "$TMP/err")

# Check: the baseline writes the same two values through pcs -f.
BASELINE="bash -c 'pcs -f \"\$CIB_file\" node attribute node1 redis_role=primary && pcs -f \"\$CIB_file\" node attribute node2 redis_role=replica && cibadmin --query >/dev/null'"
eval "$PREPARE"
eval "expect0 $BASELINE"
want_roles "node1=primary node2=replica node3=replica "
[ "$(blocks)" = "node2 node3" ] || die "the status section changed: block on '$(blocks)'"

# ---- Figures --------------------------------------------------------------------------

# bench NAME [hyperfine options...] COMMAND: hyperfine in the namespace, its stderr (and
# with --output inherit the commands' stderr: the helper's summary lines, warm-up runs
# first) in $TMP/NAME.log; fails (and so does this script) if any run exits non-zero.
bench() {
  local name=$1
  shift
  echo "== $name" >&2
  inns hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" \
    --export-json "$TMP/$name.json" "$@" >&2 2>"$TMP/$name.log" ||
    { cat "$TMP/$name.log" >&2; die "hyperfine $name failed"; }
}

# The floors next to the syncs they are compared with; the long baseline last.
bench cibadmin "cibadmin --query"
bench crm_attribute --prepare "crm_attribute --node node3 --name redis_role --update fail" \
  "crm_attribute --node node3 --name redis_role --update replica"
bench crm_resource "crm_resource --locate -r RedisLBWriteBlock-clone"
before=$(cib_id)
bench no-change --output inherit "$HELPER sync"
[ "$(cib_id)" = "$before" ] || die "the no-change runs changed the CIB file"
bench move --output inherit --prepare "$PREPARE" "$HELPER sync"
bench bash-true "bash -c true"
bench baseline --prepare "$PREPARE" "$BASELINE"
want_roles "node1=primary node2=replica node3=replica "

python3 - "$TMP" "$RUNS" "$WARMUP" "$NOCHANGE_CHECK" "$MOVE_CHECK" "$MOVE_LINE" \
  "$NOCHANGE_COUNTS" "$MOVE_COUNTS" <<'EOF'
import json, re, statistics, sys

tmp, runs, warmup, nochange_check, move_check, move_line = sys.argv[1:7]
runs, warmup = int(runs), int(warmup)
# How often each sync runs each tool (check runs): cibadmin, crm_attribute, crm_resource.
TOOLS = ("cibadmin", "crm_attribute", "crm_resource")
nochange_counts, move_counts = ([int(n) for n in a.split()] for a in sys.argv[7:9])

def result(name):
    with open(f"{tmp}/{name}.json") as f:
        r = json.load(f)["results"][0]
    if any(code != 0 for code in r.get("exit_codes", [])):
        sys.exit(f"bench: {name}: a run exited non-zero: {r['exit_codes']}")
    return r

def summaries(name, must):
    """The helper's summary line of every timed run (the warm-up runs come first)."""
    with open(f"{tmp}/{name}.log") as f:
        lines = [l for l in f.read().splitlines() if "Sentinels reached" in l]
    if len(lines) != warmup + runs:
        sys.exit(f"bench: {name}: {len(lines)} summary lines, expected {warmup + runs}")
    timed = lines[warmup:]
    for l in timed:
        if must not in l or "[ok," not in l:
            sys.exit(f"bench: {name}: a run logged {l!r}, expected {must!r} and ok")
    return timed

def logged(lines, pattern):
    values = [int(m.group(1)) for l in lines if (m := re.search(pattern, l))]
    if len(values) != len(lines):
        sys.exit(f"bench: {pattern!r} missing from some summary lines")
    return statistics.median(values)

rows = [
    ("no-change", "no-change sync (0 writes)"),
    ("move", "primary move (2 writes + re-check)"),
    ("baseline", "baseline: 2x pcs node attribute + cibadmin"),
    ("bash-true", "bash -c true (in the baseline)"),
    ("cibadmin", "floor: one cibadmin --query"),
    ("crm_attribute", "floor: one crm_attribute --update"),
    ("crm_resource", "floor: one crm_resource --locate"),
]
res = {name: result(name) for name, _ in rows}
ms = lambda name, key="median": res[name][key] * 1000
nochange_lines = summaries("no-change", ": no change")
move_lines = summaries("move", ": wrote node2=replica, node1=primary")

print(f"\nMedians over {runs} runs each (ms), in network namespace, hyperfine -N:\n")
print(f"{'what':45} {'median':>8} {'mean':>8} {'stddev':>8} {'min':>8} {'max':>8}")
for name, label in rows:
    print(f"{label:45} {ms(name):8.2f} {ms(name, 'mean'):8.2f} {ms(name, 'stddev'):8.2f}"
          f" {ms(name, 'min'):8.2f} {ms(name, 'max'):8.2f}")
baseline = ms("baseline") - ms("bash-true")
print(f"{'baseline without bash start-up':45} {baseline:8.2f}")

waited = logged(move_lines, r"waited (\d+) ms \(1 CIB read\)")
move_total = logged(move_lines, r"\[ok, (\d+) ms\]")
nochange_total = logged(nochange_lines, r"\[ok, (\d+) ms\]")
print(f"\nAs the helper logs it (median of its summary lines, ms; it does not count its own")
print(f"start-up and config load):")
print(f"{'  no-change sync, total':45} {nochange_total:8}")
print(f"{'  primary move, total':45} {move_total:8}")
print(f"{'  primary move, waited for the block':45} {waited:8}")
move_net = ms("move") - waited
print(f"{'primary move wall time minus its logged wait':45} {move_net:8.2f}")
def tools(counts):
    floor = sum(n * ms(tool) for n, tool in zip(counts, TOOLS))
    label = ", ".join(f"{n} {tool}" for n, tool in zip(counts, TOOLS) if n)
    return floor, label

tools_nochange, label_nochange = tools(nochange_counts)
tools_move, label_move = tools(move_counts)
print(f"\nWhere the time goes (medians, ms): the Pacemaker tools each sync runs (their floors")
print(f"above), and the rest: the helper's start-up, config, Sentinel queries, its own work")
print(f"(medians of separate runs: under load a negative rest is noise):")
for name, floor, label in (("no-change", tools_nochange, label_nochange),
                           ("move", tools_move, label_move)):
    print(f"{'  ' + name + ' sync, tools':45} {floor:8.2f}   rest {ms(name) - floor:6.2f}   ({label})")
print(f"\nchecks: no-change: {nochange_check}")
print(f"        move: {move_check}")
print(f"        every timed run logged 'no change' / 'wrote node2=replica, node1=primary'")
print(f"        one move line: {move_line.split(']: ', 1)[-1]}")

word = lambda good: "pass" if good else "MISS"
r_move = baseline / ms("move")
r_nochange = baseline / ms("no-change")
print(f"\n{'figure / ratio':45} {'value':>8}  target")
print(f"{'no-change sync (ms)':45} {ms('no-change'):8.2f}  <= 30    {word(ms('no-change') <= 30)}")
print(f"{'primary move minus its logged wait (ms)':45} {move_net:8.2f}  <= 100   {word(move_net <= 100)}")
print(f"{'  block wait included (ms)':45} {ms('move'):8.2f}  <= 100   {word(ms('move') <= 100)}")
print(f"{'move vs baseline (baseline / move)':45} {r_move:7.1f}×  >= 10×   {word(r_move >= 10)}  ({r_move:.1f}× faster)")
print(f"{'no-change vs baseline (baseline / no-change)':45} {r_nochange:7.1f}×  >= 10×   {word(r_nochange >= 10)}  ({r_nochange:.1f}× faster)")
print("(ratios against the baseline without bash start-up; pcs -f writes the same CIB file)")
EOF
