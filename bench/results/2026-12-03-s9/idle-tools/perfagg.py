# perfagg.py PERF_SCRIPT_TXT THREAD: self and inclusive sample counts of one thread name from
# `perf script -F comm,tid,ip,sym` output (perf record -g of the workers).
import collections,sys
fn=sys.argv[1]; want=sys.argv[2]
samples=[]; cur=None
for line in open(fn):
    if not line.strip():
        if cur: samples.append(cur); cur=None
        continue
    if not line.startswith('\t') and not line.startswith(' '*8):
        cur=[line.split()[0],[]]
    else:
        parts=line.strip().split(None,1)
        cur[1].append(parts[1] if len(parts)>1 else '?')
if cur: samples.append(cur)
print(collections.Counter(s[0] for s in samples))
th=[s for s in samples if s[0]==want]
print(len(th))
self_=collections.Counter(s[1][0] if s[1] else '?' for s in th)
for k,v in self_.most_common(40): print(v, k[:150])
print('--- inclusive')
inc=collections.Counter()
for s in th:
    seen=set()
    for f in s[1]:
        k=f[:110]
        if k not in seen: inc[k]+=1; seen.add(k)
for k,v in inc.most_common(80): print(v, k)
