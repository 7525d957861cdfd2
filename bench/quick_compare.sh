#!/usr/bin/env bash
# Single node vs 3-node cluster, both on disk, in one session: 64 writers x 1 and x 10 events of
# 256 bytes, RUNS rounds alternating the two, DURATION seconds each. Prints one line per run:
# round, target, shape, events/s, p50 ms, p99 ms, errors. Every process it starts is stopped by
# PID at the end.
# Usage: bench/quick_compare.sh [BUILD_DIR] [WORK_DIR]   (RUNS=3 DURATION=6 by default)
set -euo pipefail
BUILD=${1:-build/release}
D=${2:-/tmp/chorus-quick-compare}
RUNS=${RUNS:-3}
DURATION=${DURATION:-6}
W=$BUILD/worker/chorus-worker
B=$BUILD/bench/chorus-bench
rm -rf "$D"
mkdir -p "$D"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
for i in 1 2 3; do
  seeds=""
  for j in 1 2 3; do [ "$j" != "$i" ] && seeds="$seeds,127.0.0.1:1${j}813"; done
  "$W" --db "$D/n$i" --log "$D/log$i" --int-tcp-port=1${i}811 --ext-tcp-port=1${i}812 \
    --int-http-port=1${i}813 --ext-http-port=1${i}814 --cluster-size=3 \
    --discover-via-dns=false --gossip-seed="${seeds#,}" >"$D/out$i" 2>&1 &
  pids+=($!)
done
"$W" --db "$D/single" --log "$D/logs" --ext-tcp-port 14812 --ext-http-port 14814 \
  --int-tcp-port 14811 --int-http-port 14813 >"$D/outs" 2>&1 &
pids+=($!)
leader=""
for _ in $(seq 1 100); do
  leader=$(curl -s -m 1 127.0.0.1:11814/gossip | python3 -c "import json,sys
d=json.load(sys.stdin)
print(next((m['externalTcpPort'] for m in d['members'] if m['state']=='Leader'), ''))" 2>/dev/null || true)
  [ -n "$leader" ] && curl -s -m 1 -o /dev/null 127.0.0.1:14814/ping && break
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader" >&2; exit 1; }
for r in $(seq 1 "$RUNS"); do
  for port in 14812 "$leader"; do
    for batch in 1 10; do
      "$B" --port "$port" --mode write --connections 64 --inflight 1 --batch "$batch" \
        --streams 64 --event-size 256 --duration-s "$DURATION" 2>&1 | tail -1 |
        python3 -c "import json,sys
d=json.loads(sys.stdin.read())
print($r, 'single' if $port == 14812 else 'cluster', 'x$batch', int(d['events_per_s']), d['p50_ms'], d['p99_ms'], d['errors'])"
    done
  done
done
