#!/bin/bash
# A/B of the block device's I/O scheduler (mq-deadline vs none) for cluster_counts.sh runs, alternating.
set -u
C=${C:-64}; out=$1; rounds=${ROUNDS:-4}
orig=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/block/vda/queue/scheduler)
trap 'echo $orig > /sys/block/vda/queue/scheduler' EXIT
for r in $(seq $rounds); do
  if [ $((r % 2)) = 1 ]; then order="mq-deadline none"; else order="none mq-deadline"; fi
  for s in $order; do
    echo $s > /sys/block/vda/queue/scheduler
    CLIENT=node C=$C DURATION=10 bash bench/cluster_counts.sh $out/r$r-$s /tmp/s19/chorus-worker > $out/r$r-$s.log 2>&1
    echo "$r $s $(grep 'ev/s' $out/r$r-$s/info.txt) | $(grep 'write duration' $out/r$r-$s/info.txt)"
  done
done
