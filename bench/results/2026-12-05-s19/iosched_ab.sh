#!/bin/bash
# A/B of the block device's I/O scheduler (mq-deadline vs none) for cluster_counts.sh runs,
# alternating, order reversed every other round; the device's scheduler is restored at the end.
#   bash bench/results/2026-12-05-s19/iosched_ab.sh OUT_DIR WORKER   (root; from the repository)
#   env: C (64), ROUNDS (4), DEV (vda)
set -u
out=${1:?usage: iosched_ab.sh OUT_DIR WORKER}; worker=${2:?usage: iosched_ab.sh OUT_DIR WORKER}
C=${C:-64}; rounds=${ROUNDS:-4}; sched=/sys/block/${DEV:-vda}/queue/scheduler
orig=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$sched")
trap 'echo "$orig" > "$sched"' EXIT
for r in $(seq $rounds); do
  if [ $((r % 2)) = 1 ]; then order="mq-deadline none"; else order="none mq-deadline"; fi
  for s in $order; do
    echo $s > "$sched"
    CLIENT=node C=$C DURATION=10 bash bench/cluster_counts.sh $out/r$r-$s "$worker" > $out/r$r-$s.log 2>&1
    echo "$r $s $(grep 'ev/s' $out/r$r-$s/info.txt) | $(grep 'write duration' $out/r$r-$s/info.txt)"
  done
done
