// Proves Core::peer_lost: followers told that their leader's connection closed elect a new leader
// within a few ticks (without it, not before the election timeout), while a follower whose link
// alone broke cannot depose a leader that still reaches the others, and follows it again.
#include "tests/unit/replication_trio.hpp"
#include "worker/replication/core.hpp"

#include <gtest/gtest.h>

namespace chorus::replication {
namespace {

// Each test's cores are seeded as its expectations were written for.
class Trio : public test_support::Trio {
 public:
  Trio() : test_support::Trio(104729) {}
};

// The election timeout is 30 to 60 ticks (Config defaults); the first one waits 60 more.
constexpr int kElectionTicksMin = 30;

TEST(ReplicationLeaderLost, SurvivorsToldOfTheLossElectWithinAFewTicks) {
  Trio trio;
  ASSERT_GT(trio.ticks_until_leader(500), 0);
  const int old = trio.leader();
  const int64_t epoch = trio.core(old).epoch();
  const int a = old == 0 ? 1 : 0, b = 3 - old - a;
  const int64_t campaigns = trio.core(a).elections_started() + trio.core(b).elections_started();
  trio.kill(old);
  trio.lost(a, old);
  trio.lost(b, old);
  const int ticks = trio.ticks_until_leader(kElectionTicksMin);
  ASSERT_GT(ticks, 0) << "no new leader within the election timeout";
  EXPECT_LE(ticks, 10);
  EXPECT_GT(trio.core(trio.leader()).epoch(), epoch);
  EXPECT_EQ(trio.core(a).elections_started() + trio.core(b).elections_started(), campaigns + 1)
      << "one campaign, no split vote";
}

TEST(ReplicationLeaderLost, WithoutTheNoticeSurvivorsWaitForTheElectionTimeout) {
  Trio trio;
  ASSERT_GT(trio.ticks_until_leader(500), 0);
  const int old = trio.leader();
  trio.kill(old);
  EXPECT_EQ(trio.ticks_until_leader(kElectionTicksMin - 1), -1);
}

TEST(ReplicationLeaderLost, ABrokenLinkAloneDoesNotDeposeALiveLeader) {
  Trio trio;
  ASSERT_GT(trio.ticks_until_leader(500), 0);
  const int leader = trio.leader();
  const int64_t epoch = trio.core(leader).epoch();
  const int follower = leader == 0 ? 1 : 0;
  const int other = 3 - leader - follower;
  trio.lost(follower, other);  // not its leader: nothing changes
  EXPECT_EQ(trio.core(follower).leader(), trio.id(leader));
  trio.lost(follower, leader);
  EXPECT_FALSE(trio.core(follower).leader().has_value());
  for (int t = 0; t < 200; ++t) trio.tick();
  EXPECT_EQ(trio.leader(), leader);
  EXPECT_EQ(trio.core(leader).epoch(), epoch);
  EXPECT_EQ(trio.core(follower).leader(), trio.id(leader));
  EXPECT_EQ(trio.core(other).leader(), trio.id(leader));
}

}  // namespace
}  // namespace chorus::replication
