// Scripted scenarios on the simulator (no random faults), each proving one failover behaviour of
// the replication core end to end while every simulator invariant is checked after each event:
// a one-way partitioned leader is replaced, a divergent suffix is truncated, a wiped node catches
// up from position 0, and a minority never elects a leader nor acknowledges a write.
#include "tests/sim/sim.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace chorus::sim {
namespace {

constexpr int kSettleTicks = 1000;  // 10 s simulated: ample for an election without faults

Options scripted(uint64_t seed, int nodes = 3) {
  Options o;
  o.seed = seed;
  o.nodes = nodes;
  o.faults = false;
  o.trace_tail = 60;
  return o;
}

std::string tail(const Simulation& sim) {
  std::string out = sim.result().failure + "\n";
  for (const auto& line : sim.result().trace_tail) out += line + "\n";
  return out;
}

// Waits for a leader that a majority follows, then commits `count` writes through it.
int elect_and_commit(Simulation& sim, int count) {
  EXPECT_TRUE(sim.run_until(kSettleTicks, [&] { return sim.leader() >= 0; })) << tail(sim);
  const int leader = sim.leader();
  if (leader < 0) return -1;
  const int64_t end = sim.propose(leader, count);
  EXPECT_GT(end, 0);
  EXPECT_TRUE(sim.run_until(kSettleTicks, [&] { return sim.commit_end(leader) >= end; }))
      << tail(sim);
  return leader;
}

bool holds_payload(const std::vector<replication::Entry>& log, const std::string& payload) {
  return std::any_of(log.begin(), log.end(),
                     [&](const replication::Entry& e) { return e.payload == payload; });
}

TEST(Sim, LeaderThatHearsNothingStepsDownAndANewLeaderCommits) {
  Simulation sim(scripted(11));
  const int old_leader = elect_and_commit(sim, 3);
  ASSERT_GE(old_leader, 0);
  for (int other = 0; other < 3; ++other) {
    if (other != old_leader) sim.cut(other, old_leader);  // it still sends, hears nothing
  }
  ASSERT_TRUE(sim.run_until(kSettleTicks, [&] {
    return sim.core(old_leader).role() != replication::Role::Leader;
  })) << tail(sim);
  int new_leader = -1;
  int64_t end = -1;
  // The old leader keeps campaigning (its VoteRequests still get out), so a write may need a few
  // attempts; it must commit on the two connected nodes well within the deadline.
  ASSERT_TRUE(sim.run_until(3 * kSettleTicks, [&] {
    const int l = sim.leader();
    if (l >= 0 && l != old_leader && (l != new_leader || end < 0)) {
      new_leader = l;
      end = sim.propose(l, 2);
    }
    return new_leader >= 0 && end > 0 && sim.commit_end(new_leader) >= end;
  })) << tail(sim);
  EXPECT_TRUE(sim.ok()) << tail(sim);
}

TEST(Sim, LeaderThatCannotSendIsReplacedAndStepsDown) {
  Simulation sim(scripted(12));
  const int old_leader = elect_and_commit(sim, 3);
  ASSERT_GE(old_leader, 0);
  for (int other = 0; other < 3; ++other) {
    if (other != old_leader) sim.cut(old_leader, other);
  }
  int new_leader = -1;
  ASSERT_TRUE(sim.run_until(kSettleTicks, [&] {
    new_leader = sim.leader();
    return new_leader >= 0 && new_leader != old_leader;
  })) << tail(sim);
  const int64_t end = sim.propose(new_leader, 2);
  ASSERT_GT(end, 0);
  ASSERT_TRUE(sim.run_until(kSettleTicks, [&] { return sim.commit_end(new_leader) >= end; }))
      << tail(sim);
  EXPECT_NE(sim.core(old_leader).role(), replication::Role::Leader);
  EXPECT_TRUE(sim.ok()) << tail(sim);
}

TEST(Sim, FollowerWithDivergentUncommittedSuffixTruncatesIt) {
  Simulation sim(scripted(21));
  const int old_leader = elect_and_commit(sim, 2);
  ASSERT_GE(old_leader, 0);
  sim.isolate(old_leader);
  const int64_t before = sim.log(old_leader).back().end;
  ASSERT_GT(sim.propose(old_leader, 3), 0);  // it still leads for a while: written, never sent
  ASSERT_TRUE(sim.run_ticks(10));            // and durable on the old leader
  std::vector<std::string> lost;
  for (const auto& e : sim.log(old_leader)) {
    if (e.position >= before) lost.push_back(e.payload);
  }
  ASSERT_EQ(lost.size(), 3u);
  int new_leader = -1;
  ASSERT_TRUE(sim.run_until(kSettleTicks, [&] {
    new_leader = sim.leader();
    return new_leader >= 0 && new_leader != old_leader;
  })) << tail(sim);
  const int64_t kept_end = sim.propose(new_leader, 2);
  ASSERT_TRUE(sim.run_until(kSettleTicks, [&] { return sim.commit_end(new_leader) >= kept_end; }));
  sim.heal();
  ASSERT_TRUE(sim.run_until(3 * kSettleTicks, [&] {
    const int64_t target = sim.committed().back().end;
    for (int i = 0; i < 3; ++i) {
      if (sim.commit_end(i) < target) return false;
    }
    return true;
  })) << tail(sim);
  EXPECT_GT(sim.truncations(old_leader), 0);
  for (const auto& payload : lost) {
    EXPECT_FALSE(holds_payload(sim.log(old_leader), payload)) << payload;
    EXPECT_FALSE(holds_payload(sim.committed(), payload)) << payload;
  }
  EXPECT_TRUE(sim.ok()) << tail(sim);
}

TEST(Sim, WipedNodeCatchesUpFromPositionZero) {
  Options options = scripted(31);
  options.small_buffers = true;  // the leader must read old entries back from storage
  Simulation sim(options);
  const int leader = elect_and_commit(sim, 3);
  ASSERT_GE(leader, 0);
  for (int batch = 0; batch < 20; ++batch) {
    const int64_t end = sim.propose(leader, 3);
    ASSERT_TRUE(sim.run_until(kSettleTicks, [&] { return sim.commit_end(leader) >= end; }));
  }
  const int wiped = (leader + 1) % 3;
  sim.crash(wiped);
  sim.wipe(wiped);
  ASSERT_TRUE(sim.log(wiped).empty());
  sim.restart(wiped);
  const int64_t target = sim.commit_end(leader);
  ASSERT_TRUE(sim.run_until(kSettleTicks, [&] { return sim.commit_end(wiped) >= target; }))
      << tail(sim);
  const auto& log = sim.log(wiped);
  ASSERT_GE(log.size(), 60u);
  for (size_t i = 0; i < log.size() && i < sim.committed().size(); ++i) {
    EXPECT_EQ(log[i], sim.committed()[i]) << "entry " << i;
  }
  EXPECT_GT(sim.result().stats.reader_reads, 0);
  EXPECT_TRUE(sim.ok()) << tail(sim);
}

TEST(Sim, LoneNodeOfThreeNeverLeads) {
  Simulation sim(scripted(41));
  sim.crash(1);
  sim.crash(2);
  for (int t = 0; t < 3000; ++t) {
    ASSERT_TRUE(sim.run_ticks(1)) << tail(sim);
    ASSERT_EQ(sim.leader_count(), 0) << "tick " << t;
  }
  EXPECT_EQ(sim.commit_end(0), 0);
  EXPECT_EQ(sim.propose(0, 1), -1);
}

TEST(Sim, LeaderThatLosesItsMajorityAcknowledgesNothing) {
  Simulation sim(scripted(42));
  const int leader = elect_and_commit(sim, 2);
  ASSERT_GE(leader, 0);
  const size_t acked = sim.acked().size();
  sim.crash((leader + 1) % 3);
  sim.crash((leader + 2) % 3);
  ASSERT_GT(sim.propose(leader, 3), 0);  // still leader for now: accepted, never acknowledged
  for (int t = 0; t < 3000; ++t) {
    ASSERT_TRUE(sim.run_ticks(1)) << tail(sim);
    if (t > 2 * kElectionTicksMax) {
      ASSERT_EQ(sim.leader_count(), 0) << "tick " << t;
    }
  }
  EXPECT_EQ(sim.acked().size(), acked);
}

}  // namespace
}  // namespace chorus::sim
