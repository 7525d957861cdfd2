// EngineImpl: one database node. The core thread owns every piece of mutable write state
// (the replication core, stream versions, in-flight writes, the idempotency cache, transactions,
// subscriptions); the storage writer thread makes batches durable; reader threads answer reads
// from SQLite bounded by the visible commit position: committed by a majority (the replication
// core) and durable here. Only a leader whose epoch record is committed takes writes; a deposed
// leader fails its pending writes instead of acknowledging them.
#include "worker/engine/engine.hpp"

#include "worker/engine/acl.hpp"
#include "worker/engine/log_codec.hpp"
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
#include <random>
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
// How long a verified credential stays cached.
constexpr int64_t kCredentialCacheTtlMs = 60'000;
constexpr size_t kCredentialCacheMax = 10'000;
// A single node waits this long at start to elect itself and create the built-in users.
constexpr int kSingleNodeReadyWaitMs = 30'000;
// The largest Append the leader sends, and how much it sends a follower ahead of its acks.
constexpr size_t kAppendBytesMax = 1u << 20;
constexpr size_t kReplicationInflightBytesMax = 4u << 20;
// A follower this close to the leader's commit position counts as caught up (Follower).
constexpr int64_t kCaughtUpSlackBytes = 4 << 20;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Principal system_principal() { return Principal{"$system", {"$admins"}}; }

std::string describe_size(size_t bytes) { return std::to_string(bytes) + " bytes"; }

struct StreamState {
  int64_t last_number = -1;  // including writes in flight
  int inflight = 0;          // records not yet committed
};

struct IdEntry {
  std::string stream;
  int64_t number = 0;
  int64_t position = 0;
  int64_t end = 0;
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

// The replication core reads older entries (for followers catching up) from SQLite.
class StorageLogReader final : public replication::LogReader {
 public:
  explicit StorageLogReader(ReadConnection& c) : c_(c) {}
  std::vector<replication::Entry> read(int64_t from, size_t bytes_max) override {
    std::vector<replication::Entry> out;
    for (const auto& stored : c_.entries(from, bytes_max)) out.push_back(encode_entry(stored));
    return out;
  }

 private:
  ReadConnection& c_;
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(const EngineConfig& config, ReplicationTransport* transport);
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
  void receive(replication::Message message) override;
  void set_peers(std::vector<std::string> node_ids) override;
  NodeStatus status() const override;
  void resign() override;
  void shutdown() override;

 private:
  // --- core thread ---
  void start_core(ReplicationTransport* transport);
  void schedule_tick();
  void on_tick();
  void process_ready();
  void apply_truncation(int64_t position);
  void apply_entries(std::vector<replication::Entry> entries);
  void on_durable(int64_t end, uint64_t generation, const FlushStats& flush);
  void advance_commit();
  void on_storage_failure(const std::string& message);
  void on_role_change();
  void on_leader_ready();
  void fail_pending();
  void check_commit_timeouts();
  void publish(const EventRecord& record);
  void update_status();

  NotHandledReason refusal() const;
  void do_append(const Principal& who, const std::string& stream, int64_t expected,
                 std::vector<NewEvent> events, bool check_acl,
                 std::function<void(WriteResult)> done);
  void do_delete(const Principal& who, const std::string& stream, int64_t expected, bool hard,
                 std::function<void(DeleteResult)> done);
  // Proposes records to the replication core; false when not leading or storage refuses.
  bool propose_records(std::vector<EventRecord>& records);
  void add_pending(int64_t end, std::function<void()> on_commit, std::function<void()> on_timeout);
  StreamState& stream_state(const std::string& stream);
  std::shared_ptr<const StreamMetadata> metadata_of(const std::string& stream);
  StreamWriteState write_state(const std::string& stream);
  std::optional<int64_t> number_in_stream(const std::string& stream, const Guid& id) const;
  void remember_id(const EventRecord& record);
  void trim_stream_cache();
  EventRecord make_record(const std::string& stream, int64_t number, const NewEvent& e) const;
  std::optional<int64_t> committed_last_number(const std::string& stream);
  void create_default_users();
  SystemSettings current_settings() const;

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
  std::unique_ptr<HardStateStore> hard_state_store_;
  asio::io_context core_io_;
  asio::executor_work_guard<asio::io_context::executor_type> core_work_;
  std::thread core_thread_;
  asio::steady_timer tick_timer_;
  std::unique_ptr<asio::thread_pool> readers_;
  std::atomic<bool> shut_down_{false};
  std::mutex shutdown_mutex_;
  std::promise<void> ready_promise_;
  bool ready_signalled_ = false;

  // Core-thread state.
  ReplicationTransport* transport_ = nullptr;
  std::unique_ptr<ReadConnection> core_reader_;
  std::unique_ptr<StorageLogReader> log_reader_;
  std::unique_ptr<replication::Core> core_;
  bool leader_ready_ = false;
  bool appends_scheduled_ = false;  // a send of pending appends is posted
  // The records being proposed (positions assigned) while their entries are applied.
  const std::vector<EventRecord>* proposing_ = nullptr;
  size_t proposing_next_ = 0;
  uint64_t generation_ = 0;  // bumped at each truncation
  int64_t durable_end_ = 0;  // local storage holds everything below this
  int64_t visible_end_ = 0;  // committed and durable here: what reads and acks may use
  std::unordered_map<std::string, StreamState> streams_;
  std::unordered_map<std::string, std::shared_ptr<const StreamMetadata>> metadata_;
  std::unordered_map<Guid, IdEntry, boost::hash<Guid>> recent_ids_;
  std::deque<Guid> recent_order_;
  std::multimap<int64_t, PendingAck> pending_;  // by the end position that must be visible
  std::deque<EventRecord> uncommitted_;
  std::map<int64_t, Transaction> transactions_;
  int64_t next_transaction_id_ = 1;
  std::map<uint64_t, Subscription> subscriptions_;
  std::unordered_map<std::string, std::set<uint64_t>> subscriptions_by_stream_;
  std::atomic<uint64_t> next_subscription_id_{1};
  std::string storage_failure_;

  // Shared with other threads.
  std::atomic<int64_t> committed_position_{-1};  // reads see positions <= this
  std::atomic<int64_t> commit_end_{0};           // the head for reads from the end
  mutable std::mutex settings_mutex_;
  std::shared_ptr<const SystemSettings> settings_ = std::make_shared<SystemSettings>();
  std::mutex credentials_mutex_;
  std::unordered_map<std::string, std::pair<Principal, int64_t>> credentials_;
  mutable std::mutex status_mutex_;
  NodeStatus status_;

  // Statistics.
  std::atomic<int64_t> events_written_{0}, bytes_written_{0}, events_read_{0}, bytes_read_{0},
      flushes_{0}, subscription_count_{0}, open_transactions_{0};
  Histogram flush_duration_{Histogram::seconds_buckets()};
  Histogram flush_size_{Histogram::size_buckets()};
};

EngineImpl::EngineImpl(const EngineConfig& config, ReplicationTransport* transport)
    : config_(config), core_work_(asio::make_work_guard(core_io_)), tick_timer_(core_io_) {
  db_ = std::make_unique<Database>(StorageLocation{config.db_folder, config.in_memory});
  core_reader_ = std::make_unique<ReadConnection>(*db_);
  read_pool_ = std::make_unique<ReadPool>(*db_, std::max(1, config.reader_threads));
  hard_state_store_ = std::make_unique<HardStateStore>(*db_);
  readers_ =
      std::make_unique<asio::thread_pool>(static_cast<size_t>(std::max(1, config.reader_threads)));
  writer_ = std::make_unique<StorageWriter>(
      *db_,
      [this](int64_t end, uint64_t generation, const FlushStats& flush) {
        on_core([this, end, generation, flush] { on_durable(end, generation, flush); });
      },
      [this](const std::string& message) {
        on_core([this, message] { on_storage_failure(message); });
      });
  auto ready = ready_promise_.get_future();
  on_core([this, transport] { start_core(transport); });
  core_thread_ = std::thread([this] { core_io_.run(); });
  if (config.cluster.cluster_size == 1) {
    // A single node is its own majority: wait until it leads and has its users, so that the
    // first client does not meet a node that is not ready.
    if (ready.wait_for(std::chrono::milliseconds(kSingleNodeReadyWaitMs)) !=
        std::future_status::ready) {
      throw std::runtime_error("the node did not become ready within " +
                               std::to_string(kSingleNodeReadyWaitMs) + " ms");
    }
  }
}

void EngineImpl::start_core(ReplicationTransport* transport) {
  transport_ = transport;
  replication::InitialState init;
  const auto [epoch, voted_for] = core_reader_->hard_state();
  init.hard_state = replication::HardState{epoch, voted_for};
  for (const auto& e : core_reader_->epochs()) {
    init.epochs.push_back(replication::EpochRecord{e.number, e.position, e.id});
  }
  init.log_end = core_reader_->log_end();
  durable_end_ = init.log_end;
  // Recent event ids and the settings from what is on disk.
  auto tail = core_reader_->all(init.log_end, false, init.log_end, kRecentIdsWarmup);
  for (auto it = tail.rbegin(); it != tail.rend(); ++it) remember_id(*it);
  if (const auto s = core_reader_->last_record(kSettingsStream, init.log_end)) {
    settings_ = std::make_shared<SystemSettings>(parse_settings(s->data));
  }
  const auto& cc = config_.cluster;
  replication::Config rc;
  rc.self = cc.node_id;
  rc.cluster_size = cc.cluster_size;
  rc.priority = cc.node_priority;
  const int tick = std::max(1, cc.tick_ms);
  rc.heartbeat_ticks = std::max(1, cc.heartbeat_ms / tick);
  rc.election_ticks_min = std::max(2, cc.election_timeout_ms_min / tick);
  rc.election_ticks_max = std::max(rc.election_ticks_min + 1, cc.election_timeout_ms_max / tick);
  rc.append_bytes_max = kAppendBytesMax;
  rc.inflight_bytes_max = kReplicationInflightBytesMax;
  rc.seed = cc.seed != 0 ? cc.seed : std::random_device{}();
  log_reader_ = std::make_unique<StorageLogReader>(*core_reader_);
  core_ = std::make_unique<replication::Core>(rc, init, *log_reader_);
  process_ready();
  update_status();
  schedule_tick();
}

// ---------------------------------------------------------------- replication plumbing

void EngineImpl::schedule_tick() {
  tick_timer_.expires_after(std::chrono::milliseconds(std::max(1, config_.cluster.tick_ms)));
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || shut_down_) return;
    on_tick();
    schedule_tick();
  });
}

void EngineImpl::on_tick() {
  core_->tick();
  process_ready();
  check_commit_timeouts();
  update_status();
}

void EngineImpl::process_ready() {
  auto ready = core_->ready();
  if (ready.empty()) return;
  if (ready.hard_state) {
    try {
      hard_state_store_->save(ready.hard_state->epoch, ready.hard_state->voted_for);
    } catch (const std::exception& e) {
      // A vote that cannot be made durable must not be sent.
      on_storage_failure(e.what());
      return;
    }
  }
  if (ready.truncate_to) apply_truncation(*ready.truncate_to);
  if (!ready.append.empty()) apply_entries(std::move(ready.append));
  if (transport_) {
    for (const auto& m : ready.messages) transport_->send(m);
  }
  if (ready.role_changed) on_role_change();
  if (ready.commit_end) advance_commit();
}

void EngineImpl::apply_truncation(int64_t position) {
  generation_ += 1;
  LogBatch batch;
  batch.truncate_to = position;
  batch.generation = generation_;
  if (!writer_->submit(std::move(batch))) {
    on_storage_failure("the storage writer refused a truncation");
    return;
  }
  durable_end_ = std::min(durable_end_, position);
  while (!uncommitted_.empty() && uncommitted_.back().position.prepare >= position) {
    uncommitted_.pop_back();
  }
  for (auto it = recent_ids_.begin(); it != recent_ids_.end();) {
    it = it->second.position >= position ? recent_ids_.erase(it) : std::next(it);
  }
  // Stream versions and metadata may include truncated records: reload them on demand.
  streams_.clear();
  metadata_.clear();
}

void EngineImpl::apply_entries(std::vector<replication::Entry> entries) {
  LogBatch batch;
  batch.generation = generation_;
  for (auto& entry : entries) {
    // Our own proposals are at hand as records; only entries from a leader need decoding.
    std::optional<StoredEntry> stored;
    if (proposing_ != nullptr && proposing_next_ < proposing_->size() &&
        (*proposing_)[proposing_next_].position.prepare == entry.position) {
      stored = (*proposing_)[proposing_next_++];
    } else {
      stored = decode_entry(entry);
    }
    if (!stored) {
      on_storage_failure("undecodable log entry at position " + std::to_string(entry.position));
      return;
    }
    if (auto* r = std::get_if<EventRecord>(&*stored)) {
      remember_id(*r);
      auto it = streams_.find(r->stream);
      if (it != streams_.end()) {
        it->second.last_number = r->number;
        it->second.inflight += 1;
      }
      if (is_metastream(r->stream)) {
        metadata_[std::string(original_stream(r->stream))] =
            std::make_shared<StreamMetadata>(parse_metadata(r->data));
      }
      if (r->stream == kSettingsStream) {
        std::lock_guard lock(settings_mutex_);
        settings_ = std::make_shared<SystemSettings>(parse_settings(r->data));
      }
      if (r->stream.rfind("$user-", 0) == 0) {
        std::lock_guard lock(credentials_mutex_);
        credentials_.clear();
      }
      events_written_ += 1;
      bytes_written_ += static_cast<int64_t>(r->data.size() + r->metadata.size());
      uncommitted_.push_back(*r);
    }
    batch.entries.push_back(std::move(*stored));
  }
  if (!writer_->submit(std::move(batch))) {
    on_storage_failure("the storage writer queue is full or failed");
  }
}

void EngineImpl::on_durable(int64_t end, uint64_t generation, const FlushStats& flush) {
  flushes_ += 1;
  flush_duration_.observe(static_cast<double>(flush.duration_us) / 1e6);
  flush_size_.observe(static_cast<double>(flush.records));
  // A notice about writes made before the latest truncation says nothing about the log now.
  if (generation != generation_ || !core_) return;
  durable_end_ = std::max(durable_end_, end);
  core_->durable(end);
  process_ready();
  advance_commit();
}

void EngineImpl::advance_commit() {
  const int64_t visible = std::min(core_->commit_end(), durable_end_);
  if (visible <= visible_end_) return;
  visible_end_ = visible;
  committed_position_ = visible_end_ - 1;
  commit_end_ = visible_end_;
  // Publish committed events in log order, then answer the writers.
  while (!uncommitted_.empty() && uncommitted_.front().log_end <= visible_end_) {
    EventRecord record = std::move(uncommitted_.front());
    uncommitted_.pop_front();
    auto it = streams_.find(record.stream);
    if (it != streams_.end()) it->second.inflight = std::max(0, it->second.inflight - 1);
    publish(record);
  }
  while (!pending_.empty() && pending_.begin()->first <= visible_end_) {
    auto ack = std::move(pending_.begin()->second);
    pending_.erase(pending_.begin());
    ack.on_commit();
  }
  if (core_->role() == replication::Role::Leader && !leader_ready_ && !core_->epochs().empty() &&
      visible_end_ > core_->epochs().back().position) {
    on_leader_ready();
  }
  trim_stream_cache();
}

void EngineImpl::on_role_change() {
  if (core_->role() != replication::Role::Leader) {
    if (leader_ready_) {
      std::cerr << "chorus-worker: no longer leader (epoch " << core_->epoch() << ")" << std::endl;
    }
    leader_ready_ = false;
    // A deposed leader cannot know whether its pending writes will commit: they time out, and
    // the clients retry with the same event ids (idempotent on the new leader).
    fail_pending();
    transactions_.clear();
    open_transactions_ = 0;
  }
  update_status();
}

void EngineImpl::on_leader_ready() {
  leader_ready_ = true;
  // Everything before our epoch record is durable here now: reload versions from storage.
  streams_.clear();
  metadata_.clear();
  if (const auto s = core_reader_->last_record(kSettingsStream, durable_end_)) {
    std::lock_guard lock(settings_mutex_);
    settings_ = std::make_shared<SystemSettings>(parse_settings(s->data));
  }
  std::cerr << "chorus-worker: leading epoch " << core_->epoch() << " at position "
            << core_->epochs().back().position << std::endl;
  create_default_users();
  update_status();
}

void EngineImpl::fail_pending() {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [end, ack] : pending) ack.on_timeout();
}

void EngineImpl::on_storage_failure(const std::string& message) {
  // A failed write or fsync stops all later writes: what is on disk is no longer known.
  if (!storage_failure_.empty()) return;
  storage_failure_ = message;
  std::cerr << "chorus-worker: storage failure, writes stopped: " << message << std::endl;
  fail_pending();
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

void EngineImpl::add_pending(int64_t end, std::function<void()> on_commit,
                             std::function<void()> on_timeout) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(config_.commit_timeout_ms);
  pending_.emplace(end, PendingAck{deadline, std::move(on_commit), std::move(on_timeout)});
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

void EngineImpl::update_status() {
  NodeStatus s;
  const auto role = core_->role();
  if (role == replication::Role::Leader) {
    s.state = leader_ready_ ? "Leader" : "PreLeader";
    s.is_leader = leader_ready_;
    s.leader_id = core_->self();
    s.follower_durable = core_->follower_durable_ends();
  } else if (role == replication::Role::Candidate || !core_->leader()) {
    s.state = "Unknown";
  } else {
    s.leader_id = core_->leader();
    // Caught up: synced with the leader and holding (nearly) all it has committed. Under load
    // a follower is always a few writes behind the commit position; that is not catching up.
    const bool caught_up =
        core_->synced() && core_->leader_commit_end() - durable_end_ <= kCaughtUpSlackBytes;
    s.state = caught_up ? "Follower" : "CatchingUp";
  }
  if (!core_->epochs().empty()) {
    s.epoch_number = core_->epochs().back().number;
    s.epoch_position = core_->epochs().back().position;
    s.epoch_id = core_->epochs().back().id;
  }
  s.writer_checkpoint = durable_end_;
  s.chaser_checkpoint = durable_end_;
  s.commit_checkpoint = visible_end_;
  s.elections = core_->elections_started();
  {
    std::lock_guard lock(status_mutex_);
    status_ = std::move(s);
  }
  if (!ready_signalled_ && leader_ready_ && committed_last_number(user_stream("ops"))) {
    ready_signalled_ = true;
    ready_promise_.set_value();
  }
}

NotHandledReason EngineImpl::refusal() const {
  if (core_ && core_->role() == replication::Role::Leader && leader_ready_) {
    return NotHandledReason::None;
  }
  if (core_ && core_->role() == replication::Role::Follower && core_->leader()) {
    return NotHandledReason::NotLeader;
  }
  return NotHandledReason::NotReady;
}

SystemSettings EngineImpl::current_settings() const {
  std::lock_guard lock(settings_mutex_);
  return *settings_;
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
    if (stream_state(user_stream(b.login)).last_number >= 0) continue;
    const auto user = make_user(b.login, b.full_name, {b.group}, "changeit");
    NewEvent e{random_guid(), kUserEventType, true, false, user_to_json(user), ""};
    do_append(system_principal(), user_stream(b.login), kExpectedNoStream, {e}, false,
              [](const WriteResult&) {});
    NewEvent link{random_guid(), kUserEventType, false, false, b.login, ""};
    do_append(system_principal(), kUsersStream, kExpectedAny, {link}, false,
              [](const WriteResult&) {});
  }
}

// ---------------------------------------------------------------- stream state

StreamState& EngineImpl::stream_state(const std::string& stream) {
  auto it = streams_.find(stream);
  if (it != streams_.end()) return it->second;
  StreamState s;
  if (const auto last = core_reader_->last_record(stream, durable_end_)) {
    s.last_number = last->number;
  }
  return streams_.emplace(stream, s).first->second;
}

std::shared_ptr<const StreamMetadata> EngineImpl::metadata_of(const std::string& stream) {
  auto it = metadata_.find(stream);
  if (it != metadata_.end()) return it->second;
  auto m =
      std::make_shared<StreamMetadata>(committed_metadata(*core_reader_, stream, durable_end_));
  return metadata_.emplace(stream, std::move(m)).first->second;
}

StreamWriteState EngineImpl::write_state(const std::string& stream) {
  StreamWriteState w;
  const auto last = stream_state(stream).last_number;
  w.last_event_number = last;
  w.tombstoned = last == kDeletedStreamNumber;
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
  auto [it, inserted] = recent_ids_.insert_or_assign(
      r.event_id, IdEntry{r.stream, r.number, r.position.prepare, r.log_end});
  if (inserted) recent_order_.push_back(r.event_id);
  while (recent_order_.size() > kRecentIdsMax) {
    recent_ids_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

void EngineImpl::trim_stream_cache() {
  if (streams_.size() <= kStreamCacheMax && metadata_.size() <= kStreamCacheMax) return;
  for (auto it = streams_.begin(); it != streams_.end() && streams_.size() > kStreamCacheMax / 2;) {
    it = it->second.inflight == 0 ? streams_.erase(it) : std::next(it);
  }
  if (metadata_.size() > kStreamCacheMax) metadata_.clear();
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

bool EngineImpl::propose_records(std::vector<EventRecord>& records) {
  if (!storage_failure_.empty() || refusal() != NotHandledReason::None) return false;
  for (auto& r : records) stream_state(r.stream);  // cached before the records are in flight
  std::vector<std::string> payloads;
  payloads.reserve(records.size());
  for (const auto& r : records) payloads.push_back(encode_record(r));
  const auto entries = core_->propose(std::move(payloads), false);
  if (!entries) return false;
  for (size_t i = 0; i < records.size(); ++i) {
    records[i].position = Position{(*entries)[i].end, (*entries)[i].position};
    records[i].log_end = (*entries)[i].end;
  }
  proposing_ = &records;
  proposing_next_ = 0;
  process_ready();  // hands the entries to storage
  proposing_ = nullptr;
  // The followers get the entries once the writes already queued on the core thread are
  // proposed too: one Append per burst instead of one per client write.
  if (!appends_scheduled_) {
    appends_scheduled_ = true;
    on_core([this] {
      appends_scheduled_ = false;
      if (!core_ || shut_down_) return;
      core_->send_pending_appends();
      process_ready();
    });
  }
  return storage_failure_.empty();
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
  if (const auto why = refusal(); why != NotHandledReason::None) {
    r.not_handled = why;
    return done(r);
  }
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
  if (check_acl && !check_access(stream, StreamAccess::Write, who, *metadata, current_settings())) {
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
      r.position = Position{entry.end, entry.position};
      if (entry.end <= visible_end_) return done(r);
      add_pending(
          entry.end, [done, r] { done(r); },
          [done, r] {
            WriteResult t = r;
            t.result = OperationResult::CommitTimeout;
            t.message = "Commit timeout.";
            done(t);
          });
      return;
    }
    case WriteDecision::Append:
      break;
  }
  if (events.empty()) {
    r.first_event_number = state.last_event_number + 1;
    r.last_event_number = state.last_event_number;
    r.position = Position{commit_end_, committed_position_};
    return done(r);
  }
  std::vector<EventRecord> records;
  const int64_t first = state.last_event_number + 1;
  if (state.soft_deleted && !is_metastream(stream)) {
    // Writing to a soft-deleted stream undeletes it: old events stay hidden behind $tb.
    const auto meta_stream = metastream_of(stream);
    const auto old = core_reader_->last_record(meta_stream, durable_end_);
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
  if (!propose_records(records)) {
    return fail(OperationResult::PrepareTimeout, "The node could not take the write.");
  }
  r.first_event_number = first;
  r.last_event_number = first + static_cast<int64_t>(events.size()) - 1;
  r.position = records.back().position;
  add_pending(
      records.back().log_end, [done, r] { done(r); },
      [done, r]() mutable {
        r.result = OperationResult::CommitTimeout;
        r.message = "Commit timeout.";
        done(r);
      });
}

void EngineImpl::do_delete(const Principal& who, const std::string& stream, int64_t expected,
                           bool hard, std::function<void(DeleteResult)> done) {
  DeleteResult r;
  auto fail = [&](OperationResult result, std::string message) {
    r.result = result;
    r.message = std::move(message);
    done(r);
  };
  if (const auto why = refusal(); why != NotHandledReason::None) {
    r.not_handled = why;
    return done(r);
  }
  if (!storage_failure_.empty()) return fail(OperationResult::PrepareTimeout, "Storage failed.");
  if (stream.empty()) return fail(OperationResult::InvalidTransaction, "Empty stream name.");
  const auto metadata = metadata_of(std::string(original_stream(stream)));
  if (!check_access(stream, StreamAccess::Delete, who, *metadata, current_settings())) {
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
  if (!propose_records(records)) {
    return fail(OperationResult::PrepareTimeout, "The node could not take the delete.");
  }
  r.position = records.back().position;
  add_pending(
      records.back().log_end, [done, r] { done(r); },
      [done, r]() mutable {
        r.result = OperationResult::CommitTimeout;
        r.message = "Commit timeout.";
        done(r);
      });
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
  on_core(
      [this, who = std::move(who), stream = std::move(stream), expected, done = std::move(done)] {
        TransactionResult r;
        if (const auto why = refusal(); why != NotHandledReason::None) {
          r.not_handled = why;
          return done(r);
        }
        // Expected version and deleted state are checked at commit, as EventStore does.
        const auto metadata = metadata_of(std::string(original_stream(stream)));
        if (stream.empty() ||
            !check_access(stream, StreamAccess::Write, who, *metadata, current_settings())) {
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
    if (const auto why = refusal(); why != NotHandledReason::None) {
      r.not_handled = why;
      return done(r);
    }
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
    if (const auto why = refusal(); why != NotHandledReason::None) {
      TransactionResult r;
      r.transaction_id = id;
      r.not_handled = why;
      return done(r);
    }
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
                r.not_handled = w.not_handled;
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
    if (!check_access(target, StreamAccess::Read, who, *metadata, current_settings())) {
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

void EngineImpl::receive(replication::Message message) {
  on_core([this, message = std::move(message)] {
    if (!core_ || shut_down_) return;
    core_->step(message);
    process_ready();
  });
}

void EngineImpl::set_peers(std::vector<std::string> node_ids) {
  on_core([this, node_ids = std::move(node_ids)] {
    if (!core_ || shut_down_) return;
    core_->set_peers(node_ids);
    process_ready();
  });
}

NodeStatus EngineImpl::status() const {
  std::lock_guard lock(status_mutex_);
  return status_;
}

void EngineImpl::resign() {
  on_core([this] {
    if (!core_) return;
    core_->resign();
    process_ready();
    update_status();
  });
}

EngineStats EngineImpl::stats() const {
  EngineStats s;
  {
    std::lock_guard lock(status_mutex_);
    s.commit_checkpoint = status_.commit_checkpoint;
    s.writer_checkpoint = status_.writer_checkpoint;
    s.chaser_checkpoint = status_.chaser_checkpoint;
  }
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
    tick_timer_.cancel();
    fail_pending();
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

std::unique_ptr<Engine> Engine::open(const EngineConfig& config, ReplicationTransport* transport) {
  return std::make_unique<EngineImpl>(config, transport);
}

}  // namespace chorus
