// Goal: the health verdict behind /health/live and /health/ready: a stuck core thread (no tick
// for longer than kCoreTickStaleMs), failed storage and shutdown are unhealthy with a reason;
// readiness also needs a caught-up state (Leader or Follower), not CatchingUp or PreLeader.
#include "worker/http/limits.hpp"
#include "worker/http/node_api.hpp"

#include <gtest/gtest.h>

namespace chorus::http {
namespace {

TEST(HttpHealth, LiveNeedsTickingCoreAndStorage) {
  EXPECT_EQ(health_problem(false, false, 10, ""), "");
  EXPECT_EQ(health_problem(false, false, kCoreTickStaleMs, ""), "");
  const std::string stuck = health_problem(false, false, kCoreTickStaleMs + 1, "");
  EXPECT_NE(stuck.find("core thread has not ticked for"), std::string::npos) << stuck;
  EXPECT_EQ(health_problem(false, true, 10, ""), "storage failed");
  EXPECT_EQ(health_problem(true, false, 10, ""), "shutting down");
}

TEST(HttpHealth, ReadyNeedsCaughtUpState) {
  EXPECT_EQ(health_problem(false, false, 10, "Leader"), "");
  EXPECT_EQ(health_problem(false, false, 10, "Follower"), "");
  for (const char* state : {"CatchingUp", "PreLeader", "Unknown", "Initializing"}) {
    const std::string problem = health_problem(false, false, 10, state);
    EXPECT_EQ(problem, std::string("not caught up (state ") + state + ")");
  }
  // A caught-up follower with a stuck core or failed storage is not ready either.
  EXPECT_NE(health_problem(false, false, kCoreTickStaleMs + 500, "Follower"), "");
  EXPECT_EQ(health_problem(false, true, 10, "Leader"), "storage failed");
}

}  // namespace
}  // namespace chorus::http
