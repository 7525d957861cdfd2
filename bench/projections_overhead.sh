#!/usr/bin/env bash
# Standard projections' cost on one node on disk: RUNS rounds, each writing with chorus-bench (64
# connections x 1 write of 1 event of 256 bytes, 64 streams of one category, DURATION seconds)
# to a fresh node without projections and then to one with --run-projections=System
# --start-standard-projections; then the lag of $ce- at a steady RATE events/s
# (bench/projections_lag.mjs). Prints one line per write run (round, projections, events/s,
# p50 ms, p99 ms, errors) and the lag's JSON line. Stops every process it starts by PID.
# Usage: bench/projections_overhead.sh [BUILD_DIR] [WORK_DIR] (RUNS=3 DURATION=10 RATE=5000)
set -euo pipefail
BUILD=${1:-build/release}
D=${2:-/tmp/chorus-projections-bench}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
RATE=${RATE:-5000}
W=${W:-$BUILD/worker/chorus-worker}
B=${B:-$BUILD/bench/chorus-bench}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$D"
mkdir -p "$D"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT

start_node() {  # $1: name, then extra options
  local name=$1
  shift
  "$W" --db "$D/$name" --log "$D/log-$name" --ext-tcp-port 15812 --ext-http-port 15814 \
    --int-tcp-port 15811 --int-http-port 15813 "$@" >"$D/out-$name" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    curl -s -m 1 -o /dev/null 127.0.0.1:15814/ping && return 0
    sleep 0.05
  done
  echo "the node did not start" >&2
  exit 1
}
stop_node() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

for r in $(seq 1 "$RUNS"); do
  for mode in off on; do
    opts=()
    [ "$mode" = on ] && opts=(--run-projections=System --start-standard-projections=true)
    start_node "r$r-$mode" "${opts[@]}"
    "$B" --port 15812 --mode write --connections 64 --inflight 1 --batch 1 --streams 64 \
      --event-size 256 --duration-s "$DURATION" 2>&1 | tail -1 | python3 -c "import json,sys
d=json.loads(sys.stdin.read())
print($r, '$mode', int(d['events_per_s']), d['p50_ms'], d['p99_ms'], d['errors'])"
    stop_node
  done
done
start_node lag --run-projections=System --start-standard-projections=true
node "$here/projections_lag.mjs" 15812 "$RATE" 20
stop_node
