// Goal: request_short_slice() sets the calling thread's requested slice and keeps its nice value
// (a worker started with `nice` must stay niced).
#include "common/thread_slice.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <thread>

namespace chorus {
namespace {

TEST(ThreadSliceTest, SetsTheSliceAndKeepsNice) {
  std::thread t([] {
    const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
    ASSERT_EQ(setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 5), 0);
    ASSERT_TRUE(request_short_slice());
    SchedAttr attr;
    ASSERT_TRUE(get_sched_attr(attr));
    EXPECT_EQ(attr.sched_policy, static_cast<uint32_t>(SCHED_OTHER));
    EXPECT_EQ(attr.sched_nice, 5);
    // Kernels before 6.12 keep no slice per thread and report none.
    if (attr.sched_runtime != 0) {
      EXPECT_EQ(attr.sched_runtime, kShortSliceNs);
    }
  });
  t.join();
}

}  // namespace
}  // namespace chorus
