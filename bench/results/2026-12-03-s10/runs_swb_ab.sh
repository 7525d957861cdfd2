#!/usr/bin/env bash
# storage-writer-bench, today's layout (rows: the server's StorageWriter, stream index deferred
# and bulk-inserted every kStreamIndexDeferredMax events) against --layout events --index runs
# (one index entry per run, inserted in each commit), ROUNDS rounds x both shapes, the order
# rotated each round. Adds the bytes the process wrote (ru_oublock x 512 / events) to each line.
# Usage: runs_swb_ab.sh [BENCH] (ROUNDS=5, DB=/tmp/s10/runs/swb)
B=${1:-/tmp/s10/runs/storage-writer-bench}
DB=${DB:-/tmp/s10/runs/swb}
V=("rows|--layout rows" "runs|--layout events --index runs")
n=${#V[@]}
for r in $(seq 1 "${ROUNDS:-5}"); do
  for shape in x1 x10; do
    if [ $shape = x1 ]; then ev=60000; sargs="--commit 21"; else ev=200000; sargs="--batch 10 --commit 200"; fi
    for i in $(seq 0 $((n - 1))); do
      IFS='|' read -r name args <<<"${V[$(( (i + r) % n ))]}"
      line=$(/usr/bin/time -f 'OUT %O' $B --db "$DB" --events $ev $sargs $args --read 8 2>&1)
      blocks=$(grep '^OUT' <<<"$line" | cut -d' ' -f2)
      json=$(grep '^{' <<<"$line" | tail -1)
      echo "{\"round\":$r,\"shape\":\"$shape\",\"variant\":\"$name\",\"load\":\"$(cut -d' ' -f1 /proc/loadavg)\",\"bytes_per_event\":$((blocks * 512 / ev)),${json#\{}"
    done
  done
done
