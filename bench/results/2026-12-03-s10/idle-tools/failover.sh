#!/bin/bash
# failover.sh V...: bench/failover.mjs, 10 SIGKILLs of the leader, per build in the order given.
cd /work/wt/idle
for v; do
  echo "=== $v $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  node bench/failover.mjs --worker /tmp/s10/idle/$v/chorus-worker --dir /tmp/s10/idle/failover \
    --rounds 10 --prio 1 --port-base 2835 --port-stride 10 > /tmp/s10/idle/failover-$v-$(date -u +%H%M).jsonl
  echo "=== end $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
done
