#!/usr/bin/env bash
# Per-event disk bytes and instructions of two single-node workers at 64 x BATCH, alternated.
set -u
BATCH=${BATCH:-10}; RUNS=${RUNS:-3}
D=/tmp/s9/ioab; rm -rf $D; mkdir -p $D
pids=()
start(){ "$2" --db $D/$1 --log $D/log-$1 --ext-tcp-port ${3}2 --ext-http-port ${3}4 --int-tcp-port ${3}1 --int-http-port ${3}3 > $D/out-$1 2>&1 & pids+=($!); }
start a "$1" 2471; start b "$2" 2472
trap 'kill ${pids[@]} 2>/dev/null' EXIT
for p in 24714 24724; do for i in $(seq 100); do curl -s -m1 -o /dev/null 127.0.0.1:$p/ping && break; sleep 0.1; done; done
for r in $(seq $RUNS); do for w in a b; do
  if [ $w = a ]; then pid=${pids[0]}; port=24712; else pid=${pids[1]}; port=24722; fi
  wb0=$(awk '/^write_bytes/ {print $2}' /proc/$pid/io)
  perf stat -x, -e task-clock -p $pid -o $D/perf-$w-$r.txt -- sleep 6 &
  ps_=$!
  line=$(/tmp/s9/start-bench --port $port --mode write --connections 64 --inflight 1 --batch $BATCH --streams 64 --event-size 256 --duration-s 5 2>&1 | tail -1)
  wait $ps_
  wb1=$(awk '/^write_bytes/ {print $2}' /proc/$pid/io)
  ev=$(echo "$line" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["events"], int(d["events_per_s"]), d["p99_ms"])')
  ins=$(awk -F, "/task-clock/ {print int(\$1*1000)}" $D/perf-$w-$r.txt)
  set -- $ev
  echo "$r $w events $1 rate $2 p99 $3 bytes/ev $(( (wb1-wb0)/$1 )) cpu_ns/ev $(( ins/$1 )) load $(cut -d' ' -f1 /proc/loadavg)"
done; done
