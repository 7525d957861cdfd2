#!/bin/bash
# A/B: cluster_counts alternating workers; C, RUNS, DURATION, WENV_<name> from env
cd /work/main/bench
out=$1; shift; mkdir -p $out
for r in $(seq ${RUNS:-3}); do
  if [ $((r % 2)) -eq 0 ]; then set -- $(printf '%s\n' "$@" | tac); fi
  for b in "$@"; do
    n=$(basename $(dirname $b))
    envvar="WENV_$n"
    C=${C:-64} CLIENT=node BASE=1 DURATION=${DURATION:-10} WENV="${!envvar:-}" ./cluster_counts.sh $out/$n-$r $b > $out/$n-$r.txt 2>&1
    echo "$n $r $(grep "^events" $out/$n-$r.txt) | $(grep -E 'total' $out/$n-$r.txt | tr -s ' ' | tr '\n' ' ')"
  done
done
