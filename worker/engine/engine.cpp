// EngineImpl: the single-node engine. The core thread owns every piece of mutable write state
// (stream versions, in-flight writes, the idempotency cache, transactions, subscriptions); the
// storage writer thread makes batches durable; reader threads answer reads from SQLite bounded
// by the committed position. On one node a record is committed once it is durable.
#include "worker/engine/engine.hpp"

#include "worker/engine/acl.hpp"
#include "worker/engine/reads.hpp"
#include "worker/engine/rules.hpp"
#include "worker/engine/storage.hpp"
#include "worker/engine/users.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/functional/hash.hpp>
#include <boost/uuid/uuid_hash.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <unordered_map>

namespace chorus {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Limits of the engine (one place, with their reasons).
// Recently written event ids kept for idempotent retries (EventStore keeps a similar cache).
constexpr size_t kRecentIdsMax = 1'000'000;
// Event ids loaded from the end of the log at start, so retries after a restart are recognised.
constexpr int kRecentIdsWarmup = 100'000;
// Stream states kept in memory; idle ones beyond this are dropped and reloaded on demand.
constexpr size_t kStreamCacheMax = 200'000;
// Open explicit transactions, and the bytes one transaction may collect before commit.
constexpr size_t kTransactionsOpenMax = 10'000;
constexpr size_t kTransactionBytesMax = 64u * 1024u * 1024u;
// Volatile subscriptions per node.
constexpr size_t kSubscriptionsMax = 100'000;
// How often pending writes are checked against their commit deadline.
constexpr int kCommitTimeoutCheckMs = 100;
// How long a verified credential stays cached.
constexpr int64_t kCredentialCacheTtlMs = 60'000;
constexpr size_t kCredentialCacheMax = 10'000;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Principal system_principal() { return Principal{"$system", {"$admins"}}; }

std::string describe_size(size_t bytes) { return std::to_string(bytes) + " bytes"; }

struct StreamState {
  int64_t last_number = -1;  // including writes in flight
  int inflight = 0;          // batches not yet committed
};

struct IdEntry {
  std::string stream;
  int64_t number = 0;
  int64_t position = 0;
};

struct PendingAck {
  Clock::time_point deadline;
  std::function<void()> on_commit;
  std::function<void()> on_timeout;
};

struct Transaction {
  Principal who;
  std::string stream;
  int64_t expected_version = 0;
  std::vector<NewEvent> events;
  size_t bytes = 0;
};

struct Subscription {
  Principal who;
  std::string stream;  // "" = $all
  bool resolve_links = false;
  SubscriptionCallbacks callbacks;
};

class EngineImpl final : public Engine {
 public:
  explicit EngineImpl(const EngineConfig& config);
  ~EngineImpl() override { shutdown(); }

  void authenticate(std::string login, std::string password,
                    std::function<void(std::optional<Principal>)> done) override;
  void append(Principal who, std::string stream, int64_t expected_version,
              std::vector<NewEvent> events, std::function<void(WriteResult)> done) override;
  void delete_stream(Principal who, std::string stream, int64_t expected_version, bool hard,
                     std::function<void(DeleteResult)> done) override;
  void transaction_start(Principal who, std::string stream, int64_t expected_version,
                         std::function<void(TransactionResult)> done) override;
  void transaction_write(Principal who, int64_t transaction_id, std::vector<NewEvent> events,
                         std::function<void(TransactionResult)> done) override;
  void transaction_commit(Principal who, int64_t transaction_id,
                          std::function<void(TransactionResult)> done) override;
  void read_event(Principal who, std::string stream, int64_t event_number, bool resolve_links,
                  std::function<void(ReadEventResult)> done) override;
  void read_stream(Principal who, std::string stream, int64_t from, int32_t max_count, bool forward,
                   bool resolve_links, std::function<void(ReadStreamResult)> done) override;
  void read_all(Principal who, Position from, int32_t max_count, bool forward, bool resolve_links,
                std::function<void(ReadAllResult)> done) override;
  uint64_t subscribe(Principal who, std::string stream, bool resolve_links,
                     SubscriptionCallbacks callbacks) override;
  void unsubscribe(uint64_t id) override;
  void forget_subscription(uint64_t id) override;
  EngineStats stats() const override;
  void shutdown() override;

 private:
  // --- core thread ---
  void start_core();
  void on_durable(int64_t position, const FlushStats& flush);
  void on_storage_failure(const std::string& message);
  void check_commit_timeouts();
  void schedule_timeout_check();
  void publish(const EventRecord& record);

  void do_append(const Principal& who, const std::string& stream, int64_t expected,
                 std::vector<NewEvent> events, bool check_acl,
                 std::function<void(WriteResult)> done);
  void do_delete(const Principal& who, const std::string& stream, int64_t expected, bool hard,
                 std::function<void(DeleteResult)> done);
  // Assigns positions and hands records to the writer; false when the writer refuses them.
  bool submit_records(std::vector<EventRecord>& records, std::function<void()> on_commit,
                      std::function<void()> on_timeout);
  StreamState& stream_state(const std::string& stream);
  std::shared_ptr<const StreamMetadata> metadata_of(const std::string& stream);
  StreamWriteState write_state(const std::string& stream);
  std::optional<int64_t> number_in_stream(const std::string& stream, const Guid& id) const;
  void remember_id(const EventRecord& record);
  void trim_stream_cache();
  EventRecord make_record(const std::string& stream, int64_t number, const NewEvent& e) const;
  std::optional<int64_t> committed_last_number(const std::string& stream);
  void create_default_users();

  // --- any thread ---
  ReadView read_view() const;
  template <class F>
  void on_core(F&& f) {
    asio::post(core_io_, std::forward<F>(f));
  }

  EngineConfig config_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<StorageWriter> writer_;
  std::unique_ptr<ReadPool> read_pool_;
  asio::io_context core_io_;
  asio::executor_work_guard<asio::io_context::executor_type> core_work_;
  std::thread core_thread_;
  asio::steady_timer timeout_timer_;
  std::unique_ptr<asio::thread_pool> readers_;
  std::atomic<bool> shut_down_{false};
  std::mutex shutdown_mutex_;

  // Core-thread state.
  std::unique_ptr<ReadConnection> core_reader_;
  int64_t next_position_ = kFirstLogPosition;
  int64_t durable_position_ = 0;
  std::unordered_map<std::string, StreamState> streams_;
  std::unordered_map<std::string, std::shared_ptr<const StreamMetadata>> metadata_;
  std::unordered_map<Guid, IdEntry, boost::hash<Guid>> recent_ids_;
  std::deque<Guid> recent_order_;
  std::multimap<int64_t, PendingAck> pending_;
  std::deque<EventRecord> uncommitted_;
  std::map<int64_t, Transaction> transactions_;
  int64_t next_transaction_id_ = 1;
  std::map<uint64_t, Subscription> subscriptions_;
  std::unordered_map<std::string, std::set<uint64_t>> subscriptions_by_stream_;
  std::atomic<uint64_t> next_subscription_id_{1};
  std::string storage_failure_;

  // Shared with readers.
  std::atomic<int64_t> committed_position_{0};
  std::atomic<int64_t> commit_end_{kFirstLogPosition};
  mutable std::mutex settings_mutex_;
  std::shared_ptr<const SystemSettings> settings_ = std::make_shared<SystemSettings>();
  std::mutex credentials_mutex_;
  std::unordered_map<std::string, std::pair<Principal, int64_t>> credentials_;

  // Statistics.
  std::atomic<int64_t> events_written_{0}, bytes_written_{0}, events_read_{0}, bytes_read_{0},
      flushes_{0}, subscription_count_{0}, open_transactions_{0};
  Histogram flush_duration_{Histogram::seconds_buckets()};
  Histogram flush_size_{Histogram::size_buckets()};
};

EngineImpl::EngineImpl(const EngineConfig& config)
    : config_(config), core_work_(asio::make_work_guard(core_io_)), timeout_timer_(core_io_) {
  db_ = std::make_unique<Database>(StorageLocation{config.db_folder, config.in_memory});
  core_reader_ = std::make_unique<ReadConnection>(*db_);
  read_pool_ = std::make_unique<ReadPool>(*db_, std::max(1, config.reader_threads));
  readers_ =
      std::make_unique<asio::thread_pool>(static_cast<size_t>(std::max(1, config.reader_threads)));
  start_core();
  writer_ = std::make_unique<StorageWriter>(
      *db_,
      [this](int64_t position, const FlushStats& flush) {
        on_core([this, position, flush] { on_durable(position, flush); });
      },
      [this](const std::string& message) {
        on_core([this, message] { on_storage_failure(message); });
      });
  core_thread_ = std::thread([this] { core_io_.run(); });
  schedule_timeout_check();
  create_default_users();
}

void EngineImpl::start_core() {
  // Recover positions, the settings and recent event ids from what is on disk.
  if (const auto last = core_reader_->last_in_log()) {
    next_position_ = record_end(*last);
    durable_position_ = last->position.prepare;
    committed_position_ = durable_position_;
    commit_end_ = next_position_;
  }
  auto tail = core_reader_->all(next_position_, false, durable_position_, kRecentIdsWarmup);
  for (auto it = tail.rbegin(); it != tail.rend(); ++it) remember_id(*it);
  if (const auto s = core_reader_->last_record(kSettingsStream, durable_position_)) {
    settings_ = std::make_shared<SystemSettings>(parse_settings(s->data));
  }
}

void EngineImpl::create_default_users() {
  // Built-in users on first start: admin and ops, both with the password "changeit".
  struct Builtin {
    const char* login;
    const char* full_name;
    const char* group;
  };
  for (const Builtin& b : {Builtin{"admin", "Event Store Administrator", "$admins"},
                           Builtin{"ops", "Event Store Operations", "$ops"}}) {
    std::promise<void> done;
    on_core([&] {
      if (committed_last_number(user_stream(b.login)).value_or(-1) >= 0 ||
          stream_state(user_stream(b.login)).last_number >= 0) {
        done.set_value();
        return;
      }
      const auto user = make_user(b.login, b.full_name, {b.group}, "changeit");
      NewEvent e{random_guid(), kUserEventType, true, false, user_to_json(user), ""};
      do_append(system_principal(), user_stream(b.login), kExpectedNoStream, {e}, false,
                [this, &done, login = std::string(b.login)](const WriteResult&) {
                  NewEvent link{random_guid(), kUserEventType, false, false, login, ""};
                  do_append(system_principal(), kUsersStream, kExpectedAny, {link}, false,
                            [&done](const WriteResult&) { done.set_value(); });
                });
    });
    done.get_future().wait();
  }
}

// ---------------------------------------------------------------- commit and publication

void EngineImpl::on_durable(int64_t position, const FlushStats& flush) {
  flushes_ += 1;
  durable_position_ = std::max(durable_position_, position);
  // One node: durable is committed. Publish in log order, then answer the writers.
  while (!uncommitted_.empty() && uncommitted_.front().position.prepare <= durable_position_) {
    EventRecord record = std::move(uncommitted_.front());
    uncommitted_.pop_front();
    committed_position_ = record.position.prepare;
    commit_end_ = record_end(record);
    auto it = streams_.find(record.stream);
    if (it != streams_.end()) it->second.inflight = std::max(0, it->second.inflight - 1);
    publish(record);
  }
  while (!pending_.empty() && pending_.begin()->first <= committed_position_) {
    auto ack = std::move(pending_.begin()->second);
    pending_.erase(pending_.begin());
    ack.on_commit();
  }
  flush_duration_.observe(static_cast<double>(flush.duration_us) / 1e6);
  flush_size_.observe(static_cast<double>(flush.records));
  trim_stream_cache();
}

void EngineImpl::on_storage_failure(const std::string& message) {
  // A failed write or fsync stops all later writes: what is on disk is no longer known.
  storage_failure_ = message;
  std::cerr << "chorus-worker: storage failure, writes stopped: " << message << std::endl;
  for (auto& [pos, ack] : pending_) ack.on_timeout();
  pending_.clear();
}

void EngineImpl::schedule_timeout_check() {
  timeout_timer_.expires_after(std::chrono::milliseconds(kCommitTimeoutCheckMs));
  timeout_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    check_commit_timeouts();
    schedule_timeout_check();
  });
}

void EngineImpl::check_commit_timeouts() {
  const auto now = Clock::now();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline <= now) {
      auto ack = std::move(it->second);
      it = pending_.erase(it);
      ack.on_timeout();
    } else {
      ++it;
    }
  }
}

void EngineImpl::publish(const EventRecord& record) {
  if (subscriptions_.empty()) return;
  auto deliver = [&](uint64_t id) {
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;
    ResolvedEvent e =
        resolve(*core_reader_, record, it->second.resolve_links, committed_position_.load());
    it->second.callbacks.event_appeared(e);
  };
  for (const auto& key : {record.stream, std::string()}) {
    auto found = subscriptions_by_stream_.find(key);
    if (found == subscriptions_by_stream_.end()) continue;
    const std::vector<uint64_t> ids(found->second.begin(), found->second.end());
    for (auto id : ids) deliver(id);
  }
}

// ---------------------------------------------------------------- stream state

StreamState& EngineImpl::stream_state(const std::string& stream) {
  auto it = streams_.find(stream);
  if (it != streams_.end()) return it->second;
  StreamState s;
  if (const auto last = core_reader_->last_record(stream, durable_position_)) {
    s.last_number = last->number;
  }
  return streams_.emplace(stream, s).first->second;
}

std::shared_ptr<const StreamMetadata> EngineImpl::metadata_of(const std::string& stream) {
  auto it = metadata_.find(stream);
  if (it != metadata_.end()) return it->second;
  auto m = std::make_shared<StreamMetadata>(
      committed_metadata(*core_reader_, stream, durable_position_));
  return metadata_.emplace(stream, std::move(m)).first->second;
}

StreamWriteState EngineImpl::write_state(const std::string& stream) {
  StreamWriteState w;
  const auto& s = stream_state(stream);
  w.last_event_number = s.last_number;
  w.tombstoned = s.last_number == kDeletedStreamNumber;
  if (!is_metastream(stream)) {
    w.soft_deleted = metadata_of(stream)->soft_deleted();
    w.has_metadata = stream_state(metastream_of(stream)).last_number >= 0;
  } else if (stream_state(std::string(original_stream(stream))).last_number ==
             kDeletedStreamNumber) {
    w.tombstoned = true;  // the metadata of a hard-deleted stream cannot change
  }
  return w;
}

std::optional<int64_t> EngineImpl::number_in_stream(const std::string& stream,
                                                    const Guid& id) const {
  auto it = recent_ids_.find(id);
  if (it == recent_ids_.end() || it->second.stream != stream) return std::nullopt;
  return it->second.number;
}

void EngineImpl::remember_id(const EventRecord& r) {
  auto [it, inserted] =
      recent_ids_.insert_or_assign(r.event_id, IdEntry{r.stream, r.number, r.position.prepare});
  if (inserted) recent_order_.push_back(r.event_id);
  while (recent_order_.size() > kRecentIdsMax) {
    recent_ids_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

void EngineImpl::trim_stream_cache() {
  if (streams_.size() <= kStreamCacheMax) return;
  for (auto it = streams_.begin(); it != streams_.end() && streams_.size() > kStreamCacheMax / 2;) {
    if (it->second.inflight == 0) {
      metadata_.erase(it->first);
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<int64_t> EngineImpl::committed_last_number(const std::string& stream) {
  const auto last = core_reader_->last_record(stream, committed_position_.load());
  if (!last) return std::nullopt;
  return last->number;
}

EventRecord EngineImpl::make_record(const std::string& stream, int64_t number,
                                    const NewEvent& e) const {
  EventRecord r;
  r.stream = stream;
  r.number = number;
  r.event_id = e.event_id;
  r.event_type = e.event_type;
  r.data_is_json = e.data_is_json;
  r.metadata_is_json = e.metadata_is_json;
  r.data = e.data;
  r.metadata = e.metadata;
  r.created_ms = now_ms();
  return r;
}

bool EngineImpl::submit_records(std::vector<EventRecord>& records, std::function<void()> on_commit,
                                std::function<void()> on_timeout) {
  int64_t position = next_position_;
  for (auto& r : records) {
    r.position = Position{position, position};
    position = record_end(r);
  }
  if (!storage_failure_.empty() || !writer_->submit(records)) return false;
  next_position_ = position;
  for (const auto& r : records) {
    auto& s = stream_state(r.stream);
    s.last_number = r.number;
    s.inflight += 1;
    remember_id(r);
    events_written_ += 1;
    bytes_written_ += static_cast<int64_t>(r.data.size() + r.metadata.size());
    if (is_metastream(r.stream)) {
      metadata_[std::string(original_stream(r.stream))] =
          std::make_shared<StreamMetadata>(parse_metadata(r.data));
    }
    if (r.stream == kSettingsStream) {
      std::lock_guard lock(settings_mutex_);
      settings_ = std::make_shared<SystemSettings>(parse_settings(r.data));
    }
    if (r.stream.rfind("$user-", 0) == 0) {
      std::lock_guard lock(credentials_mutex_);
      credentials_.clear();
    }
    uncommitted_.push_back(r);
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(config_.commit_timeout_ms);
  pending_.emplace(records.back().position.prepare,
                   PendingAck{deadline, std::move(on_commit), std::move(on_timeout)});
  return true;
}

// ---------------------------------------------------------------- writes

void EngineImpl::do_append(const Principal& who, const std::string& stream, int64_t expected,
                           std::vector<NewEvent> events, bool check_acl,
                           std::function<void(WriteResult)> done) {
  WriteResult r;
  auto fail = [&](OperationResult result, std::string message) {
    r.result = result;
    r.message = std::move(message);
    r.first_event_number = std::numeric_limits<int32_t>::min();
    r.last_event_number = std::numeric_limits<int32_t>::min();
    done(r);
  };
  if (!storage_failure_.empty()) return fail(OperationResult::PrepareTimeout, "Storage failed.");
  if (stream.empty()) return fail(OperationResult::InvalidTransaction, "Empty stream name.");
  for (const auto& e : events) {
    if (e.data.size() + e.metadata.size() > kEventBytesMax) {
      return fail(OperationResult::InvalidTransaction,
                  "Event of " + describe_size(e.data.size() + e.metadata.size()) +
                      " exceeds the limit of " + describe_size(kEventBytesMax) + ".");
    }
  }
  const auto metadata = metadata_of(std::string(original_stream(stream)));
  SystemSettings settings;
  {
    std::lock_guard lock(settings_mutex_);
    settings = *settings_;
  }
  if (check_acl && !check_access(stream, StreamAccess::Write, who, *metadata, settings)) {
    return fail(OperationResult::AccessDenied, "Access denied.");
  }
  const auto state = write_state(stream);
  std::vector<Guid> ids;
  for (const auto& e : events) ids.push_back(e.event_id);
  const auto check = check_write(state, expected, ids,
                                 [&](const Guid& id) { return number_in_stream(stream, id); });
  switch (check.decision) {
    case WriteDecision::StreamDeleted:
      return fail(OperationResult::StreamDeleted, "Stream deleted.");
    case WriteDecision::WrongExpectedVersion:
      r.current_version = state.last_event_number;
      return fail(OperationResult::WrongExpectedVersion, "Wrong expected version.");
    case WriteDecision::Idempotent: {
      const auto& entry = recent_ids_.at(ids.back());
      r.first_event_number = check.first_existing;
      r.last_event_number = entry.number;
      r.position = Position{entry.position, entry.position};
      if (entry.position <= committed_position_) return done(r);
      const auto deadline = Clock::now() + std::chrono::milliseconds(config_.commit_timeout_ms);
      pending_.emplace(entry.position, PendingAck{deadline, [done, r] { done(r); },
                                                  [done, r] {
                                                    WriteResult t = r;
                                                    t.result = OperationResult::CommitTimeout;
                                                    done(t);
                                                  }});
      return;
    }
    case WriteDecision::Append:
      break;
  }
  if (events.empty()) {
    r.first_event_number = state.last_event_number + 1;
    r.last_event_number = state.last_event_number;
    r.position = Position{committed_position_, committed_position_};
    return done(r);
  }
  std::vector<EventRecord> records;
  const int64_t first = state.last_event_number + 1;
  if (state.soft_deleted && !is_metastream(stream)) {
    // Writing to a soft-deleted stream undeletes it: old events stay hidden behind $tb.
    const auto meta_stream = metastream_of(stream);
    const auto old = core_reader_->last_record(meta_stream, durable_position_);
    NewEvent m{random_guid(),
               kMetadataEventType,
               true,
               false,
               metadata_with_truncate_before(old ? old->data : "{}", first),
               ""};
    records.push_back(make_record(meta_stream, stream_state(meta_stream).last_number + 1, m));
  }
  for (size_t i = 0; i < events.size(); ++i) {
    records.push_back(make_record(stream, first + static_cast<int64_t>(i), events[i]));
  }
  r.first_event_number = first;
  r.last_event_number = first + static_cast<int64_t>(events.size()) - 1;
  auto on_timeout = [done, r]() mutable {
    r.result = OperationResult::CommitTimeout;
    r.message = "Commit timeout.";
    done(r);
  };
  if (!submit_records(
          records, [] {}, [] {})) {
    return fail(OperationResult::PrepareTimeout, "The storage writer is busy or failed.");
  }
  r.position = records.back().position;
  // Replace the placeholder callbacks now that positions are known.
  auto range = pending_.equal_range(r.position.prepare);
  for (auto it = range.first; it != range.second; ++it) {
    it->second.on_commit = [done, r] { done(r); };
    it->second.on_timeout = on_timeout;
  }
}

void EngineImpl::do_delete(const Principal& who, const std::string& stream, int64_t expected,
                           bool hard, std::function<void(DeleteResult)> done) {
  DeleteResult r;
  auto fail = [&](OperationResult result, std::string message) {
    r.result = result;
    r.message = std::move(message);
    done(r);
  };
  if (!storage_failure_.empty()) return fail(OperationResult::PrepareTimeout, "Storage failed.");
  if (stream.empty()) return fail(OperationResult::InvalidTransaction, "Empty stream name.");
  const auto metadata = metadata_of(std::string(original_stream(stream)));
  SystemSettings settings;
  {
    std::lock_guard lock(settings_mutex_);
    settings = *settings_;
  }
  if (!check_access(stream, StreamAccess::Delete, who, *metadata, settings)) {
    return fail(OperationResult::AccessDenied, "Access denied.");
  }
  auto state = write_state(stream);
  const auto check = check_write(state, expected, {}, [](const Guid&) { return std::nullopt; });
  if (check.decision == WriteDecision::StreamDeleted) {
    return fail(OperationResult::StreamDeleted, "Stream deleted.");
  }
  if (check.decision != WriteDecision::Append) {
    r.current_version = state.last_event_number;
    return fail(OperationResult::WrongExpectedVersion, "Wrong expected version.");
  }
  std::vector<EventRecord> records;
  if (hard) {
    NewEvent t{random_guid(), kTombstoneEventType, false, false, "", ""};
    records.push_back(make_record(stream, kDeletedStreamNumber, t));
  } else {
    const auto meta_stream = metastream_of(stream);
    NewEvent m{random_guid(),
               kMetadataEventType,
               true,
               false,
               "{\"$tb\":" + std::to_string(kDeletedStreamNumber) + "}",
               ""};
    records.push_back(make_record(meta_stream, stream_state(meta_stream).last_number + 1, m));
  }
  if (!submit_records(
          records, [] {}, [] {})) {
    return fail(OperationResult::PrepareTimeout, "The storage writer is busy or failed.");
  }
  r.position = records.back().position;
  auto range = pending_.equal_range(r.position.prepare);
  for (auto it = range.first; it != range.second; ++it) {
    it->second.on_commit = [done, r] { done(r); };
    it->second.on_timeout = [done, r]() mutable {
      r.result = OperationResult::CommitTimeout;
      r.message = "Commit timeout.";
      done(r);
    };
  }
}

// ---------------------------------------------------------------- public API

void EngineImpl::append(Principal who, std::string stream, int64_t expected,
                        std::vector<NewEvent> events, std::function<void(WriteResult)> done) {
  on_core([this, who = std::move(who), stream = std::move(stream), expected,
           events = std::move(events), done = std::move(done)]() mutable {
    do_append(who, stream, expected, std::move(events), true, done);
  });
}

void EngineImpl::delete_stream(Principal who, std::string stream, int64_t expected, bool hard,
                               std::function<void(DeleteResult)> done) {
  on_core([this, who = std::move(who), stream = std::move(stream), expected, hard,
           done = std::move(done)] { do_delete(who, stream, expected, hard, done); });
}

void EngineImpl::transaction_start(Principal who, std::string stream, int64_t expected,
                                   std::function<void(TransactionResult)> done) {
  on_core([this, who = std::move(who), stream = std::move(stream), expected,
           done = std::move(done)] {
    TransactionResult r;
    // Expected version and deleted state are checked at commit, as EventStore does.
    const auto metadata = metadata_of(std::string(original_stream(stream)));
    SystemSettings settings;
    {
      std::lock_guard lock(settings_mutex_);
      settings = *settings_;
    }
    if (stream.empty() || !check_access(stream, StreamAccess::Write, who, *metadata, settings)) {
      r.result =
          stream.empty() ? OperationResult::InvalidTransaction : OperationResult::AccessDenied;
      r.message = stream.empty() ? "Empty stream name." : "Access denied.";
      return done(r);
    }
    if (transactions_.size() >= kTransactionsOpenMax) {
      r.result = OperationResult::PrepareTimeout;
      r.message = "Too many open transactions.";
      return done(r);
    }
    r.transaction_id = next_transaction_id_++;
    transactions_.emplace(r.transaction_id, Transaction{who, stream, expected, {}, 0});
    open_transactions_ = static_cast<int64_t>(transactions_.size());
    done(r);
  });
}

void EngineImpl::transaction_write(Principal who, int64_t id, std::vector<NewEvent> events,
                                   std::function<void(TransactionResult)> done) {
  (void)who;  // clients send TransactionWrite without credentials; access was checked at start
  on_core([this, id, events = std::move(events), done = std::move(done)]() mutable {
    TransactionResult r;
    r.transaction_id = id;
    auto it = transactions_.find(id);
    if (it == transactions_.end()) {
      r.result = OperationResult::InvalidTransaction;
      r.message = "Unknown transaction " + std::to_string(id) + ".";
      return done(r);
    }
    size_t bytes = 0;
    for (const auto& e : events) bytes += e.data.size() + e.metadata.size();
    if (it->second.bytes + bytes > kTransactionBytesMax) {
      r.result = OperationResult::InvalidTransaction;
      r.message = "Transaction exceeds " + describe_size(kTransactionBytesMax) + ".";
      return done(r);
    }
    it->second.bytes += bytes;
    for (auto& e : events) it->second.events.push_back(std::move(e));
    done(r);
  });
}

void EngineImpl::transaction_commit(Principal who, int64_t id,
                                    std::function<void(TransactionResult)> done) {
  (void)who;
  on_core([this, id, done = std::move(done)] {
    auto it = transactions_.find(id);
    if (it == transactions_.end()) {
      TransactionResult r;
      r.transaction_id = id;
      r.result = OperationResult::InvalidTransaction;
      r.message = "Unknown transaction " + std::to_string(id) + ".";
      return done(r);
    }
    Transaction tx = std::move(it->second);
    transactions_.erase(it);
    open_transactions_ = static_cast<int64_t>(transactions_.size());
    do_append(tx.who, tx.stream, tx.expected_version, std::move(tx.events), false,
              [id, done](const WriteResult& w) {
                TransactionResult r;
                r.transaction_id = id;
                r.result = w.result;
                r.message = w.message;
                r.first_event_number = w.first_event_number;
                r.last_event_number = w.last_event_number;
                r.position = w.position;
                done(r);
              });
  });
}

ReadView EngineImpl::read_view() const {
  ReadView v;
  v.committed_pos = committed_position_.load();
  v.commit_end = commit_end_.load();
  v.now_ms = now_ms();
  std::lock_guard lock(settings_mutex_);
  v.settings = *settings_;
  return v;
}

void EngineImpl::read_event(Principal who, std::string stream, int64_t number, bool resolve_links,
                            std::function<void(ReadEventResult)> done) {
  asio::post(*readers_, [this, who = std::move(who), stream = std::move(stream), number,
                         resolve_links, done = std::move(done)] {
    ReadEventResult r;
    try {
      auto c = read_pool_->borrow();
      r = chorus::read_event(*c, read_view(), who, stream, number, resolve_links);
    } catch (const std::exception& e) {
      r.status = ReadEventStatus::Error;
      r.error = e.what();
    }
    if (r.event && r.event->event) events_read_ += 1;
    done(std::move(r));
  });
}

void EngineImpl::read_stream(Principal who, std::string stream, int64_t from, int32_t max_count,
                             bool forward, bool resolve_links,
                             std::function<void(ReadStreamResult)> done) {
  asio::post(*readers_, [this, who = std::move(who), stream = std::move(stream), from, max_count,
                         forward, resolve_links, done = std::move(done)] {
    ReadStreamResult r;
    try {
      auto c = read_pool_->borrow();
      r = chorus::read_stream(*c, read_view(), who, stream, from, max_count, forward,
                              resolve_links);
    } catch (const std::exception& e) {
      r.status = ReadStreamStatus::Error;
      r.error = e.what();
    }
    events_read_ += static_cast<int64_t>(r.events.size());
    for (const auto& e : r.events) {
      if (e.event) bytes_read_ += static_cast<int64_t>(e.event->data.size());
    }
    done(std::move(r));
  });
}

void EngineImpl::read_all(Principal who, Position from, int32_t max_count, bool forward,
                          bool resolve_links, std::function<void(ReadAllResult)> done) {
  asio::post(*readers_, [this, who = std::move(who), from, max_count, forward, resolve_links,
                         done = std::move(done)] {
    ReadAllResult r;
    try {
      auto c = read_pool_->borrow();
      r = chorus::read_all(*c, read_view(), who, from, max_count, forward, resolve_links);
    } catch (const std::exception& e) {
      r.status = ReadAllStatus::Error;
      r.error = e.what();
    }
    events_read_ += static_cast<int64_t>(r.events.size());
    done(std::move(r));
  });
}

void EngineImpl::authenticate(std::string login, std::string password,
                              std::function<void(std::optional<Principal>)> done) {
  asio::post(*readers_, [this, login = std::move(login), password = std::move(password),
                         done = std::move(done)] {
    const auto key = credential_cache_key(login, password);
    {
      std::lock_guard lock(credentials_mutex_);
      auto it = credentials_.find(key);
      if (it != credentials_.end() && it->second.second > now_ms()) return done(it->second.first);
    }
    std::optional<Principal> result;
    try {
      auto c = read_pool_->borrow();
      const auto record = c->last_record(user_stream(login), committed_position_.load());
      const auto user = record ? user_from_json(record->data) : std::nullopt;
      if (user && verify_password(*user, password)) result = Principal{user->login, user->groups};
    } catch (const std::exception& e) {
      std::cerr << "chorus-worker: authentication of " << login << " failed: " << e.what()
                << std::endl;
    }
    if (result) {
      std::lock_guard lock(credentials_mutex_);
      if (credentials_.size() >= kCredentialCacheMax) credentials_.clear();
      credentials_[key] = {*result, now_ms() + kCredentialCacheTtlMs};
    }
    done(result);
  });
}

uint64_t EngineImpl::subscribe(Principal who, std::string stream, bool resolve_links,
                               SubscriptionCallbacks callbacks) {
  const uint64_t id = next_subscription_id_++;
  on_core([this, id, who = std::move(who), stream = std::move(stream), resolve_links,
           callbacks = std::move(callbacks)]() mutable {
    const std::string target = stream.empty() ? "$all" : stream;
    const auto metadata = metadata_of(std::string(original_stream(target)));
    SystemSettings settings;
    {
      std::lock_guard lock(settings_mutex_);
      settings = *settings_;
    }
    if (!check_access(target, StreamAccess::Read, who, *metadata, settings)) {
      return callbacks.dropped(DropReason::AccessDenied);
    }
    if (subscriptions_.size() >= kSubscriptionsMax) {
      return callbacks.dropped(DropReason::SubscriberMaxCountReached);
    }
    std::optional<int64_t> last_number;
    if (!stream.empty()) last_number = committed_last_number(stream).value_or(-1);
    callbacks.confirmed(committed_position_.load(), last_number);
    subscriptions_by_stream_[stream].insert(id);
    subscriptions_.emplace(id, Subscription{who, stream, resolve_links, std::move(callbacks)});
    subscription_count_ = static_cast<int64_t>(subscriptions_.size());
  });
  return id;
}

void EngineImpl::unsubscribe(uint64_t id) {
  on_core([this, id] {
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;
    auto callbacks = std::move(it->second.callbacks);
    subscriptions_by_stream_[it->second.stream].erase(id);
    subscriptions_.erase(it);
    subscription_count_ = static_cast<int64_t>(subscriptions_.size());
    callbacks.dropped(DropReason::Unsubscribed);
  });
}

void EngineImpl::forget_subscription(uint64_t id) {
  on_core([this, id] {
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;
    subscriptions_by_stream_[it->second.stream].erase(id);
    subscriptions_.erase(it);
    subscription_count_ = static_cast<int64_t>(subscriptions_.size());
  });
}

EngineStats EngineImpl::stats() const {
  EngineStats s;
  s.commit_checkpoint = committed_position_.load();
  s.writer_checkpoint = s.commit_checkpoint;
  s.chaser_checkpoint = s.commit_checkpoint;
  s.events_written = events_written_.load();
  s.bytes_written = bytes_written_.load();
  s.events_read = events_read_.load();
  s.bytes_read = bytes_read_.load();
  s.flushes = flushes_.load();
  s.subscriptions = subscription_count_.load();
  s.open_transactions = open_transactions_.load();
  s.flush_duration_seconds = flush_duration_.snapshot();
  s.flush_size_events = flush_size_.snapshot();
  return s;
}

void EngineImpl::shutdown() {
  std::lock_guard lock(shutdown_mutex_);
  if (shut_down_.exchange(true)) return;
  readers_->join();
  writer_->stop();  // writes what is queued; its last notices reach the core below
  std::promise<void> drained;
  on_core([this, &drained] {
    timeout_timer_.cancel();
    for (auto& [pos, ack] : pending_) ack.on_timeout();
    pending_.clear();
    subscriptions_.clear();
    subscriptions_by_stream_.clear();
    drained.set_value();
  });
  drained.get_future().wait();
  core_work_.reset();
  core_io_.stop();
  if (core_thread_.joinable()) core_thread_.join();
  writer_.reset();
  read_pool_.reset();
  core_reader_.reset();
  db_.reset();
}

}  // namespace

std::unique_ptr<Engine> Engine::open(const EngineConfig& config) {
  return std::make_unique<EngineImpl>(config);
}

}  // namespace chorus
