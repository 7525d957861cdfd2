#!/bin/bash
# cluster.sh BIN BASE WORKDIR : start 3 nodes, print pids to WORKDIR/pids
bin=$1; base=$2; work=$3
rm -rf $work; mkdir -p $work
for i in 1 2 3; do
  seeds=""
  for j in 1 2 3; do [ "$j" != "$i" ] && seeds="$seeds${seeds:+,}127.0.0.1:$((base+10*j+3))"; done
  setsid "$bin" --db "$work/n$i" --log "$work/n$i-log" --int-ip 127.0.0.1 --ext-ip 127.0.0.1 \
      --int-tcp-port=$((base+10*i+1)) --ext-tcp-port=$((base+10*i+2)) \
      --int-http-port=$((base+10*i+3)) --ext-http-port=$((base+10*i+4)) --cluster-size=3 \
      --discover-via-dns=false --gossip-seed="$seeds" >"$work/n$i.out" 2>&1 &
  echo $! >> $work/pids
done
for _ in $(seq 150); do
  p=$(curl -s --max-time 1 "http://127.0.0.1:$((base+14))/gossip?format=json" |
    python3 -c 'import json,sys; g=json.load(sys.stdin); print(next(m["externalTcpPort"] for m in g["members"] if m["state"]=="Leader" and m["isAlive"]))' 2>/dev/null)
  [ -n "$p" ] && { echo $p > $work/leader; echo "leader $p"; exit 0; }
  sleep 0.2
done
echo no leader; exit 1
