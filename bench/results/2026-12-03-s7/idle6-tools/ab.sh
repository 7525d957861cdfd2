#!/bin/bash
# for v; run idle.sh with /tmp/idle6/$v binaries
cd /work/wt/idle2
for v; do
  echo "=== $v $(date -u +%H:%M:%S)"
  MANAGER=/tmp/idle6/$v/chorus-manager WORKER=/tmp/idle6/$v/chorus-worker PRIO=1 THREADS=1 \
    SECONDS_MEASURED=60 WORK_DIR=/tmp/idle6-run bench/idle.sh
done
