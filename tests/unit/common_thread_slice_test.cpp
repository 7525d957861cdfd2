// Goal: request_short_slice() sets the calling thread's requested slice and keeps its nice value
// (a worker started with `nice` must stay niced); set_batch_policy() switches the calling thread
// between SCHED_BATCH and SCHED_OTHER and back, keeping its nice value and slice, without
// privileges (a relaxed follower's core thread, replication_runtime.cpp).
#include "common/thread_slice.hpp"

#include <gtest/gtest.h>
#include <linux/capability.h>
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

TEST(ThreadSliceTest, SwitchesToBatchAndBackKeepingNiceAndSlice) {
  std::thread t([] {
    const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
    ASSERT_EQ(setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 3), 0);
    request_short_slice();
    SchedAttr before;
    ASSERT_TRUE(get_sched_attr(before));
    ASSERT_TRUE(set_batch_policy(true));
    SchedAttr attr;
    ASSERT_TRUE(get_sched_attr(attr));
    EXPECT_EQ(attr.sched_policy, static_cast<uint32_t>(SCHED_BATCH));
    EXPECT_EQ(attr.sched_nice, 3);
    EXPECT_EQ(attr.sched_runtime, before.sched_runtime);
    ASSERT_TRUE(set_batch_policy(false));
    ASSERT_TRUE(get_sched_attr(attr));
    EXPECT_EQ(attr.sched_policy, static_cast<uint32_t>(SCHED_OTHER));
    EXPECT_EQ(attr.sched_nice, 3);
    EXPECT_EQ(attr.sched_runtime, before.sched_runtime);
  });
  t.join();
}

// A thread without privileges (root drops CAP_SYS_NICE first) can leave SCHED_BATCH again:
// otherwise a follower relaxed once would stay batched after the leader needs it.
TEST(ThreadSliceTest, LeavesBatchWithoutPrivileges) {
  std::thread t([] {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {};
    ASSERT_EQ(syscall(SYS_capget, &header, data), 0);
    data[0].effective &= ~(1u << CAP_SYS_NICE);
    ASSERT_EQ(syscall(SYS_capset, &header, data), 0);  // this thread only
    ASSERT_TRUE(set_batch_policy(true));
    EXPECT_TRUE(set_batch_policy(false));
    SchedAttr attr;
    ASSERT_TRUE(get_sched_attr(attr));
    EXPECT_EQ(attr.sched_policy, static_cast<uint32_t>(SCHED_OTHER));
  });
  t.join();
}

}  // namespace
}  // namespace chorus
