import json,sys,collections
r=collections.defaultdict(dict)
for l in open(sys.argv[1]):
    j=json.loads(l); r[(j['writers'],j['run'])][j['system']]=j
for k in sorted(r):
    a=r[k].get('chorus'); b=r[k].get('chorus-before')
    if a and b: print(k, 'rate %.2f'%(a['rate']/b['rate']), 'cpu %.2f'%(a['cpuUsPerWrite']/b['cpuUsPerWrite']), 'p50 %s/%s'%(a['p50'],b['p50']), 'p99 %s/%s'%(a['p99'],b['p99']))
