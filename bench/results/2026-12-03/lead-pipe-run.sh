#!/bin/bash
# run.sh DIR PREFIX : 3-node cluster in DIR on ports PREFIX*1000+i*100+11.., one 10 s C=64 run, flush stats
dir=$1; pre=$2; W=/tmp/s5-main-worker
rm -rf $dir; mkdir -p $dir; cd $dir
port() { echo $(($pre*1000 + $1*100 + $2)); }
pids=()
for i in 1 2 3; do seeds=""; for j in 1 2 3; do [ $j != $i ] && seeds="$seeds${seeds:+,}127.0.0.1:$(port $j 13)"; done
 setsid $W --db n$i --log l$i --int-ip 127.0.0.1 --ext-ip 127.0.0.1 --int-tcp-port=$(port $i 11) --ext-tcp-port=$(port $i 12) --int-http-port=$(port $i 13) --ext-http-port=$(port $i 14) --cluster-size=3 --discover-via-dns=false --gossip-seed=$seeds > o$i 2>&1 & pids+=($!); done
trap 'kill ${pids[@]} 2>/dev/null' EXIT
lp=""
for _ in $(seq 100); do lp=$(curl -s --max-time 1 "http://127.0.0.1:$(port 1 14)/gossip?format=json" | python3 -c 'import json,sys; g=json.load(sys.stdin); print(next(m["externalTcpPort"] for m in g["members"] if m["state"]=="Leader" and m["isAlive"]))' 2>/dev/null); [ -n "$lp" ] && break; sleep 0.2; done
snap() { for i in 1 2 3; do curl -s 127.0.0.1:$(port $i 14)/metrics | grep -E '^chorus_writer_flush(_duration_seconds_(sum|count)|_size_events_(sum|count))' | sed "s/^/$i /"; done; }
snap > m0
/work/main/build/release/bench/chorus-bench --port $lp --mode write --connections 64 --inflight 1 --streams 64 --event-size 256 --batch 1 --duration-s 10 > bench.out 2>&1
snap > m1
python3 - <<'PY'
import json
d=json.loads(open('bench.out').read().strip().splitlines()[-1])
def load(f):
    r={}
    for l in open(f):
        p,k,v=l.split(); r[(p,k)]=float(v)
    return r
a=load('m0'); b=load('m1')
fl=[]
for p in '123':
    g=lambda k: b[(p,k)]-a[(p,k)]
    n=g('chorus_writer_flush_duration_seconds_count')
    fl.append('%.2fms/%.0fev' % (1000*g('chorus_writer_flush_duration_seconds_sum')/n, g('chorus_writer_flush_size_events_sum')/n))
print(int(d['events_per_s']), d['p50_ms'], d['p99_ms'], d.get('server_cpu_us_per_event') and round(d['server_cpu_us_per_event']), ' '.join(fl))
PY
