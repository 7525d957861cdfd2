#!/bin/bash
# Single-node and 3-node write benchmarks from one build in one session (issue 4), so their ratio
# is measured under the same machine load. Starts, on fresh on-disk folders under WORK_DIR:
#   - one single-node worker (ext TCP 14612),
#   - a 3-node cluster in the clustering guide's shape (node i: ports 1<i>611..1<i>614; every port
#     below the ephemeral range 32768-60999, where an outgoing connection can take one),
# then, RUNS times, alternates: (a) 64 conn x 1 ev/write on the single node, the same on the
# cluster's leader, (b) 64 conn x 10 ev/write on the single node, the same on the leader.
# With READS=1 it then runs issue 2's read workloads (bench/run_suite.sh c, c', d) on the single
# node. PRIO=1 starts every process in its own scheduler autogroup with autogroup nice -19 (needs
# root; see docs/benchmarks.md). Every process started here is killed by its PID at the end.
# Usage: bench/run_cluster_suite.sh OUT_DIR WORK_DIR [WORKER_BIN] [BENCH_BIN]
#   env: RUNS (3), DURATION (10), PRIO (0), READS (0), WORKER_ARGS (extra worker options),
#        PROFILE (0; 1: only one cluster (a) run, with the leader's per-thread schedstat and a
#        `perf record -e cpu-clock --call-graph dwarf` of the leader in the middle 5 s, to OUT_DIR;
#        2: the same without perf, i.e. per-thread schedstat of all three nodes only)
set -euo pipefail
out=${1:?usage: run_cluster_suite.sh OUT_DIR WORK_DIR [WORKER_BIN] [BENCH_BIN]}
work=${2:?usage: run_cluster_suite.sh OUT_DIR WORK_DIR [WORKER_BIN] [BENCH_BIN]}
worker=${3:-build/bench/worker/chorus-worker}
bench=${4:-build/bench/bench/chorus-bench}
runs=${RUNS:-3}
duration=${DURATION:-10}
prio=${PRIO:-0}
reads=${READS:-0}
read -r -a extra <<<"${WORKER_ARGS:-}"
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# Starts "$@" in the background (in a new session and autogroup when PRIO=1); sets $started.
start() {
  local log=$1
  shift
  if [ "$prio" = 1 ]; then
    setsid "$@" >"$log" 2>&1 &
    started=$!
    sleep 0.05
    echo -19 >"/proc/$started/autogroup" || echo "warning: autogroup nice failed for $started"
  else
    "$@" >"$log" 2>&1 &
    started=$!
  fi
  pids+=("$started")
}

start "$work/single.out" "$worker" --db "$work/single" --log "$work/single-log" \
  --ext-tcp-port 14612 --ext-http-port 14614 --int-tcp-port 14611 --int-http-port 14613 "${extra[@]}"
for i in 1 2 3; do
  seeds=""
  for j in 1 2 3; do [ "$j" != "$i" ] && seeds="$seeds${seeds:+,}127.0.0.1:1${j}613"; done
  start "$work/out$i.txt" "$worker" --db "$work/n$i" --log "$work/log$i" --int-ip 127.0.0.1 \
    --ext-ip 127.0.0.1 --int-tcp-port=1${i}611 --ext-tcp-port=1${i}612 --int-http-port=1${i}613 \
    --ext-http-port=1${i}614 --cluster-size=3 --discover-via-dns=false --gossip-seed="$seeds" \
    "${extra[@]}"
done
echo "pids: ${pids[*]}" | tee "$out/pids.txt"

# The leader's external TCP port, from node 1's gossip.
leader_port() {
  curl -s --max-time 1 "http://127.0.0.1:11614/gossip?format=json" |
    python3 -c 'import json,sys; g=json.load(sys.stdin); print(next(m["externalTcpPort"] for m in g["members"] if m["state"]=="Leader" and m["isAlive"]))' 2>/dev/null
}
for _ in $(seq 100); do
  lp=$(leader_port || true)
  [ -n "$lp" ] && break
  sleep 0.2
done
[ -n "$lp" ] || { echo "no leader"; exit 1; }
echo "leader ext tcp port $lp" | tee -a "$out/pids.txt"

run() {
  local name=$1 port=$2
  shift 2
  echo "$name port $port load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load.txt"
  if [ "$prio" = 1 ]; then
    setsid "$bench" --seed 127.0.0.1:11614 --port "$port" --label "$name" "$@" >"$out/$name.txt" 2>&1 &
    local b=$!
    pids+=("$b")
    echo -19 >"/proc/$b/autogroup" 2>/dev/null || true
    wait "$b" || echo "$name FAILED"
  else
    "$bench" --seed 127.0.0.1:11614 --port "$port" --label "$name" "$@" >"$out/$name.txt" 2>&1 || echo "$name FAILED"
  fi
  tail -n 1 "$out/$name.txt"
}

if [ "${PROFILE:-0}" != 0 ]; then
  i=${lp:1:1}
  lpid=${pids[$i]}
  echo "profiling leader pid $lpid (port $lp)" | tee -a "$out/pids.txt"
  (
    sleep 2
    bench/thread_schedstat.sh "$lpid" 5 >"$out/leader_schedstat.txt" 2>&1 &
    for f in 1 2 3; do [ "$f" != "$i" ] && bench/thread_schedstat.sh "${pids[$f]}" 5 >"$out/follower${f}_schedstat.txt" 2>&1 & done
    [ "$PROFILE" = 1 ] && perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$lpid" -o "$out/leader.perf" -- sleep 5 \
      >"$out/perf_record.txt" 2>&1
    wait
  ) &
  prof=$!
  run cluster_a_profiled "$lp" --mode write --connections 64 --inflight 1 --streams 64 \
    --event-size 256 --duration-s "$duration" --batch 1
  wait "$prof" || true
  exit 0
fi

w=(--mode write --connections 64 --inflight 1 --streams 64 --event-size 256 --duration-s "$duration")
for i in $(seq "$runs"); do
  run "single_a$i" 14612 "${w[@]}" --batch 1
  lp=$(leader_port)
  run "cluster_a$i" "$lp" "${w[@]}" --batch 1
  run "single_b$i" 14612 "${w[@]}" --batch 10
  lp=$(leader_port)
  run "cluster_b$i" "$lp" "${w[@]}" --batch 10
done
curl -s "http://127.0.0.1:11614/gossip?format=json" >"$out/gossip_end.json" || true

if [ "$reads" = 1 ]; then
  common=(--event-size 256 --page 4096)
  for i in $(seq "$runs"); do run "single_c$i" 14612 --mode read-stream --fill 200000 --connections 1 "${common[@]}"; done
  for i in $(seq "$runs"); do run "single_c2_$i" 14612 --mode read-stream --fill 200000 --connections 2 "${common[@]}"; done
  for i in $(seq "$runs"); do run "single_d$i" 14612 --mode read-all --connections 1 --read-events-max 1000000 "${common[@]}"; done
fi
