// A follower's storage writer acknowledges a batch to the leader itself, and holds its durable
// notice back from the core thread until the core's next input, unless an announced commit waits
// on it (worker/engine/replication_runtime.hpp). Proves that neither way leaves a committed write
// unseen on a follower: with the leader's bare heartbeats dropped and the core's idle wake a
// minute away, only a write's own Append and its commit notice reach the followers, and each of
// many writes, made one at a time, becomes visible on both followers (what a write forwarded
// through a follower waits for before it is answered) long before the next thing that would wake
// a follower, its election timeout. The leader holds its own durable notices too while its
// followers' acks are what a commit waits for: with its disk slower than theirs, each write is
// still answered long before the leader's next tick would take a notice held by mistake.
#include "tests/unit/engine_trio.hpp"
#include "worker/engine/engine.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <variant>

namespace chorus {
namespace {

using namespace std::chrono_literals;
using test::Trio;

const Principal kAdmin{"admin", {"$admins"}};
// Far below the next thing that wakes a follower without heartbeats: its check for a silent
// leader, three heartbeat periods after the last Append, and its election timeout.
constexpr auto kVisibleWithin = 1000ms;
constexpr int kHeartbeatMs = 700;
constexpr int kElectionMinMs = 2500;
constexpr int kWrites = 40;

WriteResult append_one(Engine& engine, const std::string& stream) {
  std::promise<WriteResult> p;
  auto f = p.get_future();
  engine.append(kAdmin, stream, kExpectedAny,
                {NewEvent{random_guid(), "Tested", true, false, R"({"n":1})", ""}},
                [&p](WriteResult r) { p.set_value(r); });
  EXPECT_EQ(f.wait_for(test::kTrioDeadline), std::future_status::ready) << "no answer";
  return f.get();
}

// Whether everything before `end` became visible on `engine` within `within`.
bool visible_within(Engine& engine, int64_t end, std::chrono::milliseconds within) {
  auto p = std::make_shared<std::promise<bool>>();
  auto f = p->get_future();
  engine.when_visible(end, [p](bool visible) { p->set_value(visible); });
  return f.wait_for(within) == std::future_status::ready && f.get();
}

// Drops the leader's Appends that carry nothing new for their follower: no entries and no
// commit position beyond the last one delivered to it (heartbeats). Commit notices pass.
class HeartbeatFilter {
 public:
  bool drop(const replication::Message& m) {
    const auto* append = std::get_if<replication::Append>(&m.body);
    if (append == nullptr || !append->entries.empty() || append->sync) return false;
    std::lock_guard lock(mutex_);
    int64_t& delivered = commit_delivered_[m.to];
    if (append->commit_end <= delivered) return true;
    delivered = append->commit_end;
    return false;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, int64_t> commit_delivered_;
};

TEST(FollowerVisibility, EachCommittedWriteIsVisibleOnBothFollowersWithoutAHeartbeat) {
  Trio trio(true, [](EngineConfig& c) {
    c.cluster.heartbeat_ms = kHeartbeatMs;
    c.cluster.election_timeout_ms_min = kElectionMinMs;
    c.cluster.election_timeout_ms_max = kElectionMinMs + 500;
    c.cluster.idle_wake_ms = 60'000;
  });
  const int leader = trio.leader();
  ASSERT_GE(leader, 0);
  const int followers[] = {(leader + 1) % 3, (leader + 2) % 3};
  // The cluster settled (the leader's own first writes visible everywhere) before the filter.
  const WriteResult first = append_one(trio[leader], "visibility");
  ASSERT_EQ(first.result, OperationResult::Success) << first.message;
  for (int f : followers) {
    ASSERT_TRUE(visible_within(trio[f], first.position.commit, test::kTrioDeadline));
  }

  auto filter = std::make_shared<HeartbeatFilter>();
  trio.network().set_drop([filter](const replication::Message& m) { return filter->drop(m); });
  for (int i = 0; i < kWrites; ++i) {
    const WriteResult r = append_one(trio[leader], "visibility");
    ASSERT_EQ(r.result, OperationResult::Success) << "write " << i << ": " << r.message;
    for (int f : followers) {
      EXPECT_TRUE(visible_within(trio[f], r.position.commit, kVisibleWithin))
          << "write " << i << " (commit position " << r.position.commit << ") not visible on "
          << trio.id(f) << " within " << kVisibleWithin.count() << " ms";
    }
    ASSERT_TRUE(trio[leader].is_leader()) << "the leader changed: the test's premise is gone";
  }
  trio.network().set_drop(nullptr);
}

// The leader on disk, its followers in memory: both followers' acks arrive before the leader's
// own durable notice, which then is what each commit, and its answer, waits for. Ticks are
// 1.5 s apart, so a notice held until the next tick would show as a write answered after 1 s.
TEST(FollowerVisibility, ALeaderOnTheSlowestDiskAnswersEachWriteWithoutWaitingForATick) {
  constexpr auto kAnsweredWithin = 1000ms;
  constexpr int kSlowHeartbeatMs = 1500;
  Trio trio(true, [](EngineConfig& c) {
    const bool first = c.cluster.node_id == "n1";
    c.in_memory = !first;
    c.cluster.heartbeat_ms = kSlowHeartbeatMs;
    // n1 times out first and leads; a follower's check for a silent leader (three heartbeat
    // periods) comes before its own election timeout.
    c.cluster.election_timeout_ms_min = first ? 1000 : 5000;
    c.cluster.election_timeout_ms_max = first ? 1100 : 5500;
    c.cluster.idle_wake_ms = 60'000;
  });
  ASSERT_EQ(trio.leader(), 0) << "the premise: the node on disk leads";
  for (int i = 0; i < kWrites; ++i) {
    const auto started = std::chrono::steady_clock::now();
    const WriteResult r = append_one(trio[0], "answered");
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(r.result, OperationResult::Success) << "write " << i << ": " << r.message;
    EXPECT_LT(took, kAnsweredWithin)
        << "write " << i << " answered after "
        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
    ASSERT_TRUE(trio[0].is_leader()) << "the leader changed: the test's premise is gone";
  }
}

}  // namespace
}  // namespace chorus
