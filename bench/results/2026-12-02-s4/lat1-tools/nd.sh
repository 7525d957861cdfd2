#!/bin/bash
# nd.sh ROUNDS SECONDS "C..." name... : rotate the Node driver (bench/peers/driver.mjs) over my clusters
rounds=$1; secs=$2; cs=$3; shift 3; names=("$@")
for r in $(seq $rounds); do
  for c in $cs; do
  k=${#names[@]}
  for i in $(seq 0 $((k-1))); do
    n=${names[$(( (i + r) % k ))]}
    base=$(cat /tmp/lat1/$n/base)
    eps="127.0.0.1:$((base+14)),127.0.0.1:$((base+24)),127.0.0.1:$((base+34))"
    load=$(cut -d' ' -f1 /proc/loadavg)
    line=$(node /work/main/bench/peers/driver.mjs --system chorus --writers $c --seconds $secs --size 256 --endpoints $eps --pids $(paste -sd, /tmp/lat1/$n/pids))
    echo "$line" | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'run':$r,'build':'$n','C':$c,'ev_s':d['rate'],'p50':d['p50'],'p99':d['p99'],'errors':d['errors'],'cpu_us':d['cpuUsPerWrite'],'load':$load}))"
  done; done
done
