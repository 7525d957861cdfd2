import os, time, threading, sys, statistics
def run(path, size, n, out):
    fd = os.open(path, os.O_WRONLY|os.O_CREAT|os.O_TRUNC, 0o644)
    buf = b'x'*size
    # preallocate like a WAL being reused: overwrite the same region
    os.write(fd, b'\0'*(size*64)); os.fsync(fd)
    ts=[]
    for i in range(n):
        os.pwrite(fd, buf, (i%64)*size)
        t=time.perf_counter(); os.fdatasync(fd); ts.append(time.perf_counter()-t)
    os.close(fd); out.extend(ts)
for threads in (1,2):
  for size in (4096, 16384, 65536, 262144):
    outs=[[] for _ in range(threads)]
    th=[threading.Thread(target=run,args=(f'f{i}',size,400,outs[i])) for i in range(threads)]
    [t.start() for t in th]; [t.join() for t in th]
    allv=sorted(sum(outs,[]))
    print(f"threads {threads} size {size//1024:4d}K fdatasync p50 {statistics.median(allv)*1e3:.3f} ms p90 {allv[int(len(allv)*.9)]*1e3:.3f}")
