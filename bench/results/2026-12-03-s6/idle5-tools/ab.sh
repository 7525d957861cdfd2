#!/bin/bash
# for v; run idle.sh with /tmp/idle5/$v binaries
cd /work/wt/idle2
for v; do
  echo "=== $v $(date -u +%H:%M:%S)"
  MANAGER=/tmp/idle5/$v/chorus-manager WORKER=/tmp/idle5/$v/chorus-worker PRIO=1 THREADS=1 \
    SECONDS_MEASURED=60 WORK_DIR=/tmp/idle5-run bench/idle.sh
done
