#!/usr/bin/env bash
# Side-by-side A/B of two chorus-worker binaries on a single node on disk: both run at once on
# fresh folders, and each round writes with chorus-bench to both, one after the other (64
# writers x 1 and x 10 events of 256 bytes by default). Prints one line per run: round, binary, shape, events/s,
# p50 ms, p99 ms, errors, the worker's CPU per acknowledged event (utime+stime of all its
# threads from /proc over the run, µs) and the writer thread's share of it, and the load average.
# Rounds alternate the order (a then b, then b then a), and each run starts after `sync`.
# Every process it starts is stopped by PID at the end.
# Usage: bench/storage_ab.sh WORKER_A WORKER_B [BENCH] [WORK_DIR]
#        (RUNS=3 DURATION=8 SHAPES="1 10" CONNECTIONS=64 by default; BENCH_ARGS="..." adds
#        chorus-bench options, e.g. "--stream-prefix ab" so that every run writes the same streams;
#        PORTS="2571 2572": the two nodes' port prefixes, so that two people can run it at once)
set -euo pipefail
A=${1:?usage: storage_ab.sh WORKER_A WORKER_B [BENCH] [WORK_DIR]}
B=${2:?usage: storage_ab.sh WORKER_A WORKER_B [BENCH] [WORK_DIR]}
BENCH=${3:-build/release/bench/chorus-bench}
D=${4:-/tmp/chorus-storage-ab}
RUNS=${RUNS:-3}
DURATION=${DURATION:-8}
SHAPES=${SHAPES:-"1 10"}
CONNECTIONS=${CONNECTIONS:-64}
read -r PA PB <<<"${PORTS:-2571 2572}"
TICK=$(getconf CLK_TCK)
rm -rf "$D"
mkdir -p "$D"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
start() {  # name binary base-port
  "$2" --db "$D/$1" --log "$D/log-$1" --ext-tcp-port "$3"2 --ext-http-port "$3"4 \
    --int-tcp-port "$3"1 --int-http-port "$3"3 >"$D/out-$1" 2>&1 &
  pids+=($!)
}
start a "$A" "$PA"
start b "$B" "$PB"
for port in "$PA"4 "$PB"4; do
  for _ in $(seq 1 200); do curl -s -m 1 -o /dev/null "127.0.0.1:$port/ping" && break; sleep 0.1; done
done
# CPU ticks of a process (all threads) and of its thread named "writer".
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
writer_ticks() {
  local t
  for t in /proc/"$1"/task/*; do
    if [ "$(cat "$t/comm" 2>/dev/null)" = writer ]; then awk '{print $14 + $15}' "$t/stat"; return; fi
  done
  echo 0
}
for r in $(seq 1 "$RUNS"); do
  # The order alternates by round, and the disk's dirty pages are written back before each run:
  # a run right after the other binary's 64 x 10 (~1.7 GB written) measured lower in 8 of 12
  # pairs (bench/results/2026-12-03-s9/final/), which once passed for a regression.
  order="a b"
  [ $((r % 2)) = 0 ] && order="b a"
  for batch in $SHAPES; do
    for which in $order; do
      sync
      if [ $which = a ]; then pid=${pids[0]}; port="$PA"2; else pid=${pids[1]}; port="$PB"2; fi
      c0=$(ticks "$pid"); w0=$(writer_ticks "$pid")
      line=$("$BENCH" --port "$port" --mode write --connections "$CONNECTIONS" --inflight 1 \
        --batch "$batch" --streams 64 --event-size 256 --duration-s "$DURATION" \
        ${BENCH_ARGS:-} 2>&1 | tail -1)
      c1=$(ticks "$pid"); w1=$(writer_ticks "$pid")
      echo "$line" | python3 -c "import json,sys
d=json.loads(sys.stdin.read())
cpu=($c1-$c0)/$TICK; w=($w1-$w0)/$TICK; n=max(d['events'],1)
print($r, '$which', 'x$batch', int(d['events_per_s']), d['p50_ms'], d['p99_ms'], d['errors'],
      'cpu_us/ev %.1f' % (cpu*1e6/n), 'writer_us/ev %.1f' % (w*1e6/n),
      'load', open('/proc/loadavg').read().split()[0])"
    done
  done
done
