// ReplicationRuntime: runs the pure replication core against real storage and time. It owns the
// core, the storage writer (group commit), the hard-state store and the tick timer; it makes
// proposals durable, counts what a majority holds, answers waiters once their position is
// visible (committed by a majority and durable here), and tells a RuntimeListener what entered
// the log, what was truncated, what committed (in log order) and when leadership came or went.
// Threading: every member runs on the core thread (the io_context given to the constructor),
// except status() and stats(), which any thread may call.
#pragma once

#include "common/histogram.hpp"
#include "worker/engine/engine.hpp"
#include "worker/engine/storage.hpp"
#include "worker/engine/write_path.hpp"
#include "worker/replication/core.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace chorus {

class RecordPayload;

// What the layers above the runtime learn from it. Called on the core thread.
class RuntimeListener {
 public:
  virtual ~RuntimeListener() = default;
  // A record entered the local log (proposed here or received from the leader); not committed.
  virtual void on_record_appended(const EventRecord& record) = 0;
  // Every record at or after `position` left the log.
  virtual void on_truncated(int64_t position) = 0;
  // The visible end advanced (before the records that it made visible are reported).
  virtual void on_visible(int64_t visible_end) = 0;
  // A record became visible (committed and durable here); called in log order.
  virtual void on_record_committed(const std::shared_ptr<const EventRecord>& record) = 0;
  // This node leads and its epoch record is committed: it may take writes.
  virtual void on_leader_ready() = 0;
  // This node stopped leading (or stopped being ready to lead).
  virtual void on_leadership_lost() = 0;
};

struct RuntimeStats {
  int64_t events_written = 0;
  int64_t bytes_written = 0;
  int64_t flushes = 0;
  HistogramSnapshot flush_duration_seconds;
  HistogramSnapshot flush_size_events;
  uint64_t checkpoint_failures = 0;
  bool relaxed = false;  // a follower that writes what it is sent every kRelaxedWriteDelayUs
  int64_t relaxed_flushes = 0;
};

class ReplicationRuntime final : public WriteLog {
 public:
  ReplicationRuntime(const EngineConfig& config, const Database& db, boost::asio::io_context& core,
                     RuntimeListener& listener);
  ~ReplicationRuntime() override;
  ReplicationRuntime(const ReplicationRuntime&) = delete;
  ReplicationRuntime& operator=(const ReplicationRuntime&) = delete;

  // Loads the hard state and the log's end, builds the core and starts ticking.
  // `log` reads older entries for followers; it must outlive the runtime.
  void start(ReplicationTransport* transport, ReadConnection& log);
  // Writes what is queued, fails every waiter and stops ticking. Idempotent.
  void stop_writer();
  void stop();

  // Any thread: hands maintenance work (a scavenge's deletions, a vacuum step) to the storage
  // writer. False when the writer has stopped or failed.
  bool submit_maintenance(MaintenanceJob job) { return writer_ && writer_->submit(std::move(job)); }

  // Replication inputs.
  void receive(replication::Message message);
  // The other voting members, by instance id (replaces the set).
  void set_voters(const std::vector<std::string>& node_ids);
  void peer_lost(const std::string& node_id);
  void leader_progress(const std::string& node_id, int64_t epoch);
  void resign();
  // Leader: every follower hears the commit position now (Core::announce_commit_now).
  void announce_commit_now();

  // Why this node cannot take a write now (None when it leads with its epoch committed).
  NotHandledReason refusal() const override;
  std::string refusal_message() const override;
  bool storage_failed() const override { return !storage_failure_.empty(); }
  // Any thread: storage failed, and the steady-clock time (ms) of the core's last tick.
  bool storage_failed_any_thread() const { return storage_failed_flag_.load(); }
  int64_t last_tick_steady_ms() const { return last_tick_steady_ms_.load(); }
  // Any thread: status().is_leader, without the status's copy.
  bool is_leader_any_thread() const { return is_leader_flag_.load(std::memory_order_relaxed); }
  // Assigns positions to `records` and hands them to storage and the followers. False when this
  // node does not lead or storage refuses.
  bool propose(std::vector<EventRecord>& records) override;
  // Calls done(true) once everything below `end` is visible, done(false) if that takes longer
  // than the commit timeout or this node loses its leadership first.
  void await_visible(int64_t end, std::function<void(bool visible)> done) override;

  int64_t durable_end() const { return durable_end_; }
  int64_t visible_end() const override { return visible_end_; }
  int64_t epoch() const override;
  bool leader_ready() const { return leader_ready_; }
  // A follower whose log agrees with its leader's: the commit end that leader announced last
  // (everything the cluster committed before that message). nullopt on any other node.
  std::optional<int64_t> announced_commit_end() const;

  NodeStatus status() const;
  RuntimeStats stats() const;

 private:
  void catch_up_ticks();
  int idle_wake_ticks() const;
  void arm_tick_timer();
  void on_tick();
  void process_ready();  // apply_ready, then wake the thread when the next tick is due
  void apply_ready();
  void apply_truncation(int64_t position);
  void apply_entries(std::vector<replication::Entry> entries);
  // A follower's queued entries, written on this thread: now (true when this thread wrote
  // them), or once the reads already waiting are handled (then they join the same transaction).
  // Either ends a relaxed follower's hold: what it held back goes with them.
  bool write_here_now();
  void schedule_write_here();
  void count_flush(const FlushStats& flush);
  void on_durable(int64_t end, uint64_t generation,
                  const std::optional<replication::Core::AckRoute>& acked);
  // Core thread: hands the core the durable notices the writer held back, then says whether
  // the next ones are wanted at once (see held_notices_).
  void take_held_notices();
  // The thread that wrote it: a follower's batch is durable; acknowledge it to the leader at once.
  void storage_ack(const replication::Core::AckRoute& route, uint64_t generation, int64_t end);
  bool advance_commit();  // true when it answered a waiter
  void on_storage_failure(const std::string& message);
  void on_role_change();
  void fail_waiters();
  void check_timeouts();
  void update_status();
  std::string low_disk_text() const;  // the low-disk refusal's message, "" when there is room

  using Clock = std::chrono::steady_clock;
  struct Waiter {
    Clock::time_point deadline;
    std::function<void(bool visible)> done;
  };

  EngineConfig config_;
  boost::asio::io_context& io_;
  RuntimeListener& listener_;
  std::unique_ptr<StorageWriter> writer_;
  std::unique_ptr<HardStateStore> hard_state_store_;
  std::unique_ptr<replication::LogReader> log_reader_;
  std::unique_ptr<replication::Core> core_;
  boost::asio::steady_timer tick_timer_;
  Clock::time_point tick_base_;     // when the core's latest tick fell (a multiple of tick_ms)
  Clock::time_point tick_wake_at_;  // when the armed timer fires
  bool tick_armed_ = false;
  ReplicationTransport* transport_ = nullptr;
  bool stopped_ = false;

  bool leader_ready_ = false;
  bool appends_scheduled_ = false;  // a send of pending appends is posted
  // The records being proposed (positions assigned) while their entries are applied.
  std::vector<std::shared_ptr<RecordPayload>>* proposing_ = nullptr;
  size_t proposing_next_ = 0;
  // Bumped at each truncation (on the core thread; the writer thread reads it to drop acks of
  // writes made before one).
  std::atomic<uint64_t> generation_{0};
  // Whichever thread writes the transaction (the writer's, or the core in write_queued_here;
  // never both at once): the route of the ack storage_ack sent for the transaction being
  // reported, handed to the core with its durable notice.
  std::optional<replication::Core::AckRoute> storage_acked_;
  // A follower's storage writer sends the leader its ack itself; its durable notice to the core
  // then matters only if an announced commit waits on it (the core's commit end behind the
  // leader's) or at the core's next input. The writer holds such notices here instead of waking
  // the core for each (40 % of a loaded follower core's wake-ups); every input of the core
  // takes them first, and the writer wakes the core when notice_wanted_ or the queue is full.
  // A leader's notice matters at once only when a commit, or what it shows of one, waits on its
  // own disk (Core::waits_on_own_disk); otherwise the next ack, which is what the commit waits
  // for, takes it.
  enum NoticeWanted : uint8_t {
    kNoticeWanted,           // wake the core for every notice
    kNoticeHeldIfSelfAcked,  // a follower: hold the notices of batches its writer acknowledged
    kNoticeHeld,             // a leader whose commit does not wait on its own disk: hold them
  };
  struct HeldNotice {
    int64_t end = 0;
    uint64_t generation = 0;
    FlushStats flush;
    std::optional<replication::Core::AckRoute> acked;
  };
  std::mutex held_mutex_;
  std::vector<HeldNotice> held_notices_;
  std::vector<HeldNotice> taken_notices_;  // core thread: the ones being handed to the core
  bool taking_notices_ = false;
  std::atomic<NoticeWanted> notice_wanted_{kNoticeWanted};
  // A follower writes the leader's entries on the core thread while its commits take less
  // than this (StorageWriter::write_queued_here); the duration of the last commit, any thread.
  static constexpr int64_t kWriteHereFlushUsMax = 2000;
  std::atomic<int64_t> last_flush_us_{0};
  bool write_here_scheduled_ = false;
  // A relaxed follower (Core::relaxed) writes kRelaxedWriteDelayUs after the first entry it
  // holds back, or once it holds this many bytes of the log.
  static constexpr int64_t kRelaxedWriteBytesMax = 1 << 20;
  boost::asio::steady_timer relaxed_timer_;
  bool relaxed_write_armed_ = false;
  std::atomic<bool> relaxed_flag_{false};  // core_->relaxed(), for stats()
  bool batch_policy_ = false;              // the core thread runs under SCHED_BATCH
  void follow_relaxed();
  std::atomic<int64_t> relaxed_flushes_{0};  // transactions of held-back writes, by the timer
  int64_t relaxed_bytes_ = 0;
  int64_t durable_end_ = 0;  // local storage holds everything below this
  int64_t visible_end_ = 0;  // committed and durable here: what reads and acks may use
  std::deque<std::shared_ptr<const EventRecord>> uncommitted_;
  std::multimap<int64_t, Waiter> waiters_;  // by the end position that must be visible
  std::string storage_failure_;
  std::atomic<bool> storage_failed_flag_{false};
  std::atomic<int64_t> last_tick_steady_ms_{0};
  std::atomic<bool> is_leader_flag_{false};

  mutable std::mutex status_mutex_;
  NodeStatus status_;
  std::atomic<int64_t> events_written_{0}, bytes_written_{0}, flushes_{0};
  std::atomic<uint64_t> checkpoint_failures_{0};
  Histogram flush_duration_{Histogram::seconds_buckets()};
  Histogram flush_size_{Histogram::size_buckets()};
};

}  // namespace chorus
