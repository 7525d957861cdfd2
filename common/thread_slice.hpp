// Short scheduler slices for the threads a write waits on (issue 16). Since Linux 6.12 (EEVDF) a
// SCHED_OTHER thread may ask for its own slice (sched_attr.sched_runtime). A thread woken for a
// short burst (a request read from a socket, an fsync's completion) otherwise waits until the
// thread running on its CPU has used its whole slice: with a compiler on the same two cores that
// was measured at 4 ms per wake-up (the 250 Hz tick) where the fsync itself took 0.25 ms. A short
// slice gives the woken thread an earlier deadline, so it runs at once, at the price of more
// frequent switches. Older kernels ignore the field for these policies. Any thread may call it,
// for itself.
#pragma once

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace chorus {

// The shortest slice Linux accepts (it clamps requests to 0.1-100 ms).
constexpr uint64_t kShortSliceNs = 100'000;

// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1): glibc 2.36 declares neither it nor
// sched_setattr, and <linux/sched/types.h> clashes with <sched.h>.
struct SchedAttr {
  uint32_t size = sizeof(SchedAttr);
  uint32_t sched_policy = 0;
  uint64_t sched_flags = 0;
  int32_t sched_nice = 0;
  uint32_t sched_priority = 0;
  uint64_t sched_runtime = 0;
  uint64_t sched_deadline = 0;
  uint64_t sched_period = 0;
  uint32_t sched_util_min = 0;
  uint32_t sched_util_max = 0;
};
constexpr uint64_t kSchedFlagResetOnFork = 0x01;

inline bool get_sched_attr(SchedAttr& attr) {
  return syscall(SYS_sched_getattr, 0, &attr, sizeof(attr), 0) == 0;
}

// Changes the calling thread's scheduling attributes with `change`, keeping everything else (its
// policy, nice value and slice unless `change` sets them). False when the kernel refused or the
// thread has a real-time policy (left as it is).
template <typename Change>
bool change_own_sched_attr(Change change) {
  SchedAttr attr;
  if (!get_sched_attr(attr)) return false;
  if (attr.sched_policy != SCHED_OTHER && attr.sched_policy != SCHED_BATCH) return false;
  attr.size = sizeof(attr);
  attr.sched_flags &= kSchedFlagResetOnFork;
  change(attr);
  return syscall(SYS_sched_setattr, 0, &attr, 0) == 0;
}

// Requests kShortSliceNs for the calling thread, keeping its policy and nice value.
inline bool request_short_slice() {
  return change_own_sched_attr([](SchedAttr& attr) { attr.sched_runtime = kShortSliceNs; });
}

// Puts the calling thread under SCHED_BATCH (true) or back under SCHED_OTHER (false), keeping its
// nice value and slice. A SCHED_BATCH thread that wakes up does not preempt the thread running on
// its CPU: it runs when that thread's slice ends or it blocks, with the same share of the CPU.
// Any thread may switch itself between the two without privileges.
inline bool set_batch_policy(bool batch) {
  return change_own_sched_attr(
      [batch](SchedAttr& attr) { attr.sched_policy = batch ? SCHED_BATCH : SCHED_OTHER; });
}

}  // namespace chorus
