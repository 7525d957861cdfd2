# stages2.py TRACE L F1 F2 B : per-write stages of a C=1 run from perf script output
# (sched_switch/wakeup + raw_syscalls of the three workers and chorus-bench).
import sys, re, statistics, bisect
path, L, F1, F2, B = sys.argv[1:6]
rx = re.compile(r'^\s*(\S+)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$')
ev = []
for line in open(path):
    m = rx.match(line)
    if not m: continue
    comm, pid, tid, cpu, t, kind, rest = m.groups()
    if pid not in (L, F1, F2, B): continue
    if not kind.startswith('raw_syscalls'): continue
    nr = rest.split()[1]
    val = None
    if kind.endswith('exit'):
        try: val = int(rest.split('=')[1])
        except Exception: val = None
    ev.append((float(t) * 1e6, pid, comm, kind[-4:], nr, val))
times = [e[0] for e in ev]
sends = [e[0] for e in ev if e[1] == B and e[3] == 'nter' and e[4] in ('46', '1', '44')]
# keep bench sends spaced (one per write)
st = {}
def add(k, v): st.setdefault(k, []).append(v)
n_ok = 0
for k in range(len(sends) - 1):
    t0, t1 = sends[k], sends[k + 1]
    if t1 - t0 < 50: continue
    w = ev[bisect.bisect_left(times, t0):bisect.bisect_left(times, t1)]
    def first(pred):
        for e in w:
            if pred(e): return e[0]
        return None
    r0 = first(lambda e: e[1] == L and e[3] == 'exit' and e[4] == '45' and e[5] and e[5] > 300)
    if r0 is None: continue
    lfs0 = first(lambda e: e[1] == L and e[2] == 'writer' and e[3] == 'nter' and e[4] == '75')
    lfs1 = first(lambda e: e[1] == L and e[2] == 'writer' and e[3] == 'exit' and e[4] == '75')
    apps = [e[0] for e in w if e[1] == L and e[3] == 'nter' and e[4] == '44' and e[0] > r0]
    reply = [e[0] for e in w if e[1] == L and e[3] == 'nter' and e[4] == '46']
    if not (lfs0 and lfs1 and len(apps) >= 2 and reply): continue
    fol = []
    for F in (F1, F2):
        fr = first(lambda e: e[1] == F and e[3] == 'exit' and e[4] == '45' and e[5] and e[5] > 300)
        fs0 = first(lambda e: e[1] == F and e[2] == 'writer' and e[3] == 'nter' and e[4] == '75')
        fs1 = first(lambda e: e[1] == F and e[2] == 'writer' and e[3] == 'exit' and e[4] == '75')
        if None in (fr, fs0, fs1): continue
        ack = first(lambda e: e[1] == F and e[3] == 'nter' and e[4] in ('44', '46', '1') and e[0] > fs1)
        if ack is None: continue
        fol.append((ack, fr, fs0, fs1))
    if not fol: continue
    fol.sort()
    ack, fr, fs0, fs1 = fol[0]
    lack = first(lambda e: e[1] == L and e[3] == 'exit' and e[4] == '45' and e[5] and 50 < e[5] < 300 and e[0] > ack)
    n_ok += 1
    add('whole write (bench send to next send)', t1 - t0)
    add('L: request read -> 1st Append sendto', apps[0] - r0)
    add('L: 1st -> 2nd Append sendto', apps[1] - apps[0])
    add('L: request read -> fdatasync start', lfs0 - r0)
    add('L: fdatasync', lfs1 - lfs0)
    add('L: request read -> fdatasync end', lfs1 - r0)
    add('F: request read(L) -> Append read(F)', fr - r0)
    add('F: Append read -> fdatasync start', fs0 - fr)
    add('F: fdatasync', fs1 - fs0)
    add('F: fdatasync end -> ack send', ack - fs1)
    add('F: request read(L) -> ack send', ack - r0)
    if lack: add('L: ack send(F) -> ack read(L)', lack - ack)
    if lack: add('L: ack read -> reply sendmsg', reply[-1] - lack)
    add('L: request read -> reply', reply[-1] - r0)
    add('L: max(L fsync end, F ack send) -> reply', reply[-1] - max(lfs1, ack))
print(f'writes analysed: {n_ok}')
for k, v in st.items():
    v = sorted(v)
    print(f'{k:45s} n={len(v):4d} p50={statistics.median(v):7.0f}  p90={v[int(len(v)*.9)]:7.0f}  mean={statistics.mean(v):7.0f}')
