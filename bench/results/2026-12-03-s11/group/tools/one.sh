#!/bin/bash
# one.sh NAME WORKER [WENV] [C]: one cluster_counts run at BASE=2 into /tmp/s11/group/runs/NAME
cd /work/wt/group
o=/tmp/s11/group/runs/$1
C=${4:-64} CLIENT=node BASE=2 DURATION=${DUR:-8} WENV="$3" EXTRA_EVENTS=syscalls:sys_enter_fdatasync bench/cluster_counts.sh $o $2 > /dev/null 2>&1
echo "== $1 load $(cut -d' ' -f1 /proc/loadavg)"; grep -E "^events|total|^F:writer|^L:writer|^L:core|^F:core" $o/info.txt | head -12
python3 /tmp/s11/group/hist.py $o/metrics-*.txt
