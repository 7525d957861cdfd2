#!/usr/bin/env bash
# storage-writer-bench --layout rows (the server's StorageWriter) built three ways, 64 x 10 only,
# ROUNDS rounds, the order rotated each round: main; "tenth" = the bulk step inserts only the
# entries whose number % 10 == 0 (at 64 x 10 exactly the first event of each write: the number of
# entries a deferred runs index would insert, with today's narrower row); "noindex" = the bulk
# step inserts nothing (the ceiling of any stream-index change). Both are throwaway builds of
# worker/engine/storage.cpp's index_in_bulk (one-line patches, see runs.md), not designs.
DIR=${DIR:-/tmp/s10/runs}
DB=${DB:-/tmp/s10/runs/swb}
V=("main|$DIR/storage-writer-bench" "tenth|$DIR/tenth-swb" "noindex|$DIR/noindex-swb")
n=${#V[@]}
ev=200000
for r in $(seq 1 "${ROUNDS:-5}"); do
  for i in $(seq 0 $((n - 1))); do
    IFS='|' read -r name bin <<<"${V[$(( (i + r) % n ))]}"
    line=$(/usr/bin/time -f 'OUT %O' "$bin" --db "$DB" --events $ev --batch 10 --commit 200 --read 8 2>&1)
    blocks=$(grep '^OUT' <<<"$line" | cut -d' ' -f2)
    json=$(grep '^{' <<<"$line" | tail -1)
    echo "{\"round\":$r,\"shape\":\"x10\",\"variant\":\"$name\",\"load\":\"$(cut -d' ' -f1 /proc/loadavg)\",\"bytes_per_event\":$((blocks * 512 / ev)),${json#\{}"
  done
done
