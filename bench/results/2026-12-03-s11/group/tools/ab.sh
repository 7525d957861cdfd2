#!/bin/bash
# ab.sh C PAIRS: interleaved old/new cluster_counts runs (order flips each pair)
C=$1; n=$2
for i in $(seq $n); do
  if [ $((i % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for v in $order; do DUR=8 ./one.sh f-c$C-p$i-$v /tmp/s11/group/$v-worker "" $C >/dev/null; python3 sum.py runs/f-c$C-p$i-$v; done
done
