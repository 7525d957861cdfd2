import resource, subprocess, sys, json, os, shutil
# Runs storage-writer-bench and reports the bytes written to the file system per event (ru_oublock, 512-byte units).
binary, mode, events, commit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d='/tmp/swb-io-'+mode
shutil.rmtree(d, ignore_errors=True)
r0=resource.getrusage(resource.RUSAGE_CHILDREN)
out=subprocess.run([binary,'--db',d,'--events',str(events),'--commit',commit,'--index',mode],capture_output=True,text=True).stdout
r1=resource.getrusage(resource.RUSAGE_CHILDREN)
blocks=r1.ru_oublock-r0.ru_oublock
cpu=(r1.ru_utime+r1.ru_stime)-(r0.ru_utime+r0.ru_stime)
wal=os.path.getsize(d+'/chorus.db-wal') if os.path.exists(d+'/chorus.db-wal') else 0
print(mode, 'commit', commit, 'bytes written per event', round(blocks*512/events), 'cpu us/event', round(cpu*1e6/events,1), 'wal size', wal, out.strip()[-200:])
