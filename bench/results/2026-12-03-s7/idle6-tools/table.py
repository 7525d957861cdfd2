import re,sys,statistics
runs=[];cur=None
wthr=sys.argv[2].split(',') if len(sys.argv)>2 else ['core','http','gossip','space','writer']
mthr=sys.argv[3].split(',') if len(sys.argv)>3 else ['http','health','gossip-relay','http-accept','sampler']
for line in open(sys.argv[1]):
    m=re.match(r'=== (\S+) (\S+)',line)
    if m: cur={'v':m.group(1),'t':m.group(2),'mt':{},'wt':{}}; runs.append(cur); continue
    if cur is None: continue
    m=re.match(r'Machine:.*load average (\S+)',line)
    if m: cur['load']=m.group(1)
    m=re.match(r'\| worker, median of 12 \| (\S+) ',line)
    if m: cur['w']=float(m.group(1))
    m=re.match(r'\| manager \| (\S+) \| [0-9.]+ \|',line)
    if m and 'm' not in cur: cur['m']=float(m.group(1))
    m=re.match(r'\| worker \| (\S+) \| (\S+) \| (\S+) \| (\S+) \|',line)
    if m: cur['wt'][m.group(1)]=(float(m.group(2))/12,float(m.group(4)))
    m=re.match(r'\| manager \| (\S+) \| (\S+) \| (\S+) \| *\|',line)
    if m: cur['mt'][m.group(1)]=(float(m.group(2)),float(m.group(3)))
hdr='| run | start UTC | load | worker CPU % (median of 12) | manager CPU % | '+' | '.join('w %s CPU %% / wakes/s'%t for t in wthr)+' | '+' | '.join('m %s CPU %% / wakes/s'%t for t in mthr)+' |'
print(hdr); print('|'+'---|'*(5+len(wthr)+len(mthr)))
f=lambda d,t: '%.3f / %.1f'%d[t] if t in d else '-'
for r in runs:
    if 'w' not in r: continue
    print('| %s | %s | %s | %.2f | %.2f | '%(r['v'],r['t'],r.get('load'),r['w'],r.get('m',0))+' | '.join(f(r['wt'],t) for t in wthr)+' | '+' | '.join(f(r['mt'],t) for t in mthr)+' |')
for v in sorted(set(r['v'] for r in runs)):
    rs=[r for r in runs if r['v']==v and 'w' in r]
    med=lambda g: statistics.median(g(r) for r in rs)
    def mm(key,t):
        try: return '%.3f / %.1f'%(med(lambda r:r[key][t][0]),med(lambda r:r[key][t][1]))
        except Exception: return '-'
    print('| **median %s** (%d) | | | **%.2f** | **%.2f** | '%(v,len(rs),med(lambda r:r['w']),med(lambda r:r['m']))+' | '.join(mm('wt',t) for t in wthr)+' | '+' | '.join(mm('mt',t) for t in mthr)+' |')
