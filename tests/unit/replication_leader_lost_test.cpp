// Proves Core::peer_lost: followers told that their leader's connection closed elect a new leader
// within a few ticks (without it, not before the election timeout), while a follower whose link
// alone broke cannot depose a leader that still reaches the others, and follows it again.
#include "worker/replication/core.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>

namespace chorus::replication {
namespace {

// Three cores with perfect delivery and storage that is durable at once.
class Trio : public LogReader {
 public:
  Trio() {
    for (int i = 0; i < 3; ++i) ids_.push_back("n" + std::to_string(i));
    for (int i = 0; i < 3; ++i) {
      Config c;
      c.self = ids_[static_cast<size_t>(i)];
      c.cluster_size = 3;
      c.seed = static_cast<uint64_t>(i + 1) * 104729;
      cores_[i] = std::make_unique<Core>(c, InitialState{}, *this);
      cores_[i]->set_voters(ids_);
    }
  }
  std::vector<Entry> read(int64_t, size_t) override { return {}; }  // everything is buffered

  void process(int i) {
    for (auto r = cores_[i]->ready(); !r.empty(); r = cores_[i]->ready()) {
      if (!r.append.empty()) cores_[i]->durable(r.append.back().end);
      for (auto& m : r.messages) inflight_.push_back(m);
    }
  }
  void deliver() {
    while (!inflight_.empty()) {
      const Message m = inflight_.front();
      inflight_.pop_front();
      for (auto& [i, core] : cores_) {
        if (core && core->self() == m.to) {
          core->step(m);
          process(i);
        }
      }
    }
  }
  void tick() {
    for (auto& [i, core] : cores_) {
      if (!core) continue;
      core->tick();
      process(i);
    }
    deliver();
  }
  // Ticks until exactly one live core leads; the ticks it took, or -1 after `ticks_max`.
  int ticks_until_leader(int ticks_max) {
    for (int t = 1; t <= ticks_max; ++t) {
      tick();
      if (leader() >= 0) return t;
    }
    return -1;
  }
  int leader() {
    int found = -1, count = 0;
    for (auto& [i, core] : cores_) {
      if (core && core->role() == Role::Leader) found = i, ++count;
    }
    return count == 1 ? found : -1;
  }
  void kill(int i) {
    cores_[i].reset();
    std::erase_if(inflight_,
                  [&](const Message& m) { return m.to == ids_[static_cast<size_t>(i)]; });
  }
  void lost(int at, int peer) {
    cores_[at]->peer_lost(ids_[static_cast<size_t>(peer)]);
    process(at);
    deliver();
  }
  Core& core(int i) { return *cores_[i]; }
  const NodeId& id(int i) const { return ids_[static_cast<size_t>(i)]; }

 private:
  std::vector<NodeId> ids_;
  std::map<int, std::unique_ptr<Core>> cores_;
  std::deque<Message> inflight_;
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
