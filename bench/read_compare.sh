#!/usr/bin/env bash
# Read throughput of two worker binaries side by side (issue 16): each gets a fresh single node
# on disk with the same data (one stream of FILL events of 256 bytes, then a second one, so $all
# holds 2 × FILL), then RUNS rounds alternate A and B: one reader of the first stream forward,
# then $all forward as admin, in pages of 4,096 (bench/run_suite.sh's (c) and (d)). Prints one
# line per run: round, binary, workload, events/s, the worker's CPU µs per event read (utime +
# stime from /proc over the run; then the stime part alone), the load average before it. Every process it starts is
# stopped by PID at the end.
# Usage: bench/read_compare.sh WORKER_A WORKER_B BENCH_BIN [WORK_DIR]
#   env: RUNS (3), FILL (200000), PRIO (0; 1 = each process in its own autogroup at nice -19,
#   needs root, as in run_cluster_suite.sh), PORT_BASE (23710: A and B use PORT_BASE+1..+14;
#   below the ephemeral range 32768-60999, where a client's local port once took one of them),
#   INTERLEAVED (0; N > 0 = also N events written one at a time round-robin to 64 streams by 64
#   connections, as at 64 x 1, and a third workload "stream64" reads one of them forward: its
#   events are not consecutive in the log, unlike the filled stream's)
set -euo pipefail
a=${1:?usage: read_compare.sh WORKER_A WORKER_B BENCH_BIN [WORK_DIR]}
b=${2:?usage}
bench=${3:?usage}
work=${4:-/tmp/chorus-read-compare}
runs=${RUNS:-3}
fill=${FILL:-200000}
interleaved=${INTERLEAVED:-0}
prio=${PRIO:-0}
base=${PORT_BASE:-23710}
ticks=$(getconf CLK_TCK)
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Runs "$@" (in the background in a new autogroup when PRIO=1); sets $started.
start() {
  local log=$1
  shift
  if [ "$prio" = 1 ]; then
    setsid "$@" >"$log" 2>&1 &
    started=$!
    echo -19 >"/proc/$started/autogroup" 2>/dev/null || echo "warning: autogroup nice failed"
  else
    "$@" >"$log" 2>&1 &
    started=$!
  fi
}

declare -A port pid
i=0
for name in A B; do
  i=$((i + 1))
  bin=$a
  [ "$name" = B ] && bin=$b
  start "$work/$name.out" "$bin" --db "$work/$name" --log "$work/$name-log" \
    --ext-tcp-port "$((base + i))" --ext-http-port "$((base + i + 2))" \
    --int-tcp-port "$((base + 10 + i))" --int-http-port "$((base + 12 + i))"
  pids+=("$started")
  pid[$name]=$started
  port[$name]=$((base + i))
done
# Ready when its gossip shows it as the leader (it takes writes then).
for name in A B; do
  for _ in $(seq 1 300); do
    curl -s -m 1 "127.0.0.1:$((port[$name] + 2))/gossip?format=json" | grep -q '"Leader"' && break
    sleep 0.1
  done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }

# bench NAME PORT ARGS...: runs chorus-bench, waits for it; prints its last (JSON) line.
bench_run() {
  local name=$1 p=$2
  shift 2
  start "$work/$name.txt" "$bench" --port "$p" --label "$name" --event-size 256 --page 4096 "$@"
  pids+=("$started")
  wait "$started" || echo "$name FAILED" >&2
  tail -n 1 "$work/$name.txt"
}

for name in A B; do
  for s in rs rs2; do
    bench_run "fill-$name-$s" "${port[$name]}" --mode read-stream --stream "$s" --fill "$fill" \
      --connections 1 >/dev/null
  done
done

workloads="stream all"
if [ "$interleaved" -gt 0 ]; then
  workloads="stream all stream64"
  for name in A B; do
    bench_run "fill-$name-il" "${port[$name]}" --mode write --streams 64 --stream-prefix il \
      --batch 1 --connections 64 --events "$interleaved" >/dev/null
  done
fi

for r in $(seq 1 "$runs"); do
  for workload in $workloads; do
    for name in A B; do
      args=(--mode read-stream --stream rs --connections 1)
      [ "$workload" = all ] && args=(--mode read-all --connections 1 --read-events-max 100000000)
      [ "$workload" = stream64 ] && args=(--mode read-stream --stream il-0 --connections 1)
      load=$(cut -d' ' -f1-3 /proc/loadavg)
      before=$(cpu_ticks "${pid[$name]}")
      sys_before=$(sys_ticks "${pid[$name]}")
      line=$(bench_run "$workload-$name-$r" "${port[$name]}" "${args[@]}")
      after=$(cpu_ticks "${pid[$name]}")
      sys_after=$(sys_ticks "${pid[$name]}")
      python3 -c "import json,sys
d=json.loads(sys.argv[1]); n=d['events'] or 1
us=($after-$before)*1e6/$ticks/n
sys=($sys_after-$sys_before)*1e6/$ticks/n
print($r, '$name', '$workload', int(d['events_per_s']), d['events'], '%.2f' % us, 'sys %.2f' % sys, 'load', '$load')" \
        "$line"
    done
  done
done
