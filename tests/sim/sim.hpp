// Simulation: a deterministic, single-threaded cluster of replication::Core nodes with a simulated
// network (delay, loss, duplication, reordering, symmetric and one-way partitions), simulated
// disks (a durable log and a volatile tail that a crash loses; a slow disk; a disk that fails,
// after which the node acknowledges nothing more and exits), crashes, restarts, pauses and a client
// workload. One seeded std::mt19937_64 drives every choice, so a seed replays exactly.
// Invariants are checked after every event; the first violation stops the run (see README.md).
// Not thread-safe; separate Simulation objects may run on separate threads.
#pragma once

#include "worker/replication/core.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

namespace chorus::sim {

using replication::Core;
using replication::Entry;
using replication::HardState;
using replication::Message;
using replication::NodeId;

enum class Mode { Safety, Liveness };

struct Options {
  uint64_t seed = 1;
  int nodes = 3;
  int steps = 2000;  // length of the fault phase, in steps of one tick (kTickMs simulated)
  Mode mode = Mode::Safety;
  bool faults = true;          // random faults and client writes (off for scripted scenarios)
  bool small_buffers = false;  // smallest Append/in-flight/buffer limits (else chosen by seed)
  // Followers' storage sends their acks itself once entries are durable (the worker's storage
  // writer does; Core::ack_route), sometimes just before a truncation it has not applied yet:
  // -1 chosen by seed (from its own generator, so seeds without it replay as before), 0 off, 1 on.
  int storage_acks = -1;
  bool trace = false;     // print every event as it happens
  size_t trace_tail = 0;  // keep the last N trace lines for the failure report
};

// What a run did, for the summary line and to prove that the faults actually happened.
struct Stats {
  int64_t events = 0;
  int64_t messages_sent = 0;
  int64_t messages_dropped = 0;
  int64_t proposed = 0;
  int64_t acked = 0;
  int64_t committed_entries = 0;  // length of the committed log (all nodes agree on it)
  int64_t leaders_elected = 0;
  int64_t max_epoch = 0;
  int64_t crashes = 0;
  int64_t pauses = 0;
  int64_t partitions = 0;
  int64_t truncations = 0;
  int64_t reader_reads = 0;      // Core asked storage (LogReader) for old entries
  int64_t storage_failures = 0;  // a node's disk failed (it stopped syncing, then exited)
  int64_t slow_disks = 0;        // runs with one node on a slow disk
  int64_t storage_acks = 0;      // acks sent by a follower's storage, not its core
  void add(const Stats& o);
};

struct Result {
  bool ok = true;
  std::string failure;
  std::vector<std::string> trace_tail;
  Stats stats;
};

inline constexpr int64_t kTickMs = 10;  // one Core tick, one simulation step
inline constexpr int kElectionTicksMax = 60;
inline constexpr int64_t kPauseMsMax = 3 * kElectionTicksMax * kTickMs;
inline constexpr size_t kClientPendingMax = 8;          // unacknowledged writes at a time
inline constexpr int kLeaderDeadlineTicks = 1000;       // liveness: 10 s simulated after healing
inline constexpr int kConvergenceDeadlineTicks = 3000;  // liveness: 30 s simulated after healing
inline constexpr int kLivenessWriteTicks = 500;         // liveness: the client writes 5 s more
// A failed disk is noticed (and the worker exits with its "restart me" code) within this long:
// the next write or fsync of the storage writer fails.
inline constexpr int64_t kStorageExitMsMax = 2000;
// A slow disk takes up to this long per sync (a follower whose durable notices lag).
inline constexpr int64_t kSlowSyncMsMin = 100;
inline constexpr int64_t kSlowSyncMsMax = 1500;

// The command line that replays `options` exactly.
std::string replay_command(const Options& options);

class Simulation {
 public:
  explicit Simulation(Options options);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // The whole scenario of `options`: the fault phase, then (liveness mode) heal and converge.
  Result run();

  // Scripted control, for focused tests (use with options.faults = false).
  bool run_ticks(int ticks);  // false once an invariant failed
  bool run_until(int ticks_max, const std::function<bool()>& done);
  void crash(int node);
  void restart(int node);
  void wipe(int node);  // crashed node loses its disk and hard state
  // The node's disk fails now: nothing more becomes durable (so nothing more is acknowledged),
  // a hard-state or truncation write halts it at once, and it exits `exit_after_ms` later (then
  // restarts as after a crash, on a working disk).
  void fail_storage(int node, int64_t exit_after_ms);
  void set_slow_disk(int node, int64_t sync_ms_max);  // -1: no slow disk
  void cut(int from, int to);                         // drop messages from -> to
  void isolate(int node);                             // both directions, to and from everybody else
  void heal();
  // Proposes payloads on `node` (it must lead); returns the entries' end (or -1).
  int64_t propose(int node, int count);
  int leader() const;  // a live node in role Leader with the highest epoch, or -1
  int leader_count() const;
  bool up(int node) const;
  const Core& core(int node) const;
  const std::vector<Entry>& log(int node) const;  // durable entries then the volatile tail
  int64_t commit_end(int node) const;             // as reported by Ready on this incarnation
  int64_t truncations(int node) const;
  const std::vector<std::string>& acked() const { return acked_payloads_; }
  bool ok() const { return result_.ok; }
  const Result& result() const { return result_; }
  const std::vector<Entry>& committed() const { return committed_; }

 private:
  struct Node;
  enum class EventKind { Tick, Deliver, Sync, Restart, HealPartition, StorageExit };
  struct Event {
    int64_t time_ms = 0;
    uint64_t seq = 0;  // ties broken by scheduling order, so the run is deterministic
    EventKind kind = EventKind::Tick;
    int node = 0;
    uint64_t incarnation = 0;  // events of a crashed incarnation are void
    std::shared_ptr<const Message> message;
  };
  struct EventLater {
    bool operator()(const Event& a, const Event& b) const {
      return a.time_ms != b.time_ms ? a.time_ms > b.time_ms : a.seq > b.seq;
    }
  };

  // Event loop.
  void step();
  void schedule(Event event);
  void process(const Event& event);
  bool defer_if_paused(const Event& event, Node& node);
  // Node adapter: apply one Ready in the contract's order.
  void drain(Node& node);
  // `to` sees the connection that carried `from`'s messages close (Core::peer_lost), as a real
  // node does when a peer's process dies or the link is reset.
  void lose_connection(int from, int to);
  void apply(Node& node, replication::Ready& ready);
  void apply_truncate(Node& node, int64_t to);
  void apply_append(Node& node, Entry entry,
                    const std::optional<replication::Core::AckRoute>& route = std::nullopt);
  // The follower's storage acknowledges what it just made durable (the last entry's route).
  void storage_ack(Node& node);
  void apply_commit(Node& node, int64_t commit_end);
  void extend_committed(Node& node, size_t from_index, size_t to_index);
  void acknowledge(Node& node);
  int durable_copies(size_t index) const;
  void check_majority_durable(size_t index, const std::string& after);
  void check_roles(Node& node);
  void check_vote(Node& node, const Message& message);
  void sync_disk(Node& node);
  int64_t sync_delay_ms(const Node& node);
  void storage_exit(Node& node);
  void start(Node& node);
  // Network.
  void send(const Node& from, Message message);
  bool blocked(int from, int to) const;
  // Faults and workload.
  void inject_faults();
  void start_partition();
  void client_step();
  void heal_all();
  void liveness_phase();
  bool stable_leader() const;
  bool converged() const;
  std::string describe_nodes() const;
  // Helpers.
  int64_t uniform(int64_t lo, int64_t hi);  // inclusive
  bool chance(double p);
  void fail(const std::string& what);
  bool tracing() const { return options_.trace || options_.trace_tail > 0; }
  void trace(const std::string& line);
  template <class F>
  void guarded(Node& node, const char* what, F&& call);

  Options options_;
  std::mt19937_64 rng_;
  // Disk faults draw from their own generator, so seeds without them replay as before they
  // existed (the regression seeds keep their meaning).
  std::mt19937_64 disk_rng_;
  std::mt19937_64 ack_rng_;  // storage acks: their own generator, as the disk faults
  bool storage_acks_ = false;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<NodeId> ids_;
  std::map<NodeId, int> index_by_id_;
  replication::Config config_template_;
  std::vector<int32_t> priorities_;
  std::priority_queue<Event, std::vector<Event>, EventLater> events_;
  int64_t now_ms_ = 0;
  int64_t step_count_ = 0;
  uint64_t next_seq_ = 0;
  bool faults_active_ = false;
  // Fault parameters, chosen per seed.
  double drop_rate_ = 0;
  double duplicate_rate_ = 0;
  double long_delay_rate_ = 0;
  int64_t delay_ms_max_ = 1;
  int64_t sync_ms_max_ = 1;
  double crash_rate_ = 0;
  double pause_rate_ = 0;
  double partition_rate_ = 0;
  double propose_rate_ = 0;
  double storage_fail_rate_ = 0;
  int slow_disk_node_ = -1;
  int64_t slow_sync_ms_max_ = 0;
  std::vector<std::vector<bool>> blocked_;
  uint64_t partition_generation_ = 0;
  // Invariant state over the whole run.
  std::vector<Entry> committed_;  // the longest committed prefix any node reported
  std::unordered_set<std::string> committed_payloads_;
  std::map<int64_t, int> epoch_leader_;              // epoch -> the node that led it
  std::map<std::pair<int, int64_t>, NodeId> votes_;  // (voter, epoch) -> candidate
  std::map<std::string, int64_t> acked_positions_;   // payload -> position
  std::vector<std::string> acked_payloads_;
  int64_t acked_end_max_ = 0;
  int64_t payload_counter_ = 0;
  int64_t acked_after_heal_ = 0;
  bool healed_ = false;
  int64_t client_stop_step_ = 0;
  Result result_;
  std::deque<std::string> trace_lines_;
};

}  // namespace chorus::sim
