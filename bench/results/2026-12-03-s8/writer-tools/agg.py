import sys, collections
# usage: agg.py script.txt COMM [leaf|incl|caller SYM]
path, comm, mode = sys.argv[1], sys.argv[2], sys.argv[3]
arg = sys.argv[4] if len(sys.argv) > 4 else None
samples = []
cur = None
for line in open(path, errors='replace'):
    if not line.strip():
        if cur: samples.append(cur)
        cur = None; continue
    if not line.startswith((' ', '\t')):
        parts = line.split()
        cur = (parts[0], [])
        continue
    if cur is None: continue
    p = line.strip().split(None, 1)
    rest = p[1] if len(p) > 1 else ''
    # "sym+off (dso)"
    if ' (' in rest:
        sym, dso = rest.rsplit(' (', 1); dso = dso.rstrip(')')
    else:
        sym, dso = rest, ''
    sym = sym.split('+0x')[0]
    if sym == '[unknown]': sym = '?' + dso.split('/')[-1]
    cur[1].append((sym, dso.split('/')[-1]))
if cur: samples.append(cur)
S = [s for s in samples if s[0] == comm]
n = len(S); tot = len(samples)
print(f'{comm}: {n} of {tot} samples ({100*n/tot:.1f}%)')
c = collections.Counter()
if mode == 'leaf':
    for _, st in S:
        if st: c[st[0][0] if not st[0][1].startswith('[kernel') else 'K:'+st[0][0]] += 1
elif mode == 'dso':
    for _, st in S:
        if st: c[st[0][1]] += 1
elif mode == 'incl':
    for _, st in S:
        for f in set(x[0] for x in st): c[f] += 1
elif mode == 'under':  # children of frames matching arg: the frame just below (callee) the first match from the top
    for _, st in S:
        names = [x[0] for x in st]
        for i in range(len(names)-1, -1, -1):
            if arg in names[i]:
                c[names[i-1] if i > 0 else '(self)'] += 1
                break
elif mode == 'above':  # who calls frames matching arg (first match from leaf)
    for _, st in S:
        names = [x[0] for x in st]
        for i in range(len(names)):
            if arg in names[i]:
                # nearest caller in main binary
                for j in range(i+1, len(names)):
                    if st[j][1].endswith('worker') and not names[j].startswith('std::'):
                        c[names[j]] += 1; break
                else: c['?'] += 1
                break
for k, v in c.most_common(45):
    print(f'{100*v/n:6.2f}%  {k[:150]}')
