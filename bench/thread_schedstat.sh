#!/bin/bash
# Per-thread CPU use of a running process over a window, from /proc/PID/task/TID/schedstat:
# % of the window on a CPU, % waiting in the run queue (runnable but not running: CPU contention)
# and the rest off-CPU (blocked: waiting for I/O, a lock, a peer or work), one line per thread
# (the worker's threads share one name; `perf report --sort tid` tells them apart).
# Usage: bench/thread_schedstat.sh PID [SECONDS]
set -euo pipefail
pid=${1:?usage: thread_schedstat.sh PID [SECONDS]}
secs=${2:-8}
snap() {
  for t in /proc/"$pid"/task/*; do
    printf '%s %s %s\n' "${t##*/}" "$(tr ' ' '_' <"$t/comm")" "$(cut -d' ' -f1-2 "$t/schedstat")"
  done 2>/dev/null
}
a=$(snap)
sleep "$secs"
b=$(snap)
join <(sort <<<"$a") <(sort <<<"$b") | awk -v w="$secs" '
  { r = ($6 - $3) / (w * 1e9) * 100; q = ($7 - $4) / (w * 1e9) * 100; tr += r
    if (r + q >= 0.5) printf "%-8s %-16s run %5.1f%%  rq-wait %5.1f%%  off-cpu %5.1f%%\n", $1, $2, r, q, 100 - r - q }
  END { printf "process CPU: %.1f%% of one core (all threads)\n", tr }' | sort -k4 -n -r
