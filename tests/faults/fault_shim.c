/* fault_shim: an LD_PRELOAD library that makes a process's disk (or wall clock) misbehave on
 * demand, for the fault harness (tests/faults). It wraps write, pwrite, pwrite64, writev, fsync
 * and fdatasync and, for regular files whose path starts with $CHORUS_FAULT_PATH (the node's data
 * folder), applies the mode named in the file $CHORUS_FAULT_CONTROL; it also wraps
 * clock_gettime, gettimeofday and time for the wall clock:
 *   (empty or missing)  pass through
 *   eio-fsync           fsync/fdatasync fail with EIO (the write itself succeeded)
 *   eio-write           writes fail with EIO
 *   slow-fsync <ms>     fsync/fdatasync sleep <ms> first (a slow disk)
 *   clock <+-seconds>   CLOCK_REALTIME reads this far off (a clock jump; monotonic clocks stay)
 * The control file is re-read at most every 20 ms, so the harness switches modes at run time.
 * Any thread may call the wrappers; the cached mode is published with atomics. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { kModeNone, kModeEioFsync, kModeEioWrite, kModeSlowFsync, kModeClock };
enum { kRereadMs = 20 };

static _Atomic int mode_ = kModeNone;
static _Atomic long slow_ms_ = 0;
static _Atomic long clock_offset_s_ = 0;
static _Atomic long long checked_ms_ = -1000000;

typedef int (*clock_gettime_fn)(clockid_t, struct timespec*);

/* The real clock_gettime, looked up once (it is called far more often than the disk calls). */
static clock_gettime_fn real_clock_gettime(void) {
  static _Atomic(clock_gettime_fn) real = NULL;
  clock_gettime_fn fn = atomic_load(&real);
  if (fn == NULL) {
    fn = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    atomic_store(&real, fn);
  }
  return fn;
}

static long long now_ms(void) {
  struct timespec ts;
  real_clock_gettime()(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the control file (plain read(2): not wrapped) when the cached mode is older than 20 ms. */
static int current_mode(void) {
  const long long now = now_ms();
  if (now - atomic_load(&checked_ms_) < kRereadMs) return atomic_load(&mode_);
  atomic_store(&checked_ms_, now);
  const char* path = getenv("CHORUS_FAULT_CONTROL");
  int mode = kModeNone;
  long ms = 0;
  long offset_s = 0;
  if (path != NULL) {
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char text[64] = {0};
      const ssize_t n = read(fd, text, sizeof text - 1);
      close(fd);
      if (n > 0) {
        if (strncmp(text, "eio-fsync", 9) == 0) mode = kModeEioFsync;
        if (strncmp(text, "eio-write", 9) == 0) mode = kModeEioWrite;
        if (strncmp(text, "slow-fsync", 10) == 0) {
          mode = kModeSlowFsync;
          ms = strtol(text + 10, NULL, 10);
        }
        if (strncmp(text, "clock ", 6) == 0) {
          mode = kModeClock;
          offset_s = strtol(text + 6, NULL, 10);
        }
      }
    }
  }
  atomic_store(&slow_ms_, ms);
  atomic_store(&clock_offset_s_, offset_s);
  atomic_store(&mode_, mode);
  return mode;
}

/* True when fd is a regular file under $CHORUS_FAULT_PATH. */
static int targeted(int fd) {
  const char* prefix = getenv("CHORUS_FAULT_PATH");
  struct stat st;
  if (prefix == NULL || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  char link[64];
  char target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = '\0';
  return strncmp(target, prefix, strlen(prefix)) == 0;
}

static int fail_write(int fd) {
  return current_mode() == kModeEioWrite && targeted(fd);
}

/* Applies the fsync fault: returns -1 (errno EIO) to fail, 0 to go on. */
static int before_sync(int fd) {
  const int mode = current_mode();
  if (mode == kModeNone || !targeted(fd)) return 0;
  if (mode == kModeEioFsync) {
    errno = EIO;
    return -1;
  }
  if (mode == kModeSlowFsync) {
    const long ms = atomic_load(&slow_ms_);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  return 0;
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

ssize_t write(int fd, const void* buf, size_t count) {
  if (fail_write(fd)) {
    errno = EIO;
    return -1;
  }
  return REAL("write", ssize_t (*)(int, const void*, size_t))(fd, buf, count);
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  if (fail_write(fd)) {
    errno = EIO;
    return -1;
  }
  return REAL("pwrite", ssize_t (*)(int, const void*, size_t, off_t))(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off64_t offset) {
  if (fail_write(fd)) {
    errno = EIO;
    return -1;
  }
  return REAL("pwrite64", ssize_t (*)(int, const void*, size_t, off64_t))(fd, buf, count,
                                                                         offset);
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  if (fail_write(fd)) {
    errno = EIO;
    return -1;
  }
  return REAL("writev", ssize_t (*)(int, const struct iovec*, int))(fd, iov, iovcnt);
}

int fsync(int fd) {
  if (before_sync(fd) != 0) return -1;
  return REAL("fsync", int (*)(int))(fd);
}

int fdatasync(int fd) {
  if (before_sync(fd) != 0) return -1;
  return REAL("fdatasync", int (*)(int))(fd);
}

/* The wall-clock offset in seconds while the clock mode is on, else 0. */
static long clock_offset(void) {
  return current_mode() == kModeClock ? atomic_load(&clock_offset_s_) : 0;
}

int clock_gettime(clockid_t clock, struct timespec* ts) {
  const int rc = real_clock_gettime()(clock, ts);
  if (rc == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
    ts->tv_sec += clock_offset();
  }
  return rc;
}

int gettimeofday(struct timeval* restrict tv, void* restrict tz) {
  const int rc = REAL("gettimeofday", int (*)(struct timeval*, void*))(tv, tz);
  if (rc == 0) tv->tv_sec += clock_offset();
  return rc;
}

time_t time(time_t* out) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
  if (out != NULL) *out = ts.tv_sec;
  return ts.tv_sec;
}
