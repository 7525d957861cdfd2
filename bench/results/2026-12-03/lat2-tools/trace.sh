#!/bin/bash
# trace.sh NAME SECONDS : perf-trace a C=1 chorus-bench run against cluster c/NAME; prints stages
n=$1; secs=${2:-2}
B="nice -n -19 /work/wt/hops/build/release/bench/chorus-bench"
p=$(cat /tmp/lat2/c/$n/leader)
pids=$(paste -sd' ' /tmp/lat2/c/$n/pids)
# leader pid: the one listening on the leader's ext port
L=$(ss -ltnp "sport = :$p" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
Fs=$(for x in $pids; do [ "$x" != "$L" ] && echo $x; done | paste -sd' ')
setsid $B --port $p --mode write --connections 1 --inflight 1 --streams 64 --event-size 256 --batch 1 --duration-s $((secs+3)) >/tmp/lat2/trace-$n.bench 2>/dev/null &
bp=$!
sleep 1.5
perf record -q -o /tmp/lat2/trace-$n.data -e sched:sched_switch -e sched:sched_wakeup -e raw_syscalls:sys_enter -e raw_syscalls:sys_exit -p $(paste -sd, /tmp/lat2/c/$n/pids),$bp -- sleep $secs >/dev/null 2>&1
wait $bp
perf script -F comm,pid,tid,cpu,time,event,trace -i /tmp/lat2/trace-$n.data > /tmp/lat2/trace-$n.txt 2>/dev/null
echo "L=$L F=$Fs B=$bp load=$(cut -d' ' -f1 /proc/loadavg)"
python3 /tmp/lat2/stages2.py /tmp/lat2/trace-$n.txt $L $Fs $bp
