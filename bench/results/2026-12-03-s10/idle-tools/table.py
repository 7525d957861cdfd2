# table.py RAW: the markdown tables of idle.sh runs made by ab.sh (per run, then medians and
# ranges per build). "w threads" is the sum over a worker's threads (schedstat, ns) divided by
# 12: the worker's CPU with three decimals (idle.sh's own median column has two).
import sys, re, statistics
runs = []; cur = None
for line in open(sys.argv[1]):
    m = re.match(r'=== (\S+) (\S+) load (\S+)', line)
    if m: cur = {'v': m[1], 't': m[2], 'load': m[3], 'th': {}, 'mt': {}}; runs.append(cur); continue
    if cur is None: continue
    m = re.match(r'\| worker, median of 12 \| (\S+) \| (\S+) \| (\S+) \| (\S+) \|', line)
    if m: cur['w'] = float(m[1]); cur['rss'] = m[2]; cur['uss'] = m[4]; continue
    m = re.match(r'\| manager \| ([.\d]+) \|', line)
    if m: cur['m'] = float(m[1]); continue
    m = re.match(r'\| worker \| (\S+) \| (\S+) \| (\S+) \| (\S+) \|', line)
    if m: cur['th'][m[1]] = (float(m[2]) / 12, float(m[4])); continue
    m = re.match(r'\| manager \| (\S+) \| (\S+) \| (\S+) \|', line)
    if m: cur['mt'][m[1]] = (float(m[2]), float(m[3]))
runs = [r for r in runs if 'm' in r and 'w' in r]
cols = ['core', 'gossip', 'health', 'http']
def total(r): return sum(c for c, _ in r['th'].values())
def fmt(r, c): return f"{r['th'][c][0]:.4f} / {r['th'][c][1]:.1f}" if c in r['th'] else '—'
print('| run | start UTC | load (1 min) | worker CPU % (median of 12) | w threads CPU % | manager CPU % | m gossip-relay CPU % | ' + ' | '.join(f'w {c} CPU % / wake-ups/s' for c in cols) + ' | RSS / private MiB |')
print('|' + '---|' * (8 + len(cols)))
for r in runs:
    print(f"| {r['v']} | {r['t']} | {r['load']} | {r['w']:.2f} | {total(r):.3f} | {r['m']:.2f} | {r['mt'].get('gossip-relay', (0, 0))[0]:.2f} | " + ' | '.join(fmt(r, c) for c in cols) + f" | {r['rss']} / {r['uss']} |")
print()
print('| build | runs | worker CPU % median (range) | w threads CPU % median (range) | manager CPU % median (range) | ' + ' | '.join(f'w {c} CPU % median (range) / wake-ups/s' for c in cols) + ' |')
print('|' + '---|' * (5 + len(cols)))
for v in dict.fromkeys(r['v'] for r in runs):
    rs = [r for r in runs if r['v'] == v]
    def mr(f, d=3):
        xs = [f(r) for r in rs]
        return f"{statistics.median(xs):.{d}f} ({min(xs):.{d}f}–{max(xs):.{d}f})"
    print(f"| {v} | {len(rs)} | {mr(lambda r: r['w'], 2)} | {mr(total)} | {mr(lambda r: r['m'], 2)} | " + ' | '.join(
        (mr(lambda r, c=c: r['th'][c][0], 4) + f" / {statistics.median([r['th'][c][1] for r in rs]):.1f}") if all(c in r['th'] for r in rs) else '—' for c in cols) + ' |')
