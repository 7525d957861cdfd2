import sys,re
# summary of writer flush sizes from metrics files: commits, mean, share of single-entry commits
for f in sys.argv[1:]:
    t=open(f).read()
    b=dict((m.group(1),float(m.group(2))) for m in re.finditer(r'chorus_writer_flush_size_events_bucket\{le="([^"]+)"\} (\S+)',t))
    c=float(re.search(r'chorus_writer_flush_size_events_count (\S+)',t).group(1))
    sm=float(re.search(r'chorus_writer_flush_size_events_sum (\S+)',t).group(1))
    ds=float(re.search(r'chorus_writer_flush_duration_seconds_sum (\S+)',t).group(1))
    print(f"{f.split('/')[-2]}/{f.split('/')[-1][8:-4]}: commits {c:.0f} mean {sm/c:.1f} single {b['1']/c*100:.0f}% <=5 {b['5']/c*100:.0f}% mean_dur_ms {ds/c*1000:.2f}")
