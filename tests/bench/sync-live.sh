#!/usr/bin/env bash
# Benchmark of the installed Sentinel helper on a live cluster (`make bench`, after `make
# install`, as root): the 3-node Corosync+Pacemaker cluster of tests/cluster/cluster.sh
# (network namespaces rha-*, torn down on exit), where Pacemaker's tools talk to the CIB
# daemon over IPC instead of loading a CIB file as tests/bench/sync.sh does. Everything
# runs on node1 (`cluster.sh exec node1`), hyperfine -N, median over RUNS runs (default
# 20, at least 20), 3 warm-up runs:
#   no-change sync  `redis-ha sync` when every redis_role matches Sentinel's view (each
#                   timed run must log "no change")
#   primary move    `redis-ha sync` after --prepare made node2 primary and node1 replica
#                   and waited for Pacemaker to settle (`crm_resource --wait`), Sentinel
#                   naming node1 master: it demotes node2, waits until Pacemaker has
#                   started node2's RedisLBWriteBlock (a real transition: this wait is
#                   Pacemaker's, logged by the sync as "waited N ms"), then promotes node1
#                   (each timed run must log "wrote node2=replica, node1=primary"); printed
#                   with and without its logged wait
#   baseline        the original handler's work per failover: `pcs node attribute node1
#                   redis_role=primary`, `pcs node attribute node2 redis_role=replica`,
#                   `cibadmin --query`, one `bash -c`, with the same --prepare (bash -c
#                   true is timed too and subtracted)
#   cibadmin --query, crm_attribute --update   one run of each tool, the floor
# Prints medians, ratios and the targets (no-change <= 30 ms, move <= 100 ms plus its
# wait, >= 10x faster than the baseline) with pass/miss; a command that fails or logs
# the wrong thing fails the script.
set -euo pipefail

RUNS=${RUNS:-20}
WARMUP=3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLUSTER=$ROOT/tests/cluster/cluster.sh
STATE=${RHA_CLUSTER_DIR:-/run/rha-cluster}

die() {
  echo "bench: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, a cluster)"
[ "$RUNS" -ge 20 ] 2>/dev/null || die "RUNS must be a number >= 20, not '$RUNS'"
for tool in hyperfine python3 pcs; do
  command -v "$tool" >/dev/null || die "$tool is missing (.ci/deps installs what is needed)"
done
if ip netns list | grep -q '^rha-node'; then
  die "a test cluster is already up (rha-node* namespaces): it is someone else's; not touching it"
fi

trap '"$CLUSTER" down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "bench: bringing the cluster up" >&2
"$CLUSTER" up >&2

on1() { "$CLUSTER" exec node1 "$@"; }
OUT=$STATE/bench
mkdir -p "$OUT"

# bench NAME [hyperfine options...] COMMAND: on node1; the commands' stderr (the
# helper's summary lines) in $OUT/NAME.log.
bench() {
  local name=$1
  shift
  echo "== $name" >&2
  on1 hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" \
    --export-json "$OUT/$name.json" "$@" >&2 2>"$OUT/$name.log" ||
    { cat "$OUT/$name.log" >&2; die "hyperfine $name failed"; }
}

PREPARE="sh -c 'crm_attribute --node node1 --name redis_role --update replica && crm_attribute --node node2 --name redis_role --update primary && crm_resource --wait --timeout 30'"
roles() { on1 sh -c 'for n in node1 node2 node3; do printf "%s=%s " $n "$(crm_attribute --node $n --name redis_role --query --quiet)"; done'; }

[ "$(roles)" = "node1=primary node2=replica node3=replica " ] || die "unexpected roles: $(roles)"
on1 pcs node attribute node3 redis_role=replica >/dev/null 2>&1 ||
  die "pcs node attribute does not work on this cluster: $(on1 pcs node attribute node3 redis_role=replica 2>&1)"

bench cibadmin "cibadmin --query"
bench crm_attribute "crm_attribute --node node3 --name redis_role --update replica"
bench no-change --output inherit "redis-ha sync"
bench move --output inherit --prepare "$PREPARE" "redis-ha sync"
[ "$(roles)" = "node1=primary node2=replica node3=replica " ] || die "after the moves: $(roles)"
bench bash-true "bash -c true"
bench baseline --prepare "$PREPARE" \
  "bash -c 'pcs node attribute node1 redis_role=primary && pcs node attribute node2 redis_role=replica && cibadmin --query >/dev/null'"
on1 crm_resource --wait --timeout 30
[ "$(roles)" = "node1=primary node2=replica node3=replica " ] || die "after the baseline: $(roles)"

python3 - "$OUT" "$RUNS" "$WARMUP" <<'EOF'
import json, re, statistics, sys

out, runs, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def ms(name):
    with open(f"{out}/{name}.json") as f:
        r = json.load(f)["results"][0]
    if any(code != 0 for code in r.get("exit_codes", [])):
        sys.exit(f"bench: {name}: a run exited non-zero")
    return r["median"] * 1000

def lines(name, must):
    with open(f"{out}/{name}.log") as f:
        found = [l for l in f.read().splitlines() if "Sentinels reached" in l]
    if len(found) != runs + warmup:
        sys.exit(f"bench: {name}: {len(found)} summary lines, expected {runs + warmup}")
    for l in found[warmup:]:
        if must not in l or "[ok," not in l:
            sys.exit(f"bench: {name}: a run logged {l!r}, expected {must!r}")
    return found[warmup:]

lines("no-change", ": no change")
move = lines("move", ": wrote node2=replica, node1=primary")
waits = [int(m.group(1)) if (m := re.search(r"waited (\d+) ms", l)) else 0 for l in move]
wait = statistics.median(waits)
baseline = ms("baseline") - ms("bash-true")
rows = [
    ("no-change sync", ms("no-change")),
    ("primary move, block wait included", ms("move")),
    ("  its logged wait for the block (Pacemaker)", wait),
    ("  the move without that wait", ms("move") - wait),
    ("baseline: 2x pcs node attribute + cibadmin", baseline),
    ("floor: one cibadmin --query", ms("cibadmin")),
    ("floor: one crm_attribute --update", ms("crm_attribute")),
]
print(f"\nLive cluster (node1 of tests/cluster), medians over {runs} runs (ms):\n")
for label, v in rows:
    print(f"{label:48} {v:8.2f}")
word = lambda ok: "pass" if ok else "MISS"
net = ms("move") - wait
print(f"\n{'figure / ratio':48} {'value':>8}  target")
print(f"{'no-change sync (ms)':48} {ms('no-change'):8.2f}  <= 30   {word(ms('no-change') <= 30)}")
print(f"{'move without its block wait (ms)':48} {net:8.2f}  <= 100  {word(net <= 100)}")
print(f"{'baseline / no-change':48} {baseline / ms('no-change'):7.1f}×  >= 10×  {word(baseline / ms('no-change') >= 10)}")
print(f"{'baseline / move without its wait':48} {baseline / net:7.1f}×  >= 10×  {word(baseline / net >= 10)}")
print(f"{'baseline / move, wait included':48} {baseline / ms('move'):7.1f}×")
EOF
