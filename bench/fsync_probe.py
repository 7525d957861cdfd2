#!/usr/bin/env python3
"""What a flush costs on a disk: write SIZE bytes over an allocated region and fdatasync, COUNT
times, by THREADS threads at once (each on its own file), as a node's storage writer does with
its WAL at each commit. Prints the median and p90 of the fdatasync for each size and thread
count. Several threads show how flushes of nodes that share one disk queue behind each other.

  python3 bench/fsync_probe.py [--dir FOLDER] [--sizes 4,16,64,256] [--threads 1,2] [--count 400]

FOLDER (default: the current folder) should be on the disk the nodes' data lives on; the probe's
files go to a temporary folder inside it, removed at the end."""
import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time

SIZE_KIB_MAX = 16 * 1024  # one write of at most 16 MiB
THREADS_MAX = 16
COUNT_MAX = 100_000
REGION_WRITES = 64  # the writes cycle over a region of this many sizes, allocated first


def numbers(text, name, top):
    try:
        values = [int(v) for v in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'{name}: comma-separated whole numbers, not {text!r}')
    if not values or any(v < 1 or v > top for v in values):
        raise argparse.ArgumentTypeError(f'{name}: each from 1 to {top}, not {text!r}')
    return values


def probe(path, size, count, out):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # Allocated and durable first: a WAL after its first checkpoint is overwritten in place,
        # so the flushes below write no file size or block map.
        os.pwrite(fd, b'\0' * (size * REGION_WRITES), 0)
        os.fsync(fd)
        buf = os.urandom(size)
        for i in range(count):
            os.pwrite(fd, buf, (i % REGION_WRITES) * size)
            started = time.perf_counter()
            os.fdatasync(fd)
            out.append(time.perf_counter() - started)
    finally:
        os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dir', default='.', help='a folder on the disk to measure')
    parser.add_argument('--sizes', default='4,16,64,256',
                        type=lambda t: numbers(t, '--sizes (KiB)', SIZE_KIB_MAX))
    parser.add_argument('--threads', default='1,2',
                        type=lambda t: numbers(t, '--threads', THREADS_MAX))
    parser.add_argument('--count', default=400, type=int)
    args = parser.parse_args()
    if not 1 <= args.count <= COUNT_MAX:
        parser.error(f'--count: from 1 to {COUNT_MAX}, not {args.count}')
    if not os.path.isdir(args.dir):
        parser.error(f'--dir: no folder {args.dir}')
    work = tempfile.mkdtemp(prefix='fsync-probe.', dir=args.dir)
    try:
        for threads in args.threads:
            for kib in args.sizes:
                results = [[] for _ in range(threads)]
                workers = [threading.Thread(target=probe, args=(os.path.join(work, f'f{i}'),
                                                                kib * 1024, args.count, results[i]))
                           for i in range(threads)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                times = sorted(t for r in results for t in r)
                if len(times) != threads * args.count:
                    raise SystemExit('a probe thread failed (see above)')
                print(f'threads {threads} size {kib:5d} KiB fdatasync p50 '
                      f'{statistics.median(times) * 1e3:.3f} ms p90 '
                      f'{times[int(len(times) * 0.9)] * 1e3:.3f} ms')
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
