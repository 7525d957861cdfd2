# Medians of interleaved cluster_counts.sh runs: DIRS r<round>-c<C>-<build>/ (bench.json, info.txt).
import json, re, statistics, sys, glob, os, collections
rows = collections.defaultdict(list)
for d in sys.argv[1:]:
    for run in sorted(glob.glob(d + "/r*-c*-*")):
        m = re.match(r"r(\d+)-c(\d+)-(\w+)", os.path.basename(run))
        if not m or not os.path.exists(run + "/bench.json"): continue
        b = json.load(open(run + "/bench.json"))
        info = open(run + "/info.txt").read()
        tot = {k: (float(a), float(s), float(w)) for k, a, s, w in re.findall(
            r"(L|F) total: cpu ([\d.]+) us/ev, syscalls ([\d.]+)/ev, switches ([\d.]+)/ev", info)}
        fc = 0.0
        for line in info.splitlines():
            if line.startswith("per event:"): hdr = line.split()[2:]
            elif re.match(r"[LF]:\w+\s", line) and "fcntl" in locals().get("hdr", []):
                vals = line.split()[1:]
                if len(vals) == len(hdr): fc += float(vals[hdr.index("fcntl")])
        rows[(int(m[2]), m[3])].append(dict(eps=b["events_per_s"], p50=b["p50_ms"], p99=b["p99_ms"],
            cpu=b["cpu_us_per_write"], sys=tot["L"][1] + tot["F"][1], sw=tot["L"][2] + tot["F"][2],
            fcntl=fc, r=int(m[1])))
print("| C | build | runs | writes/s | p50 ms | p99 ms | server CPU µs/write | syscalls/write | switches/write | fcntl/write |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (c, b) in sorted(rows):
    rs = rows[(c, b)]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"| {c} | {b} | {len(rs)} | {med('eps'):,.0f} | {med('p50'):.2f} | {med('p99'):.1f} | {med('cpu'):.0f} | {med('sys'):.1f} | {med('sw'):.1f} | {med('fcntl'):.2f} |")
# pairs new/old per round
print()
print("pairs new ÷ old (same round): writes/s, p50, server CPU")
for c in sorted({c for c, _ in rows}):
    old = {r["r"]: r for r in rows.get((c, "old"), [])}; new = {r["r"]: r for r in rows.get((c, "new"), [])}
    ps = [(new[k]["eps"] / old[k]["eps"], new[k]["p50"] / old[k]["p50"], new[k]["cpu"] / old[k]["cpu"]) for k in sorted(old) if k in new]
    print(f"C={c}: " + ", ".join(f"({a:.2f} {p:.2f} {u:.2f})" for a, p, u in ps))
