#!/bin/sh
# Cluster properties for redis-ha with pcs; the same as cluster-properties.crm,
# which explains each one and what stops the block clones (opening the ports).
#   cluster-properties.pcs.sh            set them in the live cluster
#   cluster-properties.pcs.sh CIB_FILE   set them in CIB_FILE only (pcs -f)
set -eu

if [ $# -gt 1 ]; then
    echo "usage: $0 [CIB_FILE]" >&2
    exit 2
fi

# no-quorum-policy=freeze: without quorum, keep the blocks (stop opens the ports).
# start-failure-is-fatal=false: retry a failed block start instead of leaving
#   the port open until "pcs resource cleanup" (applies to every resource).
pcs ${1:+-f "$1"} property set no-quorum-policy=freeze start-failure-is-fatal=false
