// Goal: prove that the WakeCoalescer wakes a chore only inside its window, once per window, and
// never after close_window() or remove() (issue 16: periodic chores riding on the core thread's
// wake-ups).
#include "common/wake_coalescer.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace chorus {
namespace {

using Clock = WakeCoalescer::Clock;
using std::chrono::seconds;

TEST(WakeCoalescer, WakesAChoreOnceItsWindowHasOpened) {
  WakeCoalescer coalescer;
  int wakes = 0;
  const int id = coalescer.add([&] { ++wakes; });
  ASSERT_EQ(id, 0);
  coalescer.carry();
  EXPECT_EQ(wakes, 0);  // no window yet
  coalescer.open_window(id, Clock::now() + seconds(60));
  coalescer.carry();
  EXPECT_EQ(wakes, 0);  // not yet open
  coalescer.open_window(id, Clock::now() - seconds(1));
  coalescer.carry();
  EXPECT_EQ(wakes, 1);
  coalescer.carry();
  EXPECT_EQ(wakes, 1);  // once per window
  coalescer.open_window(id, Clock::now() - seconds(1));
  coalescer.close_window(id);  // the chore ran by itself
  coalescer.carry();
  EXPECT_EQ(wakes, 1);
}

TEST(WakeCoalescer, ARemovedChoreIsNotWokenAndTheOthersAre) {
  WakeCoalescer coalescer;
  int first = 0;
  int second = 0;
  const int a = coalescer.add([&] { ++first; });
  const int b = coalescer.add([&] { ++second; });
  coalescer.open_window(a, Clock::now() - seconds(1));
  coalescer.open_window(b, Clock::now() - seconds(1));
  coalescer.remove(a);
  coalescer.open_window(a, Clock::now() - seconds(1));  // a late call from the removed chore
  coalescer.carry();
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}

TEST(WakeCoalescer, ChoresBeyondTheLimitWakeByThemselves) {
  WakeCoalescer coalescer;
  for (int i = 0; i < WakeCoalescer::kChoresMax; ++i) EXPECT_EQ(coalescer.add([] {}), i);
  const int extra = coalescer.add([] { FAIL() << "a chore beyond the limit was woken"; });
  EXPECT_EQ(extra, -1);
  coalescer.open_window(extra, Clock::now() - seconds(1));  // ignored
  coalescer.close_window(extra);
  coalescer.carry();
}

}  // namespace
}  // namespace chorus
