import json,sys,statistics
rows=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
print('| C | build | writes/s | p50 ms (runs) | p99 ms | CPU µs/write | load |'); print('|---|---|---|---|---|---|---|')
for c in sorted({r['C'] for r in rows}):
  for b in dict.fromkeys(r['build'] for r in rows):
    rs=[r for r in rows if r['C']==c and r['build']==b]
    if not rs: continue
    m=lambda k: statistics.median(r[k] for r in rs)
    print(f"| {c} | {b} | {m('ev_s'):.0f} | {m('p50'):.2f} ({' / '.join(str(r['p50']) for r in rs)}) | {m('p99'):.2f} | {m('cpu_us'):.0f} | {min(r['load'] for r in rs)}–{max(r['load'] for r in rs)} |")
