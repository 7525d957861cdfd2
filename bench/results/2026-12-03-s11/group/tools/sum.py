import re,sys,glob
for d in sys.argv[1:]:
    try:
        t=open(d+'/info.txt').read()
        ev=re.search(r'events (\d+) ev/s (\d+) p50 (\S+) p99 (\S+).*server cpu (\d+)',t)
        lines=t.split('\n'); i=[k for k,l in enumerate(lines) if l.startswith('per event')][0]
        fs={}
        for l in lines[i+1:i+5]:
            p=l.split(); fs[p[0]]=float(p[1])
        thr={}
        for l in lines:
            m=re.match(r'^(L|F):(\w+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$',l)
            if m: thr[m.group(1)+':'+m.group(2)]=(float(m.group(3)),float(m.group(4)),float(m.group(5)))
        tot=sum(v[0] for v in thr.values()); sw=sum(v[2] for v in thr.values()); sc=sum(v[1] for v in thr.values())
        load=open(d+'/info.txt').readline().split('load ')[1].split()[0]
        print(f"{d.split('/')[-1]:12} load {load:5} ev/s {ev.group(2):>6} p50 {ev.group(3):>5} p99 {ev.group(4):>6} srvcpu {ev.group(5):>4} thr {tot:5.1f} sys {sc:5.2f} sw {sw:4.2f} fs L {fs.get('L:writer',0):.3f} F {fs.get('F:writer',0):.3f} Lwr {thr['L:writer'][0]:5.1f} Fwr {thr['F:writer'][0]:5.1f} Lc {thr['L:core'][0]:5.1f} Fc {thr['F:core'][0]:5.1f}")
    except Exception as e: print(d, "?", e)
