// Floor cost of one idle wake-up on this VM: a thread that sleeps in epoll_wait on a timerfd
// (100 ms) and does nothing else; CPU from schedstat over N wakes.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>
#include <pthread.h>
static long long run_ns(void){FILE*f=fopen("/proc/thread-self/schedstat","r");long long a=0;fscanf(f,"%lld",&a);fclose(f);return a;}
int main(int argc,char**argv){
  int n=argc>1?atoi(argv[1]):300; int ms=argc>2?atoi(argv[2]):100; int mode=argc>3?atoi(argv[3]):0;
  int ep=epoll_create1(0); int tf=timerfd_create(CLOCK_MONOTONIC,0);
  struct itimerspec its={{ms/1000,(ms%1000)*1000000},{ms/1000,(ms%1000)*1000000}};
  timerfd_settime(tf,0,&its,0);
  struct epoll_event ev={.events=EPOLLIN,.data.fd=tf}; epoll_ctl(ep,EPOLL_CTL_ADD,tf,&ev);
  long long r0=run_ns(); struct timespec t0,t1; clock_gettime(CLOCK_MONOTONIC,&t0);
  for(int i=0;i<n;i++){struct epoll_event out; epoll_wait(ep,&out,1,-1); uint64_t x; read(tf,&x,8);
    if(mode==1){ /* extra syscalls like asio: settime */ timerfd_settime(tf,0,&its,0);} }
  long long r1=run_ns(); clock_gettime(CLOCK_MONOTONIC,&t1);
  double w=(t1.tv_sec-t0.tv_sec)+(t1.tv_nsec-t0.tv_nsec)/1e9;
  printf("wakes %d in %.1fs: %.1f us CPU per wake, %.3f%% of a core\n",n,w,(r1-r0)/1e3/n,(r1-r0)/1e7/w);
  return 0;}
