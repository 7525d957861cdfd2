#!/bin/bash
# run.sh WORKER LABEL: C=64 writes on the leader for 12 s; 6 s of reads on the relaxed follower.
cd /work/main
C=64 CLIENT=node BASE=6 DURATION=12 bench/cluster_counts.sh /tmp/s18/rl/cc-$2 $1 > /tmp/s18/rl/cc-$2.log 2>&1 &
sleep 4
for i in 1 2 3; do
  r=$(curl -s http://127.0.0.1:$((6000 + i*100 + 14))/metrics | awk '/^chorus_replication_relaxed /{print $2}')
  [ "$r" = 1 ] && port=$((6000 + i*100 + 12))
done
echo "$2 relaxed follower port $port $(node /tmp/s18/rl/read_lat.mjs $port 6)"
wait
grep "^events" /tmp/s18/rl/cc-$2.log | cut -c1-60
