#!/bin/bash
# Where a 3-node write costs (issue 16): starts a cluster of WORKER (NODES=1: a single node), node
# i on ports BASE*1000 + i*100 + 11..14 (as PORT_PREFIX in cluster_ab.sh and large_frames.sh), runs chorus-bench with C connections x 1 write of 256 bytes on the
# leader for DURATION s, and counts with `perf stat --per-thread` over the run: CPU (task-clock),
# syscalls and context switches of every worker thread, per acknowledged event (L: leader, F: both
# followers together). EXTRA_EVENTS adds tracepoints or probes, e.g. syscalls:sys_enter_sendto, or
# probe_libc:malloc (after `perf probe -x /lib/x86_64-linux-gnu/libc.so.6 --add malloc`). Counts per
# event hold better than CPU time on a shared machine. Each node's /metrics is saved after the run
# (metrics-L.txt, metrics-F<i>.txt: the storage writer's commit sizes and durations; the last
# lines print from them the leader's mean write duration, server side, and each node's commits:
# beside the client's p50 this splits a write's time between the server and the client). Every worker
# and the bench run in their own autogroup at nice -19 (root); every process started here is
# stopped by its PID.
# PCAP=1 also captures the nodes' external TCP ports with tcpdump for PCAP_SECONDS (1.5) from the
# start of the measured window and splits each write's time into the server's part and the
# client's (bench/latency_split.py, appended to info.txt): the capture costs CPU, so take the
# split from such a run and the throughput and CPU figures from one without it.
# CLIENT=node drives the cluster as bench/peers.sh does instead (node-eventstore-client, C writers
# sharing one connection, found through gossip): the shape of issue 16's targets, where replies
# and reads share one socket; chorus-bench opens one connection per writer. With CLIENT=node,
# FOLLOWER=1 writes through a follower instead (requireMaster false: it forwards each write).
#   bench/cluster_counts.sh OUT_DIR WORKER [BENCH_BIN]
#   env: C (64), DURATION (10), NODES (3, at most 9), BASE (6; or PORT_PREFIX: 1 to 31),
#        WARGS (extra worker options), WENV (environment for the workers, e.g. GLIBC_TUNABLES=...),
#        EXTRA_EVENTS, CLIENT (bench), FOLLOWER (with CLIENT=node), PCAP, PCAP_SECONDS,
#        WORK_DIR (/tmp: an existing folder for the nodes' data, removed at the end when given;
#        /dev/shm measures the same build without its disk's cost)
# Ports: BASE 1 to 31 keeps every node port between 1111 and 31914, below the ephemeral range
# (32768-60999), where an outgoing connection (a client's, a node's to its peers) could take a
# node's port before it binds it. Until 2026-12-03 ports were BASE<i>111..BASE<i>114, which for
# BASE 3 to 6 fell in that range; BASE keeps its name, any other value is refused.
set -euo pipefail
out=${1:?usage: cluster_counts.sh OUT_DIR WORKER [BENCH_BIN]}
worker=${2:?usage: cluster_counts.sh OUT_DIR WORKER [BENCH_BIN]}
bench=${3:-build/release/bench/chorus-bench}
base=${PORT_PREFIX:-${BASE:-6}}
nodes=${NODES:-3}
[[ "$base" =~ ^[1-9][0-9]?$ ]] && [ "$base" -ge 1 ] && [ "$base" -le 31 ] ||
  { echo "BASE (or PORT_PREFIX) must be a number from 1 to 31 (node i listens on BASE*1000 + i*100 + 11..14, below the ephemeral ports 32768-60999), not '$base'" >&2; exit 2; }
[ -d "${WORK_DIR:-/tmp}" ] || { echo "WORK_DIR: no folder ${WORK_DIR}" >&2; exit 2; }
[[ "$nodes" =~ ^[1-9]$ ]] || { echo "NODES must be a number from 1 to 9, not '$nodes'" >&2; exit 2; }
port() { echo $((base * 1000 + $1 * 100 + $2)); }  # port NODE SUFFIX, e.g. port 2 14
work=${WORK_DIR:-/tmp}/repl-count-$base; dur=${DURATION:-10}
rm -rf "$work"; mkdir -p "$work" "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -z "${WORK_DIR:-}" ] || rm -rf "$work"  # e.g. tmpfs: do not leave the data in memory
}
trap cleanup EXIT
for i in $(seq $nodes); do
  seeds=""; for j in $(seq $nodes); do [ "$j" != "$i" ] && seeds="$seeds${seeds:+,}127.0.0.1:$(port $j 13)"; done
  env ${WENV:-} setsid "$worker" --db "$work/n$i" --log "$work/l$i" --int-ip 127.0.0.1 --ext-ip 127.0.0.1 --int-tcp-port=$(port $i 11) --ext-tcp-port=$(port $i 12) --int-http-port=$(port $i 13) --ext-http-port=$(port $i 14) --cluster-size=$nodes --discover-via-dns=false ${seeds:+--gossip-seed=$seeds} ${WARGS:-} >"$work/o$i" 2>&1 &
  pids+=($!); sleep 0.05; echo -19 > /proc/$!/autogroup
done
for _ in $(seq 150); do
  lp=$(curl -s --max-time 1 "http://127.0.0.1:$(port 1 14)/gossip?format=json" | python3 -c 'import json,sys; g=json.load(sys.stdin); print(next(m["externalTcpPort"] for m in g["members"] if m["state"]=="Leader" and m["isAlive"]))' 2>/dev/null || true)
  [ -n "$lp" ] && break; sleep 0.2
done
li=$(( (lp - base * 1000) / 100 )); lpid=${pids[$((li-1))]}
echo "leader node $li pid $lpid; pids ${pids[*]}; load $(cat /proc/loadavg)" > "$out/info.txt"
if [ -n "${PCAP:-}" ] && ! command -v tcpdump >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "PCAP needs tcpdump (apt-get install tcpdump, as root)" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q tcpdump >/dev/null
fi
capture() {  # PCAP: the external TCP ports for PCAP_SECONDS, in the background
  [ -n "${PCAP:-}" ] || return 0
  local filter=""; for i in $(seq $nodes); do filter="$filter${filter:+ or }port $(port $i 12)"; done
  timeout "${PCAP_SECONDS:-1.5}" tcpdump -i lo -s 0 -B 65536 -w "$out/ext.pcap" "tcp and ($filter)" 2>"$out/tcpdump.err" &
  cap_=$!
}
count() {  # perf stat of every worker thread until killed
  capture
  perf stat --per-thread -e raw_syscalls:sys_enter,sched:sched_switch,task-clock${EXTRA_EVENTS:+,$EXTRA_EVENTS} -p $(IFS=,; echo "${pids[*]}") -o "$out/perfstat.txt" &
  ps_=$!
}
if [ "${CLIENT:-bench}" = node ]; then
  # The driver counts the writes acknowledged after its 1 s warm-up, for DURATION s: perf stat
  # covers the same window.
  eps=""; for i in $(seq $nodes); do eps="$eps${eps:+,}127.0.0.1:$(port $i 14)"; done
  here=$(cd "$(dirname "$0")" && pwd)
  setsid node "$here/peers/driver.mjs" --system chorus --writers ${C:-64} --seconds $dur --warmup 1 --size 256 ${FOLLOWER:+--follower} --endpoints "$eps" --pids "$(IFS=,; echo "${pids[*]}")" > "$out/bench.out" 2>&1 &
  b=$!; sleep 0.05; echo -19 > /proc/$b/autogroup || true
  sleep 1; count; sleep $dur; kill -INT $ps_; wait $ps_ || true
  wait $b
  python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(json.dumps({"events": d["acked"], "events_per_s": d["rate"], "p50_ms": d["p50"], "p99_ms": d["p99"], "errors": d["errors"], "cpu_us_per_write": d["cpuUsPerWrite"], "client_cpu_us_per_write": d["clientCpuUsPerWrite"]}))' "$out/bench.out" > "$out/bench.json"
else
  count
  sleep 0.3
  setsid $bench --port $lp --mode write --connections ${C:-64} --inflight 1 --streams 64 --event-size 256 --duration-s $dur 2>/dev/null > "$out/bench.out" &
  b=$!; sleep 0.05; echo -19 > /proc/$b/autogroup || true; wait $b
  kill -INT $ps_; wait $ps_ || true
  tail -1 "$out/bench.out" > "$out/bench.json"
fi
if [ -n "${PCAP:-}" ]; then
  wait "$cap_" || true  # it ends at its timeout
  ext_ports=$(for i in $(seq $nodes); do echo -n "$(port $i 12),"; done)
  { echo "latency split (bench/latency_split.py, $(grep -o '[0-9]* packets dropped by kernel' "$out/tcpdump.err" || echo '? dropped')):"
    python3 "$(dirname "$0")/latency_split.py" "$out/ext.pcap" "${ext_ports%,}" 2>&1 || true; } >> "$out/info.txt"
fi
# Each node's /metrics after the run (the storage writer's commit sizes and durations), the
# leader's as metrics-L.txt, the followers' as metrics-F<i>.txt.
for i in $(seq $nodes); do
  role=F$i; [ "$i" = "$li" ] && role=L
  curl -s --max-time 2 "http://127.0.0.1:$(port $i 14)/metrics" > "$out/metrics-$role.txt" || true
done
# Resident memory of each worker after the run (the leader first): what a load leaves behind.
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
echo "rss_kib leader $(rss "$lpid") followers $(for p in "${pids[@]}"; do [ "$p" != "$lpid" ] && echo -n "$(rss "$p") "; done)" | tee -a "$out/info.txt"
python3 - "$out" "$lpid" "${pids[@]}" <<'PY' | tee -a "$out/info.txt"
import collections, glob, json, re, sys
out, lpid, pids = sys.argv[1], sys.argv[2], sys.argv[3:]
d = json.load(open(out + "/bench.json"))
ev = d["events"]
# map tid -> pid
tid2pid = {}
import os
for p in pids:
    try:
        for t in os.listdir(f"/proc/{p}/task"): tid2pid[t] = p
    except FileNotFoundError: pass
agg = collections.defaultdict(lambda: collections.defaultdict(float))
for line in open(out + "/perfstat.txt"):
    m = re.match(r"\s*(\S+)-(\d+)\s+([\d,.]+)\s+(?:msec\s+)?(\S+)", line)
    if not m: continue
    name, tid, val, ev_name = m.group(1), m.group(2), float(m.group(3).replace(",", "")), m.group(4)
    p = tid2pid.get(tid, "?")
    role = "L" if p == lpid else ("F" if p != "?" else "?")
    agg[(role, name)][ev_name] += val
print(f"events {ev} ev/s {d['events_per_s']:.0f} p50 {d['p50_ms']} p99 {d['p99_ms']} errors {d.get('errors')}"
      + (f" driver: server cpu {d['cpu_us_per_write']} client {d['client_cpu_us_per_write']} us/write" if 'cpu_us_per_write' in d else ""))
tot = collections.defaultdict(float)
print(f"{'thread':24} {'cpu us/ev':>9} {'sys/ev':>7} {'sw/ev':>7}")
for k in sorted(agg, key=lambda k: -agg[k]["task-clock"]):
    a = agg[k]
    if a["task-clock"] * 1000 / ev < 0.3: continue
    print(f"{k[0]+':'+k[1]:24} {a['task-clock']*1000/ev:9.1f} {a['raw_syscalls:sys_enter']/ev:7.2f} {a['sched:sched_switch']/ev:7.2f}")
for k, a in agg.items():
    for e, v in a.items(): tot[(k[0], e)] += v
extra = [e for e in sorted({e for a in agg.values() for e in a})
         if e not in ("task-clock", "raw_syscalls:sys_enter", "sched:sched_switch")]
if extra:
    print("per event:", " ".join(e.split(":")[-1].replace("sys_enter_", "")[:9].rjust(9) for e in extra))
    for k in sorted(agg, key=lambda k: -agg[k]["task-clock"]):
        a = agg[k]
        if a["task-clock"] * 1000 / ev < 0.3: continue
        print(f"{k[0]+':'+k[1]:24}", " ".join(f"{a[e]/ev:9.3f}" for e in extra))
for r in "LF":
    print(f"{r} total: cpu {tot[(r,'task-clock')]*1000/ev:.1f} us/ev, syscalls {tot[(r,'raw_syscalls:sys_enter')]/ev:.2f}/ev, switches {tot[(r,'sched:sched_switch')]/ev:.2f}/ev (F = both followers)")
# From each node's /metrics (since its start, warm-up included): the time a write spends in the
# leader (request parsed -> reply queued), beside the client's p50 above the rest is the client's
# and the sockets'; and each node's storage commits (events per commit, ms per commit).
def metrics(path):
    m = {}
    try:
        for line in open(path):
            if line.startswith("#"): continue
            k, _, v = line.rpartition(" ")
            try: m[k] = float(v)
            except ValueError: pass
    except FileNotFoundError: pass
    return m
lm = metrics(out + "/metrics-L.txt")
if lm.get("chorus_write_duration_seconds_count"):
    print(f"leader write duration mean {lm['chorus_write_duration_seconds_sum'] / lm['chorus_write_duration_seconds_count'] * 1000:.2f} ms (server side)")
for path in sorted(glob.glob(out + "/metrics-*.txt")):
    m = metrics(path)
    n = m.get("chorus_writer_flush_size_events_count")
    if n:
        role = path.rsplit("metrics-", 1)[1][:-4]
        print(f"{role} storage commits: {m['chorus_writer_flush_size_events_sum'] / n:.1f} events, {m['chorus_writer_flush_duration_seconds_sum'] / n * 1000:.3f} ms each")
PY
