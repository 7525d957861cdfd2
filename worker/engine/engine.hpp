// Engine: one database node's storage, replication and EventStore semantics behind an
// asynchronous API. It owns the core thread (the replication core, expected versions, in-flight
// writes, transactions, subscriptions),
// the storage writer thread (group commit) and a pool of reader threads with their own SQLite
// connections. Every method may be called from any thread and returns at once; the callback runs
// later on an engine thread and must not block (post to your own executor for real work).
// Callbacks are never run inside the calling function.
#pragma once

#include "common/histogram.hpp"
#include "common/wake_coalescer.hpp"
#include "worker/engine/scavenge_state.hpp"
#include "worker/engine/types.hpp"
#include "worker/projections/status.hpp"
#include "worker/replication/core.hpp"
#include "worker/subscriptions/hub.hpp"
#include "worker/subscriptions/persistent_api.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace chorus {

// An idle core thread still wakes this often, so that its watchdog age (/health/ready) and the
// write timeouts stay fresh; otherwise it sleeps until the core has a tick due.
inline constexpr int kIdleWakeMs = 250;
// A follower whose copy no commit needs (replication::Append::relaxed) writes what the leader
// sends at most this long after the first entry it holds back.
inline constexpr int kRelaxedWriteDelayUs = 3000;

// How this node takes part in replication. A cluster of size 1 leads at once.
struct ClusterConfig {
  // This node's identity in replication: its instance id (any unique text in tests).
  std::string node_id = "127.0.0.1:1112";
  // Its internal TCP endpoint (ip:port): how EventStore's own records ($scavenges) name a node.
  std::string endpoint = "127.0.0.1:1112";
  int cluster_size = 1;
  int32_t node_priority = 0;
  int tick_ms = 10;                   // the replication core's clock
  int heartbeat_ms = 50;              // leader -> follower heartbeats
  int election_timeout_ms_min = 300;  // randomized between min and max
  int election_timeout_ms_max = 600;
  // An idle core thread still wakes this often (kIdleWakeMs; longer only in tests).
  int idle_wake_ms = kIdleWakeMs;
  uint64_t seed = 0;  // 0: drawn at random
};

struct EngineConfig {
  std::string db_folder;             // folder of the SQLite file; ignored when in_memory
  bool in_memory = false;            // --mem-db
  int reader_threads = 2;            // size of the read pool
  int64_t commit_timeout_ms = 5000;  // a write not committed by then answers CommitTimeout
  // A transaction idle this long is abandoned (kTransactionIdleTimeoutMs,
  // --transaction-timeout-ms).
  int64_t transaction_timeout_ms = 5 * 60 * 1000;
  ClusterConfig cluster;
  // Passwords of the built-in users, set when a leader first creates them.
  std::string default_admin_password = "changeit";
  std::string default_ops_password = "changeit";
  // Serve the standard projections ($ce-, $et-, ... links) while this node leads; with
  // start_standard_projections they run unless their definitions say otherwise (else Stopped).
  bool run_system_projections = false;
  bool start_standard_projections = false;
  // Serve user projections (--run-projections=All) on this many threads while leading.
  bool run_user_projections = false;
  int projection_threads = 3;
  // Called once (on the core thread) when storage fails: a write or fsync failed, the writer's
  // queue overflowed, or a log entry could not be decoded. Nothing after the failure is ever
  // acknowledged; the process should exit so that its supervisor restarts it from what is on
  // disk. Unset: the node stays up and refuses writes.
  std::function<void(const std::string& reason)> on_storage_failure;
  // This node's data volume is below --min-free-disk-bytes (worker/engine/space_monitor.hpp)
  // while it returns a message: the leader then refuses writes with NotHandled(TooBusy) and that
  // message, before SQLite could meet a full disk. Unset or "": writes are taken. Called on the
  // core thread for every write; must be cheap.
  std::function<std::string()> low_disk_refusal;
  // Open external TCP client connections (main.cpp: the TCP servers' shared count). A relaxed
  // follower serving none yields its core thread to the threads writes wait on (SCHED_BATCH);
  // one serving clients keeps the normal policy, so its clients' reads are not kept waiting.
  std::function<int()> client_connections;
  // Called on the core thread when this node's state, leader or epoch changed (gossip tells
  // the others at once); must not block.
  std::function<void()> on_status_change;
  // The io_context the core thread runs (null: the engine makes its own). The worker runs its
  // replication transport on it too, so that a replication message is read, stepped through
  // the core and answered on one thread instead of crossing to an I/O thread and back each way.
  // It must outlive the engine; the engine runs it on its core thread and stops it at shutdown.
  boost::asio::io_context* core_io = nullptr;
  // When set (it must outlive the engine), the core thread carries it on the wake-ups it takes
  // anyway (a replication message, a tick): periodic chores of other threads (gossip rounds,
  // disk checks) then run on those instead of on wake-ups of their own (issue 16).
  WakeCoalescer* coalescer = nullptr;
};

// Sends replication messages to other nodes. Called on the engine's core thread; must not block.
class ReplicationTransport {
 public:
  virtual ~ReplicationTransport() = default;
  // By value: the message's payloads move on towards the socket.
  virtual void send(replication::Message message) = 0;
  // Any thread: as send(), but written from the calling thread when the connection is idle, so
  // that the message does not wait for the I/O thread to wake (the storage writer's acks).
  virtual void send_now(replication::Message message) { send(std::move(message)); }
};

// A node's role and log positions as EventStore's gossip shows them.
struct NodeStatus {
  std::string state = "Initializing";    // v20 names: Leader, PreLeader, Follower, CatchingUp...
  bool is_leader = false;                // leading and accepting writes
  std::optional<std::string> leader_id;  // instance id of the leader this node follows
  int64_t epoch_number = -1;
  int64_t epoch_position = -1;
  Guid epoch_id{};
  int64_t writer_checkpoint = 0;
  int64_t chaser_checkpoint = 0;
  int64_t commit_checkpoint = 0;
  int64_t elections = 0;
  std::map<std::string, int64_t> follower_durable;  // leader: by instance id, durable end
};

struct EngineStats {
  int64_t writer_checkpoint = 0;  // last position durable on this node's disk
  int64_t chaser_checkpoint = 0;  // last position applied to indexes (= writer here)
  int64_t commit_checkpoint = 0;  // last position committed (majority; = writer on one node)
  int64_t events_written = 0;
  int64_t bytes_written = 0;
  int64_t events_read = 0;
  int64_t bytes_read = 0;
  int64_t flushes = 0;  // storage transactions committed
  int64_t subscriptions = 0;
  int64_t open_transactions = 0;
  HistogramSnapshot flush_duration_seconds;  // one storage transaction (write + fsync)
  HistogramSnapshot flush_size_events;       // records per storage transaction
  uint64_t checkpoint_failures = 0;          // WAL checkpoints that failed (retried; nothing lost)
  bool replication_relaxed = false;  // a follower whose copy no commit needs now (Append::relaxed)
  int64_t relaxed_flushes = 0;       // transactions it wrote after holding entries back
};

class Engine {
 protected:
  static void not_ready(const std::function<void(projections::ProjectionReply)>& done) {
    projections::ProjectionReply r;
    r.not_handled = NotHandledReason::NotReady;
    done(std::move(r));
  }

 public:
  virtual ~Engine() = default;

  // Opens (or creates) the database, creates the built-in users on first start, starts threads.
  // Throws std::runtime_error with a clear message if the database cannot be opened.
  // `transport` may be null for a single node; it must outlive the engine.
  static std::unique_ptr<Engine> open(const EngineConfig& config,
                                      ReplicationTransport* transport = nullptr);

  // Replication: a message from another node, and the other voting members (by instance id).
  virtual void receive(replication::Message message) = 0;
  virtual void set_peers(std::vector<std::string> node_ids) = 0;
  // The connection that carried a peer's messages closed (it may have died).
  virtual void peer_lost(std::string node_id) = 0;
  // A large message from a peer whose last one was an Append of `epoch` is being received
  // (Core::leader_progress): the leader is alive.
  virtual void leader_progress(std::string node_id, int64_t epoch) = 0;
  virtual NodeStatus status() const = 0;
  // status().is_leader without copying the status (asked on every client request).
  virtual bool is_leader() const { return status().is_leader; }
  // Leader: step down so that another node leads (admin resign). No effect otherwise.
  virtual void resign() = 0;
  // Leader: every follower hears the commit position at once, after a request forwarded through
  // one was answered (under a stream of writes a commit otherwise rides on the next Append).
  virtual void announce_commit() {}

  // Checks credentials. No principal = wrong login or password, a disabled or deleted user, or
  // a check refused because too many are waiting (a flood of wrong passwords). Results are
  // cached until a user record changes (worker/engine/credentials.hpp). A check of admin or ops
  // may be held (at most kBuiltinUserWaitMs) until this node can answer it from the cluster's
  // committed users: a fresh cluster's leader creates them after its first election
  // (worker/engine/builtin_user_gate.hpp); a check still held at its deadline, or refused
  // because kBuiltinUserWaitersMax wait, is answered not_ready, right password or not.
  virtual void authenticate(std::string login, std::string password,
                            std::function<void(AuthResult)> done) = 0;

  virtual void append(Principal who, std::string stream, int64_t expected_version,
                      std::vector<NewEvent> events, std::function<void(WriteResult)> done) = 0;
  virtual void delete_stream(Principal who, std::string stream, int64_t expected_version,
                             bool hard_delete, std::function<void(DeleteResult)> done) = 0;

  virtual void transaction_start(Principal who, std::string stream, int64_t expected_version,
                                 std::function<void(TransactionResult)> done) = 0;
  virtual void transaction_write(Principal who, int64_t transaction_id,
                                 std::vector<NewEvent> events,
                                 std::function<void(TransactionResult)> done) = 0;
  virtual void transaction_commit(Principal who, int64_t transaction_id,
                                  std::function<void(TransactionResult)> done) = 0;

  // event_number -1 reads the last event.
  virtual void read_event(Principal who, std::string stream, int64_t event_number,
                          bool resolve_links, std::function<void(ReadEventResult)> done) = 0;
  // Backward reads take from_event_number -1 as "from the last event".
  virtual void read_stream(Principal who, std::string stream, int64_t from_event_number,
                           int32_t max_count, bool forward, bool resolve_links,
                           std::function<void(ReadStreamResult)> done) = 0;
  virtual void read_all(Principal who, Position from, int32_t max_count, bool forward,
                        bool resolve_links, std::function<void(ReadAllResult)> done) = 0;
  // The same reads handing each event to `sink` on the reader thread as it is read (ReadSink;
  // TCP encodes its reply so, with no copy of each record); `done` then gets the result without
  // events, on the same thread. The defaults read a whole result and replay it.
  virtual void read_stream_into(Principal who, std::string stream, int64_t from_event_number,
                                int32_t max_count, bool forward, bool resolve_links,
                                std::shared_ptr<ReadSink> sink,
                                std::function<void(ReadStreamResult)> done);
  virtual void read_all_into(Principal who, Position from, int32_t max_count, bool forward,
                             bool resolve_links, std::shared_ptr<ReadSink> sink,
                             std::function<void(ReadAllResult)> done);

  // Volatile subscription to a stream, or to $all when stream is "". Returns an id for
  // unsubscribe(). Either `confirmed` or `dropped` is called first; then events in commit order.
  virtual uint64_t subscribe(Principal who, std::string stream, bool resolve_links,
                             SubscriptionCallbacks callbacks) = 0;
  // Ends a subscription; its `dropped(Unsubscribed)` is called (once) unless already dropped.
  virtual void unsubscribe(uint64_t subscription_id) = 0;
  // Ends a subscription silently (the connection went away).
  virtual void forget_subscription(uint64_t subscription_id) = 0;

  // Calls done(true) once everything before `log_end` is visible on this node (committed and
  // durable here), done(false) if that takes longer than the commit timeout.
  virtual void when_visible(int64_t log_end, std::function<void(bool visible)> done) = 0;

  // The position of the last committed record that reads see now; -1 when not known (nothing
  // may then be served from a read made earlier).
  virtual int64_t committed_position() const { return -1; }

  // Grows whenever a user record changes on this node (appended, committed or its stream
  // deleted): credentials proven under an older value must be checked again before they count.
  virtual uint64_t credentials_generation() const = 0;

  virtual EngineStats stats() const = 0;

  // Persistent subscriptions (competing consumers); served while this node leads.
  virtual PersistentApi& persistent() = 0;

  // The projections this node runs as leader (NotLeader on any other node); empty when
  // --run-projections is None. `done` runs on an engine thread.
  virtual void list_projections(std::function<void(projections::ProjectionListResult)> done) {
    projections::ProjectionListResult r;
    r.not_handled = NotHandledReason::NotReady;
    done(std::move(r));
  }
  // User projections: create (mode "transient", "onetime" or "continuous"; `emit`: whether it
  // may emit), delete, a partition's state or result, and the query text.
  virtual void create_projection(Principal /*who*/, std::string /*mode*/, std::string /*name*/,
                                 std::string /*query*/, bool /*emit*/,
                                 bool /*track_emitted_streams*/,
                                 std::function<void(projections::ProjectionReply)> done) {
    not_ready(done);
  }
  virtual void delete_projection(Principal /*who*/, std::string /*name*/,
                                 std::function<void(projections::ProjectionReply)> done) {
    not_ready(done);
  }
  virtual void projection_state(std::string /*name*/, std::string /*partition*/, bool /*result*/,
                                std::function<void(projections::ProjectionReply)> done) {
    not_ready(done);
  }
  // Replaces a user projection's query.
  virtual void update_projection_query(Principal /*who*/, std::string /*name*/,
                                       std::string /*query*/,
                                       std::function<void(projections::ProjectionReply)> done) {
    not_ready(done);
  }
  // enable, disable, abort or reset.
  virtual void projection_command(Principal /*who*/, std::string /*name*/, std::string /*command*/,
                                  std::function<void(projections::ProjectionReply)> done) {
    not_ready(done);
  }
  virtual void projection_query(std::string /*name*/,
                                std::function<void(projections::ProjectionReply)> done) {
    not_ready(done);
  }
  // EventStore's other management routes (DELETE with its stream options, PUT query with emit=,
  // GET and PUT config, GET query?config=yes); see ProjectionManagement.
  virtual void manage_projection(Principal /*who*/, projections::ProjectionManagement /*request*/,
                                 std::function<void(projections::ProjectionReply)> done) {
    not_ready(done);
  }

  // Scavenging this node's database (worker/engine/scavenger.hpp), in the background. Starts
  // one unless one runs (then `started` is false and `id` names the running one);
  // start_from_chunk >= 0. `log` writes the $scavenges events (through the leader).
  virtual ScavengeStart start_scavenge(int64_t /*start_from_chunk*/, ScavengeLog /*log*/) {
    return {};
  }
  virtual std::optional<ScavengeState> current_scavenge() const { return std::nullopt; }
  // The running scavenge or one of the last kScavengeHistoryMax, by id.
  virtual std::optional<ScavengeState> find_scavenge(const std::string& /*id*/) const {
    return std::nullopt;
  }
  // Asks the running scavenge `id` to stop; false when it is not the running one.
  virtual bool stop_scavenge(const std::string& /*id*/) { return false; }

  // For health checks, any thread: milliseconds since the core thread last ticked (it ticks
  // every tick_ms; a large age means it is stuck), and whether storage has failed.
  virtual int64_t core_tick_age_ms() const = 0;
  virtual bool storage_failed() const = 0;

  // Stops accepting work, finishes or fails what is in flight, fsyncs and closes SQLite.
  // Blocks until done. Idempotent.
  virtual void shutdown() = 0;
};

}  // namespace chorus
