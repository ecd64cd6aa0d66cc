#!/usr/bin/env bash
# The installed `redis-ha backup` against real Redis: a primary with data of several
# types, a synced replica and a Sentinel, in a network namespace of our own. A backup
# from the primary and one from the replica each pass redis-check-rdb and, loaded by
# a fresh Redis, hold the same keys and values; old backups are pruned (only ours);
# failures (no Sentinel, primary down) exit non-zero with a message and leave no file.
set -euo pipefail

ok() { printf '   ok: %s\n' "$*"; }
fail() {
  printf '   FAIL: %s\n' "$*" >&2
  exit 1
}

backup=(/usr/sbin/redis-ha backup)
[[ -x ${backup[0]} ]] || fail "${backup[0]} is not installed"
ns=rha-pkg-backup
dir=$(mktemp -d)
chmod 0755 "$dir"
in_ns() { ip netns exec "$ns" "$@"; }
cli() { # PORT ARGS...
  local port=$1
  shift
  in_ns redis-cli -p "$port" "$@"
}

cleanup() {
  local pid
  if ip netns pids "$ns" >/dev/null 2>&1; then
    for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null || true; done
    sleep 0.2
    for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
ip netns del "$ns" 2>/dev/null || true
ip netns add "$ns"
in_ns ip link set lo up

wait_for() { # SECONDS DESCRIPTION CMD...: until CMD succeeds
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.1
  done
}

server() { # PORT DIR [ARGS...]
  local port=$1 d=$2
  shift 2
  mkdir -p "$d"
  in_ns redis-server --port "$port" --dir "$d" --save '' --appendonly no --daemonize yes \
    --logfile "$d/redis.log" --pidfile "$d/redis.pid" "$@" >/dev/null
  wait_for 10 "redis on $port" cli "$port" ping
}

# Primary 7001, replica 7002, Sentinel 27001 (down-after 1 s, to see the primary down).
server 7001 "$dir/primary"
# Strings, a hash, a list, a set, a sorted set, binary-ish and empty values, a TTL.
{
  for i in $(seq 1 200); do echo "SET key:$i value-$i"; done
  for i in $(seq 1 50); do echo "HSET hash field:$i $i"; done
  echo "RPUSH list a b c d e"
  echo "SADD set x y z"
  echo "ZADD zset 1 one 2 two 3 three"
  echo 'SET "spaced key" "a value with spaces"'
  echo 'SET empty ""'
  echo "SET expiring soon EX 86400"
} | cli 7001 >/dev/null
server 7002 "$dir/replica" --replicaof 127.0.0.1 7001
synced() { cli 7002 info replication | grep -q 'master_link_status:up'; }
wait_for 20 "the replica to sync" synced
cat >"$dir/sentinel.conf" <<EOF
port 27001
daemonize yes
logfile "$dir/sentinel.log"
sentinel monitor rha 127.0.0.1 7001 1
sentinel down-after-milliseconds rha 1000
EOF
in_ns redis-sentinel "$dir/sentinel.conf" >/dev/null
replica_known() { cli 27001 sentinel replicas rha | grep -A1 -x 'master-link-status' | grep -qx ok; }
wait_for 20 "the Sentinel to see the synced replica" replica_known
cat >"$dir/redis-ha.conf" <<EOF
master_name = rha
sentinel = 127.0.0.1:27001
EOF
ok "primary (207 keys: strings, a hash, a list, a set, a sorted set, a TTL), synced replica, Sentinel in namespace $ns"

# Every key with its type, TTL presence and value, sorted: the same text means the same data.
snapshot() { # PORT
  local port=$1 key type
  cli "$port" --scan | sort | while IFS= read -r key; do
    type=$(cli "$port" type "$key")
    case $type in
      string) value=$(cli "$port" get "$key") ;;
      hash) value=$(cli "$port" hgetall "$key" | paste -d= - - | sort | tr '\n' ' ') ;;
      list) value=$(cli "$port" lrange "$key" 0 -1 | tr '\n' ' ') ;;
      set) value=$(cli "$port" smembers "$key" | sort | tr '\n' ' ') ;;
      zset) value=$(cli "$port" zrange "$key" 0 -1 withscores | tr '\n' ' ') ;;
      *) value="unexpected type" ;;
    esac
    printf '%s\t%s\tttl:%s\t%s\n' "$key" "$type" \
      "$( (($(cli "$port" ttl "$key") > 0)) && echo yes || echo no)" "$value"
  done
}
snapshot 7001 >"$dir/expected"
[[ $(wc -l <"$dir/expected") -eq 207 ]] || fail "the primary holds $(wc -l <"$dir/expected") keys, not 207"

backups=$dir/backups
mkdir "$backups"
# Old backups of this master go; other files stay, however old.
touch -d '10 days ago' "$backups/redis-rha-20000101T000000Z.rdb.gz" "$backups/notes.txt" \
  "$backups/redis-other-20000101T000000Z.rdb.gz"
chown -R redis:redis "$backups"

restore_and_compare() { # FILE PORT WHAT
  local file=$1 port=$2 what=$3 d=$dir/restore-$2
  mkdir -p "$d"
  gzip -t "$file" || fail "$file is not a valid gzip file"
  gunzip -c "$file" >"$d/dump.rdb"
  out=$(redis-check-rdb "$d/dump.rdb" 2>&1) || fail "redis-check-rdb rejects the backup: $out"
  grep -q "RDB looks OK" <<<"$out" || fail "redis-check-rdb says: $out"
  server "$port" "$d" --dbfilename dump.rdb
  snapshot "$port" >"$d/got"
  diff -u "$dir/expected" "$d/got" >&2 || fail "a Redis started on the $what backup holds other data"
  ok "the $what backup passes redis-check-rdb; a Redis started on it has the same 207 keys and values"
}

# 1. From the primary, as the systemd unit runs it: user redis, keep 7 days.
out=$(in_ns setpriv --reuid redis --regid redis --init-groups \
  "${backup[@]}" --config "$dir/redis-ha.conf" --keep-days 7 "$backups" 2>&1) || fail "backup failed: $out"
echo "   $out"
mapfile -t made < <(find "$backups" -name 'redis-rha-2*Z.rdb.gz' -newer "$dir/expected")
((${#made[@]} == 1)) || fail "expected one new backup, found: ${made[*]:-none}"
[[ ${made[0]##*/} =~ ^redis-rha-[0-9]{8}T[0-9]{6}Z\.rdb\.gz$ ]] || fail "bad name ${made[0]}"
[[ $(stat -c "%U %a" "${made[0]}") == "redis 600" ]] || fail "the backup is $(stat -c "%U %a" "${made[0]}"), not redis 600"
restore_and_compare "${made[0]}" 7003 primary
[[ ! -e $backups/redis-rha-20000101T000000Z.rdb.gz ]] || fail "the 10-day-old backup was kept"
[[ -e $backups/notes.txt && -e $backups/redis-other-20000101T000000Z.rdb.gz ]] ||
  fail "pruning deleted a file that is not one of this master's backups"
ok "--keep-days 7 removed this master's 10-day-old backup and nothing else"

# 2. From the replica (a second apart, so the names differ).
sleep 1
out=$(in_ns "${backup[@]}" --config "$dir/redis-ha.conf" --from replica "$backups" 2>&1) ||
  fail "backup from the replica failed: $out"
grep -q "from replica 127.0.0.1:7002" <<<"$out" || fail "not taken from the replica: $out"
echo "   $out"
latest=$(ls -t "$backups"/redis-rha-2*Z.rdb.gz | head -n 1)
[[ $latest != "${made[0]}" ]] || fail "no second backup"
restore_and_compare "$latest" 7004 replica

# 3. Failures: a message, a non-zero exit, nothing left in the directory.
before=$(ls -A "$backups")
expect_failure() { # PATTERN CONFIG [ARGS...]
  local pattern=$1 config=$2 out rc=0
  shift 2
  out=$(in_ns "${backup[@]}" --config "$config" "$@" "$backups" 2>&1) || rc=$?
  ((rc != 0)) || fail "backup succeeded where it should fail: $out"
  grep -qE -- "$pattern" <<<"$out" || fail "backup failed without saying /$pattern/: $out"
  [[ $(ls -A "$backups") == "$before" ]] || fail "a failed backup left files: $(ls -A "$backups")"
  ok "fails (exit $rc) and says: $(tail -n 1 <<<"$out")"
}
printf 'master_name = rha\nsentinel = 127.0.0.1:1\n' >"$dir/nosentinel.conf"
expect_failure "no majority" "$dir/nosentinel.conf"
printf 'master_name = nosuch\nsentinel = 127.0.0.1:27001\n' >"$dir/nomaster.conf"
expect_failure "does not monitor a master named \"nosuch\"" "$dir/nomaster.conf"
expect_failure "keep-days" "$dir/redis-ha.conf" --keep-days 0
cli 7001 shutdown nosave >/dev/null 2>&1 || true
sdown() { cli 27001 sentinel master rha | grep -A1 -x flags | grep -q s_down; }
wait_for 10 "the Sentinel to see the primary down" sdown
expect_failure "no usable primary|cannot reach 127.0.0.1:7001" "$dir/redis-ha.conf"
