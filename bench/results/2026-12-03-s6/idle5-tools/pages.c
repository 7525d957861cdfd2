#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <stdint.h>
#include <time.h>
#include <string.h>
static long long run_ns(void){FILE*f=fopen("/proc/thread-self/schedstat","r");long long a=0;fscanf(f,"%lld",&a);fclose(f);return a;}
int main(int argc,char**argv){
  int n=atoi(argv[1]); int ms=atoi(argv[2]); int pages=atoi(argv[3]); int sys=argc>4?atoi(argv[4]):0;
  char*buf=malloc((size_t)pages*4096+4096); memset(buf,1,(size_t)pages*4096+4096);
  int ep=epoll_create1(0); int tf=timerfd_create(CLOCK_MONOTONIC,0);
  struct itimerspec its={{0,ms*1000000},{0,ms*1000000}}; timerfd_settime(tf,0,&its,0);
  struct epoll_event ev={.events=EPOLLIN,.data.fd=tf}; epoll_ctl(ep,EPOLL_CTL_ADD,tf,&ev);
  long long r0=run_ns(); volatile long s=0;
  for(int i=0;i<n;i++){struct epoll_event out; epoll_wait(ep,&out,1,-1); uint64_t x; read(tf,&x,8);
    for(int p=0;p<pages;p++) s+=buf[(size_t)p*4096+ (i&63)];
    for(int k=0;k<sys;k++) getppid(); }
  long long r1=run_ns();
  printf("pages %d syscalls %d: %.1f us per wake\n",pages,sys,(r1-r0)/1e3/n);
}
