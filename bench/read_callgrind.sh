#!/usr/bin/env bash
# Instructions per event read, independent of the machine's load: runs WORKER under callgrind on
# a fresh folder, fills one stream with FILL (50,000) events of 256 bytes, then zeroes the
# counters, reads the stream with one reader and dumps, zeroes, reads $all and dumps. Prints each
# dump's instruction total; divide by the events the read line shows. Stops the worker by PID.
# Usage: bench/read_callgrind.sh WORKER BENCH_BIN [WORK_DIR]
set -euo pipefail
bin=${1:?usage: read_callgrind.sh WORKER BENCH_BIN [WORK_DIR]}
bench=${2:?usage}
d=${3:-/tmp/chorus-read-callgrind}
fill=${FILL:-50000}
rm -rf "$d"
mkdir -p "$d"
valgrind --tool=callgrind --callgrind-out-file="$d/cg.%p" "$bin" --db "$d/db" --log "$d/log" \
  --ext-tcp-port 35761 --ext-http-port 35763 --int-tcp-port 35771 --int-http-port 35773 \
  >"$d/out" 2>&1 &
vp=$!
trap 'kill $vp 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -s -m 2 -o /dev/null 127.0.0.1:35763/ping && break; sleep 0.5; done
"$bench" --port 35761 --mode read-stream --stream rs --fill "$fill" --connections 1 \
  --event-size 256 --page 4096 --read-events-max 1 >"$d/fill.txt" 2>&1
for workload in stream all; do
  callgrind_control -z "$vp" >/dev/null
  args=(--mode read-stream --stream rs)
  [ "$workload" = all ] && args=(--mode read-all)
  "$bench" --port 35761 "${args[@]}" --connections 1 --page 4096 >"$d/$workload.txt" 2>&1
  callgrind_control -d "$workload" "$vp" >/dev/null
  echo "$workload: $(tail -n 1 "$d/$workload.txt" | grep -o "\"events\":[0-9]*")"
done
kill "$vp"
wait "$vp" || true
grep -H -E '^(summary|totals):' "$d"/cg.*.*
