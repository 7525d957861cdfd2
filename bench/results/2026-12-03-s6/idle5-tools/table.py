import re,sys,statistics
runs=[];cur=None
for line in open(sys.argv[1]):
    m=re.match(r'=== (\S+) (\S+)',line)
    if m: cur={'v':m.group(1),'t':m.group(2)}; runs.append(cur); continue
    if cur is None: continue
    m=re.match(r'Machine:.*load average (\S+)',line)
    if m: cur['load']=m.group(1)
    m=re.match(r'\| worker, median of 12 \| (\S+) ',line)
    if m: cur['w']=float(m.group(1))
    m=re.match(r'\| manager \| (\S+) \| [0-9.]+ \|',line)
    if m and 'm' not in cur: cur['m']=float(m.group(1))
    m=re.match(r'\| worker \| (\S+) \| (\S+) \| (\S+) \| (\S+) \|',line)
    if m: cur[m.group(1)]=(float(m.group(2)),float(m.group(4)))
thr=['core','http','gossip','space','writer']
print('| run | start UTC | load | worker CPU % (median of 12) | manager CPU % | '+' | '.join('w: %s CPU %% / wake-ups/s per worker'%t for t in thr)+' |')
print('|'+'---|'*(5+len(thr)))
for r in runs:
    print('| %s | %s | %s | %.2f | %.2f | '%(r['v'],r['t'],r.get('load'),r.get('w',0),r.get('m',0))+' | '.join('%.3f / %.1f'%(r[t][0]/12,r[t][1]) for t in thr if t in r)+' |')
for v in sorted(set(r['v'] for r in runs)):
    rs=[r for r in runs if r['v']==v and 'w' in r]
    med=lambda f: statistics.median(f(r) for r in rs)
    print('| **median %s** | | | **%.2f** | **%.2f** | '%(v,med(lambda r:r['w']),med(lambda r:r['m']))+' | '.join('%.3f / %.1f'%(med(lambda r:r[t][0])/12,med(lambda r:r[t][1])) for t in thr)+' |')
