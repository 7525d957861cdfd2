// Goal: FrameBudget grants shares only while the total stays within its maximum, refuses a growth
// without changing anything, always lets a share shrink, and never lets concurrent holders pass
// the maximum together.
#include "worker/tcp/frame_budget.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace chorus::tcp {
namespace {

TEST(FrameBudget, GrantsWithinTheMaximumAndRefusesBeyondIt) {
  FrameBudget budget(100);
  size_t first = 0;
  size_t second = 0;
  EXPECT_TRUE(budget.resize(first, 60));
  EXPECT_EQ(first, 60u);
  EXPECT_TRUE(budget.resize(second, 40));
  EXPECT_EQ(budget.used_bytes(), 100u);
  EXPECT_FALSE(budget.resize(second, 41));
  EXPECT_EQ(second, 40u) << "a refused growth changes nothing";
  EXPECT_EQ(budget.used_bytes(), 100u);
  EXPECT_TRUE(budget.resize(first, 10));
  EXPECT_TRUE(budget.resize(second, 90));
  EXPECT_TRUE(budget.resize(first, 0));
  EXPECT_TRUE(budget.resize(second, 0));
  EXPECT_EQ(budget.used_bytes(), 0u);
  size_t huge = 0;
  EXPECT_FALSE(budget.resize(huge, SIZE_MAX));
  EXPECT_EQ(budget.used_bytes(), 0u);
}

TEST(FrameBudget, ConcurrentHoldersNeverPassTheMaximum) {
  constexpr size_t kMax = 1000;
  FrameBudget budget(kMax);
  std::atomic<bool> passed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&budget, &passed, t] {
      size_t held = 0;
      for (int i = 0; i < 20000; ++i) {
        budget.resize(held, static_cast<size_t>((i * 7 + t * 13) % 400));
        if (budget.used_bytes() > kMax) passed = true;
      }
      budget.resize(held, 0);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_FALSE(passed.load());
  EXPECT_EQ(budget.used_bytes(), 0u);
}

}  // namespace
}  // namespace chorus::tcp
