// Goal: prove the manager's restart rules with fake time: the backoff sequence, the restart
// intensity limit (Failed), operator stop and start, clean exits, "restart me" exits, hung
// detection, and the SIGTERM-then-SIGKILL stop; next_due_ms() names the very millisecond at which
// tick() acts (the supervisor sleeps until then instead of ticking every 100 ms).
#include "manager/restart_policy.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <vector>

namespace chorus::manager {
namespace {

RestartLimits exact_limits() {
  RestartLimits l;
  l.jitter_fraction = 0;  // exact delays
  l.intensity_exits_max = 100;
  l.intensity_period_ms = 60000;
  return l;
}

ExitStatus killed(int sig) { return ExitStatus{std::nullopt, sig}; }
ExitStatus code(int c) { return ExitStatus{c, std::nullopt}; }

// Runs a node through: start, spawn, health, crash; returns the delay chosen.
struct Harness {
  explicit Harness(RestartLimits limits, uint64_t seed = 1) : policy(limits, seed) {}
  void run_until_spawn() {
    for (int i = 0; i < 100000 && policy.tick(now) != Action::kSpawn; ++i) now += 1;
    policy.spawned(now);
    policy.health_ok(now);
  }
  RestartPolicy policy;
  int64_t now = 1000;
};

TEST(RestartPolicy, StartsAtOnceAndIsRunningAfterHealth) {
  RestartPolicy p(exact_limits(), 1);
  EXPECT_EQ(p.state(), NodeState::kStopped);
  EXPECT_EQ(p.tick(0), Action::kNone);
  p.start(0);
  EXPECT_EQ(p.tick(0), Action::kSpawn);
  p.spawned(0);
  EXPECT_EQ(p.state(), NodeState::kStarting);
  p.health_ok(10);
  EXPECT_EQ(p.state(), NodeState::kRunning);
  EXPECT_EQ(p.tick(20), Action::kNone);
}

TEST(RestartPolicy, BackoffDoublesFrom100msTo10s) {
  Harness h(exact_limits());
  h.policy.start(h.now);
  h.run_until_spawn();
  std::vector<int64_t> delays;
  for (int i = 0; i < 10; ++i) {
    const auto verdict = h.policy.exited(h.now, killed(SIGKILL));
    EXPECT_EQ(verdict.next, NodeState::kBackoff);
    delays.push_back(verdict.delay_ms);
    EXPECT_EQ(h.policy.tick(h.now + verdict.delay_ms - 1), Action::kNone);
    h.now += verdict.delay_ms;
    h.run_until_spawn();
  }
  EXPECT_EQ(delays,
            (std::vector<int64_t>{100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000}));
  EXPECT_EQ(h.policy.restarts(), 10);
}

TEST(RestartPolicy, JitterStaysWithinItsFraction) {
  RestartLimits l = exact_limits();
  l.jitter_fraction = 0.2;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Harness h(l, seed);
    h.policy.start(h.now);
    h.run_until_spawn();
    const auto first = h.policy.exited(h.now, code(1));
    EXPECT_GE(first.delay_ms, 100);
    EXPECT_LE(first.delay_ms, 120);
  }
}

TEST(RestartPolicy, LongRunResetsTheBackoff) {
  Harness h(exact_limits());
  h.policy.start(h.now);
  h.run_until_spawn();
  h.now += 10;
  EXPECT_EQ(h.policy.exited(h.now, code(1)).delay_ms, 100);
  h.now += 100;
  h.run_until_spawn();
  EXPECT_EQ(h.policy.exited(h.now, code(1)).delay_ms, 200);
  h.now += 200;
  h.run_until_spawn();
  h.now += h.policy.limits().stable_after_ms;
  EXPECT_EQ(h.policy.exited(h.now, code(1)).delay_ms, 100);
}

TEST(RestartPolicy, FiveExitsWithinAMinuteMakeItFailedUntilStarted) {
  RestartLimits l = exact_limits();
  l.intensity_exits_max = 5;
  Harness h(l);
  h.policy.start(h.now);
  h.run_until_spawn();
  for (int i = 1; i <= 4; ++i) {
    const auto v = h.policy.exited(h.now, code(1));
    ASSERT_EQ(v.next, NodeState::kBackoff) << i;
    h.now += v.delay_ms;
    h.run_until_spawn();
  }
  const auto fifth = h.policy.exited(h.now, code(1));
  EXPECT_EQ(fifth.next, NodeState::kFailed);
  EXPECT_EQ(h.policy.state(), NodeState::kFailed);
  for (int64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(h.policy.tick(h.now + i * 1000), Action::kNone);
  }
  h.policy.start(h.now + 100000);  // the operator
  EXPECT_EQ(h.policy.tick(h.now + 100000), Action::kSpawn);
}

TEST(RestartPolicy, ExitsSpreadOverMoreThanThePeriodDoNotFail) {
  RestartLimits l = exact_limits();
  l.intensity_exits_max = 5;
  l.intensity_period_ms = 60000;
  Harness h(l);
  h.policy.start(h.now);
  h.run_until_spawn();
  for (int i = 0; i < 20; ++i) {
    h.now += 20000;  // one exit every 20 s: at most 4 within any 60 s
    const auto v = h.policy.exited(h.now, code(1));
    ASSERT_EQ(v.next, NodeState::kBackoff) << i;
    h.now += v.delay_ms;
    h.run_until_spawn();
  }
}

TEST(RestartPolicy, OperatorStopSendsTermThenKillAndStaysStopped) {
  RestartLimits l = exact_limits();
  l.stop_grace_ms = 5000;
  Harness h(l);
  h.policy.start(h.now);
  h.run_until_spawn();
  h.policy.stop(h.now);
  EXPECT_EQ(h.policy.state(), NodeState::kStopping);
  EXPECT_EQ(h.policy.tick(h.now), Action::kTerminate);
  EXPECT_EQ(h.policy.tick(h.now + 4999), Action::kNone);
  EXPECT_EQ(h.policy.tick(h.now + 5000), Action::kKill);
  EXPECT_EQ(h.policy.tick(h.now + 5001), Action::kNone);
  const auto v = h.policy.exited(h.now + 5010, killed(SIGKILL));
  EXPECT_EQ(v.next, NodeState::kStopped);
  for (int64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(h.policy.tick(h.now + 6000 + i * 1000), Action::kNone);
  }
  EXPECT_EQ(h.policy.restarts(), 0);
}

TEST(RestartPolicy, CleanExitStaysStoppedAndRestartMeIsRestartedAtOnce) {
  Harness h(exact_limits());
  h.policy.start(h.now);
  h.run_until_spawn();
  const auto restart_me = h.policy.exited(h.now, code(kRestartMeExitCode));
  EXPECT_EQ(restart_me.next, NodeState::kBackoff);
  EXPECT_EQ(restart_me.delay_ms, 0);
  EXPECT_EQ(h.policy.tick(h.now), Action::kSpawn);
  h.policy.spawned(h.now);
  const auto clean = h.policy.exited(h.now + 10, code(0));
  EXPECT_EQ(clean.next, NodeState::kStopped);
  EXPECT_EQ(h.policy.tick(h.now + 1000), Action::kNone);
}

TEST(RestartPolicy, SilentHealthWhileRunningIsKilledAndRestarted) {
  RestartLimits l = exact_limits();
  l.hung_after_ms = 3000;
  Harness h(l);
  h.policy.start(h.now);
  h.run_until_spawn();
  for (int i = 0; i < 10; ++i) {  // answering: fine
    h.now += 500;
    h.policy.health_ok(h.now);
    EXPECT_EQ(h.policy.tick(h.now), Action::kNone);
  }
  EXPECT_EQ(h.policy.tick(h.now + 3000), Action::kNone);
  EXPECT_EQ(h.policy.tick(h.now + 3001), Action::kKill);  // e.g. SIGSTOPped
  EXPECT_TRUE(h.policy.hung_kill_pending());
  EXPECT_EQ(h.policy.tick(h.now + 3002), Action::kNone);  // once
  const auto v = h.policy.exited(h.now + 3010, killed(SIGKILL));
  EXPECT_EQ(v.next, NodeState::kBackoff);
  EXPECT_NE(v.detail.find("health"), std::string::npos);
  EXPECT_EQ(h.policy.tick(h.now + 3010 + v.delay_ms), Action::kSpawn);
}

TEST(RestartPolicy, StartingNodeHasTheStartGraceBeforeItCountsAsHung) {
  RestartLimits l = exact_limits();
  l.hung_after_ms = 1000;
  l.start_grace_ms = 20000;
  RestartPolicy p(l, 1);
  p.start(0);
  ASSERT_EQ(p.tick(0), Action::kSpawn);
  p.spawned(0);
  EXPECT_EQ(p.tick(19999), Action::kNone);
  EXPECT_EQ(p.tick(20001), Action::kKill);
}

TEST(RestartPolicy, SpawnFailureCountsAsAnExit) {
  RestartLimits l = exact_limits();
  l.intensity_exits_max = 3;
  RestartPolicy p(l, 1);
  p.start(0);
  int64_t now = 0;
  NodeState last = NodeState::kStarting;
  for (int i = 0; i < 3; ++i) {
    while (p.tick(now) != Action::kSpawn) now += 1;
    last = p.spawn_failed(now, "no such file").next;
  }
  EXPECT_EQ(last, NodeState::kFailed);
}

// The supervisor sleeps until next_due_ms(): tick() must do nothing before it and act at it, in
// every state that waits for time.
TEST(RestartPolicy, NextDueIsTheFirstMomentTickActs) {
  RestartLimits l = exact_limits();
  l.hung_after_ms = 3000;
  l.start_grace_ms = 20000;
  l.stop_grace_ms = 5000;
  RestartPolicy p(l, 1);
  EXPECT_EQ(p.next_due_ms(0), std::nullopt);  // stopped: only an event changes anything
  p.start(100);
  EXPECT_EQ(p.next_due_ms(100), 100);  // a start is due at once
  ASSERT_EQ(p.tick(100), Action::kSpawn);
  p.spawned(100);
  ASSERT_EQ(p.next_due_ms(100), 100 + 20000 + 1);  // starting: the start grace
  EXPECT_EQ(p.tick(20100), Action::kNone);
  p.health_ok(1000);
  ASSERT_EQ(p.next_due_ms(1000), 1000 + 3000 + 1);  // running: the hung limit
  EXPECT_EQ(p.tick(4000), Action::kNone);
  EXPECT_EQ(p.tick(4001), Action::kKill);
  EXPECT_EQ(p.next_due_ms(4001), std::nullopt);  // killed: its exit is the next event
  const auto v = p.exited(4010, killed(SIGKILL));
  ASSERT_EQ(v.next, NodeState::kBackoff);
  ASSERT_EQ(p.next_due_ms(4010), 4010 + v.delay_ms);
  EXPECT_EQ(p.tick(4010 + v.delay_ms - 1), Action::kNone);
  EXPECT_EQ(p.tick(4010 + v.delay_ms), Action::kSpawn);
  p.spawned(5000);
  p.health_ok(5000);
  p.stop(6000);
  EXPECT_EQ(p.next_due_ms(6000), 6000);  // SIGTERM at once
  ASSERT_EQ(p.tick(6000), Action::kTerminate);
  ASSERT_EQ(p.next_due_ms(6000), 6000 + 5000);  // SIGKILL after the grace period
  EXPECT_EQ(p.tick(10999), Action::kNone);
  EXPECT_EQ(p.tick(11000), Action::kKill);
  EXPECT_EQ(p.next_due_ms(11000), std::nullopt);
  EXPECT_EQ(p.next_due_ms(999999), std::nullopt);
  p.exited(11010, killed(SIGKILL));
  EXPECT_EQ(p.next_due_ms(11010), std::nullopt);  // stopped by the operator
  EXPECT_EQ(p.next_due_ms(2000000), std::nullopt);
}

}  // namespace
}  // namespace chorus::manager
