// Proves the replication core's voter rule (issue 10, "only configured members vote or count
// toward a quorum"): a node outside the voter set cannot make a candidate win with its votes or
// pre-votes, cannot commit a leader's entries with its acks, cannot subscribe, and cannot take a
// follower over with an Append of a newer epoch; each such message is counted as dropped. A
// voter removed from the set loses its progress, and one added later is sent to at once.
#include "worker/replication/core.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

namespace chorus::replication {
namespace {

const NodeId kSelf = "1f0c3f1e-0000-4000-8000-000000000001";
const NodeId kVoterA = "1f0c3f1e-0000-4000-8000-00000000000a";
const NodeId kVoterB = "1f0c3f1e-0000-4000-8000-00000000000b";
const NodeId kOutsider = "1f0c3f1e-0000-4000-8000-0000000000ff";

struct Log : LogReader {
  std::vector<Entry> entries;
  std::vector<Entry> read(int64_t from, size_t) override {
    std::vector<Entry> out;
    for (const auto& e : entries) {
      if (e.position >= from) out.push_back(e);
    }
    return out;
  }
};

class VoterRule : public ::testing::Test {
 protected:
  VoterRule() {
    Config c;
    c.self = kSelf;
    c.cluster_size = 3;
    c.seed = 42;
    core = std::make_unique<Core>(c, InitialState{}, log);
    core->set_voters({kVoterA, kVoterB});
  }
  // Ticks until the node sends a (pre-)vote request; returns that Ready's messages.
  std::vector<Message> tick_until_campaign() {
    for (int t = 0; t < 1000; ++t) {
      core->tick();
      Ready r = core->ready();
      take(r);
      const bool asks = std::any_of(r.messages.begin(), r.messages.end(), [](const Message& m) {
        return std::holds_alternative<VoteRequest>(m.body);
      });
      if (asks) return r.messages;
    }
    ADD_FAILURE() << "no campaign within 1000 ticks";
    return {};
  }
  void take(const Ready& r) {
    for (const auto& e : r.append) log.entries.push_back(e);
    if (!r.append.empty()) core->durable(r.append.back().end);
  }
  Ready step(const NodeId& from, Body body) {
    core->step(Message{from, kSelf, std::move(body)});
    Ready r = core->ready();
    take(r);
    return r;
  }
  // Elects this node with the voters' (real) votes.
  void elect() {
    auto asks = tick_until_campaign();
    ASSERT_FALSE(asks.empty());
    const int64_t pre_epoch = std::get<VoteRequest>(asks.front().body).epoch;
    step(kVoterA, VoteResponse{pre_epoch, true, true});
    ASSERT_EQ(core->role(), Role::Candidate);
    step(kVoterA, VoteResponse{core->epoch(), true, false});
    ASSERT_EQ(core->role(), Role::Leader);
  }

  Log log;
  std::unique_ptr<Core> core;
};

TEST_F(VoterRule, OutsiderVotesDoNotElect) {
  const auto asks = tick_until_campaign();
  ASSERT_FALSE(asks.empty());
  for (const auto& m : asks) EXPECT_NE(m.to, kOutsider) << "a non-voter is never asked";
  const int64_t pre_epoch = std::get<VoteRequest>(asks.front().body).epoch;
  step(kOutsider, VoteResponse{pre_epoch, true, true});
  EXPECT_EQ(core->role(), Role::Follower) << "an outsider's pre-vote does not start an election";
  EXPECT_EQ(core->epoch(), 0);
  // A voter's pre-vote does: the node becomes candidate; the outsider's real vote is ignored.
  step(kVoterA, VoteResponse{pre_epoch, true, true});
  ASSERT_EQ(core->role(), Role::Candidate);
  step(kOutsider, VoteResponse{core->epoch(), true, false});
  EXPECT_EQ(core->role(), Role::Candidate) << "an outsider's vote does not make a leader";
  EXPECT_EQ(core->messages_from_non_voters(), 2);
  step(kVoterB, VoteResponse{core->epoch(), true, false});
  EXPECT_EQ(core->role(), Role::Leader);
}

TEST_F(VoterRule, OutsiderAcksDoNotCommit) {
  elect();
  const int64_t epoch = core->epoch();
  // The outsider subscribes and acks everything: refused, so nothing commits beyond the leader.
  step(kOutsider, Subscribe{epoch, 0, {}, 9});
  const auto entries = core->propose({"x", "y"});
  ASSERT_TRUE(entries);
  Ready r = core->ready();
  take(r);
  for (const auto& m : r.messages) EXPECT_NE(m.to, kOutsider);
  const int64_t end = entries->back().end;
  step(kOutsider, AppendAck{epoch, end, end, 9});
  EXPECT_EQ(core->commit_end(), 0) << "only the leader and an outsider hold the entries";
  EXPECT_TRUE(core->follower_durable_ends().count(kOutsider) == 0);
  EXPECT_EQ(core->messages_from_non_voters(), 2);
  // A voter's acks (after it synced) commit.
  const auto synced = step(kVoterA, Subscribe{epoch, 0, {}, 5});
  ASSERT_FALSE(synced.messages.empty());
  step(kVoterA, AppendAck{epoch, end, end, 5});
  EXPECT_EQ(core->commit_end(), end);
}

TEST_F(VoterRule, OutsiderAppendDoesNotTakeOver) {
  step(kOutsider, Append{7, 0, true, {}, 0, 1});
  EXPECT_EQ(core->epoch(), 0) << "a newer epoch from an outsider is not adopted";
  EXPECT_FALSE(core->leader().has_value());
  step(kOutsider, VoteRequest{7, 7, 1 << 20, 0, false});
  EXPECT_EQ(core->epoch(), 0);
  EXPECT_TRUE(core->ready().messages.empty()) << "no answer to an outsider";
  EXPECT_EQ(core->messages_from_non_voters(), 2);
}

TEST_F(VoterRule, RemovedVoterLosesProgressAndAddedVoterIsSentTo) {
  elect();
  step(kVoterA, Subscribe{core->epoch(), 0, {}, 5});
  ASSERT_EQ(core->follower_durable_ends().count(kVoterA), 1u);
  core->set_voters({kVoterB});
  EXPECT_EQ(core->follower_durable_ends().count(kVoterA), 0u);
  EXPECT_EQ(core->voters().size(), 1u);
  step(kVoterA, AppendAck{core->epoch(), 1 << 20, 1 << 20, 5});
  EXPECT_EQ(core->messages_from_non_voters(), 1);
  core->set_voters({kVoterB, kVoterA, kSelf});  // self is never its own peer
  EXPECT_EQ(core->voters().size(), 2u);
  const Ready r = core->ready();
  const bool told = std::any_of(r.messages.begin(), r.messages.end(), [](const Message& m) {
    return m.to == kVoterA && std::holds_alternative<Append>(m.body);
  });
  EXPECT_TRUE(told) << "a leader tells a new voter who leads at once";
}

}  // namespace
}  // namespace chorus::replication
