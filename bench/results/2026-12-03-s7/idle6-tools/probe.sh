#!/bin/bash
# Per-thread CPU and wake-ups of running workers over a window, split by role (leader/follower).
# usage: probe.sh SECONDS  (finds chorus-worker processes of the idle.sh manager on ports 25xxx)
secs=${1:-60}
snap() {
  for p in $(pgrep -f 'chorus-worker.*--int-tcp-port=25' ); do
    for t in /proc/$p/task/*; do
      tid=${t##*/}
      printf '%s:%s %s %s %s %s\n' "$p" "$tid" "$(tr ' ' '_' <$t/comm)" \
        "$(awk '{print $14, $15}' $t/stat)" "$(cut -d' ' -f1,3 $t/schedstat)" \
        "$(awk '/^voluntary_ctxt/ {v=$2} /^nonvoluntary_ctxt/ {n=$2} END {print v, n}' $t/status)"
    done 2>/dev/null
  done | sort
}
roles() {
  for p in $(pgrep -f 'chorus-worker.*--int-tcp-port=25'); do
    port=$(tr '\0' '\n' </proc/$p/cmdline | sed -n 's/^--ext-http-port=//p')
    st=$(curl -s "http://127.0.0.1:$port/info" | grep -o '"state": *"[A-Za-z]*"' | head -1 | sed 's/.*"\([A-Za-z]*\)"$/\1/')
    echo "$p $st"
  done
}
roles >/tmp/idle6/roles.txt
a=$(snap); t0=$(date +%s.%N); sleep "$secs"; b=$(snap); t1=$(date +%s.%N)
w=$(echo "$t1 - $t0" | bc)
join <(echo "$a") <(echo "$b") | awk -v w="$w" 'NR==FNR {role[$1]=$2; nw[$2]++; next}
  { split($1, pt, ":"); r = role[pt[1]]; if (r == "") r = "?"; k = r " " $2
    cpu[k] += ($12 - $5) / (w * 1e9) * 100; ut[k] += ($10 - $3); st[k] += ($11 - $4)
    vol[k] += ($14 - $7) / w; inv[k] += ($15 - $8) / w; sl[k] += ($13 - $6) / w }
  END { printf "%-9s %-14s %9s %8s %8s %8s %8s %9s\n", "role", "thread", "cpu%/wkr", "wake/s", "invol/s", "slices/s", "us/slice", "ut:st"
        for (k in cpu) { split(k, f, " "); m = nw[f[1]]; c = cpu[k] / m; s = sl[k] / m
          tot[f[1]] += c
          if (c >= 0.001) printf "%-9s %-14s %9.3f %8.2f %8.2f %8.2f %8.1f %5d:%-5d\n", f[1], f[2], c, vol[k] / m, inv[k] / m, s, (s > 0 ? c * 1e4 / s : 0), ut[k], st[k] }
        for (r in tot) printf "%-9s %-14s %9.3f  (per worker, %d workers)\n", r, "TOTAL", tot[r], nw[r] }' /tmp/idle6/roles.txt - | sort
