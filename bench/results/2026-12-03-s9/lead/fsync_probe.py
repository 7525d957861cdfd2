import os, sys, time, statistics, multiprocessing as mp
def run(i, n, size, q):
    fn = f"/tmp/s9/probe{i}.dat"
    fd = os.open(fn, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"\0" * (4 << 20)); os.fsync(fd)
    buf = os.urandom(size); lat = []
    for k in range(n):
        off = (k * size) % (4 << 20)
        t = time.perf_counter(); os.pwrite(fd, buf, off); os.fdatasync(fd); lat.append(time.perf_counter() - t)
    os.close(fd); os.unlink(fn)
    lat.sort(); q.put((statistics.median(lat) * 1e3, lat[int(len(lat) * .9)] * 1e3))
if __name__ == "__main__":
    procs = int(sys.argv[1]); size = int(sys.argv[2]); q = mp.Queue()
    ps = [mp.Process(target=run, args=(i, 1000, size, q)) for i in range(procs)]
    [p.start() for p in ps]; [p.join() for p in ps]
    print(procs, size, [tuple(round(x, 3) for x in q.get()) for _ in ps])
