#!/usr/bin/env python3
# Paired ratios per round and shape: each variant / the baseline variant (first arg after file).
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
base = sys.argv[2]
keys = ['writer_us_per_event', 'cpu_us_per_event', 'bytes_per_event', 'read_stream_us_per_event', 'read_all_us_per_event']
for shape in sorted({r['shape'] for r in rows}):
    for v in sorted({r['variant'] for r in rows}):
        out = []
        for k in keys:
            rs, vals = [], []
            for r in rows:
                if r['shape'] != shape or r['variant'] != v or k not in r: continue
                b = [x for x in rows if x['shape'] == shape and x['round'] == r['round'] and x['variant'] == base]
                if b and k in b[0]: rs.append(r[k] / b[0][k])
                vals.append(r[k])
            if vals:
                out.append(f"{k.replace('_per_event','')}: med {statistics.median(vals):.3g} ratio {statistics.median(rs):.3f} [{min(rs):.2f}-{max(rs):.2f}] lower {sum(x<1 for x in rs)}/{len(rs)}")
        print(shape, v, '\n   ' + '\n   '.join(out))
