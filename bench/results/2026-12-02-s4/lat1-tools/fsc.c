#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>
#include <sys/syscall.h>
#include <string.h>
struct sched_attr { uint32_t size, sched_policy; uint64_t sched_flags; int32_t sched_nice; uint32_t sched_priority; uint64_t sched_runtime, sched_deadline, sched_period; uint32_t util_min, util_max; };
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  long slice = atol(argv[2]); int n = atoi(argv[3]);
  if (slice > 0) { struct sched_attr a; memset(&a,0,sizeof a); a.size=sizeof a; a.sched_policy=0; a.sched_runtime=slice;
    if (syscall(SYS_sched_setattr, 0, &a, 0)) perror("sched_setattr"); }
  int fd = open(argv[1], O_RDWR|O_CREAT|O_TRUNC, 0644); char buf[600]; memset(buf,'x',600);
  for (int i=0;i<1000;i++) pwrite(fd, buf, 600, i*600); fsync(fd);
  double *l = malloc(n*sizeof(double));
  for (int i=0;i<n;i++){ struct timespec t0,t1; clock_gettime(CLOCK_MONOTONIC,&t0);
    pwrite(fd, buf, 600, (i%1000)*600); fdatasync(fd); clock_gettime(CLOCK_MONOTONIC,&t1);
    l[i]=(t1.tv_sec-t0.tv_sec)*1e3+(t1.tv_nsec-t0.tv_nsec)/1e6; }
  qsort(l,n,sizeof(double),cmp); printf("slice %ld: p50 %.3f p90 %.3f ms\n", slice, l[n/2], l[n*9/10]); }
