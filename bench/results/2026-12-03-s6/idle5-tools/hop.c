#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdint.h>
#include <pthread.h>
static long long run_ns(void){FILE*f=fopen("/proc/thread-self/schedstat","r");long long a=0;fscanf(f,"%lld",&a);fclose(f);return a;}
int efd; int n;
void* b(void*x){ long long r0=run_ns(); for(int i=0;i<n;i++){uint64_t v; read(efd,&v,8);} long long r1=run_ns();
  printf("B (woken by A, same process): %.1f us per wake\n",(r1-r0)/1e3/n); return 0;}
int main(int argc,char**argv){ n=atoi(argv[1]); efd=eventfd(0,0);
  pthread_t t; pthread_create(&t,0,b,0);
  int tf=timerfd_create(CLOCK_MONOTONIC,0); struct itimerspec its={{0,100000000},{0,100000000}}; timerfd_settime(tf,0,&its,0);
  long long r0=run_ns();
  for(int i=0;i<n;i++){uint64_t x; read(tf,&x,8); uint64_t one=1; write(efd,&one,8);}
  long long r1=run_ns(); pthread_join(t,0);
  printf("A (timer): %.1f us per wake incl. eventfd write\n",(r1-r0)/1e3/n);}
