#!/bin/bash
# Large frames on the external TCP port (issue 16): what one client's large writes cost the node
# and every other client. For each build and round (old and new binaries alternated, the order
# flipping each round) it starts fresh nodes on disk (NODES=1: one node; NODES=3: a cluster in the
# clustering guide's shape) and runs one phase per scenario: bench/large_frames.mjs sends the
# scenario's frame again and again on one raw connection for DURATION seconds, while chorus-bench
# appends single 256-byte events at C = 1 to the same node (the leader) and records their
# latency. A "base" phase has no large writer. Server CPU of the phase comes from /proc (utime +
# stime of every worker); per MiB is that over the MiB the large writer sent. Prints one JSON line
# per phase and a table of medians. Every process started here is stopped by its PID.
#   bench/large_frames.sh OUT_DIR WORKER_A WORKER_B [BENCH_BIN]
#   env: NODES (1), RUNS (3), DURATION (6), SCENARIOS ("base s8 s32 s60 m8 m32 m60 bad64"),
#        INTERVAL_MS (0: large writes back to back; N: one started at most every N ms, the same
#        offered load for both builds),
#        WORK_DIR (/tmp/chorus-frames), PORT_PREFIX (21: node i on PREFIX*1000 + i*100 + 11..14,
#        below the ephemeral range; 1..31), BUSY_LOOPS (0: that many extra CPU-bound shell
#        loops under `nice -n BUSY_NICE` (10) for the whole run, a busier machine on demand)
set -euo pipefail
out=${1:?usage: large_frames.sh OUT_DIR WORKER_A WORKER_B [BENCH_BIN]}
worker_a=${2:?}
worker_b=${3:?}
bench=${4:-build/release/bench/chorus-bench}
here=$(cd "$(dirname "$0")" && pwd)
nodes=${NODES:-1}
runs=${RUNS:-3}
duration=${DURATION:-6}
read -r -a scenarios <<<"${SCENARIOS:-base s8 s32 s60 m8 m32 m60 bad64}"
work=${WORK_DIR:-/tmp/chorus-frames}
prefix=${PORT_PREFIX:-21}
[[ "$prefix" =~ ^[0-9]+$ ]] && [ "$prefix" -ge 1 ] && [ "$prefix" -le 31 ] ||
  { echo "PORT_PREFIX: a number from 1 to 31" >&2; exit 2; }
[ "$nodes" = 1 ] || [ "$nodes" = 3 ] || { echo "NODES: 1 or 3" >&2; exit 2; }
port() { echo $((prefix * 1000 + $1 * 100 + $2)); }  # port NODE SUFFIX
mkdir -p "$out"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq 1 "${BUSY_LOOPS:-0}"); do
  nice -n "${BUSY_NICE:-10}" sh -c 'while :; do :; done' &
  pids+=("$!")
done
hz=$(getconf CLK_TCK)

start_nodes() {  # start_nodes BINARY: sets node_pids
  node_pids=()
  rm -rf "$work"
  mkdir -p "$work"
  for i in $(seq 1 "$nodes"); do
    local cluster=()
    if [ "$nodes" = 3 ]; then
      local seeds=""
      for j in 1 2 3; do [ "$j" != "$i" ] && seeds="$seeds${seeds:+,}127.0.0.1:$(port $j 13)"; done
      cluster=(--cluster-size=3 --discover-via-dns=false --gossip-seed="$seeds")
    fi
    setsid "$1" --db "$work/n$i" --log "$work/n$i-log" --int-ip 127.0.0.1 --ext-ip 127.0.0.1 \
      --int-tcp-port="$(port "$i" 11)" --ext-tcp-port="$(port "$i" 12)" \
      --int-http-port="$(port "$i" 13)" --ext-http-port="$(port "$i" 14)" "${cluster[@]}" \
      >"$work/n$i.out" 2>&1 &
    pids+=("$!")
    node_pids+=("$!")
  done
}
stop_nodes() {
  for p in "${node_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${node_pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
}
leader_port() {
  curl -s --max-time 1 "http://127.0.0.1:$(port 1 14)/gossip?format=json" |
    python3 -c 'import json,sys; g=json.load(sys.stdin); print(next(m["externalTcpPort"] for m in g["members"] if m["state"]=="Leader" and m["isAlive"]))' 2>/dev/null
}
wait_leader() {
  local p=""
  for _ in $(seq 300); do
    p=$(leader_port || true)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.2
  done
  echo "no leader; logs in $work" >&2
  return 1
}
# Campaigns (elections started, pre-votes not counted) of all nodes, from their /metrics.
campaigns() {
  local n=0 c
  for i in $(seq 1 "$nodes"); do
    c=$(curl -s --max-time 2 "http://127.0.0.1:$(port "$i" 14)/metrics" |
      awk '/^chorus_elections_total/ {print int($2)}')
    n=$((n + ${c:-0}))
  done
  echo "$n"
}
cpu_ticks() {
  local t=0
  for p in "${node_pids[@]}"; do
    [ -r "/proc/$p/stat" ] || { echo "worker $p exited; its log is in $work" >&2; exit 1; }
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}

results="$out/results.jsonl"
: >"$results"
for ((run = 1; run <= runs; run++)); do
  order="A B"
  [ $((run % 2)) = 0 ] && order="B A"
  for name in $order; do
    bin=$worker_a
    [ "$name" = B ] && bin=$worker_b
    start_nodes "$bin"
    lp=$(wait_leader)
    # A few writes first, so that both builds start from a warm node.
    "$bench" --port "$lp" --mode write --connections 1 --events 200 --streams 1 >/dev/null 2>&1 || true
    for scenario in "${scenarios[@]}"; do
      # The leader may have changed in the last phase (a stalled core thread misses heartbeats):
      # each phase writes to the current one, and counts the elections during it.
      lp=$(wait_leader)
      elections=$(cat "$work"/n*.out | grep -c "leading epoch" || true)
      campaigns0=$(campaigns)
      load=$(cut -d' ' -f1 /proc/loadavg)
      before=$(cpu_ticks)
      setsid "$bench" --port "$lp" --mode write --connections 1 --inflight 1 --streams 1 \
        --event-size 256 --duration-s "$duration" --max-retries -1 --max-reconnections -1 --json >"$work/small.out" 2>/dev/null &
      small=$!
      pids+=("$small")
      big='{}'
      if [ "$scenario" != base ]; then
        big=$(node "$here/large_frames.mjs" --port "$lp" --scenario "$scenario" \
          --duration-s "$duration" --interval-ms "${INTERVAL_MS:-0}" 2>"$work/big.err" ||
          echo '{"error":true}')
      fi
      wait "$small" || true
      after=$(cpu_ticks)
      elections=$(($(cat "$work"/n*.out | grep -c "leading epoch" || true) - elections))
      campaigns1=$(campaigns)
      python3 - "$(tail -n 1 "$work/small.out")" "$big" "$name" "$scenario" "$run" \
        "$((after - before))" "$hz" "$load" "$nodes" "$elections" "$((campaigns1 - campaigns0))" \
        <<'EOF' | tee -a "$results"
import json, sys
try:
    small = json.loads(sys.argv[1])
except ValueError:
    small = {}
big = json.loads(sys.argv[2])
ticks, hz = int(sys.argv[6]), int(sys.argv[7])
cpu_s = ticks / hz
mib = big.get("mib_sent") or 0
print(json.dumps({"run": int(sys.argv[5]), "build": sys.argv[3], "nodes": int(sys.argv[9]),
                  "scenario": sys.argv[4], "small_writes": small.get("events"),
                  "small_p50_ms": small.get("p50_ms"), "small_p99_ms": small.get("p99_ms"),
                  "small_max_ms": small.get("max_ms"), "small_errors": small.get("errors"),
                  "big_writes": big.get("writes"), "big_results": big.get("results"),
                  "big_ms_p50": big.get("write_ms_p50"), "big_ms_max": big.get("write_ms_max"),
                  "big_mib": mib, "cpu_s": round(cpu_s, 2),
                  "cpu_ms_per_mib": round(cpu_s * 1000 / mib, 1) if mib else None,
                  "elections": int(sys.argv[10]), "campaigns": int(sys.argv[11]),
                  "load1": float(sys.argv[8])}))
EOF
    done
    stop_nodes
  done
done
python3 - "$results" <<'EOF' | tee "$out/table.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| scenario | build | small p50 ms | small p99 ms | small max ms | small writes | errors "
      "| large write ms (p50) | large writes | CPU ms/MiB | elections | campaigns | results |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
order = list(dict.fromkeys(r["scenario"] for r in rows))
for s in order:
    for b in ("A", "B"):
        rs = [r for r in rows if r["scenario"] == s and r["build"] == b]
        if not rs: continue
        def med(k):
            v = [r[k] for r in rs if r[k] is not None]
            return statistics.median(v) if v else float("nan")
        res = {}
        for r in rs:
            for k, v in (r["big_results"] or {}).items(): res[k] = res.get(k, 0) + v
        print(f"| {s} | {b} | {med('small_p50_ms'):.2f} | {med('small_p99_ms'):.1f} "
              f"| {med('small_max_ms'):.0f} | {med('small_writes'):.0f} "
              f"| {sum(r['small_errors'] or 0 for r in rs)} | {med('big_ms_p50'):.0f} "
              f"| {med('big_writes'):.0f} | {med('cpu_ms_per_mib'):.1f} "
              f"| {sum(r.get('elections', 0) for r in rs)} "
              f"| {sum(r.get('campaigns', 0) for r in rs)} | {res} |")
EOF
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/table.md"
