import sys, re, collections, statistics
# usage: tl.py trace.txt leader_pid f1_pid f2_pid bench_pid [n_examples]
path, L, F1, F2, B = sys.argv[1:6]
nex = int(sys.argv[6]) if len(sys.argv) > 6 else 3
role = {L: 'L', F1: 'F1', F2: 'F2', B: 'B'}
rx = re.compile(r'^\s*(\S+)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$')
ev = []
tidname = {}
for line in open(path):
    m = rx.match(line)
    if not m: continue
    comm, pid, tid, cpu, t, kind, rest = m.groups()
    t = float(t) * 1e6
    r = role.get(pid)
    if r is None and kind != 'sched:sched_switch' and kind != 'sched:sched_wakeup': continue
    ev.append((t, r, comm, tid, int(cpu), kind, rest))
names = {'45': 'recv', '46': 'sendmsg', '44': 'sendto', '75': 'fdatasync', '202': 'futex',
         '232': 'epoll_wait', '18': 'pwrite', '1': 'write', '0': 'read', '233': 'epoll_ctl', '72':'fcntl'}
# bench sends
sends = [e[0] for e in ev if e[1] == 'B' and e[5] == 'raw_syscalls:sys_enter' and e[6].startswith('NR 46 ')]
def describe(e, t0):
    t, r, comm, tid, cpu, kind, rest = e
    if kind == 'raw_syscalls:sys_enter':
        nr = rest.split()[1]
        if nr not in ('46', '75', '44', '1', '202', '18'): return None
        a = rest.split('(')[1].split(',')[0]
        return f'{t-t0:8.1f} {r}/{comm}[{cpu}] > {names.get(nr, nr)} fd={a}'
    if kind == 'raw_syscalls:sys_exit':
        nr, val = rest.split()[1], rest.split('=')[1].strip()
        if nr in ('45',) and not val.startswith('-'):
            return f'{t-t0:8.1f} {r}/{comm}[{cpu}] < recv {val}'
        if nr == '75':
            return f'{t-t0:8.1f} {r}/{comm}[{cpu}] < fdatasync'
        if nr == '232' and val != '0':
            return f'{t-t0:8.1f} {r}/{comm}[{cpu}] < epoll_wait {val}'
        return None
    if kind == 'sched:sched_wakeup':
        m = re.search(r'comm=(\S+) pid=(\d+).*target_cpu=(\d+)', rest)
        return f'{t-t0:8.1f} {comm}[{cpu}] wakes {m.group(1)}/{m.group(2)} on {m.group(3)}'
    if kind == 'sched:sched_switch':
        m = re.search(r'prev_comm=(\S+) prev_pid=(\d+).*prev_state=(\S+) ==> next_comm=(\S+) next_pid=(\d+)', rest)
        return f'{t-t0:8.1f} [{cpu}] {m.group(1)}/{m.group(2)}({m.group(3)}) -> {m.group(4)}/{m.group(5)}'
import bisect
times = [e[0] for e in ev]
for k in range(5, 5 + nex):
    t0, t1 = sends[k], sends[k + 1]
    print(f'--- write {k}: {t1-t0:.1f} us')
    for e in ev[bisect.bisect_left(times, t0 - 1):bisect.bisect_left(times, t1)]:
        d = describe(e, t0)
        if d: print(d)
