# table.py RAW: the markdown tables of idle.sh runs made by ab.sh (per run, then medians per build).
import sys,re,statistics
runs=[]; cur=None
for line in open(sys.argv[1]):
    m=re.match(r'=== (\S+) (\S+) load (\S+)',line)
    if m: cur={'v':m[1],'t':m[2],'load':m[3],'th':{}}; runs.append(cur); continue
    if cur is None: continue
    m=re.match(r'\| worker, median of 12 \| (\S+) \| (\S+) \| (\S+) \| (\S+) \|',line)
    if m: cur['w']=float(m[1]); cur['rss']=m[2]; cur['uss']=m[4]; continue
    m=re.match(r'\| manager \| ([.\d]+) \|',line)
    if m: cur['m']=float(m[1]); continue
    m=re.match(r'\| worker \| (\S+) \| (\S+) \| (\S+) \| (\S+) \|',line)
    if m: cur['th'][m[1]]=(float(m[2])/12,float(m[4]))
cols=['core','http','health','gossip']
print('| run | start UTC | load (1 min) | worker CPU % (median of 12) | manager CPU % | '+' | '.join(f'w {c} CPU % / wake-ups/s' for c in cols)+' | w http+health CPU % | RSS / private MiB |')
print('|'+'---|'*(7+len(cols)))
def row(r):
    th=r['th']; hh=th.get('http',(0,0))[0]+th.get('health',(0,0))[0]
    return f"| {r['v']} | {r['t']} | {r['load']} | {r['w']:.2f} | {r['m']:.2f} | "+' | '.join((f"{th[c][0]:.3f} / {th[c][1]:.1f}" if c in th else '—') for c in cols)+f" | {hh:.3f} | {r['rss']} / {r['uss']} |"
for r in runs:
    if 'm' in r and 'w' in r: print(row(r))
for v in sorted(set(r['v'] for r in runs)):
    rs=[r for r in runs if r['v']==v and 'm' in r]
    if not rs: continue
    med=lambda f: statistics.median([f(r) for r in rs])
    hh=lambda r: r['th'].get('http',(0,0))[0]+r['th'].get('health',(0,0))[0]
    print(f"| **median {v}** ({len(rs)} runs) | | | **{med(lambda r:r['w']):.2f}** | **{med(lambda r:r['m']):.2f}** | "+' | '.join((f"{med(lambda r:r['th'][c][0]):.3f} / {med(lambda r:r['th'][c][1]):.1f}" if all(c in r['th'] for r in rs) else '—') for c in cols)+f" | **{med(hh):.3f}** | |")
