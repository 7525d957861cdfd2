#!/usr/bin/env bash
# Start time of a worker over a large database (issue 11 defect 2). Creates a real database with
# the worker (epoch records, users), stops it, appends N events directly with the sqlite3 CLI
# (positions continuing the log, 10 streams), then times a fresh start until the node answers
# /health/live, and times the old whole-table MAX(end_pos) scan against the lookup by rowid that
# replaced it, on the same file. Usage: bench/startup.sh [events] (default 1000000).
# Needs: build/release (./scripts/setup.sh) and the sqlite3 command (apt-get install sqlite3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
events="${1:-1000000}"
worker=build/release/worker/chorus-worker
command -v sqlite3 >/dev/null || { echo "needs the sqlite3 command (apt-get install sqlite3)" >&2; exit 2; }
dir="$(mktemp -d /tmp/chorus-startup-XXXXXX)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
port=$(( 20000 + RANDOM % 5000 ))

start_worker() {
  "$worker" --db "$dir/db" --log "$dir/log" --ext-http-port "$port" --int-http-port $((port + 1)) \
    --ext-tcp-port $((port + 2)) --int-tcp-port $((port + 3)) >"$dir/out.log" 2>&1 &
  pid=$!
}
wait_ready() {  # prints milliseconds until /health/live answers (deadline 600 s)
  local t0 t1
  t0=$(date +%s%N)
  for _ in $(seq 1 60000); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/health/live"; then
      t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "worker exited: $(tail -3 "$dir/out.log")" >&2; return 1; }
    sleep 0.01
  done
  return 1
}
stop_worker() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

start_worker; empty_ms=$(wait_ready); stop_worker
db="$dir/db/chorus.db"
sqlite3 "$db" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $events - 1),
base(p) AS (SELECT MAX((SELECT COALESCE(MAX(end_pos), 0) FROM events),
                       (SELECT COALESCE(MAX(end_pos), 0) FROM epochs)))
INSERT INTO events(pos, end_pos, stream, number, event_id, type, flags, created_ms, data, metadata)
SELECT base.p + i * 300, base.p + (i + 1) * 300, 'bench-' || (i % 10), i / 10, randomblob(16),
       'BenchEvent', 1, 1700000000000, zeroblob(200), x''
FROM n, base;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
size_mb=$(( $(stat -c %s "$db") / 1048576 ))
time_query() {  # milliseconds of one query over the file (page cache warm: second run)
  sqlite3 "$db" "$1" >/dev/null
  local t0 t1; t0=$(date +%s%N); sqlite3 "$db" "$1" >/dev/null; t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
scan_ms=$(time_query "SELECT COALESCE(MAX(end_pos), 0) FROM events")
rowid_ms=$(time_query "SELECT COALESCE((SELECT end_pos FROM events ORDER BY pos DESC LIMIT 1), 0)")
start_worker; big_ms=$(wait_ready); stop_worker
echo "| events | database MiB | start, empty db (ms) | start, $events events (ms) | MAX(end_pos) scan (ms) | rowid lookup (ms) |"
echo "|---|---|---|---|---|---|"
echo "| $events | $size_mb | $empty_ms | $big_ms | $scan_ms | $rowid_ms |"
