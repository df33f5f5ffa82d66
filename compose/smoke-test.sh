#!/usr/bin/env bash
# End-to-end check of the compose deployment: build the images, start the cluster, check the
# leader's fence is armed and that the first backup lands in the shared repository, write
# through HAProxy, kill the leader's container, check that a new leader takes writes through
# HAProxy within ttl + 30 s and backs up into the same repository, restart the killed
# container and check that it rejoins as a streaming replica. Removes everything it created
# (`down -v`) on exit, pass or fail.
#
# It runs as its own compose project (hapg-smoke, subnet 172.30.72.0/24), so it never touches
# a deployment started with plain `docker compose up`; but HAProxy's host ports are the same
# (5000, 5001, 7000): set HAPG_PRIMARY_PORT, HAPG_REPLICAS_PORT, HAPG_STATS_PORT to others
# when those are taken. HAPG_SMOKE_KEEP=1 leaves the cluster running at the end.
#
# Needs on the host: docker with docker compose (v2) or docker-compose (v1), psql.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
t0=$(date +%s)

export COMPOSE_PROJECT_NAME=hapg-smoke
export HAPG_NET=${HAPG_NET:-172.30.72}
export HAPG_PRIMARY_PORT=${HAPG_PRIMARY_PORT:-5000}
export HAPG_REPLICAS_PORT=${HAPG_REPLICAS_PORT:-5001}
export HAPG_STATS_PORT=${HAPG_STATS_PORT:-7000}
ttl=$(awk '$1 == "ttl:" { print $2; exit }' node.yml)

log() { printf '[%4ds] %s\n' "$(($(date +%s) - t0))" "$*"; }

# Prints what the cluster looks like and the last log lines, then fails.
fail() {
  log "FAIL: $*" >&2
  if [ "${started:-}" = 1 ]; then
    for n in node1 node2 node3; do
      [ "$n" = "${killed:-}" ] && continue
      echo "--- hactl list (from $n)" >&2
      "${dc[@]}" exec -T "$n" hactl list >&2 2>&1 && break
    done
    echo "--- last log lines" >&2
    "${dc[@]}" logs --no-color --tail=25 node1 node2 node3 haproxy >&2 2>&1 || true
  fi
  exit 1
}

cleanup() {
  local rc=$?
  if [ "${started:-}" = 1 ]; then
    if [ "${HAPG_SMOKE_KEEP:-}" = 1 ]; then
      log "left running (HAPG_SMOKE_KEEP=1); remove with: COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME HAPG_NET=$HAPG_NET ${dc[*]} down -v"
    else
      log "down -v"
      "${dc[@]}" down -v --remove-orphans >/dev/null 2>&1 || log "warning: down -v failed"
    fi
  fi
  if [ "$rc" -eq 0 ]; then
    log "PASS (total $(($(date +%s) - t0)) s)"
  fi
}
trap cleanup EXIT

if docker compose version >/dev/null 2>&1; then
  dc=(docker compose)
elif command -v docker-compose >/dev/null; then
  dc=(docker-compose)
else
  fail "neither 'docker compose' nor 'docker-compose' found (Debian: apt-get install docker-compose)"
fi
command -v psql >/dev/null || fail "psql not found on the host (Debian: apt-get install postgresql-client)"
[ -n "$ttl" ] || fail "cannot read ttl from node.yml"

for port in "$HAPG_PRIMARY_PORT" "$HAPG_REPLICAS_PORT" "$HAPG_STATS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port 127.0.0.1:$port is in use (a cluster from 'docker compose up'?): stop it, or set HAPG_PRIMARY_PORT/HAPG_REPLICAS_PORT/HAPG_STATS_PORT"
  fi
done

# psql through HAProxy: pg PORT SQL
pg() {
  PGPASSWORD=postgres PGCONNECT_TIMEOUT=3 psql -XAtq -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$1 user=postgres dbname=postgres" -c "$2"
}
# psql inside a node's container, over its local socket: pg_in NODE SQL
pg_in() { "${dc[@]}" exec -T "$1" psql -XAtq -c "$2" 2>/dev/null; }

# `hactl list` as TSV rows "member role state", asked from node $1.
members() {
  "${dc[@]}" exec -T "$1" hactl list -f tsv 2>/dev/null | awk -F'\t' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { print $col["Member"], $col["Role"], $col["State"] }'
}
leader_of() { awk '$2 == "Leader" && $3 == "running" { print $1 }' <<<"$1"; }
# 3 members: 1 running leader and 2 streaming replicas.
healthy() {
  [ "$(wc -l <<<"$1")" -eq 3 ] &&
    [ "$(grep -c ' Leader running$' <<<"$1")" -eq 1 ] &&
    [ "$(grep -c ' Replica streaming$' <<<"$1")" -eq 2 ]
}

log "building images"
./build-images.sh || fail "build-images.sh failed"

log "starting project $COMPOSE_PROJECT_NAME (subnet $HAPG_NET.0/24, ports $HAPG_PRIMARY_PORT/$HAPG_REPLICAS_PORT/$HAPG_STATS_PORT)"
"${dc[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
started=1
"${dc[@]}" up -d >/dev/null 2>&1 || fail "'${dc[*]} up -d' failed: run it by hand to see why"

log "waiting for 1 leader and 2 streaming replicas (at most 180 s)"
deadline=$(($(date +%s) + 180))
until m=$(members node1) && healthy "$m"; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "cluster not healthy after 180 s"
  sleep 2
done
leader=$(leader_of "$m")
log "leader: $leader"

# The fence (ha-fence, started by the agent) holds the leader's deadline: without it in the
# image the member would never have led.
fence=$("${dc[@]}" exec -T "$leader" curl -fsS http://127.0.0.1:8008/patroni 2>/dev/null |
  grep -o '"fence": *"[a-z]*' | sed 's/.*"//')
[ "$fence" = armed ] || fail "the leader's /patroni says fence '$fence', not armed"
log "the leader's fence is armed"

# A new cluster gets its first backup at once, in the volume the nodes share.
log "waiting for the first backup in the shared repository (at most 120 s)"
deadline=$(($(date +%s) + 120))
until "${dc[@]}" exec -T node1 hactl backups -f json 2>/dev/null | grep -q '"type": *"full"'; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "no full backup listed by hactl backups within 120 s"
  sleep 2
done
log "a full backup is in the repository"

log "writing row 1 through HAProxy :$HAPG_PRIMARY_PORT"
deadline=$(($(date +%s) + 30))
until pg "$HAPG_PRIMARY_PORT" "create table if not exists smoke (id int primary key, note text);
    insert into smoke values (1, 'before failover') on conflict do nothing" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "no write through HAProxy :$HAPG_PRIMARY_PORT within 30 s"
  sleep 1
done
[ "$(pg "$HAPG_PRIMARY_PORT" "select pg_is_in_recovery()")" = f ] ||
  fail "HAProxy :$HAPG_PRIMARY_PORT did not lead to the primary"

log "waiting for row 1 on both replicas, and reading it through HAProxy :$HAPG_REPLICAS_PORT"
deadline=$(($(date +%s) + 30))
for n in node1 node2 node3; do
  [ "$n" = "$leader" ] && continue
  until [ "$(pg_in "$n" "select count(*) from smoke where id = 1")" = 1 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "row 1 not replicated to $n within 30 s"
    sleep 1
  done
done
[ "$(pg "$HAPG_REPLICAS_PORT" "select pg_is_in_recovery(), count(*) from smoke where id = 1")" = "t|1" ] ||
  fail "HAProxy :$HAPG_REPLICAS_PORT did not lead to a replica that has row 1"

now=$(leader_of "$(members node1)")
[ "$now" = "$leader" ] || fail "the leader moved from $leader to '$now' before the kill (nothing should have moved it)"
cid=$("${dc[@]}" ps -q "$leader")
[ -n "$cid" ] || fail "no container for $leader"
log "docker kill $leader"
docker kill "$cid" >/dev/null || fail "docker kill $leader failed"
killed=$leader
t_kill=$(date +%s)
[ "$(docker inspect -f '{{.State.Running}}' "$cid")" = false ] || fail "$leader still runs after docker kill"
survivor=node1
[ "$survivor" = "$killed" ] && survivor=node2

limit=$((ttl + 30))
log "waiting for a new leader to take writes through HAProxy :$HAPG_PRIMARY_PORT (at most ttl + 30 = $limit s)"
until pg "$HAPG_PRIMARY_PORT" "insert into smoke values (2, 'after failover') on conflict do nothing" 2>/dev/null; do
  [ "$(($(date +%s) - t_kill))" -lt "$limit" ] || fail "no write through HAProxy within $limit s of killing $killed"
  sleep 1
done
took=$(($(date +%s) - t_kill))
m=$(members "$survivor")
new_leader=$(leader_of "$m")
if [ -z "$new_leader" ] || [ "$new_leader" = "$killed" ]; then
  fail "writes work again but hactl shows no new leader (leader: '$new_leader')"
fi
[ "$(pg "$HAPG_PRIMARY_PORT" "select count(*) from smoke")" = 2 ] ||
  fail "the new primary does not have both rows"
log "new leader $new_leader took writes ${took} s after the kill"

# The new primary archives into the same repository and backs up there (pgBackRest checks the
# archive before it starts).
log "hactl backup --type incr on the new leader"
"${dc[@]}" exec -T "$new_leader" hactl backup --type incr --timeout 300 >/dev/null 2>&1 ||
  fail "an incremental backup after the failover failed"
[ "$("${dc[@]}" exec -T "$new_leader" hactl backups -f json 2>/dev/null | grep -c '"type": *"incr"')" -ge 1 ] ||
  fail "hactl backups lists no incremental backup"
log "an incremental backup after the failover is in the repository"

log "docker start $killed; waiting for it to rejoin as a streaming replica (at most 120 s)"
docker start "$cid" >/dev/null || fail "docker start $killed failed"
killed=
deadline=$(($(date +%s) + 120))
until m=$(members "$new_leader") && healthy "$m" &&
  [ "$(leader_of "$m")" = "$new_leader" ] &&
  [ "$(pg_in "$leader" "select count(*) from smoke where id = 2")" = 1 ]; do
  [ "$(date +%s)" -lt "$deadline" ] ||
    fail "$leader did not rejoin as a streaming replica with row 2 within 120 s"
  sleep 2
done
log "$leader rejoined; the cluster:"
"${dc[@]}" exec -T "$new_leader" hactl list
