#!/bin/bash
# migtime.sh WORKER DBDIR: start WORKER on a copy of DBDIR, time to ready (ext HTTP answers), peak WAL, worker's VmHWM
W=$1; src=$2; d=/tmp/s11/migrun; rm -rf $d; mkdir -p $d; cp -a $src $d/db; sync
t0=$(date +%s.%N); setsid $W --db $d/db --log $d/log --int-ip 127.0.0.1 --ext-ip 127.0.0.1 --int-tcp-port=1911 --ext-tcp-port=1912 --int-http-port=1913 --ext-http-port=1914 --cluster-size=1 --discover-via-dns=false > $d/out 2>&1 & pid=$!
maxwal=0; hwm=0
while ! curl -s -o /dev/null --max-time 1 http://127.0.0.1:1914/info; do s=$(stat -c %s $d/db/chorus.db-wal 2>/dev/null || echo 0); [ $s -gt $maxwal ] && maxwal=$s; t=$(for f in /proc/$pid/fd/*; do [[ "$(readlink $f)" == *deleted* ]] && stat -L -c %s $f; done 2>/dev/null | awk "{s+=\$1} END {print s+0}"); [ "$t" -gt "${maxtmp:-0}" ] && maxtmp=$t; sleep 0.1; done; echo "peak temp files $((maxtmp/1048576)) MiB"
t1=$(date +%s.%N); hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
echo "$(basename $W): ready after $(echo "$t1 - $t0" | bc | cut -c1-5) s; peak WAL $((maxwal/1048576)) MiB; VmHWM $((hwm/1024)) MiB; db $(du -m $d/db/chorus.db | cut -f1) MiB"
grep -i "rebuild" $d/out
kill $pid; wait $pid 2>/dev/null
