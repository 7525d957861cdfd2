import os, sys, time, statistics
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
os.pwrite(fd, b'\0' * (4096 * 64), 0); os.fsync(fd)   # preallocated, as a WAL that was checkpointed
buf = os.urandom(4120)
lat = []
for i in range(n):
    t = time.perf_counter()
    os.pwrite(fd, buf, (i % 60) * 4120)
    os.fdatasync(fd)
    lat.append((time.perf_counter() - t) * 1e3)
lat.sort()
print(f"{path}: n={n} median {statistics.median(lat):.3f} ms p90 {lat[int(n*0.9)]:.3f}")
