#!/bin/bash
# Two worker builds side by side on 3-node clusters (issue 16): cluster A runs WORKER_A, cluster B
# runs WORKER_B, both on disk at once; RUNS rounds alternate A and B (the order flips each round)
# for each C in WRITERS, chorus-bench against the leader (C connections, 1 write in flight each,
# 1 event of 256 bytes per write). Server CPU per acknowledged event comes from /proc (utime +
# stime of the three workers of the measured cluster over the bench's run ÷ events it counted).
# Prints one JSON line per measurement and a table of medians. Every process started here is
# stopped by its PID.
#   bench/cluster_ab.sh OUT_DIR WORKER_A WORKER_B [BENCH_BIN]
#   env: RUNS (3), DURATION (10), WRITERS ("1 64"), WORK_DIR (/tmp/chorus-ab), BATCH (1),
#        PRIO (0; 1: every worker and bench in its own autogroup at nice -19, needs root),
#        BENCH_ARGS (more chorus-bench options, e.g. "--stream-prefix ab": the same streams each run),
#        PORT_PREFIXES ("11 12": cluster A's node i listens on PREFIX*1000 + i*100 + 11..14, so
#        A on 11111–11314 and B on 12111–12314, below the ephemeral range 32768–60999 where an
#        outgoing connection can take a port; other prefixes up to 31 let two people run it)
set -euo pipefail
out=${1:?usage: cluster_ab.sh OUT_DIR WORKER_A WORKER_B [BENCH_BIN]}
worker_a=${2:?}
worker_b=${3:?}
bench=${4:-build/release/bench/chorus-bench}
runs=${RUNS:-3}
duration=${DURATION:-10}
batch=${BATCH:-1}
prio=${PRIO:-0}
read -r -a writer_counts <<<"${WRITERS:-1 64}"
work=${WORK_DIR:-/tmp/chorus-ab}
[ -z "${BASES:-}" ] || { echo "BASES is now PORT_PREFIXES (ports below 32768), e.g. \"13 14\"" >&2; exit 2; }
read -r base_a base_b <<<"${PORT_PREFIXES:-11 12}"
for b in "$base_a" "$base_b"; do
  [[ "$b" =~ ^[0-9]+$ ]] && [ "$b" -ge 1 ] && [ "$b" -le 31 ] ||
    { echo "PORT_PREFIXES: two numbers from 1 to 31, not '$b'" >&2; exit 2; }
done
port() { echo $(($1 * 1000 + $2 * 100 + $3)); }  # port PREFIX NODE SUFFIX
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
pids=()
declare -A cluster_pids
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
prioritize() {  # the process's own autogroup at nice -19 (PRIO=1)
  [ "$prio" = 1 ] && { sleep 0.05; echo -19 >"/proc/$1/autogroup" || echo "warning: no autogroup nice for $1" >&2; }
  return 0
}

# Node i of a cluster on ports PREFIX*1000 + i*100 + 11..14 (PORT_PREFIXES).
for name in A B; do
  base=$base_a
  bin=$worker_a
  [ "$name" = B ] && base=$base_b && bin=$worker_b
  for i in 1 2 3; do
    seeds=""
    for j in 1 2 3; do [ "$j" != "$i" ] && seeds="$seeds${seeds:+,}127.0.0.1:$(port "$base" $j 13)"; done
    setsid "$bin" --db "$work/$name$i" --log "$work/$name$i-log" --int-ip 127.0.0.1 --ext-ip 127.0.0.1 \
      --int-tcp-port="$(port "$base" $i 11)" --ext-tcp-port="$(port "$base" $i 12)" \
      --int-http-port="$(port "$base" $i 13)" --ext-http-port="$(port "$base" $i 14)" --cluster-size=3 \
      --discover-via-dns=false --gossip-seed="$seeds" >"$work/$name$i.out" 2>&1 &
    pids+=("$!")
    cluster_pids[$name]="${cluster_pids[$name]:-} $!"
    prioritize "$!"
  done
done
echo "pids: A:${cluster_pids[A]} B:${cluster_pids[B]}" | tee "$out/pids.txt"

leader_port() {  # leader_port PREFIX
  curl -s --max-time 1 "http://127.0.0.1:$(port "$1" 1 14)/gossip?format=json" |
    python3 -c 'import json,sys; g=json.load(sys.stdin); print(next(m["externalTcpPort"] for m in g["members"] if m["state"]=="Leader" and m["isAlive"]))' 2>/dev/null
}
wait_leader() {  # wait_leader PREFIX
  local p=""
  for _ in $(seq 150); do
    p=$(leader_port "$1" || true)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.2
  done
  echo "no leader on cluster ${1}" >&2
  return 1
}
wait_leader "$base_a" >/dev/null
wait_leader "$base_b" >/dev/null

cpu_ticks() {  # the summed utime+stime (clock ticks) of the given pids
  local t=0
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || { echo "worker $p exited; its log is in $work" >&2; exit 1; }
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)
results="$out/results.jsonl"
: >"$results"
for ((run = 1; run <= runs; run++)); do
  for c in "${writer_counts[@]}"; do
    order="A B"
    [ $((run % 2)) = 0 ] && order="B A"
    for name in $order; do
      base=$base_a
      [ "$name" = B ] && base=$base_b
      lp=$(wait_leader "$base")
      load=$(cut -d' ' -f1 /proc/loadavg)
      read -r -a cp <<<"${cluster_pids[$name]}"
      before=$(cpu_ticks "${cp[@]}")
      setsid "$bench" --port "$lp" --mode write --connections "$c" --inflight 1 --streams 64 \
        --event-size 256 --batch "$batch" --duration-s "$duration" ${BENCH_ARGS:-} >"$work/bench.out" 2>/dev/null &
      b=$!
      pids+=("$b")
      prioritize "$b"
      wait "$b" || true
      line=$(tail -n 1 "$work/bench.out")
      after=$(cpu_ticks "${cp[@]}")
      python3 - "$line" "$name" "$c" "$run" "$((after - before))" "$hz" "$load" <<'EOF' | tee -a "$results"
import json, sys
d = json.loads(sys.argv[1])
ticks, hz = int(sys.argv[5]), int(sys.argv[6])
ev = d["events"]
print(json.dumps({"run": int(sys.argv[4]), "build": sys.argv[2], "writers": int(sys.argv[3]),
                  "events_per_s": round(d["events_per_s"]), "p50_ms": d["p50_ms"],
                  "p99_ms": d["p99_ms"], "errors": d.get("errors", 0),
                  "cpu_us_per_event": round(ticks * 1e6 / hz / ev, 1) if ev else None,
                  "load1": float(sys.argv[7])}))
EOF
    done
  done
done
python3 - "$results" <<'EOF' | tee "$out/table.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| C | build | events/s | p50 ms | p99 ms | CPU µs/event (3 nodes) | errors |")
print("|---|---|---|---|---|---|---|")
for c in sorted({r["writers"] for r in rows}):
    for b in ("A", "B"):
        rs = [r for r in rows if r["writers"] == c and r["build"] == b]
        if not rs: continue
        med = lambda k: statistics.median(r[k] for r in rs)
        print(f"| {c} | {b} | {med('events_per_s'):.0f} | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} "
              f"| {med('cpu_us_per_event'):.0f} | {sum(r['errors'] for r in rs)} |")
EOF
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/table.md"
