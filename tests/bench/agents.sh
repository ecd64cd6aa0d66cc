#!/usr/bin/env bash
# Benchmark of the installed RedisLBWriteBlock agent (`make bench`: after `make install`,
# as root), or of AGENT=/path/to/RedisLBWriteBlock (a link to any build, so named). Everything runs in one network namespace of its own (rha-bench-PID, deleted on
# exit), never against the host firewall. Each figure is the median wall time over RUNS
# runs (default 50, at least 50; hyperfine -N, 5 warm-up runs) of:
#   monitor      our `monitor` (recurring, interval 10 s) with our rule present and the
#                ruleset unchanged since the last monitor (the steady state): one
#                netlink query of the nf_tables generation, no iptables run
#   monitor, changed ruleset   the same after any ruleset change (hyperfine --prepare
#                adds and deletes an unrelated chain): two `iptables -C` (rule and jump
#                from INPUT), run in parallel
#   start        our `start` from stopped (hyperfine --prepare runs our `stop` before
#                each run): create chain, jump and rule, write the state file
#   stop         our `stop` from started (--prepare runs our `start`): delete the rule,
#                the jump and the then empty chain, remove the state file
#   iptables -C  one bare `iptables -w 5 -C REDIS-HA <our rule>` (spec from -S): the floor
#                a monitor that shells out to iptables cannot go below
#   portblock    `ocf:heartbeat:portblock monitor` (tcp 6381, action=block) after its
#                start: the shell agent people would use instead
#   baseline start/stop   the same start and stop of BASELINE, when set: another build's
#                RedisLBWriteBlock (e.g. one built from main), measured in the same run
# plus the peak RSS (GNU time %M, max of 5 runs) of our monitor, which includes the
# iptables children it waits for, and for scale that of our binary alone (meta-data) and
# of one iptables -C. Prints the medians and the ratios against the targets
# (monitor/iptables -C <= 1.5, portblock/monitor >= 3, RSS <= 8 MiB). Slow figures do not
# fail the script; a command that exits with the wrong code does (its figure would be
# meaningless).
set -euo pipefail

RUNS=${RUNS:-50}
WARMUP=5
# AGENT: the agent measured (default: the installed one); its file name picks the agent.
AGENT=${AGENT:-/usr/lib/ocf/resource.d/redis-ha/RedisLBWriteBlock}
BASELINE=${BASELINE:-}
PORTBLOCK=/usr/lib/ocf/resource.d/heartbeat/portblock
TAG=redis-ha:RedisLBWriteBlock:6381

die() {
  echo "bench: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, iptables)"
[ "$RUNS" -ge 50 ] 2>/dev/null || die "RUNS must be a number >= 50, not '$RUNS'"
for tool in hyperfine python3 /usr/bin/time ip iptables; do
  command -v "$tool" >/dev/null || die "$tool is missing (.ci/run installs what is needed)"
done
[ -x "$AGENT" ] || die "$AGENT is missing: run 'make install' (make bench does)"
[ "$(basename "$AGENT")" = RedisLBWriteBlock ] || die "AGENT must be named RedisLBWriteBlock"
if [ -n "$BASELINE" ]; then
  [ -x "$BASELINE" ] || die "BASELINE $BASELINE is not executable"
  [ "$(basename "$BASELINE")" = RedisLBWriteBlock ] || die "BASELINE must be named RedisLBWriteBlock"
fi
[ -x "$PORTBLOCK" ] || die "$PORTBLOCK is missing: apt-get install resource-agents"

NS=rha-bench-$$
# Under /run (tmpfs) like HA_RSCTMP on a real node (/run/resource-agents).
TMP=$(mktemp -d /run/rha-bench.XXXXXX)
cleanup() {
  # Whatever the agents left (portblock's stop may leave its rule) goes with the namespace.
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
inns() { ip netns exec "$NS" "$@"; }

# The environment execd would give a recurring monitor; portblock's parameters do not
# touch ours (port vs portno) and both agents keep their state under HA_RSCTMP.
mkdir -p "$TMP/rsctmp"
export OCF_ROOT=/usr/lib/ocf OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=1
export OCF_RESOURCE_INSTANCE=bench OCF_RESKEY_CRM_meta_timeout=20000
export OCF_RESKEY_CRM_meta_interval=10000 HA_RSCTMP=$TMP/rsctmp
export OCF_RESKEY_protocol=tcp OCF_RESKEY_portno=6381 OCF_RESKEY_action=block

# Runs a command in the namespace once and insists on its exit code.
expect() {
  local want=$1 rc=0
  shift
  inns "$@" >"$TMP/out" 2>&1 || rc=$?
  if [ "$rc" != "$want" ]; then
    cat "$TMP/out" >&2
    die "'$*' exited $rc, expected $want"
  fi
}

# bench NAME [hyperfine options...] COMMAND: hyperfine in the namespace; fails (and so
# does this script) if any run exits non-zero.
bench() {
  local name=$1
  shift
  echo "== $name" >&2
  inns hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" \
    --export-json "$TMP/$name.json" "$@" >&2
}

expect 7 "$AGENT" monitor
expect 0 "$AGENT" start
expect 0 "$AGENT" monitor

# Our rule exactly as iptables lists it, turned into a -C.
RULE=$(inns iptables -w 5 -S REDIS-HA | grep -F -- "$TAG") || die "no $TAG rule after start"
CHECK="iptables -w 5 -C ${RULE#-A }"
eval "expect 0 $CHECK"

bench monitor "$AGENT monitor"
bench monitor-changed --prepare "sh -c 'iptables -w 5 -N RHA-BUMP && iptables -w 5 -X RHA-BUMP'" "$AGENT monitor"
bench iptables-C "$CHECK"
bench start --prepare "$AGENT stop" "$AGENT start"
bench stop --prepare "$AGENT start" "$AGENT stop"
expect 7 "$AGENT" monitor
if [ -n "$BASELINE" ]; then
  # Same state file (same agent and instance): each side's prepare undoes the other's run.
  bench baseline-start --prepare "$BASELINE stop" "$BASELINE start"
  bench baseline-stop --prepare "$BASELINE start" "$BASELINE stop"
  expect 7 "$AGENT" monitor
fi

# Peak RSS with the rule present again.
expect 0 "$AGENT" start
peak() {
  local max=0 kib i
  for i in 1 2 3 4 5; do
    eval "inns /usr/bin/time -f %M -o \"$TMP/rss\" $* >/dev/null 2>&1" ||
      die "'$*' failed under /usr/bin/time"
    kib=$(tail -n 1 "$TMP/rss")
    [ "$kib" -gt "$max" ] && max=$kib
  done
  echo "$max"
}
RSS_MONITOR=$(peak "$AGENT" monitor)
RSS_BINARY=$(peak "$AGENT" meta-data)
RSS_CHECK=$(peak "$CHECK")
expect 0 "$AGENT" stop

expect 7 "$PORTBLOCK" monitor
expect 0 "$PORTBLOCK" start
expect 0 "$PORTBLOCK" monitor
bench portblock "$PORTBLOCK monitor"
expect 0 "$PORTBLOCK" stop

python3 - "$TMP" "$RSS_MONITOR" "$RSS_BINARY" "$RSS_CHECK" "$RUNS" "$BASELINE" <<'EOF'
import json, sys

tmp, rss_monitor, rss_binary, rss_check, runs, baseline = sys.argv[1:7]

def result(name):
    with open(f"{tmp}/{name}.json") as f:
        r = json.load(f)["results"][0]
    if any(code != 0 for code in r.get("exit_codes", [])):
        sys.exit(f"bench: {name}: a run exited non-zero: {r['exit_codes']}")
    return r

rows = [
    ("monitor", "our monitor (rule present, ruleset unchanged)"),
    ("monitor-changed", "our monitor (rule present, ruleset changed)"),
    ("iptables-C", "bare iptables -w 5 -C (one rule)"),
    ("start", "our start (from stopped)"),
    ("stop", "our stop (from started)"),
    ("portblock", "portblock monitor (after its start)"),
]
if baseline:
    rows += [
        ("baseline-start", "BASELINE start (from stopped)"),
        ("baseline-stop", "BASELINE stop (from started)"),
    ]
res = {name: result(name) for name, _ in rows}
ms = lambda name, key="median": res[name][key] * 1000

print(f"\nMedians over {runs} runs each (ms), in network namespace, hyperfine -N:\n")
print(f"{'what':45} {'median':>8} {'mean':>8} {'stddev':>8} {'min':>8} {'max':>8}")
for name, label in rows:
    print(f"{label:45} {ms(name):8.2f} {ms(name, 'mean'):8.2f} {ms(name, 'stddev'):8.2f}"
          f" {ms(name, 'min'):8.2f} {ms(name, 'max'):8.2f}")

mib = lambda kib: int(kib) / 1024
ratio_check = ms("monitor") / ms("iptables-C")
ratio_pb = ms("portblock") / ms("monitor")
ok = lambda good: "ok" if good else "OVER TARGET"
print(f"\n{'ratio / figure':45} {'value':>8}  target")
ratio_changed = ms("monitor-changed") / ms("iptables-C")
print(f"{'our monitor / bare iptables -C':45} {ratio_check:8.2f}  <= 1.5  {ok(ratio_check <= 1.5)}")
print(f"{'  after a ruleset change / bare iptables -C':45} {ratio_changed:8.2f}")
print(f"{'portblock monitor / our monitor':45} {ratio_pb:8.2f}  >= 3    {ok(ratio_pb >= 3)}")
ratio_pb_changed = ms("portblock") / ms("monitor-changed")
print(f"{'  portblock / ours after a ruleset change':45} {ratio_pb_changed:8.2f}")
print(f"{'peak RSS of our monitor (MiB, incl. iptables)':45} {mib(rss_monitor):8.2f}  <= 8    {ok(mib(rss_monitor) <= 8)}")
print(f"{'  for scale: our binary alone (meta-data)':45} {mib(rss_binary):8.2f}")
print(f"{'  for scale: one iptables -C':45} {mib(rss_check):8.2f}")
if baseline:
    print(f"\nBASELINE = {baseline}")
    for what in ("start", "stop"):
        print(f"{'our ' + what + ' / BASELINE ' + what:45} {ms(what) / ms('baseline-' + what):8.2f}")
EOF
