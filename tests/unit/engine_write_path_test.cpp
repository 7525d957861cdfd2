// Proves the write path's rules with a fake log, fake storage and a fake clock (no threads, no
// SQLite): expected versions counting writes in flight, idempotent retries, answers only once
// visible, truncation, settings that act only once committed, and transactions (issue 10, hole 5)
// that belong to their owner and connection, carry ids unique across leaders, are checked against
// the ACL at commit, are bounded in count and bytes, and expire.
#include "worker/engine/write_path.hpp"

#include "worker/engine/reads.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
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
  std::optional<EventRecord> last_record_before(const std::string& stream,
                                                int64_t position) override {
    auto it = streams.find(stream);
    if (it == streams.end()) return std::nullopt;
    for (auto r = it->second.rbegin(); r != it->second.rend(); ++r) {
      if (r->position.prepare < position) return *r;
    }
    return std::nullopt;
  }
  std::optional<EventRecord> record(const std::string& stream, int64_t number) override {
    records_read += 1;
    auto it = streams.find(stream);
    if (it == streams.end()) return std::nullopt;
    for (const auto& r : it->second) {
      if (r.number == number) return r;
    }
    return std::nullopt;
  }
  std::map<std::string, std::vector<EventRecord>> streams;
  int records_read = 0;
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
  void await_visible(int64_t end, std::function<void(bool visible)> done) override {
    if (end <= visible_) return done(true);
    waiters_.emplace(end, std::move(done));
  }
  int64_t visible_end() const override { return visible_; }
  int64_t epoch() const override { return epoch_; }

  void commit_all() {
    visible_ = end_;
    for (const auto& r : pending_) path->on_record_committed(r);
    pending_.clear();
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& [end, w] : waiters) w(true);
  }
  // A new leader's log lacks everything from `position` on: it leaves storage and the path.
  void truncate(int64_t position) {
    for (auto& [name, records] : store_.streams) {
      std::erase_if(records, [&](const EventRecord& r) { return r.position.prepare >= position; });
    }
    std::erase_if(pending_, [&](const EventRecord& r) { return r.position.prepare >= position; });
    end_ = position;
    path->on_truncated(position);
  }
  void time_out_all() {
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& [end, w] : waiters) w(false);
  }

  WritePath* path = nullptr;
  NotHandledReason refusal_ = NotHandledReason::None;
  int64_t epoch_ = 1;

 private:
  FakeStore& store_;
  int64_t end_ = 0;
  int64_t visible_ = 0;
  std::vector<EventRecord> pending_;
  std::multimap<int64_t, std::function<void(bool)>> waiters_;
};

NewEvent event(const std::string& data = "{}") {
  return NewEvent{random_guid(), "type", true, false, data, ""};
}

class WritePathTest : public ::testing::Test {
 protected:
  WritePathTest()
      : log_(store_),
        path_(
            store_, log_, [this] { return now_ms_; }, kTransactionIdleTimeoutMs) {
    log_.path = &path_;
  }
  std::optional<WriteResult> append(const std::string& stream, int64_t expected,
                                    std::vector<NewEvent> events, const Principal& who = kAlice) {
    std::optional<WriteResult> out;
    path_.append(who, stream, expected, std::move(events), true,
                 [&out](const WriteResult& r) { out = r; });
    return out;
  }
  // Appends; the answer, which may come at a later commit, lands in a slot that outlives the
  // call (append() above suits only answers given at once).
  std::optional<WriteResult>& append_later(const std::string& stream, std::vector<NewEvent> events,
                                           const Principal& who = kAlice) {
    auto& slot = answers_.emplace_back();
    path_.append(who, stream, kExpectedAny, std::move(events), true,
                 [&slot](const WriteResult& r) { slot = r; });
    return slot;
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
  std::deque<std::optional<WriteResult>> answers_;
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

// The recent ids are bounded (kRecentIdsBytesMax); a retry with an explicit expected version
// is idempotent however old (the ids are looked up in the stream, as EventStore reads its index);
// one with ExpectedAny only while its ids are recent (EventStore: best effort).
TEST(WritePathRecentIds, OldRetriesAreIdempotentWithAnExplicitVersionOnly) {
  FakeStore store;
  FakeLog log(store);
  WritePath path(
      store, log, [] { return int64_t{1'000'000}; }, kTransactionIdleTimeoutMs,
      20 * RecentIds::kSlotCost);  // about 20 ids
  log.path = &path;
  const auto append = [&](const std::string& stream, int64_t expected,
                          std::vector<NewEvent> events) {
    std::optional<WriteResult> out;
    path.append(kAlice, stream, expected, std::move(events), true,
                [&out](const WriteResult& r) { out = r; });
    log.commit_all();
    return out;
  };
  const auto a = event(), b = event(), c = event();
  ASSERT_EQ(append("s", kExpectedNoStream, {a, b})->result, OperationResult::Success);
  ASSERT_EQ(append("any", kExpectedAny, {c})->result, OperationResult::Success);
  for (int i = 0; i < 100; ++i) append("other", kExpectedAny, {event()});
  const auto position_of_b = store.streams["s"][1].position;

  store.records_read = 0;
  const auto retry = append("s", kExpectedNoStream, {a, b});
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->result, OperationResult::Success);
  EXPECT_EQ(retry->first_event_number, 0);
  EXPECT_EQ(retry->last_event_number, 1);
  EXPECT_EQ(retry->position, position_of_b);
  EXPECT_EQ(store.records_read, 2);  // both ids were read from the stream
  EXPECT_EQ(store.streams["s"].size(), 2u);
  // Only the first id at its place: "corrupted idempotency", refused.
  EXPECT_EQ(append("s", kExpectedNoStream, {a, c})->result, OperationResult::WrongExpectedVersion);
  EXPECT_EQ(store.streams["s"].size(), 2u);

  const auto any_retry = append("any", kExpectedAny, {c});
  ASSERT_TRUE(any_retry);
  EXPECT_EQ(any_retry->result, OperationResult::Success);
  EXPECT_EQ(store.streams["any"].size(), 2u);  // forgotten: written again
  // A recent id is still answered from memory, without a storage read.
  store.records_read = 0;
  const auto recent = append("any", kExpectedAny, {c});
  EXPECT_EQ(recent->first_event_number, 1);
  EXPECT_EQ(store.streams["any"].size(), 2u);
  EXPECT_EQ(store.records_read, 0);
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
  const auto& before = append_later("t", {event()});
  EXPECT_FALSE(before);  // accepted, waiting for its commit
  log_.commit_all();
  ASSERT_TRUE(before);
  EXPECT_EQ(before->result, OperationResult::Success);
  const auto after = append("u", kExpectedAny, {event()});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->result, OperationResult::AccessDenied);
}

// A $settings record as it sits in the log at `position`.
EventRecord settings_record(const std::string& json, int64_t position) {
  EventRecord r;
  r.stream = kSettingsStream;
  r.event_type = "$settings";
  r.data = json;
  r.position = Position{position + 1, position};
  r.log_end = position + 1;
  return r;
}

const std::string kAdminsOnly = R"({"$userStreamAcl":{"$w":"$admins"}})";
const std::string kEveryone = R"({"$userStreamAcl":{"$w":"$all"}})";

TEST_F(WritePathTest, Hole8SettingsFoundInTheLogActOnlyOnceVisible) {
  // After a restart the log's newest $settings may be an uncommitted suffix.
  const auto record = settings_record(kAdminsOnly, 10);
  store_.streams[kSettingsStream].push_back(record);
  path_.load_settings(record);
  const auto& before = append_later("a", {event()});
  path_.on_visible(record.log_end - 1);
  log_.commit_all();
  ASSERT_TRUE(before);
  EXPECT_EQ(before->result, OperationResult::Success);  // not in force before it is visible
  path_.on_visible(record.log_end);
  const auto after = append("c", kExpectedAny, {event()});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->result, OperationResult::AccessDenied);
}

TEST_F(WritePathTest, Hole8TruncatedSettingsNeverTakeEffect) {
  // Committed settings at 1 that let anyone write; a restricting record at 10 that the new
  // leader's log lacks.
  const auto committed = settings_record(kEveryone, 1);
  const auto truncated = settings_record(kAdminsOnly, 10);
  store_.streams[kSettingsStream] = {committed, truncated};
  path_.load_settings(truncated);
  store_.streams[kSettingsStream].pop_back();
  path_.on_truncated(5);
  // The new leader's log grows past where the truncated record was: it never takes effect.
  path_.on_visible(50);
  const auto& written = append_later("s", {event()}, Principal::anon());
  log_.commit_all();
  ASSERT_TRUE(written);
  EXPECT_EQ(written->result, OperationResult::Success);
}

TEST_F(WritePathTest, Hole8AppendedSettingsAreRolledBackByTruncation) {
  // A leader takes a restricting $settings write, then loses it to a truncation before commit.
  std::optional<WriteResult> settings_write;
  path_.append(kAdmin, kSettingsStream, kExpectedAny, {event(kAdminsOnly)}, false,
               [&](const WriteResult& r) { settings_write = r; });
  const int64_t position = store_.streams[kSettingsStream].back().position.prepare;
  const auto& during = append_later("u", {event()});
  log_.truncate(position);
  log_.time_out_all();
  EXPECT_TRUE(settings_write && settings_write->result == OperationResult::CommitTimeout);
  EXPECT_TRUE(during && during->result == OperationResult::CommitTimeout);
  const auto& after = append_later("v", {event()});
  log_.commit_all();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->result, OperationResult::Success);  // the truncated record never took effect
  EXPECT_EQ(store_.streams["v"].size(), 1u);
}

// Alice on connection 7, Bob on 8, anonymous on 9 and through a follower (connection 0).
Principal on(Principal who, uint64_t connection) {
  who.client_connection = connection;
  return who;
}

TEST_F(WritePathTest, Hole5TransactionsBelongToTheirOwnerAndConnection) {
  // Only the owner's login, or a request on the connection that started it, may use it.
  const auto started = transaction([&](auto done) {
    path_.transaction_start(on(kAlice, 7), "s", kExpectedAny, std::move(done));
  });
  ASSERT_EQ(started.result, OperationResult::Success);
  const int64_t id = started.transaction_id;
  for (const auto& stranger :
       {on(kBob, 8), on(Principal::anon(), 9), on(Principal::anon(), 0), on(kAdmin, 8)}) {
    const auto write = transaction(
        [&](auto done) { path_.transaction_write(stranger, id, {event()}, std::move(done)); });
    EXPECT_EQ(write.result, OperationResult::AccessDenied) << stranger.login;
    const auto commit =
        transaction([&](auto done) { path_.transaction_commit(stranger, id, std::move(done)); });
    EXPECT_EQ(commit.result, OperationResult::AccessDenied) << stranger.login;
  }
  // node-eventstore-client sends TransactionWrite without credentials on the same connection.
  const auto same_connection = transaction([&](auto done) {
    path_.transaction_write(on(Principal::anon(), 7), id, {event()}, std::move(done));
  });
  EXPECT_EQ(same_connection.result, OperationResult::Success);
  // The owner may continue it from another connection (continueTransaction with credentials).
  const auto owner_elsewhere = transaction(
      [&](auto done) { path_.transaction_write(on(kAlice, 11), id, {event()}, std::move(done)); });
  EXPECT_EQ(owner_elsewhere.result, OperationResult::Success);
  std::optional<TransactionResult> committed;
  path_.transaction_commit(on(kAlice, 7), id, [&](const TransactionResult& r) { committed = r; });
  log_.commit_all();
  ASSERT_TRUE(committed);
  EXPECT_EQ(committed->result, OperationResult::Success);
  EXPECT_EQ(store_.streams["s"].size(), 2u);  // nothing the strangers sent
}

TEST_F(WritePathTest, Hole5AnonymousTransactionIsBoundToItsConnection) {
  const auto started = transaction([&](auto done) {
    path_.transaction_start(on(Principal::anon(), 7), "s", kExpectedAny, std::move(done));
  });
  const auto other = transaction([&](auto done) {
    path_.transaction_commit(on(Principal::anon(), 9), started.transaction_id, std::move(done));
  });
  EXPECT_EQ(other.result, OperationResult::AccessDenied);
  const auto own = transaction([&](auto done) {
    path_.transaction_write(on(Principal::anon(), 7), started.transaction_id, {event()},
                            std::move(done));
  });
  EXPECT_EQ(own.result, OperationResult::Success);
}

TEST_F(WritePathTest, Hole5IdsOfANewLeaderNeverNameTheOldLeadersTransactions) {
  // Counting from 1 on every node, a client's id from a deposed leader named someone else's
  // transaction on the new one. Ids carry the epoch, so none repeats.
  std::vector<int64_t> old_ids;
  for (int i = 0; i < 5; ++i) {
    old_ids.push_back(transaction([&](auto done) {
                        path_.transaction_start(on(kAlice, 7), "s", kExpectedAny, std::move(done));
                      }).transaction_id);
  }
  path_.on_leadership_lost();
  log_.epoch_ = 2;
  for (int i = 0; i < 5; ++i) {
    const auto r = transaction([&](auto done) {
      path_.transaction_start(on(kAlice, 7), "s", kExpectedAny, std::move(done));
    });
    ASSERT_EQ(r.result, OperationResult::Success);
    EXPECT_GT(r.transaction_id, 0);
    EXPECT_EQ(std::count(old_ids.begin(), old_ids.end(), r.transaction_id), 0);
  }
  const auto stale = transaction([&](auto done) {
    path_.transaction_write(on(kAlice, 7), old_ids[0], {event()}, std::move(done));
  });
  EXPECT_EQ(stale.result, OperationResult::InvalidTransaction);
}

TEST_F(WritePathTest, Hole5CommitChecksTheStreamAclOfThatMoment) {
  const auto started = transaction([&](auto done) {
    path_.transaction_start(on(kAlice, 7), "s", kExpectedAny, std::move(done));
  });
  transaction([&](auto done) {
    path_.transaction_write(on(kAlice, 7), started.transaction_id, {event()}, std::move(done));
  });
  // An admin gives the stream to Bob alone while Alice's transaction is open.
  append("$$s", kExpectedAny, {event(R"({"$acl":{"$w":"bob"}})")}, kAdmin);
  log_.commit_all();
  const auto commit = transaction([&](auto done) {
    path_.transaction_commit(on(kAlice, 7), started.transaction_id, std::move(done));
  });
  EXPECT_EQ(commit.result, OperationResult::AccessDenied);
  EXPECT_EQ(store_.streams.count("s"), 0u);
}

TEST_F(WritePathTest, Hole5IdleTransactionsExpireAndUnknownIdsAreRefused) {
  const auto started = transaction([&](auto done) {
    path_.transaction_start(on(kAlice, 7), "s", kExpectedAny, std::move(done));
  });
  now_ms_ += kTransactionIdleTimeoutMs + 1;
  // Refused at its next use even before a sweep, and then forgotten.
  const auto late = transaction([&](auto done) {
    path_.transaction_write(on(kAlice, 7), started.transaction_id, {event()}, std::move(done));
  });
  EXPECT_EQ(late.result, OperationResult::InvalidTransaction);
  EXPECT_NE(late.message.find("expired"), std::string::npos) << late.message;
  EXPECT_EQ(path_.open_transactions(), 0u);
  // A sweep at the next start abandons idle ones nobody touches again.
  transaction([&](auto done) {
    path_.transaction_start(on(kAlice, 7), "s", kExpectedAny, std::move(done));
  });
  now_ms_ += kTransactionIdleTimeoutMs + 1;
  path_.expire_transactions();
  EXPECT_EQ(path_.open_transactions(), 0u);
  const auto unknown = transaction([&](auto done) {
    path_.transaction_commit(on(kAlice, 7), started.transaction_id, std::move(done));
  });
  EXPECT_EQ(unknown.result, OperationResult::InvalidTransaction);
}

TEST_F(WritePathTest, Hole5OpenTransactionsAreBoundedInCount) {
  for (size_t i = 0; i < kTransactionsOpenMax; ++i) {
    ASSERT_EQ(transaction([&](auto done) {
                path_.transaction_start(on(kAlice, 7), "s", kExpectedAny, std::move(done));
              }).result,
              OperationResult::Success);
  }
  const auto refused = transaction(
      [&](auto done) { path_.transaction_start(on(kBob, 8), "s", kExpectedAny, std::move(done)); });
  EXPECT_EQ(refused.result, OperationResult::PrepareTimeout);
  EXPECT_EQ(path_.open_transactions(), kTransactionsOpenMax);
}

TEST_F(WritePathTest, Hole5TransactionIsBoundedInBytes) {
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
