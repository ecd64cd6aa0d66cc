#!/bin/sh
# The redis-ha block clones with pcs; the same configuration as redis-ha.crm.
#   redis-ha.pcs.sh            change the live cluster in one CIB update
#   redis-ha.pcs.sh CIB_FILE   change CIB_FILE only (pcs -f), e.g. to try it offline
set -eu

configure() { # CIB_FILE
    cib=$1
    # pcs refuses agents it cannot find: allow trying this before they are installed.
    force=
    for agent in RedisLBReadBlock RedisLBWriteBlock; do
        if [ ! -x "/usr/lib/ocf/resource.d/redis-ha/$agent" ]; then
            force=--force
        fi
    done

    for agent in RedisLBReadBlock RedisLBWriteBlock; do
        pcs -f "$cib" resource create "$agent" "ocf:redis-ha:$agent" --no-default-ops $force \
            op monitor interval=10s timeout=20s record-pending=false \
            op start interval=0s timeout=20s record-pending=false \
            op stop interval=0s timeout=20s record-pending=false \
            clone
    done

    # Each clone gets an INFINITY rule (where it runs: enough in an opt-in cluster)
    # and a -INFINITY rule (nowhere else: needed in a symmetric cluster).
    # An undefined redis_role blocks both reads and writes.
    location RedisLBWriteBlock-clone RedisLBWriteBlock-unless-primary INFINITY \
        not_defined redis_role or redis_role ne primary
    location RedisLBWriteBlock-clone RedisLBWriteBlock-never-on-primary -INFINITY \
        redis_role eq primary
    location RedisLBReadBlock-clone RedisLBReadBlock-on-fail-or-unknown INFINITY \
        not_defined redis_role or redis_role eq fail
    location RedisLBReadBlock-clone RedisLBReadBlock-never-elsewhere -INFINITY \
        defined redis_role and redis_role ne fail

    # In a transition that starts read blocks and stops a write block (the sync's one
    # update that demotes and promotes), the reads are refused before the new
    # primary's write port opens. Optional: it binds only such a transition.
    pcs -f "$cib" constraint order start RedisLBReadBlock-clone \
        then stop RedisLBWriteBlock-clone \
        kind=Optional symmetrical=false id=RedisLBReadBlock-before-promotion
}

location() { # CLONE CONSTRAINT-ID SCORE EXPRESSION...
    clone=$1 id=$2 score=$3
    shift 3
    pcs -f "$cib" constraint location "$clone" rule \
        id="$id-rule" constraint-id="$id" score="$score" "$@"
}

case $# in
1)
    configure "$1"
    ;;
0)
    # Build the change in a copy and push it at once: created one by one, the
    # clones would start everywhere before their rules exist.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    pcs cluster cib "$tmp/before.xml"
    cp "$tmp/before.xml" "$tmp/after.xml"
    configure "$tmp/after.xml"
    pcs cluster cib-push "$tmp/after.xml" diff-against="$tmp/before.xml"
    ;;
*)
    echo "usage: $0 [CIB_FILE]" >&2
    exit 2
    ;;
esac
