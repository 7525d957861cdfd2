#!/bin/bash
# prof.sh WORKER OUT BATCH [SECS]: single node on disk, chorus-bench 64 x BATCH, perf on the worker
set -u
W=$1; O=$2; BATCH=$3; SECS=${4:-8}
BENCH=/work/wt/writer/build/release/bench/chorus-bench
D=/tmp/writer/prof-db; rm -rf $D; mkdir -p $D $O
$W --db $D/db --log $D/log --ext-tcp-port 25712 --ext-http-port 25714 --int-tcp-port 25711 --int-http-port 25713 > $D/out 2>&1 &
wp=$!
for _ in $(seq 1 200); do curl -s -m 1 -o /dev/null 127.0.0.1:25714/ping && break; sleep 0.1; done
# warm up
$BENCH --port 25712 --mode write --connections 64 --inflight 1 --batch $BATCH --streams 64 --event-size 256 --duration-s 3 > /dev/null 2>&1
( sleep 1; perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -p $wp -o $O/perf.data -- sleep $SECS > $O/perf.log 2>&1 ) &
pp=$!
$BENCH --port 25712 --mode write --connections 64 --inflight 1 --batch $BATCH --streams 64 --event-size 256 --duration-s $((SECS+2)) 2>&1 | tail -1 > $O/bench.json
wait $pp
uptime >> $O/bench.json
kill $wp; wait $wp 2>/dev/null
cat $O/bench.json
