// WritePath: EventStore's write rules on the leader, as a class with no I/O of its own. It keeps
// what a write must know (each stream's last number including writes in flight, stream metadata,
// recently written event ids for idempotent retries, open transactions), decides each write, turns
// it into records, and hands them to a WriteLog (the replication runtime, or a fake in tests).
// Storage reads go through a WriteStore and time through a clock function, so tests and the
// simulator can drive it with fakes. Threading: one thread (the engine's core thread).
#pragma once

#include "worker/engine/acl.hpp"
#include "worker/engine/recent_ids.hpp"
#include "worker/engine/rules.hpp"
#include "worker/engine/types.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace chorus {

// Limits of the write path (one place, with their reasons).
// Stream states kept in memory; idle ones beyond this are dropped and reloaded on demand.
inline constexpr size_t kStreamCacheMax = 200'000;
// Open explicit transactions, the bytes one may collect before commit, and all of them together:
// uncommitted transactions live in memory, so their total is bounded.
inline constexpr size_t kTransactionsOpenMax = 10'000;
inline constexpr size_t kTransactionBytesMax = 64u * 1024u * 1024u;
inline constexpr size_t kTransactionsBytesMax = 512u * 1024u * 1024u;
// A transaction not written to or committed for this long is abandoned (its client went away);
// the default of --transaction-timeout-ms.
inline constexpr int64_t kTransactionIdleTimeoutMs = 5 * 60 * 1000;
// A transaction id is the leader's epoch (low 31 bits) above a count within the epoch (32 bits):
// positive, and unique in the cluster for 2^31 epochs, as only one node leads an epoch.
inline constexpr int kTransactionSequenceBits = 32;
inline constexpr int64_t kTransactionEpochMask = (int64_t{1} << 31) - 1;
inline constexpr uint32_t kTransactionsPerEpochMax = 0xFFFF'FFFFu;
// Idle transactions are looked for at most this often (each look walks all open ones).
inline constexpr int64_t kTransactionSweepIntervalMs = 1000;

// What the write path reads from storage: the durable log, including records not yet committed.
class WriteStore {
 public:
  virtual ~WriteStore() = default;
  // The newest record of a stream in the local log (a tombstone counts), or nullopt.
  virtual std::optional<EventRecord> last_record(const std::string& stream) = 0;
  // The newest record of a stream at a log position below `position`, or nullopt.
  virtual std::optional<EventRecord> last_record_before(const std::string& stream,
                                                        int64_t position) = 0;
  // The stream's record with this event number in the local log, or nullopt. Asked only when a
  // write with an explicit expected version is behind the stream and its ids are not recent.
  virtual std::optional<EventRecord> record(const std::string& stream, int64_t number) = 0;
};

// Where the write path sends records: the replication runtime on a real node.
class WriteLog {
 public:
  virtual ~WriteLog() = default;
  virtual NotHandledReason refusal() const = 0;
  // Why refusal() refuses, when clients should see more than its reason (low disk space).
  virtual std::string refusal_message() const { return ""; }
  virtual bool storage_failed() const = 0;
  // Assigns positions (position, log_end) to the records; false when they cannot be taken.
  // Once taken, their strings may have moved to storage: only the positions remain valid.
  virtual bool propose(std::vector<EventRecord>& records) = 0;
  // Calls done(true) once everything below `end` is visible, done(false) when it times out.
  virtual void await_visible(int64_t end, std::function<void(bool visible)> done) = 0;
  virtual int64_t visible_end() const = 0;
  virtual int64_t epoch() const = 0;
};

class WritePath {
 public:
  using NowMs = std::function<int64_t()>;
  WritePath(WriteStore& store, WriteLog& log, NowMs now_ms,
            int64_t transaction_timeout_ms = kTransactionIdleTimeoutMs,
            size_t recent_ids_bytes_max = kRecentIdsBytesMax);

  // `check_acl` is false for the node's own writes (user bootstrap, services).
  void append(const Principal& who, const std::string& stream, int64_t expected,
              std::vector<NewEvent> events, bool check_acl, std::function<void(WriteResult)> done);
  void delete_stream(const Principal& who, const std::string& stream, int64_t expected, bool hard,
                     std::function<void(DeleteResult)> done);
  void transaction_start(const Principal& who, const std::string& stream, int64_t expected,
                         std::function<void(TransactionResult)> done);
  void transaction_write(const Principal& who, int64_t id, std::vector<NewEvent> events,
                         std::function<void(TransactionResult)> done);
  void transaction_commit(const Principal& who, int64_t id,
                          std::function<void(TransactionResult)> done);
  // Abandons transactions idle longer than the transaction timeout.
  void expire_transactions();

  // The last event number of a stream in the local log (-1 when it has none).
  int64_t last_number(const std::string& stream) { return stream_state(stream).last_number; }
  // ACL check against this node's settings and the stream's metadata (writes in flight count).
  bool can_access(const std::string& stream, StreamAccess access, const Principal& who);

  // Remembers a record found in the log at start (for idempotent retries after a restart).
  void warm_up(const EventRecord& record) { remember_id(record); }
  // The newest $settings record in the log at start. It may be uncommitted (a follower's
  // suffix that the leader does not have), so it takes effect only once visible (issue 10,
  // hole 8).
  void load_settings(std::optional<EventRecord> newest_in_log);
  // Inputs from the replication runtime.
  void on_record_appended(const EventRecord& record);
  void on_truncated(int64_t position);
  void on_visible(int64_t visible_end);
  void on_record_committed(const EventRecord& record);
  void on_leader_ready();
  void on_leadership_lost();

  // The committed system settings ($settings) that ACL checks use.
  std::shared_ptr<const SystemSettings> settings() const { return settings_; }
  size_t open_transactions() const { return transactions_.size(); }

 private:
  struct StreamState {
    int64_t last_number = -1;  // including writes in flight
    int inflight = 0;          // records not yet committed
  };
  struct Transaction {
    Principal owner;
    uint64_t connection = 0;  // the client connection that started it (0: none known)
    std::string stream;
    int64_t expected_version = 0;
    std::vector<NewEvent> events;
    size_t bytes = 0;
    int64_t last_used_ms = 0;
  };

  StreamState& stream_state(const std::string& stream);
  std::shared_ptr<const StreamMetadata> metadata_of(const std::string& stream);
  StreamWriteState write_state(const std::string& stream);
  void remember_id(const EventRecord& record);
  void trim_stream_cache();
  EventRecord make_record(const std::string& stream, int64_t number, NewEvent e) const;
  bool propose(std::vector<EventRecord>& records);
  void answer_idempotent(const WriteResult& r, int64_t end,
                         const std::function<void(WriteResult)>& done);
  std::optional<int64_t> new_transaction_id();
  bool expired(const Transaction& tx, int64_t now) const;
  void drop_transaction(std::map<int64_t, Transaction>::iterator it);
  std::optional<TransactionResult> refuse_transaction(int64_t id, const Principal& who);

  WriteStore& store_;
  WriteLog& log_;
  NowMs now_ms_;
  int64_t transaction_timeout_ms_;
  std::string name_buffer_;  // write_state's metastream name, reused
  std::unordered_map<std::string, StreamState> streams_;
  std::unordered_map<std::string, std::shared_ptr<const StreamMetadata>> metadata_;
  RecentIds recent_ids_;
  std::map<int64_t, Transaction> transactions_;
  size_t transactions_bytes_ = 0;
  int64_t last_sweep_ms_ = 0;
  int64_t id_epoch_ = -1;     // the epoch of the last transaction id given
  uint32_t id_sequence_ = 0;  // ids given in that epoch
  std::shared_ptr<const SystemSettings> settings_ = std::make_shared<SystemSettings>();
  // A $settings record found in the log at start and not yet known to be committed.
  std::optional<EventRecord> settings_pending_;
};

}  // namespace chorus
