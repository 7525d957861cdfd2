#!/bin/bash
# ab.sh v...: runs bench/idle.sh once per build, in the order given, with /tmp/s10/idle/$v/chorus-worker
# and $v's chorus-manager if it has one (else base's); ports 2800-2953 (PORT_BASE=2800).
cd /work/wt/idle
for v; do
  echo "=== $v $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  MANAGER=$( [ -x /tmp/s10/idle/$v/chorus-manager ] && echo /tmp/s10/idle/$v/chorus-manager || echo /tmp/s10/idle/base/chorus-manager) WORKER=/tmp/s10/idle/$v/chorus-worker PRIO=1 THREADS=1 \
    PORT_BASE=2800 SECONDS_MEASURED=60 WORK_DIR=/tmp/s10/idle/run bench/idle.sh
done
