#!/usr/bin/env python3
# PCH trial: for each source, A = its release command as is; P = the same with -include of a
# precompiled Asio header built with that source's own flags (one .gch per distinct flag set;
# its build CPU counted once per flag set). CPU s = user + sys of the compiler (os.wait4).
import json, os, subprocess, shlex, sys, hashlib, time
build = sys.argv[1]; srcs = sys.argv[2].split(','); out = open(sys.argv[3], 'a')
d = json.load(open(os.path.join(build, 'compile_commands.json')))
def run(argv, cwd):
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, st, ru = os.wait4(p.pid, 0); err = p.stderr.read().decode()
    if st: print(err[-3000:], file=sys.stderr)
    return ru.ru_utime + ru.ru_stime, st
def log(*f):
    line = '\t'.join(str(x) for x in f) + f"\t{os.getloadavg()[0]:.2f}\t{time.strftime('%H:%M:%S', time.gmtime())}"
    print(line, file=out, flush=True); print(line, flush=True)
built = {}
for i, s in enumerate(srcs):
    e = [x for x in d if x['file'].endswith('/' + s)][0]
    argv = shlex.split(e['command']); j = argv.index('-o'); argv[j+1] = '/tmp/ci3/pch/m.o'
    flags = [a for k, a in enumerate(argv[1:j]) ]
    key = hashlib.sha1(' '.join(flags).encode()).hexdigest()[:10]
    pdir = f'/tmp/ci3/pch/{key}'
    if key not in built:
        os.makedirs(pdir, exist_ok=True)
        hdr = f'{pdir}/asio_pch.hpp'; open(hdr, 'w').write(open('/tmp/ci3/pch/asio_pch.hpp').read())
        cpu, st = run([argv[0]] + flags + ['-x', 'c++-header', '-o', hdr + '.gch', hdr], e['directory'])
        built[key] = hdr; log('pch', key, f'{cpu:.2f}', st, os.path.getsize(hdr + '.gch'))
    hdr = built[key]
    variants = [('A', argv), ('P', argv[:1] + ['-include', hdr, '-Winvalid-pch'] + argv[1:])]
    if i % 2: variants.reverse()
    for name, a in variants:
        cpu, st = run(a, e['directory']); log(s, name, f'{cpu:.2f}', st, key)
