#!/usr/bin/env bash
# Runs the test suite as if today were another day: every clock the tests read moves by the same
# offset (default +365 days) — the test processes and a throwaway PostgreSQL under libfaketime,
# and a throwaway nats-server built to honour the same FAKETIME offset (Go reads the clock
# through the vDSO, which libfaketime cannot reach; see scripts/shifted-nats-server/build.sh).
# Usage: scripts/test-at-offset.sh [offset] [vitest args...]
#   npm run test:future                  # the whole suite, one year ahead
#   scripts/test-at-offset.sh +800d apps/metering
set -euo pipefail
cd "$(dirname "$0")/.."

offset="${1:-+365d}"
[ $# -gt 0 ] && shift
command -v faketime >/dev/null || { echo "faketime is missing: apt-get install -y faketime" >&2; exit 2; }
nats_server="$(scripts/shifted-nats-server/build.sh)"
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -n "$pg_bin" ] || { echo "PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin)" >&2; exit 2; }

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
nats_port="$(free_port)"
pg_port="$(free_port)"
work="$(mktemp -d)"
as_db_user=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$work"
  as_db_user=(runuser -u postgres --)
fi

cleanup() {
  [ -f "$work/pg/postmaster.pid" ] && kill -QUIT "$(head -1 "$work/pg/postmaster.pid")" 2>/dev/null || true
  [ -n "${pg_pid:-}" ] && wait "$pg_pid" 2>/dev/null || true
  [ -n "${nats_pid:-}" ] && kill "$nats_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

FAKETIME="$offset" "$nats_server" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
nats_pid=$!
"${as_db_user[@]}" "$pg_bin/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
# The postmaster itself runs under faketime (pg_ctl would wait forever: it compares its own clock
# with the start time the postmaster writes).
"${as_db_user[@]}" faketime -f "$offset" "$pg_bin/postgres" -D "$work/pg" -p "$pg_port" -k "$work" \
  -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 >"$work/pg.log" 2>&1 &
pg_pid=$!
for _ in $(seq 1 100); do "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.1; done
for _ in $(seq 1 50); do (echo >"/dev/tcp/127.0.0.1/$nats_port") >/dev/null 2>&1 && break; sleep 0.1; done

export NATS_URL="nats://127.0.0.1:$nats_port"
export TEST_DATABASE_ADMIN_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
export FAKETIME_DONT_FAKE_MONOTONIC=1
echo "clocks: tests $(faketime -f "$offset" date -u +%FT%TZ), nats-server $(grep -m1 -o '^\[[0-9]*\] [0-9/]* [0-9:]*' "$work/nats.log" | cut -d' ' -f2-), PostgreSQL $(faketime -f "$offset" "$pg_bin/../bin/psql" -At "$TEST_DATABASE_ADMIN_URL" -c "select to_char(now() at time zone 'utc','YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" 2>/dev/null || echo '?'), real $(date -u +%FT%TZ)"
faketime -f "$offset" npx vitest run "$@"
