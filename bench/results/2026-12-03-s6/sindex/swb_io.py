import resource, subprocess, sys, json, os, shutil
# storage-writer-bench with the bytes it wrote (ru_oublock) per event; args: binary label extra-args...
binary, label = sys.argv[1], sys.argv[2]
extra = sys.argv[3:]
d='/tmp/sidx/db-'+label
shutil.rmtree(d, ignore_errors=True)
r0=resource.getrusage(resource.RUSAGE_CHILDREN)
out=subprocess.run([binary,'--db',d]+extra,capture_output=True,text=True)
r1=resource.getrusage(resource.RUSAGE_CHILDREN)
j=json.loads(out.stdout.strip().splitlines()[-1])
events=j.get('events') or j.get('written')
blocks=r1.ru_oublock-r0.ru_oublock
j['label']=label; j['bytes_per_event']=round(blocks*512/events)
print(json.dumps(j))
shutil.rmtree(d, ignore_errors=True)
