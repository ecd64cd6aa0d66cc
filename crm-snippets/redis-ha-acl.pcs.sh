#!/bin/sh
# A Pacemaker ACL for redis-ha's Sentinel scripts with pcs, for where they sync
# themselves as user redis in group haclient (no redis-ha-sync service; not needed
# under Debian's redis-sentinel.service, whose scripts hand over to that service); the
# same as redis-ha-acl.cib.xml, which explains each rule, and redis-ha-acl.crm.
#   redis-ha-acl.pcs.sh            change the live cluster
#   redis-ha-acl.pcs.sh CIB_FILE   change CIB_FILE only (pcs -f), e.g. to try it offline
# It also turns ACLs on (pcs acl enable): from then on, members of haclient other
# than root and hacluster get only what an ACL grants them. Give your own operators
# a role first.
set -eu

if [ $# -gt 1 ]; then
    echo "usage: $0 [CIB_FILE]" >&2
    exit 2
fi

pcs ${1:+-f "$1"} acl role create redis-ha-sync \
    description="redis-ha Sentinel scripts: write redis_role and the recorded Sentinel epoch" \
    read xpath "/cib" \
    deny xpath "/cib/configuration/*[not(self::nodes or self::crm_config)]" \
    write xpath "/cib/configuration/nodes/node/instance_attributes/nvpair[@name='redis_role']" \
    write xpath "/cib/configuration/nodes/node/instance_attributes/nvpair[@name='redis-ha-config-epoch']"
pcs ${1:+-f "$1"} acl user create redis redis-ha-sync
pcs ${1:+-f "$1"} acl enable
