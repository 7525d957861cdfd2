#!/usr/bin/env bash
# storage-writer-bench --layout rows (the server's StorageWriter and ReadConnection) of two
# builds, ROUNDS rounds x both shapes (64 x 1: commits of 21; 64 x 10: commits of 200), the
# order rotated each round; writer CPU, bytes written (ru_oublock x 512 / events) and the reads
# of --read 8 streams.
# Usage: runs_swb_builds.sh OLD_BENCH NEW_BENCH (ROUNDS=5, DB=/tmp/s10/runs/swb)
DB=${DB:-/tmp/s10/runs/swb}
V=("main|$1" "runs|$2")
n=${#V[@]}
for r in $(seq 1 "${ROUNDS:-5}"); do
  for shape in x1 x10; do
    if [ $shape = x1 ]; then ev=60000; sargs="--commit 21"; else ev=200000; sargs="--batch 10 --commit 200"; fi
    for i in $(seq 0 $((n - 1))); do
      IFS='|' read -r name bin <<<"${V[$(( (i + r) % n ))]}"
      line=$(/usr/bin/time -f 'OUT %O' "$bin" --db "$DB" --events $ev $sargs --read 8 2>&1)
      blocks=$(grep '^OUT' <<<"$line" | cut -d' ' -f2)
      json=$(grep '^{' <<<"$line" | tail -1)
      echo "{\"round\":$r,\"shape\":\"$shape\",\"variant\":\"$name\",\"load\":\"$(cut -d' ' -f1 /proc/loadavg)\",\"bytes_per_event\":$((blocks * 512 / ev)),${json#\{}"
    done
  done
done
