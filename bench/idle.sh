#!/bin/bash
# Idle cost of virtual nodes (issue 16): one chorus-manager supervising CLUSTERS three-node
# clusters on 127.0.0.1, all idle. Waits until every node answers /health/ready, lets them settle,
# then reads each process's CPU time (/proc utime+stime) and memory over SECONDS and prints a
# markdown table: per worker (median and max) and the manager, in % of one core and MiB. Memory is
# given three ways: RSS counts the shared libraries' resident pages in every process (about
# 17 MiB of a worker's RSS are libcrypto, Poco, protobuf, libstdc++ and SQLite, shared by all
# workers); PSS shares them out among the processes that map them; private (USS) is what the
# process alone holds, i.e. what one more idle worker costs the machine.
# Ports 24777-24778 and 25xxx below the ephemeral range by default; PORT_BASE=B packs them into
# B..B+(10+40*CLUSTERS) instead (the manager on B+1 and B+2, node n of cluster c on
# B+10+40c+10n..+3), so that runs can share a machine. Every process is stopped by its PID.
# With THREADS=1 it also prints, per thread name, the CPU and the wake-ups a second (voluntary
# context switches: each is a sleep, so a wake-up follows) summed over the workers and over the
# manager: which thread to make quieter. Threads that start or end in the window are left out.
#   bench/idle.sh [BUILD_DIR]   env: CLUSTERS (4), SECONDS_MEASURED (60), WORK_DIR, WORKER (binary),
#                               MANAGER (binary), THREADS (0), PRIO (0), PORT_BASE
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build/release}
clusters=${CLUSTERS:-4}
measured=${SECONDS_MEASURED:-60}
work=${WORK_DIR:-/tmp/chorus-idle}
readonly kReadyDeadlineSeconds=120 kSettleSeconds=10 kTicksPerSecond=100
port_base=${PORT_BASE:-}
manager_port=${port_base:-24776}
# node_port C N: the first of node N of cluster C's four ports (int TCP, ext TCP, int/ext HTTP).
node_port() {
  if [ -n "$port_base" ]; then echo $((port_base + 10 + $1 * 40 + $2 * 10)); else echo $((25000 + $1 * 100 + $2 * 10)); fi
}
manager_bin=${MANAGER:-$build/manager/chorus-manager}
worker_bin=${WORKER:-$build/worker/chorus-worker}
[ -x "$manager_bin" ] && [ -x "$worker_bin" ] || { echo "build first: $build" >&2; exit 2; }

rm -rf "$work"
mkdir -p "$work"
{
  echo "IntIp: 127.0.0.1"
  echo "ExtIp: 127.0.0.1"
  echo "IntHttpPort: $((manager_port + 1))"
  echo "ExtHttpPort: $((manager_port + 2))"
  echo "DiscoverViaDns: false"
  echo "Log: $work/logs"
  echo "Db: $work/data"
  echo "WorkerPath: $worker_bin"
  echo "Nodes:"
  for ((c = 0; c < clusters; c++)); do
    for n in 0 1 2; do
      base=$(node_port "$c" "$n")
      echo "  - Name: c${c}n${n}"
      echo "    Cluster: c$c"
      echo "    Options: { ClusterSize: 3, IntTcpPort: $base, ExtTcpPort: $((base + 1)),"
      echo "               IntHttpPort: $((base + 2)), ExtHttpPort: $((base + 3)) }"
    done
  done
} >"$work/manager.yaml"

"$manager_bin" --config "$work/manager.yaml" >"$work/manager.out" 2>&1 &
manager=$!
# PRIO=1 (root): the manager and its nodes (its session's autogroup) at nice -19, so that other
# work on a shared machine does not stretch every wake-up or starve the nodes into hung kills
# (the autogroup is this script's session: set back to 0 at exit).
if [ "${PRIO:-0}" = 1 ]; then
  echo -19 >"/proc/$manager/autogroup" || echo "warning: no autogroup nice" >&2
fi
trap 'kill "$manager" 2>/dev/null || true; wait "$manager" 2>/dev/null || true
      [ "${PRIO:-0}" = 1 ] && echo 0 >/proc/self/autogroup' EXIT

deadline=$((SECONDS + kReadyDeadlineSeconds))
for ((c = 0; c < clusters; c++)); do
  for n in 0 1 2; do
    port=$(($(node_port "$c" "$n") + 3))
    until curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready"; do
      if [ $SECONDS -ge $deadline ]; then
        echo "node c${c}n${n} (port $port) not ready after ${kReadyDeadlineSeconds}s" >&2
        tail -5 "$work/manager.out" >&2
        exit 1
      fi
      sleep 0.5
    done
  done
done
sleep "$kSettleSeconds"

mapfile -t workers < <(pgrep -P "$manager" -f chorus-worker)
[ ${#workers[@]} -eq $((clusters * 3)) ] || {
  echo "expected $((clusters * 3)) workers under the manager, found ${#workers[@]}" >&2
  exit 1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A before
# One line per thread: pid:tid, owner (manager or worker), thread name, ns on a CPU, voluntary
# context switches. One awk per process, so that a snapshot takes milliseconds even on a busy
# machine; the window is timed from the snapshots themselves.
thread_snapshot() {
  for p in "$manager" "${workers[@]}"; do
    local owner=worker
    [ "$p" = "$manager" ] && owner=manager
    awk -v p="$p" -v owner="$owner" '
      { split(FILENAME, f, "/"); t = f[5] }
      FILENAME ~ /comm$/ { gsub(" ", "_"); name[t] = $0 }
      FILENAME ~ /schedstat$/ { run[t] = $1 }
      FILENAME ~ /status$/ && $1 == "voluntary_ctxt_switches:" { vol[t] = $2 }
      END { for (t in name) print p ":" t, owner, name[t], run[t], vol[t] }' \
      /proc/"$p"/task/*/comm /proc/"$p"/task/*/schedstat /proc/"$p"/task/*/status 2>/dev/null
  done | sort
}
[ "${THREADS:-0}" = 1 ] && { thread_snapshot >"$work/threads.before"; threads_from=$(date +%s.%N); }
for p in "$manager" "${workers[@]}"; do before[$p]=$(ticks "$p"); done
sleep "$measured"
declare -A after
for p in "$manager" "${workers[@]}"; do after[$p]=$(ticks "$p"); done
[ "${THREADS:-0}" = 1 ] && { threads_to=$(date +%s.%N); thread_snapshot >"$work/threads.after"; }
percent() { echo "scale=2; (${after[$1]} - ${before[$1]}) * 100 / ($kTicksPerSecond * $measured)" | bc; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
pss_mib() { awk '/^Pss:/ {printf "%.1f", $2 / 1024}' "/proc/$1/smaps_rollup"; }
uss_mib() { awk '/^Private_(Clean|Dirty):/ {kb += $2} END {printf "%.1f", kb / 1024}' "/proc/$1/smaps_rollup"; }
for p in "${workers[@]}"; do
  echo "$(percent "$p") $(rss_mib "$p") $(pss_mib "$p") $(uss_mib "$p")"
done >"$work/workers.txt"
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
maximum() { sort -n | tail -1; }
cpu_median=$(cut -d' ' -f1 "$work/workers.txt" | median)
cpu_max=$(cut -d' ' -f1 "$work/workers.txt" | maximum)
rss_median=$(cut -d' ' -f2 "$work/workers.txt" | median)
rss_max=$(cut -d' ' -f2 "$work/workers.txt" | maximum)
pss_median=$(cut -d' ' -f3 "$work/workers.txt" | median)
pss_max=$(cut -d' ' -f3 "$work/workers.txt" | maximum)
uss_median=$(cut -d' ' -f4 "$work/workers.txt" | median)
uss_max=$(cut -d' ' -f4 "$work/workers.txt" | maximum)
echo "Machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "commit $(git -C "$repo" rev-parse --short HEAD); $clusters clusters x 3 idle nodes, ${measured}s"
echo
echo "| process | CPU % of a core | RSS MiB | PSS MiB | private MiB |"
echo "|---|---|---|---|---|"
echo "| worker, median of $((clusters * 3)) | $cpu_median | $rss_median | $pss_median | $uss_median |"
echo "| worker, max | $cpu_max | $rss_max | $pss_max | $uss_max |"
echo "| manager | $(percent "$manager") | $(rss_mib "$manager") | $(pss_mib "$manager") | $(uss_mib "$manager") |"
if [ "${THREADS:-0}" = 1 ]; then
  echo
  echo "Per thread name (workers: summed over all $((clusters * 3)), then per worker):"
  echo
  echo "| process | thread | CPU % of a core | wake-ups/s | wake-ups/s per worker |"
  echo "|---|---|---|---|---|"
  window=$(echo "$threads_to - $threads_from" | bc)
  join "$work/threads.before" "$work/threads.after" | awk -v w="$window" -v n=$((clusters * 3)) '
    { k = $2 " " $3; cpu[k] += ($8 - $4) / (w * 1e9) * 100; wake[k] += ($9 - $5) / w }
    END { for (k in cpu) { split(k, f, " "); per = f[1] == "worker" ? sprintf("%.1f", wake[k] / n) : "";
            printf "| %s | %s | %.2f | %.1f | %s |\n", f[1], f[2], cpu[k], wake[k], per } }' |
    sort -t'|' -k2,2 -k5,5nr
fi
