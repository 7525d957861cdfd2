// EngineImpl: one database node, composed of its parts: the ReplicationRuntime (core, storage
// writer, ticks), the WritePath (EventStore's write rules), the SubscriptionHub (live
// subscriptions, delivered off the core thread) and the LeaderServices (what runs only while this
// node leads). The core thread owns the runtime, the write path and the hub's registry; reader
// threads answer reads from SQLite bounded by the visible commit position (committed by a
// majority and durable here).
#include "worker/engine/engine.hpp"

#include "common/thread_name.hpp"
#include "worker/engine/acl.hpp"
#include "worker/engine/builtin_user_gate.hpp"
#include "worker/engine/credentials.hpp"
#include "worker/engine/reads.hpp"
#include "worker/engine/replication_runtime.hpp"
#include "worker/engine/scavenger.hpp"
#include "worker/engine/storage.hpp"
#include "worker/engine/users.hpp"
#include "worker/engine/write_path.hpp"
#include "worker/services/leader_services.hpp"
#include "worker/services/persistent_subscriptions.hpp"
#include "worker/services/system_projections.hpp"
#include "worker/services/user_bootstrap.hpp"
#include "worker/services/user_projections.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <latch>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace chorus {
namespace {

namespace asio = boost::asio;

// Limits of the engine (one place, with their reasons).
// Event ids loaded from the end of the log at start, so retries after a restart are recognised.
constexpr int kRecentIdsWarmup = 100'000;
// Live subscriptions per node.
constexpr size_t kSubscriptionsMax = 100'000;
// Password checks (PBKDF2) use at most a quarter of the cores, so a flood of wrong passwords
// leaves the rest to everything else; at least one thread.
constexpr unsigned kPasswordCheckCoreShare = 4;
// A single node waits this long at start to elect itself and create the built-in users.
constexpr int kSingleNodeReadyWaitMs = 30'000;

// Names each of a pool's `threads` threads `prefix` + its number (or `prefix` alone for one), so
// that `top -H` and perf tell them apart. Each task waits until all have started, so each runs on
// a thread of its own. The tasks share the latch: the caller's wait may return while the others
// are still inside arrive_and_wait, and a latch on the caller's stack was then gone under them
// (they waited for ever on reused memory: one reader thread left, and shutdown hung joining).
void name_pool_threads(asio::thread_pool& pool, int threads, const std::string& prefix) {
  auto started = std::make_shared<std::latch>(threads);
  for (int i = 0; i < threads; ++i) {
    asio::post(pool, [started, name = threads == 1 ? prefix : prefix + std::to_string(i)] {
      set_thread_name(name);
      started->arrive_and_wait();
    });
  }
  started->wait();
}

// A record whose change may change who some credentials belong to: a user record, or the
// metadata of a user stream (a soft delete).
bool is_user_record(const std::string& stream) {
  return stream.rfind("$user-", 0) == 0 || stream.rfind("$$user-", 0) == 0;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Passes a read's events on and counts them (and the data bytes of events read), as the read
// statistics count a result's events.
class CountingSink final : public ReadSink {
 public:
  explicit CountingSink(ReadSink& next) : next_(next) {}
  void start(const Position& from) override { next_.start(from); }
  void expect(size_t rows_max) override { next_.expect(rows_max); }
  void discard() override {
    events = 0;
    bytes = 0;
    next_.discard();
  }
  void row(const RecordView& record) override {
    ++events;
    bytes += static_cast<int64_t>(record.data.size());
    next_.row(record);
  }
  void resolved(const ResolvedEvent& event) override {
    ++events;
    if (event.event) bytes += static_cast<int64_t>(event.event->data.size());
    next_.resolved(event);
  }
  int64_t events = 0;
  int64_t bytes = 0;

 private:
  ReadSink& next_;
};

class EngineImpl final : public Engine, private RuntimeListener, private WriteStore {
 public:
  EngineImpl(const EngineConfig& config, ReplicationTransport* transport);
  ~EngineImpl() override { shutdown(); }

  void authenticate(std::string login, std::string password,
                    std::function<void(AuthResult)> done) override;
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
  void read_stream_into(Principal who, std::string stream, int64_t from, int32_t max_count,
                        bool forward, bool resolve_links, std::shared_ptr<ReadSink> sink,
                        std::function<void(ReadStreamResult)> done) override;
  void read_all_into(Principal who, Position from, int32_t max_count, bool forward,
                     bool resolve_links, std::shared_ptr<ReadSink> sink,
                     std::function<void(ReadAllResult)> done) override;
  uint64_t subscribe(Principal who, std::string stream, bool resolve_links,
                     SubscriptionCallbacks callbacks) override;
  void unsubscribe(uint64_t id) override;
  void forget_subscription(uint64_t id) override;
  void when_visible(int64_t log_end, std::function<void(bool visible)> done) override;
  uint64_t credentials_generation() const override { return credentials_->generation(); }
  int64_t committed_position() const override { return committed_position_.load(); }
  EngineStats stats() const override;
  PersistentApi& persistent() override { return *persistent_; }
  void list_projections(std::function<void(projections::ProjectionListResult)> done) override;
  void create_projection(Principal who, std::string mode, std::string name, std::string query,
                         bool emit, bool track_emitted_streams,
                         std::function<void(projections::ProjectionReply)> done) override;
  void delete_projection(Principal who, std::string name,
                         std::function<void(projections::ProjectionReply)> done) override;
  void projection_state(std::string name, std::string partition, bool result,
                        std::function<void(projections::ProjectionReply)> done) override;
  void projection_query(std::string name,
                        std::function<void(projections::ProjectionReply)> done) override;
  void projection_command(Principal who, std::string name, std::string command,
                          std::function<void(projections::ProjectionReply)> done) override;
  void update_projection_query(Principal who, std::string name, std::string query,
                               std::function<void(projections::ProjectionReply)> done) override;
  void manage_projection(Principal who, projections::ProjectionManagement request,
                         std::function<void(projections::ProjectionReply)> done) override;
  ScavengeStart start_scavenge(int64_t start_from_chunk, ScavengeLog log) override {
    return scavenger_->start(start_from_chunk, std::move(log));
  }
  std::optional<ScavengeState> current_scavenge() const override { return scavenger_->current(); }
  std::optional<ScavengeState> find_scavenge(const std::string& id) const override {
    return scavenger_->find(id);
  }
  bool stop_scavenge(const std::string& id) override { return scavenger_->stop(id); }
  int64_t core_tick_age_ms() const override;
  bool storage_failed() const override { return runtime_->storage_failed_any_thread(); }
  void receive(replication::Message message) override;
  void set_peers(std::vector<std::string> node_ids) override;
  void peer_lost(std::string node_id) override;
  void leader_progress(std::string node_id, int64_t epoch) override;
  NodeStatus status() const override;
  bool is_leader() const override { return runtime_->is_leader_any_thread(); }
  void resign() override;
  void announce_commit() override;
  void shutdown() override;

 private:
  // --- core thread ---
  void start_core(ReplicationTransport* transport);
  void on_record_appended(const EventRecord& record) override;
  void on_truncated(int64_t position) override;
  void on_visible(int64_t visible_end) override;
  void on_record_committed(const std::shared_ptr<const EventRecord>& record) override;
  void on_leader_ready() override;
  void on_leadership_lost() override;
  std::optional<EventRecord> last_record(const std::string& stream) override;
  std::optional<EventRecord> last_record_before(const std::string& stream,
                                                int64_t position) override;
  std::optional<EventRecord> record(const std::string& stream, int64_t number) override;
  std::optional<int64_t> committed_last_number(const std::string& stream);
  void maybe_signal_ready();
  void forget_credentials();
  // The built-in users' gate (builtin_user_gate.hpp).
  void gate_check(std::string login, std::string password, std::function<void(AuthResult)> reply);
  bool settle_builtin(size_t index);
  bool applied_cluster_commit();
  void settle_builtin_users();
  bool has_committed_trace(const std::string& stream);
  void arm_gate_timer();
  void drain_gate();
  void publish_settings();
  void add_persistent_context(LeaderContext& context);
  std::optional<UserRecord> committed_user(const std::string& login);

  // --- any thread ---
  ReadView read_view() const;
  template <class F>
  void on_core(F&& f) {
    asio::post(core_io_, std::forward<F>(f));
  }

  EngineConfig config_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<ReadPool> read_pool_;
  std::unique_ptr<asio::io_context> owned_core_io_;  // null when config.core_io is given
  asio::io_context& core_io_;
  asio::executor_work_guard<asio::io_context::executor_type> core_work_;
  std::thread core_thread_;
  std::unique_ptr<asio::thread_pool> readers_;
  std::atomic<bool> shut_down_{false};
  std::mutex shutdown_mutex_;
  std::promise<void> ready_promise_;
  bool ready_signalled_ = false;

  // Core-thread state.
  std::unique_ptr<ReadConnection> core_reader_;
  std::unique_ptr<ReplicationRuntime> runtime_;
  std::unique_ptr<WritePath> write_path_;
  std::unique_ptr<LeaderServices> services_;
  PersistentSubscriptions* persistent_ = nullptr;    // owned by services_
  SystemProjections* system_projections_ = nullptr;  // owned by services_; null when off
  UserProjections* user_projections_ = nullptr;      // owned by services_; null when off
  // The hub's registry is core-thread state; its reader belongs to its delivery thread.
  std::unique_ptr<ReadConnection> hub_reader_;
  std::unique_ptr<SubscriptionHub> hub_;
  std::atomic<uint64_t> next_subscription_id_{1};

  // Shared with other threads.
  std::atomic<int64_t> committed_position_{-1};  // reads see positions <= this
  std::atomic<int64_t> commit_end_{0};           // the head for reads from the end
  mutable std::mutex settings_mutex_;
  std::shared_ptr<const SystemSettings> settings_ = std::make_shared<SystemSettings>();
  std::shared_ptr<const SystemSettings> published_settings_;  // core thread: settings_'s source
  std::unique_ptr<CredentialChecker> credentials_;
  std::unique_ptr<asio::thread_pool> auth_answers_;  // one thread: delivers checker answers
  BuiltinUserGate builtin_gate_;                     // open() any thread; the rest core thread
  std::unique_ptr<asio::steady_timer> gate_timer_;   // core thread: the earliest held deadline
  bool gate_timer_armed_ = false;
  // Core thread: the commit end a leader announced when the gate first looked (a follower must
  // make it visible before the gate opens); reset when the gate opens for a login.
  std::optional<int64_t> gate_commit_target_;
  std::unique_ptr<Scavenger> scavenger_;

  // Statistics.
  std::atomic<int64_t> events_read_{0}, bytes_read_{0}, subscription_count_{0},
      open_transactions_{0};
};

EngineImpl::EngineImpl(const EngineConfig& config, ReplicationTransport* transport)
    : config_(config),
      owned_core_io_(config.core_io ? nullptr : std::make_unique<asio::io_context>()),
      core_io_(config.core_io ? *config.core_io : *owned_core_io_),
      core_work_(asio::make_work_guard(core_io_)) {
  db_ = std::make_unique<Database>(StorageLocation{config.db_folder, config.in_memory});
  core_reader_ = std::make_unique<ReadConnection>(*db_);
  hub_reader_ = std::make_unique<ReadConnection>(*db_);
  read_pool_ = std::make_unique<ReadPool>(*db_, std::max(1, config.reader_threads));
  const int reader_threads = std::max(1, config.reader_threads);
  readers_ = std::make_unique<asio::thread_pool>(static_cast<size_t>(reader_threads));
  name_pool_threads(*readers_, reader_threads, "reader-");
  CredentialLimits credential_limits;
  credential_limits.threads =
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency() / kPasswordCheckCoreShare));
  auth_answers_ = std::make_unique<asio::thread_pool>(1);
  name_pool_threads(*auth_answers_, 1, "auth-answers");
  credentials_ = std::make_unique<CredentialChecker>(
      [this](const std::string& login) { return committed_user(login); }, credential_limits);
  gate_timer_ = std::make_unique<asio::steady_timer>(core_io_);
  // A change of role or of the leader may let this node answer the built-in users' checks.
  config_.on_status_change = [this, outer = config_.on_status_change] {
    settle_builtin_users();
    if (outer) outer();
  };
  RuntimeListener& listener = *this;
  WriteStore& store = *this;
  runtime_ = std::make_unique<ReplicationRuntime>(config_, *db_, core_io_, listener);
  write_path_ =
      std::make_unique<WritePath>(store, *runtime_, now_ms, config_.transaction_timeout_ms);
  ScavengeHooks scavenge_hooks;
  scavenge_hooks.committed_end = [this] { return commit_end_.load(); };
  scavenge_hooks.run = [this](MaintenanceJob job) {
    return runtime_->submit_maintenance(std::move(job));
  };
  scavenge_hooks.node_endpoint = config_.cluster.endpoint;
  scavenger_ = std::make_unique<Scavenger>(*db_, std::move(scavenge_hooks));
  hub_ =
      std::make_unique<SubscriptionHub>([this](const EventRecord& record, const Principal& who,
                                               bool resolve_links) -> std::optional<ResolvedEvent> {
        if (!resolve_links || record.event_type != kLinkEventType) return std::nullopt;
        return resolve(*hub_reader_, read_view(), who, record, true);
      });
  LeaderContext context;
  context.append = [this](const Principal& who, const std::string& stream, int64_t expected,
                          std::vector<NewEvent> events, std::function<void(WriteResult)> done) {
    write_path_->append(who, stream, expected, std::move(events), false, std::move(done));
  };
  context.last_number = [this](const std::string& stream) {
    return write_path_->last_number(stream);
  };
  add_persistent_context(context);
  services_ = std::make_unique<LeaderServices>(std::move(context));
  services_->add(std::make_unique<UserBootstrap>(
      DefaultPasswords{config.default_admin_password, config.default_ops_password}));
  auto persistent = std::make_unique<PersistentSubscriptions>(
      [this](std::function<void()> work) { on_core(std::move(work)); }, now_ms);
  persistent_ = persistent.get();
  services_->add(std::move(persistent));
  if (config.run_system_projections) {
    const auto& all = projections::kSystemProjections;
    std::vector<projections::SystemProjection> started;
    if (config.start_standard_projections) started.assign(all.begin(), all.end());
    auto system = std::make_unique<SystemProjections>(std::move(started), now_ms);
    system_projections_ = system.get();
    services_->add(std::move(system));
  }
  if (config.run_user_projections) {
    auto user = std::make_unique<UserProjections>(
        config.projection_threads, [this](std::function<void()> work) { on_core(std::move(work)); },
        now_ms);
    user_projections_ = user.get();
    services_->add(std::move(user));
  }

  auto ready = ready_promise_.get_future();
  on_core([this, transport] { start_core(transport); });
  core_thread_ = std::thread([this] {
    set_thread_name("core");
    core_io_.run();
  });
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

// What the persistent-subscription service needs beyond appends: deletes, reads on the reader
// pool answered on the core thread, ACL checks, timers and the commit position.
void EngineImpl::add_persistent_context(LeaderContext& context) {
  context.delete_stream = [this](const Principal& who, const std::string& stream, int64_t expected,
                                 bool hard, std::function<void(DeleteResult)> done) {
    write_path_->delete_stream(who, stream, expected, hard, std::move(done));
  };
  context.read_stream = [this](const std::string& stream, int64_t from, int32_t count, bool forward,
                               bool resolve_links, std::function<void(ReadStreamResult)> done) {
    asio::post(*readers_, [this, stream, from, count, forward, resolve_links,
                           done = std::move(done)]() mutable {
      ReadStreamResult r;
      try {
        auto c = read_pool_->borrow();
        const Principal system{"$system", {"$admins"}};
        r = chorus::read_stream(*c, read_view(), system, stream, from, count, forward,
                                resolve_links);
      } catch (const std::exception& e) {
        r.status = ReadStreamStatus::Error;
        r.error = e.what();
      }
      on_core([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    });
  };
  context.read_all = [this](Position from, int32_t count, bool resolve_links,
                            std::function<void(ReadAllResult)> done) {
    asio::post(*readers_, [this, from, count, resolve_links, done = std::move(done)]() mutable {
      ReadAllResult r;
      try {
        auto c = read_pool_->borrow();
        const Principal system{"$system", {"$admins"}};
        r = chorus::read_all(*c, read_view(), system, from, count, true, resolve_links);
      } catch (const std::exception& e) {
        r.status = ReadAllStatus::Error;
        r.error = e.what();
      }
      on_core([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    });
  };
  context.can_access = [this](const std::string& stream, StreamAccess access,
                              const Principal& who) {
    return write_path_->can_access(stream, access, who);
  };
  context.after = [this](int delay_ms, std::function<void()> work) {
    auto timer =
        std::make_shared<asio::steady_timer>(core_io_, std::chrono::milliseconds(delay_ms));
    timer->async_wait(
        [this, timer, work = std::move(work)](const boost::system::error_code& error) {
          if (!error && !shut_down_) work();
        });
  };
  context.commit_position = [this] { return committed_position_.load(); };
}

void EngineImpl::list_projections(std::function<void(projections::ProjectionListResult)> done) {
  on_core([this, done = std::move(done)] {
    projections::ProjectionListResult r;
    if (!services_->running()) {
      r.not_handled = NotHandledReason::NotLeader;
    } else {
      if (system_projections_ != nullptr) r.projections = system_projections_->describe();
      if (user_projections_ != nullptr) {
        for (auto& s : user_projections_->describe()) r.projections.push_back(std::move(s));
      }
    }
    done(std::move(r));
  });
}

namespace {

projections::ProjectionReply projection_reply(NotHandledReason not_handled,
                                              projections::ProjectionOutcome outcome,
                                              std::string message) {
  projections::ProjectionReply r;
  r.not_handled = not_handled;
  r.outcome = outcome;
  r.message = std::move(message);
  return r;
}

}  // namespace

// Runs `work` with the user projections on the core thread, or answers why it cannot.
template <class Work>
void with_user_projections(bool leading, UserProjections* service,
                           const std::function<void(projections::ProjectionReply)>& done,
                           Work&& work) {
  using projections::ProjectionOutcome;
  if (!leading) return done(projection_reply(NotHandledReason::NotLeader, {}, ""));
  if (service == nullptr) {
    return done(projection_reply(NotHandledReason::None, ProjectionOutcome::NotFound,
                                 "User projections are off (--run-projections=All serves them)."));
  }
  work(*service);
}

// Runs `work` with the standard projection named `name` when it is one (and they run here);
// false when `name` is not a standard projection's.
template <class Work>
bool with_system_projection(bool leading, SystemProjections* service, const std::string& name,
                            const std::function<void(projections::ProjectionReply)>& done,
                            Work&& work) {
  const auto p = projections::system_projection_named(name);
  if (!p) return false;
  if (!leading) {
    done(projection_reply(NotHandledReason::NotLeader, {}, ""));
  } else if (service == nullptr) {
    done(projection_reply(NotHandledReason::None, projections::ProjectionOutcome::NotFound,
                          "The standard projections are off (--run-projections)."));
  } else {
    work(*service, *p);
  }
  return true;
}

void EngineImpl::create_projection(Principal who, std::string mode, std::string name,
                                   std::string query, bool emit, bool track_emitted_streams,
                                   std::function<void(projections::ProjectionReply)> done) {
  on_core([this, who = std::move(who), mode = std::move(mode), name = std::move(name),
           query = std::move(query), emit, track_emitted_streams,
           done = std::move(done)]() mutable {
    with_user_projections(services_->running(), user_projections_, done, [&](UserProjections& u) {
      if (mode != "transient" && mode != "continuous" && mode != "onetime") {
        return done(projection_reply(NotHandledReason::None,
                                     projections::ProjectionOutcome::Invalid,
                                     "Unknown projection mode " + mode + "."));
      }
      if (projections::system_projection_named(name)) {
        return done(projection_reply(NotHandledReason::None, projections::ProjectionOutcome::Exists,
                                     "Projection " + name + " exists."));
      }
      u.create(who, mode, name, query, emit, track_emitted_streams, std::move(done));
    });
  });
}

void EngineImpl::delete_projection(Principal who, std::string name,
                                   std::function<void(projections::ProjectionReply)> done) {
  projections::ProjectionManagement request;
  request.kind = projections::ProjectionManagement::Kind::Delete;
  request.name = std::move(name);
  manage_projection(std::move(who), std::move(request), std::move(done));
}

void EngineImpl::projection_state(std::string name, std::string partition, bool result,
                                  std::function<void(projections::ProjectionReply)> done) {
  on_core([this, name = std::move(name), partition = std::move(partition), result,
           done = std::move(done)]() mutable {
    with_user_projections(services_->running(), user_projections_, done, [&](UserProjections& u) {
      u.state(name, partition, result, std::move(done));
    });
  });
}

void EngineImpl::projection_command(Principal who, std::string name, std::string command,
                                    std::function<void(projections::ProjectionReply)> done) {
  on_core([this, who = std::move(who), name = std::move(name), command = std::move(command),
           done = std::move(done)]() mutable {
    const bool system =
        with_system_projection(services_->running(), system_projections_, name, done,
                               [&](SystemProjections& s, projections::SystemProjection p) {
                                 s.command(who, p, command, std::move(done));
                               });
    if (system) return;
    with_user_projections(services_->running(), user_projections_, done, [&](UserProjections& u) {
      u.command(who, name, command, std::move(done));
    });
  });
}

void EngineImpl::update_projection_query(Principal who, std::string name, std::string query,
                                         std::function<void(projections::ProjectionReply)> done) {
  projections::ProjectionManagement request;
  request.kind = projections::ProjectionManagement::Kind::UpdateQuery;
  request.name = std::move(name);
  request.body = std::move(query);
  manage_projection(std::move(who), std::move(request), std::move(done));
}

void EngineImpl::projection_query(std::string name,
                                  std::function<void(projections::ProjectionReply)> done) {
  on_core([this, name = std::move(name), done = std::move(done)]() mutable {
    const bool system = with_system_projection(
        services_->running(), system_projections_, name, done,
        [&](SystemProjections& s, projections::SystemProjection p) { s.query(p, done); });
    if (system) return;
    with_user_projections(services_->running(), user_projections_, done,
                          [&](UserProjections& u) { u.query(name, std::move(done)); });
  });
}

void EngineImpl::manage_projection(Principal who, projections::ProjectionManagement request,
                                   std::function<void(projections::ProjectionReply)> done) {
  on_core([this, who = std::move(who), request = std::move(request),
           done = std::move(done)]() mutable {
    using Kind = projections::ProjectionManagement::Kind;
    const bool system =
        with_system_projection(services_->running(), system_projections_, request.name, done,
                               [&](SystemProjections& s, projections::SystemProjection p) {
                                 s.manage(who, p, request, std::move(done));
                               });
    if (system) return;
    with_user_projections(services_->running(), user_projections_, done, [&](UserProjections& u) {
      if (request.kind == Kind::Delete) return u.remove(who, request, std::move(done));
      if (request.kind == Kind::UpdateQuery) {
        return u.update_query(who, request.name, request.body, request.emit, std::move(done));
      }
      u.config(who, request, std::move(done));
    });
  });
}

void EngineImpl::start_core(ReplicationTransport* transport) {
  // Recent event ids and the settings from what is on disk (the settings take effect once
  // visible: the end of the log may be an uncommitted suffix).
  const int64_t end = core_reader_->log_end();
  auto tail = core_reader_->all(end, false, end, kRecentIdsWarmup);
  for (auto it = tail.rbegin(); it != tail.rend(); ++it) write_path_->warm_up(*it);
  write_path_->load_settings(core_reader_->last_record(kSettingsStream, end));
  runtime_->start(transport, *core_reader_);
}

// ---------------------------------------------------------------- what the runtime reports

void EngineImpl::on_record_appended(const EventRecord& record) {
  write_path_->on_record_appended(record);
  if (is_user_record(record.stream)) forget_credentials();
}

void EngineImpl::on_truncated(int64_t position) { write_path_->on_truncated(position); }

void EngineImpl::on_visible(int64_t visible_end) {
  committed_position_ = visible_end - 1;
  commit_end_ = visible_end;
  write_path_->on_visible(visible_end);
  publish_settings();
  settle_builtin_users();
}

// Reads check ACLs against the write path's committed settings; copied when they change.
void EngineImpl::publish_settings() {
  auto current = write_path_->settings();
  if (current == published_settings_) return;
  published_settings_ = current;
  std::lock_guard lock(settings_mutex_);
  settings_ = std::move(current);
}

void EngineImpl::on_record_committed(const std::shared_ptr<const EventRecord>& record) {
  write_path_->on_record_committed(*record);
  if (record->stream == kSettingsStream) publish_settings();
  // After on_visible: a check that starts now reads this record; one that read the previous
  // record is not cached (the checker's generation moved on).
  if (is_user_record(record->stream)) forget_credentials();
  if (record->stream.rfind("$user-", 0) == 0) maybe_signal_ready();
  hub_->publish(record);
  services_->on_record_committed(*record);
}

void EngineImpl::on_leader_ready() {
  write_path_->on_leader_ready();
  services_->start_all();
  maybe_signal_ready();
  settle_builtin_users();
}

void EngineImpl::on_leadership_lost() {
  services_->stop_all();
  write_path_->on_leadership_lost();
  open_transactions_ = 0;
}

std::optional<EventRecord> EngineImpl::last_record(const std::string& stream) {
  return core_reader_->last_record(stream, runtime_->durable_end());
}

std::optional<EventRecord> EngineImpl::last_record_before(const std::string& stream,
                                                          int64_t position) {
  return core_reader_->last_record(stream, position - 1);
}

std::optional<EventRecord> EngineImpl::record(const std::string& stream, int64_t number) {
  return core_reader_->record(stream, number, runtime_->durable_end());
}

std::optional<int64_t> EngineImpl::committed_last_number(const std::string& stream) {
  const auto last = core_reader_->last_record(stream, committed_position_.load());
  if (!last) return std::nullopt;
  return last->number;
}

void EngineImpl::maybe_signal_ready() {
  if (ready_signalled_ || !runtime_->leader_ready()) return;
  if (!committed_last_number(user_stream("ops"))) return;
  ready_signalled_ = true;
  ready_promise_.set_value();
}

void EngineImpl::forget_credentials() { credentials_->forget_all(); }

// ---------------------------------------------------------------- the built-in users' gate

// A check of a built-in login whose gate is closed: on at once if it opens now, else held. A
// check the gate gives up on (its deadline, too many held, shutdown) is answered not ready,
// whatever its password: this node cannot tell yet, and saying "wrong password" would send an
// operator after a password that may be right.
void EngineImpl::gate_check(std::string login, std::string password,
                            std::function<void(AuthResult)> reply) {
  const size_t index = BuiltinUserGate::index_of(login).value();
  CredentialChecker::Done answer = [reply](std::optional<Principal> who) {
    reply(AuthResult{std::move(who)});
  };
  if (!shut_down_ && settle_builtin(index)) {
    credentials_->check(std::move(login), std::move(password), std::move(answer));
    return;
  }
  auto resume = [this, login, password, answer, reply](bool proceed) mutable {
    if (!proceed) return reply(AuthResult::unavailable());
    credentials_->check(std::move(login), std::move(password), std::move(answer));
  };
  if (shut_down_ || !builtin_gate_.hold(index, steady_now_ms(), std::move(resume))) {
    reply(AuthResult::unavailable());  // too many checks held already, or shutting down
    return;
  }
  arm_gate_timer();
}

// Opens the gate of built-in login `index` once this node has applied all the cluster committed
// that it can know of, and the login's stream has a committed trace here; the held checks then
// read the user's record like any other. True when open.
bool EngineImpl::settle_builtin(size_t index) {
  if (builtin_gate_.is_open(index)) return true;
  if (!applied_cluster_commit()) return false;
  if (!has_committed_trace(user_stream(BuiltinUserGate::login_at(index)))) return false;
  gate_commit_target_.reset();  // the next login's first look takes the leader's word anew
  for (auto& resume : builtin_gate_.open_now(index)) resume(true);
  return true;
}

// This node has applied all the cluster committed before the gate looked, as far as it can
// know: it leads with its epoch committed (everything before the epoch is visible), or it
// follows a leader whose log it agrees with and has made visible the commit end that leader had
// announced when the gate first looked. A fixed target, not the latest announcement: under a
// steady write load a follower is always a few writes behind the latest, never behind a past one.
bool EngineImpl::applied_cluster_commit() {
  if (runtime_->leader_ready()) return true;
  const std::optional<int64_t> announced = runtime_->announced_commit_end();
  if (!announced) return false;  // a candidate, a pre-leader, no leader, or not yet in sync
  if (!gate_commit_target_) gate_commit_target_ = *announced;
  return runtime_->visible_end() >= *gate_commit_target_;
}

// Cheap when nothing is held: called on every visible-end advance and status change.
void EngineImpl::settle_builtin_users() {
  if (!builtin_gate_.any_waiting()) return;
  for (size_t i = 0; i < BuiltinUserGate::kLogins; ++i) {
    if (builtin_gate_.waiting(i)) settle_builtin(i);
  }
}

// A record, a tombstone or metadata of `stream` is visible: the user was created (and maybe
// changed or deleted since), so its latest record decides and the default password is no more
// than any other password.
bool EngineImpl::has_committed_trace(const std::string& stream) {
  const int64_t committed = committed_position_.load();
  return core_reader_->last_record(stream, committed).has_value() ||
         core_reader_->last_record(metastream_of(stream), committed).has_value();
}

void EngineImpl::arm_gate_timer() {
  if (gate_timer_armed_) return;
  const std::optional<int64_t> next = builtin_gate_.next_deadline_ms();
  if (!next) return;
  gate_timer_armed_ = true;
  gate_timer_->expires_after(
      std::chrono::milliseconds(std::max<int64_t>(0, *next - steady_now_ms())));
  gate_timer_->async_wait([this](const boost::system::error_code& error) {
    gate_timer_armed_ = false;
    if (error || shut_down_) return;
    for (auto& resume : builtin_gate_.expire(steady_now_ms())) resume(false);
    arm_gate_timer();
  });
}

// At shutdown, before the answers thread stops: every held check is refused.
void EngineImpl::drain_gate() {
  std::promise<void> drained;
  on_core([this, &drained] {
    gate_timer_->cancel();
    for (auto& resume : builtin_gate_.take_all()) resume(false);
    drained.set_value();
  });
  drained.get_future().wait();
}

// The user a login names in committed data, or nullopt when there is none: no stream, a hard
// delete (tombstone) or a soft delete ($tb past the last record). Checker threads.
std::optional<UserRecord> EngineImpl::committed_user(const std::string& login) {
  const int64_t committed = committed_position_.load();
  auto c = read_pool_->borrow();
  const std::string stream = user_stream(login);
  const auto record = c->last_record(stream, committed);
  if (!record || record->number == kDeletedStreamNumber) return std::nullopt;
  if (const auto meta = c->last_record(metastream_of(stream), committed)) {
    const StreamMetadata metadata = parse_metadata(meta->data);
    if (metadata.truncate_before && *metadata.truncate_before > record->number) {
      return std::nullopt;
    }
  }
  return user_from_json(record->data);
}

// ---------------------------------------------------------------- public API: writes

void EngineImpl::append(Principal who, std::string stream, int64_t expected,
                        std::vector<NewEvent> events, std::function<void(WriteResult)> done) {
  on_core([this, who = std::move(who), stream = std::move(stream), expected,
           events = std::move(events), done = std::move(done)]() mutable {
    write_path_->append(who, stream, expected, std::move(events), true, std::move(done));
  });
}

void EngineImpl::delete_stream(Principal who, std::string stream, int64_t expected, bool hard,
                               std::function<void(DeleteResult)> done) {
  on_core([this, who = std::move(who), stream = std::move(stream), expected, hard,
           done = std::move(done)]() mutable {
    write_path_->delete_stream(who, stream, expected, hard, std::move(done));
  });
}

void EngineImpl::transaction_start(Principal who, std::string stream, int64_t expected,
                                   std::function<void(TransactionResult)> done) {
  on_core([this, who = std::move(who), stream = std::move(stream), expected,
           done = std::move(done)]() mutable {
    write_path_->transaction_start(who, stream, expected, std::move(done));
    open_transactions_ = static_cast<int64_t>(write_path_->open_transactions());
  });
}

void EngineImpl::transaction_write(Principal who, int64_t id, std::vector<NewEvent> events,
                                   std::function<void(TransactionResult)> done) {
  on_core([this, who = std::move(who), id, events = std::move(events),
           done = std::move(done)]() mutable {
    write_path_->transaction_write(who, id, std::move(events), std::move(done));
  });
}

void EngineImpl::transaction_commit(Principal who, int64_t id,
                                    std::function<void(TransactionResult)> done) {
  on_core([this, who = std::move(who), id, done = std::move(done)]() mutable {
    write_path_->transaction_commit(who, id, std::move(done));
    open_transactions_ = static_cast<int64_t>(write_path_->open_transactions());
  });
}

void EngineImpl::when_visible(int64_t log_end, std::function<void(bool visible)> done) {
  on_core([this, log_end, done = std::move(done)]() mutable {
    runtime_->await_visible(log_end, std::move(done));
  });
}

// ---------------------------------------------------------------- public API: reads

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

void EngineImpl::read_stream_into(Principal who, std::string stream, int64_t from,
                                  int32_t max_count, bool forward, bool resolve_links,
                                  std::shared_ptr<ReadSink> sink,
                                  std::function<void(ReadStreamResult)> done) {
  asio::post(*readers_, [this, who = std::move(who), stream = std::move(stream), from, max_count,
                         forward, resolve_links, sink = std::move(sink), done = std::move(done)] {
    CountingSink counted(*sink);
    ReadStreamResult r;
    try {
      auto c = read_pool_->borrow();
      r = chorus::read_stream(*c, read_view(), who, stream, from, max_count, forward, resolve_links,
                              counted);
    } catch (const std::exception& e) {
      counted.discard();
      r = ReadStreamResult{};
      r.status = ReadStreamStatus::Error;
      r.error = e.what();
    }
    events_read_ += counted.events;
    bytes_read_ += counted.bytes;
    done(std::move(r));
  });
}

void EngineImpl::read_all_into(Principal who, Position from, int32_t max_count, bool forward,
                               bool resolve_links, std::shared_ptr<ReadSink> sink,
                               std::function<void(ReadAllResult)> done) {
  asio::post(*readers_, [this, who = std::move(who), from, max_count, forward, resolve_links,
                         sink = std::move(sink), done = std::move(done)] {
    CountingSink counted(*sink);
    ReadAllResult r;
    try {
      auto c = read_pool_->borrow();
      r = chorus::read_all(*c, read_view(), who, from, max_count, forward, resolve_links, counted);
    } catch (const std::exception& e) {
      counted.discard();
      r = ReadAllResult{};
      r.status = ReadAllStatus::Error;
      r.error = e.what();
    }
    events_read_ += counted.events;
    done(std::move(r));
  });
}

void EngineImpl::authenticate(std::string login, std::string password,
                              std::function<void(AuthResult)> done) {
  // The checker may answer inline (cache hits, refusals); callers are promised a later call on
  // an engine thread, and the answers thread keeps that cheap work off the readers.
  std::function<void(AuthResult)> reply = [this, done = std::move(done)](AuthResult result) {
    asio::post(*auth_answers_, [done, result = std::move(result)] { done(result); });
  };
  if (builtin_gate_.open(login)) {
    credentials_->check(std::move(login), std::move(password),
                        [reply](std::optional<Principal> who) { reply(AuthResult{who}); });
    return;
  }
  on_core([this, login = std::move(login), password = std::move(password),
           reply = std::move(reply)]() mutable {
    gate_check(std::move(login), std::move(password), std::move(reply));
  });
}

// ---------------------------------------------------------------- public API: subscriptions

uint64_t EngineImpl::subscribe(Principal who, std::string stream, bool resolve_links,
                               SubscriptionCallbacks callbacks) {
  const uint64_t id = next_subscription_id_++;
  on_core([this, id, who = std::move(who), stream = std::move(stream), resolve_links,
           callbacks = std::move(callbacks)]() mutable {
    const std::string target = stream.empty() ? "$all" : stream;
    if (!write_path_->can_access(target, StreamAccess::Read, who)) {
      return callbacks.dropped(DropReason::AccessDenied);
    }
    if (hub_->size() >= kSubscriptionsMax) {
      return callbacks.dropped(DropReason::SubscriberMaxCountReached);
    }
    std::optional<int64_t> last_number;
    if (!stream.empty()) last_number = committed_last_number(stream).value_or(-1);
    hub_->add(id, std::move(who), std::move(stream), resolve_links, std::move(callbacks),
              committed_position_.load(), last_number);
    subscription_count_ = static_cast<int64_t>(hub_->size());
  });
  return id;
}

void EngineImpl::unsubscribe(uint64_t id) {
  on_core([this, id] {
    hub_->remove(id, DropReason::Unsubscribed);
    subscription_count_ = static_cast<int64_t>(hub_->size());
  });
}

void EngineImpl::forget_subscription(uint64_t id) {
  on_core([this, id] {
    hub_->forget(id);
    subscription_count_ = static_cast<int64_t>(hub_->size());
  });
}

// ---------------------------------------------------------------- public API: replication

void EngineImpl::receive(replication::Message message) {
  // Inline when the transport read it on the core thread (it shares the core's io_context).
  asio::dispatch(core_io_, [this, message = std::move(message)]() mutable {
    if (!shut_down_) runtime_->receive(std::move(message));
  });
}

void EngineImpl::set_peers(std::vector<std::string> node_ids) {
  on_core([this, node_ids = std::move(node_ids)] {
    if (!shut_down_) runtime_->set_voters(node_ids);
  });
}

void EngineImpl::peer_lost(std::string node_id) {
  on_core([this, node_id = std::move(node_id)] {
    if (!shut_down_) runtime_->peer_lost(node_id);
  });
}

void EngineImpl::leader_progress(std::string node_id, int64_t epoch) {
  // Inline: the transport reads on the core thread.
  asio::dispatch(core_io_, [this, node_id = std::move(node_id), epoch] {
    if (!shut_down_) runtime_->leader_progress(node_id, epoch);
  });
}

NodeStatus EngineImpl::status() const { return runtime_->status(); }

int64_t EngineImpl::core_tick_age_ms() const {
  const int64_t last = runtime_->last_tick_steady_ms();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  return last == 0 ? now : now - last;  // never ticked: as old as the clock
}

void EngineImpl::announce_commit() {
  on_core([this] { runtime_->announce_commit_now(); });
}

void EngineImpl::resign() {
  on_core([this] { runtime_->resign(); });
}

EngineStats EngineImpl::stats() const {
  EngineStats s;
  const auto status = runtime_->status();
  s.commit_checkpoint = status.commit_checkpoint;
  s.writer_checkpoint = status.writer_checkpoint;
  s.chaser_checkpoint = status.chaser_checkpoint;
  const auto written = runtime_->stats();
  s.events_written = written.events_written;
  s.bytes_written = written.bytes_written;
  s.flushes = written.flushes;
  s.flush_duration_seconds = written.flush_duration_seconds;
  s.flush_size_events = written.flush_size_events;
  s.checkpoint_failures = written.checkpoint_failures;
  s.replication_relaxed = written.relaxed;
  s.relaxed_flushes = written.relaxed_flushes;
  s.events_read = events_read_.load();
  s.bytes_read = bytes_read_.load();
  s.subscriptions = subscription_count_.load();
  s.open_transactions = open_transactions_.load();
  return s;
}

void EngineImpl::shutdown() {
  std::lock_guard lock(shutdown_mutex_);
  if (shut_down_.exchange(true)) return;
  scavenger_->shutdown();  // before the writer: it waits for the job in hand
  drain_gate();            // its refusals go out through the answers thread
  credentials_->stop();    // answers what waits; its lookups need the read pool below
  auth_answers_->join();
  readers_->join();
  runtime_->stop_writer();  // writes what is queued; its last notices reach the core below
  std::promise<void> drained;
  on_core([this, &drained] {
    services_->stop_all();
    runtime_->stop();
    hub_->forget_all();  // the front ends are closing their connections themselves
    drained.set_value();
  });
  drained.get_future().wait();
  core_work_.reset();
  core_io_.stop();
  if (core_thread_.joinable()) core_thread_.join();
  hub_->stop();
  hub_.reset();
  scavenger_.reset();
  runtime_.reset();
  read_pool_.reset();
  hub_reader_.reset();
  core_reader_.reset();
  db_.reset();
}

}  // namespace

namespace {

// Replays a result's events into a sink (the default read_*_into).
void replay(std::vector<ResolvedEvent>& events, ReadSink& sink) {
  sink.expect(events.size());
  for (const ResolvedEvent& e : events) {
    if (e.link || !e.event) {
      sink.resolved(e);
    } else {
      sink.row(view_of(*e.event));
    }
  }
  events.clear();
}

}  // namespace

void Engine::read_stream_into(Principal who, std::string stream, int64_t from_event_number,
                              int32_t max_count, bool forward, bool resolve_links,
                              std::shared_ptr<ReadSink> sink,
                              std::function<void(ReadStreamResult)> done) {
  read_stream(std::move(who), std::move(stream), from_event_number, max_count, forward,
              resolve_links, [sink, done = std::move(done)](ReadStreamResult r) {
                replay(r.events, *sink);
                done(std::move(r));
              });
}

void Engine::read_all_into(Principal who, Position from, int32_t max_count, bool forward,
                           bool resolve_links, std::shared_ptr<ReadSink> sink,
                           std::function<void(ReadAllResult)> done) {
  read_all(std::move(who), from, max_count, forward, resolve_links,
           [sink, done = std::move(done)](ReadAllResult r) {
             if (r.status == ReadAllStatus::Success) sink->start(r.from);
             replay(r.events, *sink);
             done(std::move(r));
           });
}

std::unique_ptr<Engine> Engine::open(const EngineConfig& config, ReplicationTransport* transport) {
  return std::make_unique<EngineImpl>(config, transport);
}

}  // namespace chorus
