#!/bin/bash
# Interleaved cluster_counts.sh runs of the old worker (/tmp/s10/final-worker) and NEW (node client),
# order flipped by round. Usage: NEW=<worker> [ROUNDS="1 2 3"] [CS="1 16 64"] counts_ab.sh OUT_DIR
set -u
cd "$(git rev-parse --show-toplevel)"  # run from inside the repository
out=$1; shift
EV=syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_fcntl,syscalls:sys_enter_fdatasync,syscalls:sys_enter_futex,syscalls:sys_enter_pwrite64,syscalls:sys_enter_pread64,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto
for r in ${ROUNDS:-1 2 3}; do
  for c in ${CS:-1 16 64}; do
    order="old new"; [ $((r % 2)) = 0 ] && order="new old"
    for w in $order; do
      bin=/tmp/s10/final-worker; [ $w = new ] && bin=$NEW
      C=$c CLIENT=node BASE=1 DURATION=${DURATION:-8} EXTRA_EVENTS=$EV bench/cluster_counts.sh $out/r$r-c$c-$w $bin > /dev/null 2>&1
      echo "r$r c$c $w $(cat $out/r$r-c$c-$w/bench.json) $(grep -h 'total' $out/r$r-c$c-$w/info.txt | tr '\n' ' ') load $(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done
