#!/bin/bash
# Chorus beside NATS JetStream and etcd (issue 16), side by side in one run on this machine: each
# system as a three-node cluster on 127.0.0.1 with its data on disk, driven by the same Node
# driver shape (bench/peers/driver.mjs: C writers, each awaiting its acknowledgement, 256-byte
# values) through its own client. For RUNS repetitions, interleaved, for C in WRITERS, for each
# system (their order rotating from run to run): one measurement of SECONDS (after a 1 s
# warm-up), with the server CPU of the three processes read from /proc. Prints a markdown table of medians and the ratios to stdout, keeps
# the JSON lines in OUT_DIR. Installs what it needs (Debian nats-server and etcd-server, the npm
# drivers from bench/peers/package-lock.json). Every process started here is stopped by its PID.
# Ports: 21111–23514 (below the ephemeral range; this benchmark owns them while it runs), or
# with PORT_SLOT=1 24111–26514 and PORT_SLOT=2 27111–29514, so that up to three runs can share a
# machine (each slot has its own default WORK_DIR).
#   bench/peers.sh [OUT_DIR] [WORKER_BIN]
#   env: RUNS (3), SECONDS_PER_RUN (10), WRITERS ("1 16 64"), SYSTEMS ("chorus nats etcd"),
#        WORK_DIR (/tmp/chorus-peers-slotN), WORKER_ARGS (extra chorus-worker options), PORT_SLOT (0),
#        CHORUS_BEFORE (another chorus-worker binary: a second Chorus cluster, system
#        "chorus-before", measured in the same interleaved runs, so a change is compared with
#        the build before it under the same load), CHORUS_BEFORE_DATA (an existing folder for
#        chorus-before's databases instead of WORK_DIR, e.g. /dev/shm: the same build without
#        its disk's cost, the ceiling storage work could reach; never a way to run Chorus)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out=${1:-$repo/bench/results/peers-$(date -u +%Y%m%dT%H%M%SZ)}
worker=${2:-$repo/build/release/worker/chorus-worker}
runs=${RUNS:-3}
seconds=${SECONDS_PER_RUN:-10}
read -r -a writer_counts <<<"${WRITERS:-1 16 64}"
read -r -a systems <<<"${SYSTEMS:-chorus nats etcd}"
read -r -a extra <<<"${WORKER_ARGS:-}"
worker_before=${CHORUS_BEFORE:-}
if [ -n "$worker_before" ]; then
  [ -x "$worker_before" ] || { echo "CHORUS_BEFORE: no chorus-worker at $worker_before" >&2; exit 2; }
  systems+=(chorus-before)
fi
before_data=${CHORUS_BEFORE_DATA:-}
if [ -n "$before_data" ]; then
  [ -n "$worker_before" ] || { echo "CHORUS_BEFORE_DATA needs CHORUS_BEFORE" >&2; exit 2; }
  [ -d "$before_data" ] || { echo "CHORUS_BEFORE_DATA: no folder $before_data" >&2; exit 2; }
fi
slot=${PORT_SLOT:-0}
case "$slot" in 0 | 1 | 2) ;; *) echo "PORT_SLOT must be 0, 1 or 2, not '$slot'" >&2; exit 2 ;; esac
work=${WORK_DIR:-/tmp/chorus-peers-slot$slot}
port() { echo $((20000 + slot * 3000 + $1 * 1000 + $2)); }  # port NODE SUFFIX, e.g. port 2 114
readonly kReadyDeadlineSeconds=60

[ -x "$worker" ] || { echo "no chorus-worker at $worker (build first: cmake --build build/release)" >&2; exit 2; }
missing=()
command -v nats-server >/dev/null || missing+=(nats-server)
command -v etcd >/dev/null || missing+=(etcd-server)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "need root to install ${missing[*]}" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
(cd "$here/peers" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
before_dir=$work
[ -z "$before_data" ] || before_dir=$(mktemp -d "$before_data/chorus-peers-before.XXXXXX")
declare -A pids
all_pids=()
cleanup() {
  for p in "${all_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ "$before_dir" = "$work" ] || rm -rf "$before_dir"  # CHORUS_BEFORE_DATA's temporary folder
}
trap cleanup EXIT

start() {  # start SYSTEM LOG COMMAND... : runs COMMAND in the background, remembers its PID
  local system=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  all_pids+=("$!")
  pids[$system]="${pids[$system]:-}${pids[$system]:+,}$!"
}

endpoints() { echo "127.0.0.1:$(port 1 "$1"),127.0.0.1:$(port 2 "$1"),127.0.0.1:$(port 3 "$1")"; }
endpoints_chorus=$(endpoints 114)
endpoints_nats=$(endpoints 222)
endpoints_etcd=$(endpoints 379)
endpoints_chorus_before=$(endpoints 514)

for i in 1 2 3; do
  # Chorus: node i on ports port i 111..114 (internal TCP, external TCP, internal HTTP, external HTTP).
  seeds=""
  for j in 1 2 3; do [ "$j" != "$i" ] && seeds="$seeds${seeds:+,}127.0.0.1:$(port $j 113)"; done
  start chorus "$work/chorus$i.log" "$worker" --db "$work/chorus$i" --log "$work/chorus$i-logs" \
    --int-ip 127.0.0.1 --ext-ip 127.0.0.1 --int-tcp-port="$(port $i 111)" \
    --ext-tcp-port="$(port $i 112)" --int-http-port="$(port $i 113)" \
    --ext-http-port="$(port $i 114)" --cluster-size=3 \
    --discover-via-dns=false --gossip-seed="$seeds" "${extra[@]}"
  if [ -n "$worker_before" ]; then
    # The build to compare with: node i on ports port i 511..514.
    seeds=""
    for j in 1 2 3; do [ "$j" != "$i" ] && seeds="$seeds${seeds:+,}127.0.0.1:$(port $j 513)"; done
    start chorus-before "$work/chorus-before$i.log" "$worker_before" --db "$before_dir/chorus-before$i" \
      --log "$work/chorus-before$i-logs" --int-ip 127.0.0.1 --ext-ip 127.0.0.1 \
      --int-tcp-port="$(port $i 511)" --ext-tcp-port="$(port $i 512)" \
      --int-http-port="$(port $i 513)" --ext-http-port="$(port $i 514)" --cluster-size=3 --discover-via-dns=false --gossip-seed="$seeds" \
      "${extra[@]}"
  fi
  # NATS: client port i 222, cluster routes port i 223, JetStream on disk.
  routes=""
  for j in 1 2 3; do routes="$routes${routes:+, }nats-route://127.0.0.1:$(port $j 223)"; done
  cat >"$work/nats$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$(port $i 222)
jetstream { store_dir: "$work/nats$i" }
cluster { name: bench, listen: 127.0.0.1:$(port $i 223), routes: [ $routes ] }
EOF
  start nats "$work/nats$i.log" nats-server -c "$work/nats$i.conf"
  # etcd: client port i 379, peers port i 380.
  start etcd "$work/etcd$i.log" etcd --name "n$i" --data-dir "$work/etcd$i" \
    --listen-client-urls "http://127.0.0.1:$(port $i 379)" \
    --advertise-client-urls "http://127.0.0.1:$(port $i 379)" \
    --listen-peer-urls "http://127.0.0.1:$(port $i 380)" \
    --initial-advertise-peer-urls "http://127.0.0.1:$(port $i 380)" \
    --initial-cluster "n1=http://127.0.0.1:$(port 1 380),n2=http://127.0.0.1:$(port 2 380),n3=http://127.0.0.1:$(port 3 380)" \
    --initial-cluster-token bench --initial-cluster-state new
done

driver() { node "$here/peers/driver.mjs" "$@"; }

# Each cluster is ready when its client's setup (connect; NATS: create the R3 stream) succeeds.
for system in "${systems[@]}"; do
  eps_var="endpoints_${system//-/_}"
  deadline=$((SECONDS + kReadyDeadlineSeconds))
  until driver --system "$system" --endpoints "${!eps_var}" --setup 2>"$work/setup-$system.err"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "$system did not become ready in ${kReadyDeadlineSeconds}s:" >&2
      cat "$work/setup-$system.err" >&2
      exit 1
    fi
    sleep 1
  done
done
# A cluster answers with two of its three nodes: one that did not start (a port taken by
# another program) would make the figures those of a two-node cluster.
for p in "${all_pids[@]}"; do
  if ! kill -0 "$p" 2>/dev/null; then
    echo "a server (PID $p) is not running; its log in $work says why:" >&2
    grep -l -i "cannot\|error" "$work"/*.log >&2 || true
    exit 1
  fi
done

results="$out/results.jsonl"
: >"$results"
for ((run = 1; run <= runs; run++)); do
  # The order of the systems rotates each run: the one measured first after another's run was
  # seen to lose ~6 % (page cache, the disk's queue), which would bias a before/after ratio.
  n=${#systems[@]}
  order=()
  for ((k = 0; k < n; k++)); do order+=("${systems[$(((k + run - 1) % n))]}"); done
  for c in "${writer_counts[@]}"; do
    for system in "${order[@]}"; do
      eps_var="endpoints_${system//-/_}"
      line=$(driver --system "$system" --writers "$c" --seconds "$seconds" --size 256 \
        --endpoints "${!eps_var}" --pids "${pids[$system]}")
      echo "{\"run\":$run,${line#\{}" | tee -a "$results" >&2
    done
  done
done

{
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
    "load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git -C "$repo" rev-parse --short HEAD)${before_data:+; chorus-before keeps its data in $before_data}"
  echo
  node "$here/peers/table.mjs" "$results"
} | tee "$out/table.md"
