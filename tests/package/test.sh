#!/usr/bin/env bash
# The Debian package as a user meets it (run by `make test` after `make deb`, as root):
# dpkg -i; Pacemaker's tools, pcs and crmsh show the agents' documentation; the man
# pages render without warnings; systemd-analyze accepts the units and the Sentinel
# drop-in, which widens nothing; tmpfiles made /run/redis-ha and its locks; the ACL
# snippets (tests/package/acl.sh) and the backup round trip
# (tests/package/backup.sh) against the installed files; then dpkg -r and dpkg -P
# leave nothing behind. `make install` is undone first (dpkg would take over its
# files) and redone at the end, so the machine is as before.
set -euo pipefail
cd "$(dirname "$0")/../.."

pkg=redis-ha-ocf
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
deb=target/debian/${pkg}_${version}_$(dpkg --print-architecture).deb
agent=RedisLBWriteBlock
shortdesc="Refuses Redis writes on a node that is not the primary"

step() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() {
  printf '   FAIL: %s\n' "$*" >&2
  exit 1
}
# CMD... must exit 0 and print PATTERN (grep -E) on stdout; shows both when it does not.
expect_output() { # PATTERN CMD...
  local pattern=$1 out
  shift
  out=$("$@" 2>&1) || fail "$* exited $?: $out"
  grep -qE -- "$pattern" <<<"$out" || fail "$* does not show /$pattern/; it printed:
$out"
  ok "$* shows /$pattern/"
}

[[ $EUID -eq 0 ]] || fail "run as root (dpkg -i)"
[[ -f $deb ]] || fail "$deb is missing: run make deb"
# Slim container images tell dpkg to skip man pages and docs: nothing to test then.
if excluded=$(grep -hs '^path-exclude.*/usr/share/\(man\|doc\)' /etc/dpkg/dpkg.cfg.d/*); then
  fail "dpkg is told not to install parts of the package ($excluded in /etc/dpkg/dpkg.cfg.d/)"
fi

# Whatever happens, leave no package behind and put `make install` back.
cleanup() {
  local rc=$?
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'installed\|config-files'; then
    dpkg -P "$pkg" >/dev/null 2>&1 || true
  fi
  make --no-print-directory install-files >/dev/null
  ((rc == 0)) || printf '\npackage test FAILED (exit %s)\n' "$rc" >&2
}
trap cleanup EXIT

# Paths in the package, and the directories it creates that did not exist before.
mapfile -t files < <(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }')
mapfile -t dirs < <(dpkg-deb -c "$deb" | awk '$1 ~ /^d/ { sub(/^\./, "", $6); sub(/\/$/, "", $6); print $6 }')
conffile=/etc/redis-ha/redis-ha.conf

step "make uninstall, then dpkg -i $deb"
make --no-print-directory uninstall >/dev/null
new_dirs=()
for d in "${dirs[@]}"; do [[ -n $d && ! -e $d ]] && new_dirs+=("$d"); done
dpkg -i "$deb" >/dev/null
for f in "${files[@]}"; do [[ -e $f || -L $f ]] || fail "$f not installed"; done
ok "${#files[@]} files and links installed"
[[ $(dpkg-query -W -f='${Conffiles}' "$pkg") == *"$conffile"* ]] || fail "$conffile is not a conffile"
ok "$conffile is a conffile"
[[ $(readlink -f /usr/lib/ocf/resource.d/redis-ha/$agent) == /usr/lib/redis-ha/redis-ha ]] ||
  fail "the $agent link does not lead to the binary"
expect_output "^redis-ha $version$" /usr/sbin/redis-ha --version

step "the agents' documentation through Pacemaker, pcs and crmsh"
crm_resource --show-metadata "ocf:redis-ha:$agent" | cmp -s - "ocf/$agent.xml" ||
  fail "crm_resource --show-metadata ocf:redis-ha:$agent differs from ocf/$agent.xml"
ok "crm_resource --show-metadata ocf:redis-ha:$agent is ocf/$agent.xml byte for byte"
expect_output "ocf:redis-ha:$agent - $shortdesc" pcs resource describe "ocf:redis-ha:$agent"
expect_output "^  reject_with: " pcs resource describe "ocf:redis-ha:$agent"
expect_output "^$shortdesc \(ocf:redis-ha:$agent\)" crm ra info "ocf:redis-ha:$agent"
expect_output "reject_with" crm ra info "ocf:redis-ha:$agent"

step "man pages"
pages=(
  /usr/share/man/man7/ocf_redis-ha_RedisLBReadBlock.7.gz
  /usr/share/man/man7/ocf_redis-ha_RedisLBWriteBlock.7.gz
  /usr/share/man/man8/redis-ha.8.gz
)
for page in "${pages[@]}"; do
  warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  [[ -z $warnings ]] || fail "man --warnings -l $page: $warnings"
  warnings=$(zcat "$page" | groff -ww -man -Tutf8 -z 2>&1)
  [[ -z $warnings ]] || fail "groff -ww $page: $warnings"
  ok "$page renders without warnings"
done
expect_output "reject_with \(string, optional, default tcp-reset\)" \
  env MANWIDTH=100 man -l /usr/share/man/man7/ocf_redis-ha_RedisLBWriteBlock.7.gz
expect_output "redis-ha sync \[--dry-run\] \[--every PERIOD\]" env MANWIDTH=100 man -l /usr/share/man/man8/redis-ha.8.gz
# Found by name too, as `man ocf_redis-ha_RedisLBWriteBlock` finds it.
expect_output "^/usr/share/man/man7/ocf_redis-ha_$agent.7.gz$" man -w "ocf_redis-ha_$agent"

step "systemd units, the Sentinel drop-in, tmpfiles"
units=(redis-ha-sync.service redis-ha-ports.service redis-ha-backup.service redis-ha-backup.timer)
if [[ -f /lib/systemd/system/redis-sentinel.service ]]; then
  units+=(redis-sentinel.service)
else
  echo "   (redis-sentinel is not installed: its drop-in is not verified)"
fi
for unit in "${units[@]}"; do
  # --man=no: Debian's redis-sentinel.service names a man page a minimal host lacks.
  out=$(systemd-analyze verify --man=no "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
  [[ -z $out ]] || fail "systemd-analyze verify $unit warns: $out"
  ok "systemd-analyze verify --man=no $unit: no warnings"
done
# The control: the same check does read the drop-in (a misspelt key in a copy warns).
sa=$(mktemp -d)
mkdir "$sa/redis-sentinel.service.d"
cp /lib/systemd/system/redis-sentinel.service "$sa/" 2>/dev/null || printf '[Service]\nExecStart=/bin/true\n' >"$sa/redis-sentinel.service"
{ cat /usr/lib/systemd/system/redis-sentinel.service.d/redis-ha.conf; echo "ExecPahts=/usr/sbin/cibadmin"; } \
  >"$sa/redis-sentinel.service.d/redis-ha.conf"
out=$(SYSTEMD_UNIT_PATH=$sa: systemd-analyze verify --man=no redis-sentinel.service 2>&1 || true)
rm -rf "$sa"
grep -q "redis-ha.conf.*Unknown key 'ExecPahts'" <<<"$out" || fail "systemd-analyze did not read the drop-in: $out"
ok "systemd-analyze reads the drop-in (a misspelt key in a copy is reported)"
# Sentinel's scripts hand their events to redis-ha-sync over its socket: the drop-in
# must widen nothing of Debian's sandbox (no program, group, path or user mapping).
widened=$(grep -vE '^[[:space:]]*(#|$|\[Service\])' /usr/lib/systemd/system/redis-sentinel.service.d/redis-ha.conf || true)
[[ -z $widened ]] || fail "the Sentinel drop-in widens the sandbox: $widened"
ok "the Sentinel drop-in widens nothing"
ports_unit=/usr/lib/systemd/system/redis-ha-ports.service
for want in "^Type=oneshot$" "^RemainAfterExit=yes$" "^ExecStart=/usr/sbin/redis-ha ports install --closed$" \
  "^ExecStop=/usr/sbin/redis-ha ports remove$" \
  "^Before=redis-server.service redis-sentinel.service corosync.service pacemaker.service$"; do
  grep -qE -- "$want" "$ports_unit" || fail "$ports_unit lacks /$want/"
done
ok "$ports_unit: a oneshot that stays, ports install/remove, before Redis and the cluster"
for unit in "${units[@]}"; do
  [[ $unit == redis-sentinel.service ]] && continue
  wants=$(find /etc/systemd/system -name "$unit" 2>/dev/null)
  [[ -z $wants ]] || fail "the package enabled $unit: $wants"
done
ok "the package enables none of its units (the administrator or the Ansible role does)"
if getent group redis >/dev/null; then
  for want in "/run/redis-ha directory root:redis 750" "/run/redis-ha/host.lock regular empty file root:root 600" \
    "/run/redis-ha/sync.lock regular empty file root:redis 640"; do
    path=${want%% *}
    [[ "$path $(stat -c '%F %U:%G %a' "$path")" == "$want" ]] ||
      fail "$path is $(stat -c '%F %U:%G %a' "$path" 2>&1), not ${want#* }"
  done
  ok "postinst made /run/redis-ha root:redis 0750, its host.lock root:root 0600 and sync.lock root:redis 0640"
fi
[[ ! -e /run/lock/redis-ha.lock && ! -e /run/lock/redis-ha-sync.lock ]] ||
  fail "postinst left the locks of earlier builds in /run/lock"
ok "no lock of ours is left in the world-writable /run/lock"

step "the ACL snippets (tests/package/acl.sh)"
bash tests/package/acl.sh

step "the backup round trip (tests/package/backup.sh)"
bash tests/package/backup.sh

leftovers() { # PHASE: files of the package still there, but the conffile when PHASE=remove
  local f
  for f in "${files[@]}"; do
    [[ $1 == remove && $f == "$conffile" ]] && continue
    [[ -e $f || -L $f ]] && echo "$f"
  done
  for f in "${new_dirs[@]}"; do
    [[ $1 == remove && $conffile == "$f"/* ]] && continue
    [[ -e $f ]] && echo "$f/"
  done
  return 0
}

step "dpkg -r, then dpkg -P"
dpkg -r "$pkg" >/dev/null
left=$(leftovers remove)
[[ -z $left ]] || fail "dpkg -r left: $left"
[[ -f $conffile ]] || fail "dpkg -r removed the conffile $conffile"
ok "dpkg -r removed everything but $conffile"
dpkg -P "$pkg" >/dev/null
left=$(leftovers purge)
[[ -z $left ]] || fail "dpkg -P left: $left"
[[ ! -e /run/redis-ha ]] || fail "dpkg -P left /run/redis-ha"
ok "dpkg -P removed everything, ${#new_dirs[@]} directories of its own included"

step "dpkg -i, then dpkg -P straight away"
dpkg -i "$deb" >/dev/null
dpkg -P "$pkg" >/dev/null
left=$(leftovers purge)
[[ -z $left ]] || fail "dpkg -P left: $left"
ok "nothing left"

step "make install-files again"
# (the EXIT trap does it)
printf '\npackage test passed\n'
