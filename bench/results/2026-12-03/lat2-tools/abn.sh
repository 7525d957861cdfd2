#!/bin/bash
# abn.sh ROUNDS SECONDS "C..." name... : rotate chorus-bench over clusters /tmp/lat2/c/<name>
B="setsid nice -n -19 /work/wt/hops/build/release/bench/chorus-bench"
rounds=$1; secs=$2; cs=$3; shift 3; names=("$@")
for r in $(seq $rounds); do
  for c in $cs; do
  k=${#names[@]}; 
  for i in $(seq 0 $((k-1))); do
    n=${names[$(( (i + r) % k ))]}
    p=$(cat /tmp/lat2/c/$n/leader)
    t0=0; for pid in $(cat /tmp/lat2/c/$n/pids); do t0=$((t0 + $(awk '{print $14+$15}' /proc/$pid/stat))); done
    out=$($B --port $p --mode write --connections $c --inflight 1 --streams 64 --event-size 256 --batch 1 --duration-s $secs 2>/dev/null | tail -1)
    t1=0; for pid in $(cat /tmp/lat2/c/$n/pids); do t1=$((t1 + $(awk '{print $14+$15}' /proc/$pid/stat))); done
    echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'run':$r,'build':'$n','C':$c,'ev_s':round(d['events_per_s']),'p50':d['p50_ms'],'p99':d['p99_ms'],'errors':d.get('errors',0),'cpu_us':round(($t1-$t0)*1e4/max(1,d['events'])),'load':float(open('/proc/loadavg').read().split()[0])}))"
  done; done
done
