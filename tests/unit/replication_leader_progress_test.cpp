// Proves Core::leader_progress: while a large Append is still arriving (its connection holds up
// the heartbeats behind it for longer than the election timeout), followers told that their
// leader's bytes are arriving keep that leader, stay synced and take the entry when it is in;
// the leader, hearing their contact-only acks, keeps leading. Without the notices the same hold
// costs an election (the fault this guards against). The notice counts only from the current
// leader in the current epoch, and a leader that freezes mid-message is still replaced within
// the election timeout after its last bytes.
#include "tests/unit/replication_trio.hpp"
#include "worker/replication/core.hpp"

#include <gtest/gtest.h>

namespace chorus::replication {
namespace {

// Each test's cores are seeded as its expectations were written for.
class Trio : public test_support::Trio {
 public:
  Trio() : test_support::Trio(7919) {}
};

// Config defaults: heartbeat every 5 ticks, election timeout 30 to 60 ticks. A hold of twice the
// longest timeout would cost an election every time without the notices.
constexpr int kElectionTicksMax = 60;
constexpr int kHoldTicks = 2 * kElectionTicksMax;
// A follower's reads of a large message come about this often (a few ticks apart).
constexpr int kProgressEveryTicks = 3;

struct Elected {
  int leader, a, b;
  int64_t epoch;
};
Elected elect(Trio& trio) {
  EXPECT_GT(trio.ticks_until_leader(500), 0);
  const int leader = trio.leader();
  // Settle: the followers synced, the epoch record committed.
  for (int t = 0; t < 20; ++t) trio.tick();
  const int a = leader == 0 ? 1 : 0;
  return Elected{leader, a, 3 - leader - a, trio.core(leader).epoch()};
}

// Proposes one entry and holds it (and all behind it) from both followers for kHoldTicks,
// while `notify` tells each follower every few ticks that bytes from `from` (last Append of
// `epoch`) arrive. Returns the entry's end.
int64_t hold_large_append(Trio& trio, const Elected& e, bool notify, int from, int64_t epoch) {
  const auto proposed = trio.core(e.leader).propose({std::string(4096, 'x')});
  EXPECT_TRUE(proposed.has_value());
  trio.hold(e.leader, e.a);
  trio.hold(e.leader, e.b);
  for (int t = 1; t <= kHoldTicks; ++t) {
    trio.tick();
    if (notify && t % kProgressEveryTicks == 0) {
      trio.progress(e.a, from, epoch);
      trio.progress(e.b, from, epoch);
    }
  }
  trio.release(e.leader, e.a);
  trio.release(e.leader, e.b);
  for (int t = 0; t < 10; ++t) trio.tick();
  return proposed->back().end;
}

TEST(ReplicationLeaderProgress, WithoutNoticesALongAppendCostsAnElection) {
  Trio trio;
  const Elected e = elect(trio);
  const int64_t campaigns = trio.campaigns();
  hold_large_append(trio, e, /*notify=*/false, e.leader, e.epoch);
  EXPECT_GT(trio.campaigns(), campaigns);
  EXPECT_GT(trio.core(e.a).epoch(), e.epoch);
}

TEST(ReplicationLeaderProgress, NoticesKeepTheLeaderAndTheFollowersSynced) {
  Trio trio;
  const Elected e = elect(trio);
  const int64_t campaigns = trio.campaigns();
  const int subscribes = trio.subscribes();
  const int64_t end = hold_large_append(trio, e, /*notify=*/true, e.leader, e.epoch);
  EXPECT_EQ(trio.campaigns(), campaigns) << "a follower campaigned";
  EXPECT_EQ(trio.leader(), e.leader);
  EXPECT_EQ(trio.core(e.leader).epoch(), e.epoch);
  EXPECT_EQ(trio.subscribes(), subscribes) << "a follower resynced (the entry would be resent)";
  for (int i : {e.leader, e.a, e.b}) {
    EXPECT_EQ(trio.core(i).epoch(), e.epoch);
    EXPECT_GE(trio.core(i).commit_end(), end) << "node " << i;
  }
}

TEST(ReplicationLeaderProgress, NoticesOfAnotherNodeOrEpochChangeNothing) {
  {
    Trio trio;
    const Elected e = elect(trio);
    const int64_t campaigns = trio.campaigns();
    hold_large_append(trio, e, /*notify=*/true, e.leader, e.epoch - 1);  // a stale epoch
    EXPECT_GT(trio.campaigns(), campaigns);
  }
  {
    Trio trio;
    const Elected e = elect(trio);
    const int64_t campaigns = trio.campaigns();
    // Each follower hears of bytes from the other follower, which is not its leader.
    const auto proposed = trio.core(e.leader).propose({std::string(4096, 'x')});
    ASSERT_TRUE(proposed.has_value());
    trio.hold(e.leader, e.a);
    trio.hold(e.leader, e.b);
    for (int t = 1; t <= kHoldTicks; ++t) {
      trio.tick();
      if (t % kProgressEveryTicks == 0) {
        trio.progress(e.a, e.b, e.epoch);
        trio.progress(e.b, e.a, e.epoch);
      }
    }
    EXPECT_GT(trio.campaigns(), campaigns);
  }
}

TEST(ReplicationLeaderProgress, ALeaderFrozenMidMessageIsReplacedWithinTheElectionTimeout) {
  Trio trio;
  const Elected e = elect(trio);
  trio.core(e.leader).propose({std::string(4096, 'x')});
  trio.hold(e.leader, e.a);
  trio.hold(e.leader, e.b);
  for (int t = 1; t <= kHoldTicks; ++t) {
    trio.tick();
    if (t % kProgressEveryTicks == 0) {
      trio.progress(e.a, e.leader, e.epoch);
      trio.progress(e.b, e.leader, e.epoch);
    }
  }
  // The leader freezes: its bytes stop, and its connections stay open (no peer_lost notice).
  trio.freeze(e.leader);
  trio.release(e.leader, e.a);
  trio.release(e.leader, e.b);
  int ticks = -1;
  for (int t = 1; t <= 3 * kElectionTicksMax; ++t) {
    trio.tick();
    if (trio.core(e.a).role() == Role::Leader || trio.core(e.b).role() == Role::Leader) {
      ticks = t;
      break;
    }
  }
  ASSERT_GT(ticks, 0) << "no new leader";
  // The last notice came at most kProgressEveryTicks before the freeze; then the timeout (at
  // most 60 ticks) and the pre-vote and vote round trips (delivered within the tick).
  EXPECT_LE(ticks, kElectionTicksMax + 2);
}

}  // namespace
}  // namespace chorus::replication
