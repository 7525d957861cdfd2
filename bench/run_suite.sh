#!/bin/bash
# Runs issue 2's four benchmark workloads, 3 times each, against a running worker and prints one
# JSON line per run (see docs/benchmarks.md). Usage: bench/run_suite.sh OUT_DIR [PORT] [BENCH_BIN]
# The worker must be on disk (not --mem-db) for the write figures to mean fsynced events.
# SEED=host:http-port (the node's external HTTP port) adds the server's CPU per event to each line.
set -euo pipefail
out=${1:?usage: run_suite.sh OUT_DIR [PORT] [BENCH_BIN]}
port=${2:-31113}
bench=${3:-build/bench/bench/chorus-bench}
runs=3
mkdir -p "$out"

run() {
  local name=$1
  shift
  echo "$name load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load.txt"
  "$bench" ${SEED:+--seed "$SEED"} --port "$port" --label "$name" "$@" >"$out/$name.txt" 2>&1 ||
    echo "$name FAILED"
  tail -n 1 "$out/$name.txt"
}

common=(--event-size 256 --page 4096)
for i in $(seq $runs); do
  run "a$i" --mode write --connections 64 --inflight 1 --batch 1 --streams 64 --duration-s 10 \
    "${common[@]}"
done
for i in $(seq $runs); do
  run "b$i" --mode write --connections 64 --inflight 1 --batch 10 --streams 64 --duration-s 10 \
    "${common[@]}"
done
for i in $(seq $runs); do
  run "c$i" --mode read-stream --fill 200000 --connections 1 "${common[@]}"
done
for i in $(seq $runs); do
  run "c2_$i" --mode read-stream --fill 200000 --connections 2 "${common[@]}"
done
for i in $(seq $runs); do
  run "d$i" --mode read-all --connections 1 --read-events-max 1000000 "${common[@]}"
done
