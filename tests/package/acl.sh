#!/usr/bin/env bash
# The ACL snippets (crm-snippets/redis-ha-acl.{crm,pcs.sh,cib.xml}), each loaded into a
# scratch CIB file: crm_verify accepts it, the three dialects give the same ACL, and as
# user redis (CIB_user) the helper reads quorum and roles, writes redis_role and the
# recorded epoch exactly as the Sentinel scripts do, is refused any other attribute or
# property, and cannot read the resources. Needs the installed redis-ha (the package).
set -euo pipefail
cd "$(dirname "$0")/../.."

ok() { printf '   ok: %s\n' "$*"; }
fail() {
  printf '   FAIL: %s\n' "$*" >&2
  exit 1
}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
unset CIB_file CIB_user

# An empty CIB with three nodes, quorum, no fencing, a resource holding a "secret".
scratch() { # FILE
  cibadmin --empty >"$1"
  local i
  for i in 1 2 3; do
    CIB_file=$1 cibadmin --create -o nodes --xml-text "<node id=\"$i\" uname=\"node$i\"/>"
  done
  CIB_file=$1 cibadmin --modify --xml-text '<cib have-quorum="1"/>'
  CIB_file=$1 crm_attribute -t crm_config -n stonith-enabled -v false
  CIB_file=$1 cibadmin --create -o resources --xml-text \
    '<primitive id="secret" class="ocf" provider="heartbeat" type="Dummy"><instance_attributes id="secret-ia"><nvpair id="secret-pw" name="passwd" value="hunter2"/></instance_attributes></primitive>'
}

# The ACL of FILE without ids and comments, one permission per line, for comparing.
acl_of() { # FILE
  CIB_file=$1 cibadmin --query --xpath //acls | xmllint --xpath \
    '//acl_permission/@kind | //acl_permission/@xpath | //acl_target/@id | //acl_target/role/@id' - |
    tr -s ' ' '\n' | sed '/^$/d'
}

declare -A acl
for dialect in crm pcs cib.xml; do
  cib=$dir/$dialect.xml
  scratch "$cib"
  case $dialect in
    crm) CIB_file=$cib crm -F configure load update crm-snippets/redis-ha-acl.crm >/dev/null ;;
    pcs) sh crm-snippets/redis-ha-acl.pcs.sh "$cib" >/dev/null ;;
    cib.xml)
      CIB_file=$cib cibadmin -M -c -o configuration -x crm-snippets/redis-ha-acl.cib.xml
      CIB_file=$cib crm_attribute -t crm_config -n enable-acl -v true
      ;;
  esac
  out=$(crm_verify -x "$cib" 2>&1) || fail "crm_verify -x after redis-ha-acl.$dialect: $out"
  [[ $(CIB_file=$cib crm_attribute -t crm_config -n enable-acl -G -q) == true ]] ||
    fail "redis-ha-acl.$dialect does not leave enable-acl=true"
  acl[$dialect]=$(acl_of "$cib")
  ok "redis-ha-acl.$dialect loads, enables ACLs and passes crm_verify"
done
[[ ${acl[crm]} == "${acl[cib.xml]}" && ${acl[pcs]} == "${acl[cib.xml]}" ]] ||
  fail "the dialects differ:
crm: ${acl[crm]}
pcs: ${acl[pcs]}
xml: ${acl[cib.xml]}"
ok "the three dialects give the same ACL"

# As user redis, against the CIB of the XML dialect, through what the scripts run.
export CIB_file=$dir/cib.xml.xml CIB_user=redis
as_redis() { "$@" 2>&1; }

out=$(as_redis redis-ha cluster-debug state) || fail "state as redis: $out"
[[ $out == $'quorate yes\nnode1 -\nnode2 -\nnode3 -' ]] || fail "state as redis reads: $out"
ok "redis reads quorum and roles (redis-ha cluster-debug state)"
out=$(as_redis redis-ha cluster-debug set-role node1 primary) || fail "set-role as redis: $out"
out=$(as_redis redis-ha cluster-debug set-role node2 replica) || fail "set-role as redis: $out"
out=$(as_redis redis-ha cluster-debug set-role node1 fail) || fail "set-role as redis: $out"
ok "redis writes redis_role (creating and changing it, as crm_attribute --update)"
for epoch in 3 4; do
  out=$(as_redis crm_attribute --node node2 --name redis-ha-config-epoch \
    --update "$epoch") || fail "recording the epoch as redis: $out"
done
ok "redis records redis-ha-config-epoch (a node attribute)"

refused() { # DESCRIPTION CMD...
  local what=$1 out rc=0
  shift
  out=$(as_redis "$@") || rc=$?
  ((rc != 0)) && grep -q "Permission denied" <<<"$out" || fail "redis may $what (exit $rc): $out"
  ok "redis may not $what"
}
refused "set another node attribute" crm_attribute --node node1 --name standby --update on
refused "set a cluster property" crm_attribute --type crm_config --name stonith-enabled --update true
refused "set a property in a set of its own" \
  crm_attribute --type crm_config --set-name redis-ha --name redis-ha-config-epoch --update 1
refused "change a resource" \
  cibadmin --modify --xml-text '<nvpair id="secret-pw" name="passwd" value="changed"/>'
out=$(as_redis cibadmin --query)
! grep -q hunter2 <<<"$out" || fail "redis can read the resources' parameters"
ok "redis cannot read the resources' parameters"

unset CIB_user
out=$(redis-ha cluster-debug state)
[[ $out == $'quorate yes\nnode1 fail\nnode2 replica\nnode3 -' ]] || fail "the CIB holds: $out"
[[ $(crm_attribute --node node2 --name redis-ha-config-epoch -G -q) == 4 ]] ||
  fail "the recorded epoch is not 4"
ok "the CIB holds what redis wrote, and nothing else changed"
