// Proves the write path's rules with a fake log, fake storage and a fake clock (no threads, no
// SQLite): expected versions counting writes in flight, idempotent retries, answers only once
// visible, truncation, settings that act only once committed, and transactions that belong to
// their owner, carry unguessable ids, are bounded and expire.
#include "worker/engine/write_path.hpp"

#include "worker/engine/reads.hpp"

#include <gtest/gtest.h>

#include <map>

namespace chorus {
namespace {

const Principal kAlice{"alice", {}};
const Principal kBob{"bob", {}};
const Principal kAdmin{"admin", {"$admins"}};

// Storage: every record proposed so far, per stream.
class FakeStore final : public WriteStore {
 public:
  std::optional<EventRecord> last_record(const std::string& stream) override {
    auto it = streams.find(stream);
    if (it == streams.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
  }
  std::map<std::string, std::vector<EventRecord>> streams;
};

// The log: positions count records; visibility moves only when the test commits.
class FakeLog final : public WriteLog {
 public:
  explicit FakeLog(FakeStore& store) : store_(store) {}
  NotHandledReason refusal() const override { return refusal_; }
  bool storage_failed() const override { return false; }
  bool propose(std::vector<EventRecord>& records) override {
    for (auto& r : records) {
      r.position = Position{end_ + 1, end_};
      r.log_end = ++end_;
      store_.streams[r.stream].push_back(r);
      pending_.push_back(r);
      if (path) path->on_record_appended(r);
    }
    return true;
  }
  void await_visible(int64_t end, std::function<void()> on_visible,
                     std::function<void()> on_timeout) override {
    if (end <= visible_) return on_visible();
    waiters_.emplace(end, std::make_pair(std::move(on_visible), std::move(on_timeout)));
  }
  int64_t visible_end() const override { return visible_; }
  int64_t epoch() const override { return 1; }

  void commit_all() {
    visible_ = end_;
    for (const auto& r : pending_) path->on_record_committed(r);
    pending_.clear();
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& [end, w] : waiters) w.first();
  }
  void time_out_all() {
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& [end, w] : waiters) w.second();
  }

  WritePath* path = nullptr;
  NotHandledReason refusal_ = NotHandledReason::None;

 private:
  FakeStore& store_;
  int64_t end_ = 0;
  int64_t visible_ = 0;
  std::vector<EventRecord> pending_;
  std::multimap<int64_t, std::pair<std::function<void()>, std::function<void()>>> waiters_;
};

NewEvent event(const std::string& data = "{}") {
  return NewEvent{random_guid(), "type", true, false, data, ""};
}

class WritePathTest : public ::testing::Test {
 protected:
  WritePathTest()
      : log_(store_),
        path_(
            store_, log_, [this] { return now_ms_; }, 42) {
    log_.path = &path_;
  }
  std::optional<WriteResult> append(const std::string& stream, int64_t expected,
                                    std::vector<NewEvent> events, const Principal& who = kAlice) {
    std::optional<WriteResult> out;
    path_.append(who, stream, expected, std::move(events), true,
                 [&out](const WriteResult& r) { out = r; });
    return out;
  }
  TransactionResult transaction(
      const std::function<void(std::function<void(TransactionResult)>)>& call) {
    TransactionResult out;
    call([&out](const TransactionResult& r) { out = r; });
    return out;
  }

  FakeStore store_;
  FakeLog log_;
  int64_t now_ms_ = 1'000'000;
  WritePath path_;
};

TEST_F(WritePathTest, AnswersOnlyOnceVisibleAndCountsWritesInFlight) {
  // Two writes in one burst get consecutive numbers; neither is answered before its commit.
  std::optional<WriteResult> first, second;
  path_.append(kAlice, "s", kExpectedNoStream, {event()}, true,
               [&](const WriteResult& r) { first = r; });
  path_.append(kAlice, "s", 0, {event(), event()}, true, [&](const WriteResult& r) { second = r; });
  EXPECT_FALSE(first);
  EXPECT_FALSE(second);
  log_.commit_all();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->result, OperationResult::Success);
  EXPECT_EQ(first->first_event_number, 0);
  EXPECT_EQ(second->first_event_number, 1);
  EXPECT_EQ(second->last_event_number, 2);
}

TEST_F(WritePathTest, RetryWithSameIdsIsIdempotentAndWrongVersionSaysCurrent) {
  const auto e = event();
  append("s", kExpectedNoStream, {e});
  log_.commit_all();
  const auto retry = append("s", kExpectedNoStream, {e});
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->result, OperationResult::Success);
  EXPECT_EQ(retry->first_event_number, 0);
  EXPECT_EQ(store_.streams["s"].size(), 1u);
  const auto wrong = append("s", 5, {event()});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->result, OperationResult::WrongExpectedVersion);
  EXPECT_EQ(wrong->current_version, 0);
}

TEST_F(WritePathTest, CommitTimeoutAndNotLeader) {
  std::optional<WriteResult> r;
  path_.append(kAlice, "s", kExpectedAny, {event()}, true, [&](const WriteResult& w) { r = w; });
  log_.time_out_all();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result, OperationResult::CommitTimeout);
  log_.refusal_ = NotHandledReason::NotLeader;
  const auto refused = append("s", kExpectedAny, {event()});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->not_handled, NotHandledReason::NotLeader);
}

TEST_F(WritePathTest, TruncationForgetsRecordsThatLeftTheLog) {
  const auto e = event();
  append("s", kExpectedNoStream, {e});
  // The record was never committed and a new leader truncated it away.
  store_.streams.clear();
  path_.on_truncated(0);
  log_.time_out_all();
  const auto again = append("s", kExpectedNoStream, {e});
  log_.commit_all();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->result, OperationResult::Success);
  EXPECT_EQ(store_.streams["s"].size(), 1u);
}

TEST_F(WritePathTest, SettingsActOnlyOnceCommitted) {
  // $settings restricting user streams to admins: not in force while it is uncommitted.
  const std::string settings = R"({"$userStreamAcl":{"$w":"$admins"}})";
  path_.append(kAdmin, kSettingsStream, kExpectedAny, {event(settings)}, false,
               [](const WriteResult&) {});
  const auto before = append("t", kExpectedAny, {event()});
  EXPECT_FALSE(before);  // accepted, waiting for its commit
  log_.commit_all();
  const auto after = append("u", kExpectedAny, {event()});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->result, OperationResult::AccessDenied);
}

TEST_F(WritePathTest, TransactionsBelongToTheirOwner) {
  const auto started = transaction(
      [&](auto done) { path_.transaction_start(kAlice, "s", kExpectedAny, std::move(done)); });
  ASSERT_EQ(started.result, OperationResult::Success);
  const int64_t id = started.transaction_id;
  EXPECT_GT(id, 1'000'000);  // not a counter that another client could guess
  const auto stranger = transaction(
      [&](auto done) { path_.transaction_write(kBob, id, {event()}, std::move(done)); });
  EXPECT_EQ(stranger.result, OperationResult::AccessDenied);
  const auto stranger_commit =
      transaction([&](auto done) { path_.transaction_commit(kBob, id, std::move(done)); });
  EXPECT_EQ(stranger_commit.result, OperationResult::AccessDenied);
  // The node client sends TransactionWrite without credentials: the id is the capability.
  const auto written = transaction([&](auto done) {
    path_.transaction_write(Principal::anon(), id, {event()}, std::move(done));
  });
  EXPECT_EQ(written.result, OperationResult::Success);
  std::optional<TransactionResult> committed;
  path_.transaction_commit(kAlice, id, [&](const TransactionResult& r) { committed = r; });
  log_.commit_all();
  ASSERT_TRUE(committed);
  EXPECT_EQ(committed->result, OperationResult::Success);
  EXPECT_EQ(store_.streams["s"].size(), 1u);
}

TEST_F(WritePathTest, IdleTransactionsExpireAndUnknownIdsAreRefused) {
  const auto started = transaction(
      [&](auto done) { path_.transaction_start(kAlice, "s", kExpectedAny, std::move(done)); });
  now_ms_ += kTransactionIdleTimeoutMs + 1;
  path_.expire_transactions();
  EXPECT_EQ(path_.open_transactions(), 0u);
  const auto late = transaction([&](auto done) {
    path_.transaction_commit(kAlice, started.transaction_id, std::move(done));
  });
  EXPECT_EQ(late.result, OperationResult::InvalidTransaction);
}

TEST_F(WritePathTest, TransactionIsBoundedInBytes) {
  const auto started = transaction(
      [&](auto done) { path_.transaction_start(kAlice, "s", kExpectedAny, std::move(done)); });
  std::vector<NewEvent> big;
  for (int i = 0; i < 5; ++i) big.push_back(event(std::string(kEventBytesMax, 'x')));
  const auto r = transaction([&](auto done) {
    path_.transaction_write(kAlice, started.transaction_id, std::move(big), std::move(done));
  });
  EXPECT_EQ(r.result, OperationResult::InvalidTransaction);
}

TEST_F(WritePathTest, ReStartedTransactionAfterLosingLeadershipIsUnknown) {
  const auto started = transaction(
      [&](auto done) { path_.transaction_start(kAlice, "s", kExpectedAny, std::move(done)); });
  path_.on_leadership_lost();
  const auto r = transaction([&](auto done) {
    path_.transaction_commit(kAlice, started.transaction_id, std::move(done));
  });
  EXPECT_EQ(r.result, OperationResult::InvalidTransaction);
}

}  // namespace
}  // namespace chorus
