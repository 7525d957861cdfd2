// Proves the built-in users' gate on its own: only admin and ops are held, a check held is
// resumed once when its login's gate opens (and later checks of that login pass straight on),
// refused once its deadline passed, refused at once beyond the waiters' limit, and refused at
// shutdown.
#include "worker/engine/builtin_user_gate.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace chorus {
namespace {

struct Outcomes {
  std::vector<bool> got;
  BuiltinUserGate::Resume record() {
    return [this](bool proceed) { got.push_back(proceed); };
  }
};

void run(std::vector<BuiltinUserGate::Resume> resumes, bool proceed) {
  for (auto& r : resumes) r(proceed);
}

TEST(BuiltinUserGate, OnlyTheBuiltInLoginsAreHeld) {
  BuiltinUserGate gate;
  EXPECT_FALSE(gate.open("admin"));
  EXPECT_FALSE(gate.open("ops"));
  EXPECT_TRUE(gate.open("alice"));
  EXPECT_TRUE(gate.open("Admin"));  // logins are exact: another user, never held
  EXPECT_TRUE(gate.open(""));
  EXPECT_EQ(BuiltinUserGate::login_at(*BuiltinUserGate::index_of("ops")), "ops");
}

TEST(BuiltinUserGate, OpeningResumesTheHeldChecksOfThatLoginOnly) {
  BuiltinUserGate gate;
  Outcomes admin, ops;
  const size_t a = *BuiltinUserGate::index_of("admin");
  const size_t o = *BuiltinUserGate::index_of("ops");
  ASSERT_TRUE(gate.hold(a, 0, admin.record()));
  ASSERT_TRUE(gate.hold(a, 10, admin.record()));
  ASSERT_TRUE(gate.hold(o, 20, ops.record()));
  run(gate.open_now(a), true);
  EXPECT_EQ(admin.got, (std::vector<bool>{true, true}));
  EXPECT_TRUE(ops.got.empty());
  EXPECT_TRUE(gate.open("admin"));
  EXPECT_FALSE(gate.open("ops"));
  EXPECT_TRUE(gate.waiting(o));
  EXPECT_EQ(gate.next_deadline_ms(), 20 + kBuiltinUserWaitMs);
}

TEST(BuiltinUserGate, AHeldCheckIsRefusedAtItsDeadline) {
  BuiltinUserGate gate;
  Outcomes first, second;
  ASSERT_TRUE(gate.hold(0, 0, first.record()));
  ASSERT_TRUE(gate.hold(0, 100, second.record()));
  EXPECT_EQ(gate.next_deadline_ms(), kBuiltinUserWaitMs);
  EXPECT_TRUE(gate.expire(kBuiltinUserWaitMs - 1).empty());
  run(gate.expire(kBuiltinUserWaitMs), false);
  EXPECT_EQ(first.got, std::vector<bool>{false});
  EXPECT_TRUE(second.got.empty());
  EXPECT_EQ(gate.next_deadline_ms(), 100 + kBuiltinUserWaitMs);
  EXPECT_FALSE(gate.open("admin"));  // a deadline never opens the gate
  run(gate.expire(100 + kBuiltinUserWaitMs), false);
  EXPECT_EQ(second.got, std::vector<bool>{false});
  EXPECT_FALSE(gate.any_waiting());
  EXPECT_FALSE(gate.next_deadline_ms());
}

TEST(BuiltinUserGate, BeyondItsLimitACheckIsRefusedAtOnce) {
  BuiltinUserGate gate;
  Outcomes held;
  for (size_t i = 0; i < kBuiltinUserWaitersMax; ++i) {
    ASSERT_TRUE(gate.hold(i % BuiltinUserGate::kLogins, 0, held.record()));
  }
  EXPECT_FALSE(gate.hold(0, 0, held.record()));
  EXPECT_FALSE(gate.hold(1, 0, held.record()));
  run(gate.open_now(0), true);  // room again
  EXPECT_TRUE(gate.hold(1, 0, held.record()));
}

TEST(BuiltinUserGate, ShutdownRefusesEveryHeldCheck) {
  BuiltinUserGate gate;
  Outcomes held;
  ASSERT_TRUE(gate.hold(0, 0, held.record()));
  ASSERT_TRUE(gate.hold(1, 0, held.record()));
  run(gate.take_all(), false);
  EXPECT_EQ(held.got, (std::vector<bool>{false, false}));
  EXPECT_FALSE(gate.any_waiting());
  EXPECT_FALSE(gate.open("admin"));
}

}  // namespace
}  // namespace chorus
