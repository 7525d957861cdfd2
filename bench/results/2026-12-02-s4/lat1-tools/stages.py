import sys, re, statistics, bisect
path, L, F1, F2, B = sys.argv[1:6]
rx = re.compile(r'^\s*(\S+)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$')
ev=[]
for line in open(path):
    m = rx.match(line)
    if not m: continue
    comm,pid,tid,cpu,t,kind,rest = m.groups()
    if pid not in (L,F1,F2,B): continue
    ev.append((float(t)*1e6, pid, comm, kind, rest))
sends=[e[0] for e in ev if e[1]==B and e[3]=='raw_syscalls:sys_enter' and e[4].startswith('NR 46 ')]
st={k:[] for k in ['total','req_to_first_append','first_to_second_append','leader_fsync','ack_to_reply','req_to_leader_fsync_start']}
times=[e[0] for e in ev]
for k in range(len(sends)-1):
    t0,t1=sends[k],sends[k+1]
    w=ev[bisect.bisect_left(times,t0):bisect.bisect_left(times,t1)]
    lrecv=[e[0] for e in w if e[1]==L and e[2]=='core' and e[3]=='raw_syscalls:sys_exit' and e[4].startswith('NR 45 ') and int(e[4].split('=')[1])>300]
    lsend=[e[0] for e in w if e[1]==L and e[2]=='core' and e[3]=='raw_syscalls:sys_enter' and e[4].startswith('NR 44 ')]
    reply=[e[0] for e in w if e[1]==L and e[2]=='core' and e[3]=='raw_syscalls:sys_enter' and e[4].startswith('NR 46 ')]
    fs=[e[0] for e in w if e[1]==L and e[2]=='writer' and e[4].startswith('NR 75')]
    if not (lrecv and len(lsend)>=2 and reply and len(fs)>=2): continue
    r0=lrecv[0]; after=[x for x in lsend if x>r0]
    if len(after)<2: continue
    st['total'].append(t1-t0)
    st['req_to_first_append'].append(after[0]-r0)
    st['first_to_second_append'].append(after[1]-after[0])
    st['req_to_leader_fsync_start'].append(fs[0]-r0)
    st['leader_fsync'].append(fs[1]-fs[0])
    acks=[e[0] for e in w if e[1]==L and e[2]=='core' and e[3]=='raw_syscalls:sys_exit' and e[4].startswith('NR 45 ') and 100<int(e[4].split('=')[1])<200 and e[0]<reply[-1]]
    if acks: st['ack_to_reply'].append(reply[-1]-acks[-1])
for k,v in st.items():
    if v: print(f'{k:28s} n={len(v):4d} p50={statistics.median(v):7.0f} us  p90={sorted(v)[int(len(v)*.9)]:7.0f}')
