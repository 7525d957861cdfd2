#!/usr/bin/env bash
# Runs storage-writer-bench variants, ROUNDS rounds, both shapes, the order rotated each round.
# Each variant: NAME|ENV|ARGS (ENV: space-separated assignments or "-").
B=${B:-/work/wt/corecpu/build/release/bench/storage-writer-bench}
mapfile -t V < "$1"
n=${#V[@]}
for r in $(seq 1 "${ROUNDS:-5}"); do
  for shape in x1 x10; do
    if [ $shape = x1 ]; then sargs="--events 60000 --commit 21"; else sargs="--events 200000 --batch 10 --commit 200"; fi
    for i in $(seq 0 $((n - 1))); do
      spec=${V[$(( (i + r) % n ))]}
      IFS='|' read -r name envs args <<<"$spec"
      [ "$envs" = "-" ] && envs=""
      line=$(env $envs $B --db /tmp/store2/swb-ab $sargs $args 2>/dev/null | tail -1)
      echo "{\"round\":$r,\"shape\":\"$shape\",\"variant\":\"$name\",\"load\":\"$(cut -d' ' -f1 /proc/loadavg)\",${line#\{}"
    done
  done
done
