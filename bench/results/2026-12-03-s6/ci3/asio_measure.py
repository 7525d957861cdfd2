#!/usr/bin/env python3
# For every object that includes Asio (list file), compile its release command twice, alternated:
# A = as is (Asio header-only), B = with -DBOOST_ASIO_SEPARATE_COMPILATION. CPU s = user + sys of
# the compiler (from os.wait4 of the child). No ccache (the command is the compiler itself).
import json, os, subprocess, sys, time, shlex
build = sys.argv[1]; objs = [l.strip() for l in open(sys.argv[2]) if l.strip()]
out = open(sys.argv[3], 'a')
cmds = {e['output'] if 'output' in e else shlex.split(e['command'])[shlex.split(e['command']).index('-o')+1]: e
        for e in json.load(open(os.path.join(build, 'compile_commands.json')))}
def run(argv, cwd):
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    err = p.stderr.read().decode(); p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode: print(err[-2000:], file=sys.stderr)
    return ru.ru_utime, ru.ru_stime, p.returncode
for i, obj in enumerate(objs):
    e = cmds[obj]; argv = shlex.split(e['command'])
    j = argv.index('-o'); argv[j+1] = f'/tmp/ci3/m-{os.getpid()}.o'
    variants = [('A', argv), ('B', argv[:1] + ['-DBOOST_ASIO_SEPARATE_COMPILATION'] + argv[1:])]
    if i % 2: variants.reverse()
    for name, a in variants:
        u, s, rc = run(a, e['directory'])
        line = f"{obj}\t{name}\t{u:.2f}\t{s:.2f}\t{rc}\t{os.getloadavg()[0]:.2f}\t{time.strftime('%H:%M:%S', time.gmtime())}"
        print(line, file=out, flush=True); print(line, flush=True)
