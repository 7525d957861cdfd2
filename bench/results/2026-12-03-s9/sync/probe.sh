#!/bin/bash
# probe.sh BIN NAME PORTPREFIX: one node, 64x1 for 8 s; per-thread CPU and fdatasync count
BIN=$1; N=$2; P=$3; D=/tmp/s9sync/probe/$N; rm -rf $D; mkdir -p $D
$BIN --db $D/db --log $D/log --ext-tcp-port ${P}2 --ext-http-port ${P}4 --int-tcp-port ${P}1 --int-http-port ${P}3 > $D/out 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -s -m 1 -o /dev/null "127.0.0.1:${P}4/ping" && break; sleep 0.1; done
declare -A t0
for t in /proc/$pid/task/*; do t0[$(cat $t/comm)]=$(( $(awk '{print $14+$15}' $t/stat) + ${t0[$(cat $t/comm)]:-0} )); done
perf stat -e 'syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_futex' -p $pid -o $D/perf.txt -- sleep 9 &
pp=$!
line=$(/tmp/s9/start-bench --port ${P}2 --mode write --connections 64 --inflight 1 --batch ${BATCH:-1} --streams 64 --event-size 256 --duration-s 8 2>&1 | tail -1)
wait $pp
declare -A t1
for t in /proc/$pid/task/*; do t1[$(cat $t/comm)]=$(( $(awk '{print $14+$15}' $t/stat) + ${t1[$(cat $t/comm)]:-0} )); done
kill $pid; wait $pid 2>/dev/null
ev=$(echo "$line" | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print(d['events'], int(d['events_per_s']), d['p50_ms'], d['p99_ms'])")
echo "$N events/s,p50,p99: $ev load $(cut -d' ' -f1 /proc/loadavg)"
set -- $ev
for k in "${!t1[@]}"; do d=$(( ${t1[$k]} - ${t0[$k]:-0} )); [ $d -gt 0 ] && printf "  %s %.1f us/ev\n" "$k" "$(echo "$d*10000/$1" | bc -l)"; done
grep -E "fdatasync|fsync|futex" $D/perf.txt | awk -v n=$1 '{printf "  %s %s (%.3f per event)\n", $2, $1, $1/n}' | tr -d ,
