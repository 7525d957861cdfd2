// floor3 DIR ROUNDS BYTES DELAY_US NODES: NODES threads, each pwrite(BYTES)+fdatasync on its own
// file in DIR, started together each round (followers DELAY_US after the leader, as an Append's
// trip). Prints p50/p90 of the leader's fsync and of the commit = max(leader, fastest follower).
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
static int rounds, bytes, delay_us, nodes;
static pthread_barrier_t start_b, end_b;
static double *done_at[8];
static struct timespec t0s;
static char dir[256];
static double now_us(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
static void *run(void *arg){
  long id=(long)arg; char p[300]; snprintf(p,sizeof p,"%s/f%ld",dir,id);
  int fd=open(p,O_RDWR|O_CREAT|O_TRUNC,0644); char *buf=malloc(bytes); memset(buf,'x',bytes);
  for(int i=0;i<256;i++) pwrite(fd,buf,bytes,(off_t)i*bytes); fsync(fd);
  for(int r=0;r<rounds;r++){
    pthread_barrier_wait(&start_b);
    double t0=now_us();
    if(id>0 && delay_us>0){ while(now_us()-t0<delay_us); }
    pwrite(fd,buf,bytes,(off_t)(r%256)*bytes); fdatasync(fd);
    done_at[id][r]=now_us()-t0;
    pthread_barrier_wait(&end_b);
  }
  return 0;
}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  snprintf(dir,sizeof dir,"%s",argv[1]); rounds=atoi(argv[2]); bytes=atoi(argv[3]); delay_us=atoi(argv[4]); nodes=atoi(argv[5]);
  pthread_barrier_init(&start_b,0,nodes); pthread_barrier_init(&end_b,0,nodes);
  pthread_t th[8];
  for(long i=0;i<nodes;i++){done_at[i]=calloc(rounds,sizeof(double)); pthread_create(&th[i],0,run,(void*)i);}
  for(int i=0;i<nodes;i++) pthread_join(th[i],0);
  double *lead=malloc(rounds*sizeof(double)), *commit=malloc(rounds*sizeof(double));
  for(int r=0;r<rounds;r++){
    double f=1e18; for(int i=1;i<nodes;i++) if(done_at[i][r]<f) f=done_at[i][r];
    lead[r]=done_at[0][r]; commit[r]= nodes>1 ? (lead[r]>f?lead[r]:f) : lead[r];
  }
  qsort(lead,rounds,sizeof(double),cmp); qsort(commit,rounds,sizeof(double),cmp);
  printf("nodes %d bytes %d delay %d us: leader fsync p50 %.0f p90 %.0f us; commit (leader + fastest follower) p50 %.0f p90 %.0f us\n",
    nodes,bytes,delay_us,lead[rounds/2],lead[rounds*9/10],commit[rounds/2],commit[rounds*9/10]);
}
