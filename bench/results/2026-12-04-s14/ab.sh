#!/bin/bash
# A/B: cluster_counts alternating two workers; C and RUNS from env
cd /work/main/bench
out=$1; shift; mkdir -p $out
for r in $(seq ${RUNS:-3}); do
  for b in "$@"; do
    n=$(basename $(dirname $b))
    C=${C:-64} CLIENT=node BASE=1 DURATION=${DURATION:-10} ./cluster_counts.sh $out/$n-$r $b > $out/$n-$r.txt 2>&1
    echo "$n $r $(grep "^events" $out/$n-$r.txt) | $(grep -E 'F:core|L:core' $out/$n-$r.txt | tr -s ' ' | tr '\n' ' ')"
  done
done
