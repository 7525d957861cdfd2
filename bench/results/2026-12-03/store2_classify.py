#!/usr/bin/env python3
# Classifies perf script samples of the writer thread (storage-writer-bench, symbolized SQLite)
# into buckets; prints µs per event. Usage: classify.py perf.txt EVENTS [VDBE_MAP]
import sys, re, collections
path, events = sys.argv[1], int(sys.argv[2])
ops = {'0x7941':'commit', '0x516f':'idx_insert', '0x7315':'idx_unique_seek', '0x4462':'table_seek',
       '0x3590':'table_insert', '0x5776':'begin', '0x9945':'stmt_halt', '0x8bd8':'make_record',
       '0x6f5c':'make_record', '0xc91':'open_cursor'}
samples = []
cur = None
for line in open(path):
    if not line.strip():
        if cur: samples.append(cur)
        cur = None
        continue
    if not line.startswith('\t') and not line.startswith(' '):
        cur = {'period': int(line.split()[2]), 'frames': []}
        continue
    if cur is not None:
        cur['frames'].append(line.strip())
if cur: samples.append(cur)
b = collections.Counter()
for s in samples:
    fr = s['frames']
    text = '\n'.join(fr)
    m = [re.search(r'sqlite3VdbeExec\+(0x[0-9a-f]+)', f) for f in fr]
    op = None
    for x in m:
        if x: op = ops.get(x.group(1), 'vdbe_other_op'); break
    leaf = fr[0] if fr else ''
    def sub_io(prefix):
        if 'fdatasync' in text: return prefix + ':fdatasync'
        if 'Checkpoint' in text or 'walCheckpoint' in text: return prefix + ':checkpoint'
        if '(anonymous namespace)::flush' in text or 'pwrite' in text or 'libc_write' in text or '__GI___libc_write' in text: return prefix + ':wal_write_syscall'
        if 'walChecksumBytes' in leaf: return prefix + ':wal_checksum'
        if 'read' in leaf or 'pread' in text: return prefix + ':read_syscall'
        if 'fcntl' in text: return prefix + ':locks'
        return prefix + ':other'
    if 'write_transaction' in text and ('doWalCallbacks' in text or 'sqlite3WalCheckpoint' in text):
        k = 'checkpoint:' + ('fdatasync' if 'fdatasync' in text else 'write_syscall' if ('pwrite' in text or 'libc_write' in text) else 'read_syscall' if ('pread' in text or re.search(r'\bread\b', text)) else 'other')
    elif 'write_transaction' in text:
        if op == 'commit': k = sub_io('commit')
        elif op == 'begin': k = sub_io('begin')
        elif 'StorageWriter::insert' in text:
            if op is None:
                if 'sqlite3_reset' in text: k = 'insert:reset'
                elif 'bind' in text: k = 'insert:bind'
                elif 'sqlite3VdbeExec' in leaf: k = 'insert:vm_dispatch'
                elif 'sqlite3_step' in text: k = 'insert:step_other'
                else: k = 'insert:our_code'
            else:
                k = 'insert:' + op
                if 'pread' in text or re.search(r'\bread\b', text): k += '(read_syscall)'
        else:
            k = 'txn:other(' + (op or 'none') + ')'
    elif 'futex' in text or 'pthread_cond' in text: k = 'wait/wake (futex)'
    elif 'StorageWriter::run' in text or 'take_batches' in text: k = 'our_code:run'
    elif '~' in text or 'free' in leaf or '_M_dispose' in text: k = 'our_code:free'
    else: k = 'other'
    b[k] += s['period']
tot = sum(b.values())
print(f'samples {len(samples)}  writer µs/event {tot/1e3/events:.2f}')
for k, v in sorted(b.items(), key=lambda kv: -kv[1]):
    print(f'{k:40s} {v/1e3/events:7.2f} µs  {100*v/tot:5.1f} %')
