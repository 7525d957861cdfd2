// Storage: the SQLite file of one node. The log's entries are event records (table events) and
// epoch records (table epochs), each at a log position with its end; a small table holds the
// replication core's hard state. One StorageWriter thread applies batches (truncate, then append)
// in group-commit transactions; ReadConnections (a fixed pool) answer queries bounded by a
// position the caller gives (the committed one). WAL on disk; `--mem-db` uses a shared-cache
// in-memory database instead.
// Threading: StorageWriter methods from any thread; a ReadConnection by one thread at a time.
#pragma once

#include "worker/engine/stream_tail.hpp"
#include "worker/engine/types.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace chorus {

// Bounds of the storage layer (one place, with their reasons).
// A group-commit transaction stops taking batches past this many bytes, to bound fsync latency.
inline constexpr size_t kFlushBytesMax = 32u * 1024u * 1024u;
// Bytes queued for the writer before new writes are refused (clients retry on PrepareTimeout).
inline constexpr size_t kWriterQueueBytesMax = 256u * 1024u * 1024u;
// The storage writer checkpoints the WAL into the database file when a commit leaves at least
// this many frames in it (SQLite's own automatic checkpoint interval). A failed checkpoint loses
// nothing (the WAL keeps every frame until one completes, and the next commit tries again); it
// is counted and logged at most once per kCheckpointFailureLogIntervalS.
inline constexpr int kWalCheckpointFrames = 1000;
inline constexpr int64_t kCheckpointFailureLogIntervalS = 60;

inline int64_t record_end(const EventRecord& record) { return record.log_end; }

// An epoch record as stored.
struct EpochRow {
  int64_t number = 0;
  int64_t position = 0;
  int64_t end = 0;
  Guid id{};
  std::string leader;
};

// A range of the log whose records are gone: scavenged here, or received as such from a leader
// that scavenged them. It replicates like any entry, so a follower catching up through a
// scavenged region finds no hole (its log stays contiguous) and holds no removed record.
struct GapRow {
  int64_t position = 0;
  int64_t end = 0;
};

// A record shared with others that read it after it is written (the replication runtime's
// commit notices): storage holds a reference instead of a copy.
using SharedRecord = std::shared_ptr<const EventRecord>;
using StoredEntry = std::variant<EventRecord, EpochRow, GapRow, SharedRecord>;
// The event record of an entry (either kind), or null.
const EventRecord* event_record(const StoredEntry& e);
int64_t entry_position(const StoredEntry& e);
int64_t entry_end(const StoredEntry& e);

// One unit of work for the writer: drop entries at positions >= truncate_to (if set), then
// append `entries` (ascending, contiguous).
struct LogBatch {
  std::optional<int64_t> truncate_to;
  std::vector<StoredEntry> entries;
  uint64_t generation = 0;  // bumped by the owner at each truncation; echoed in notices
  // Called on the writer thread with the log's end once this batch is durable, before
  // on_durable, when it is the last batch of its transaction and nothing else is queued (a
  // follower's storage sends its acknowledgement from here, without waiting for the core
  // thread to wake).
  std::function<void(int64_t end)> on_written;
};

// What a scavenge's scan reads of a record.
struct ScanRow {
  int64_t position = 0;
  int64_t end = 0;
  std::string stream;
  int64_t number = 0;
  int64_t created_ms = 0;
};

struct MaintenanceResult {
  bool ok = true;
  std::string error;
  int64_t removed = 0;         // records deleted
  int64_t freelist_pages = 0;  // free pages left in the file afterwards
};

// Work for the writer thread besides the log: a scavenge's deletions, a step of incremental
// vacuum, a WAL checkpoint. Runs in a transaction of its own between log batches.
struct MaintenanceJob {
  std::vector<int64_t> remove_positions;  // event records at these positions (committed ones)
  int vacuum_pages = 0;                   // then PRAGMA incremental_vacuum(n)
  bool checkpoint = false;                // then a passive WAL checkpoint (the file shrinks)
  std::function<void(const MaintenanceResult&)> done;  // on the writer thread
};

struct StorageLocation {
  std::string db_folder;
  bool in_memory = false;
};

// Opens and owns nothing but the name; creates the schema. Throws std::runtime_error.
class Database {
 public:
  explicit Database(const StorageLocation& where);
  ~Database();
  bool in_memory() const { return in_memory_; }
  const std::string& path() const { return uri_; }
  // gather_wal_writes: through the WAL-gathering VFS (storage_vfs.hpp); for a connection that
  // always commits with synchronous=FULL.
  sqlite3* open_connection(bool writer, bool gather_wal_writes = false) const;
  // The stream index's entries not yet in the table (stream_tail.hpp), shared by the writer
  // and the readers of this database.
  StreamTail& stream_tail() const { return *tail_; }

 private:
  std::string uri_;
  int flags_ = 0;
  bool in_memory_ = false;
  sqlite3* keeper_ = nullptr;  // keeps a shared in-memory database alive
  std::unique_ptr<StreamTail> tail_;
};

class ReadConnection {
 public:
  explicit ReadConnection(const Database& db);
  ~ReadConnection();
  ReadConnection(const ReadConnection&) = delete;
  ReadConnection& operator=(const ReadConnection&) = delete;

  // The newest record of a stream at or below max_pos (a tombstone counts).
  std::optional<EventRecord> last_record(const std::string& stream, int64_t max_pos);
  std::optional<EventRecord> record(const std::string& stream, int64_t number, int64_t max_pos);
  // Records with first <= number <= last, ascending or descending, at most `limit`.
  std::vector<EventRecord> range(const std::string& stream, int64_t first, int64_t last,
                                 bool ascending, int64_t max_pos, int limit);
  // $all: forward = positions >= from, backward = positions < from; at most `limit`.
  std::vector<EventRecord> all(int64_t from_pos, bool forward, int64_t max_pos, int limit);
  // range() and all() without a copy of each row: `visit` sees the rows in order, in SQLite's
  // memory (valid during the call only; it may run other queries on this connection). Returns
  // the rows visited.
  int range_rows(const std::string& stream, int64_t first, int64_t last, bool ascending,
                 int64_t max_pos, int limit, const std::function<void(const RecordView&)>& visit);
  int all_rows(int64_t from_pos, bool forward, int64_t max_pos, int limit,
               const std::function<void(const RecordView&)>& visit);
  // Every entry (events, epochs, gaps) from `from` on, in log order, up to about bytes_max,
  // from one snapshot. A hole that this node's scavenges left (below the scavenged end) comes
  // back as a GapRow; the reading stops at any other hole.
  std::vector<StoredEntry> entries(int64_t from, size_t bytes_max);
  // Event records with from <= position < below, in log order, at most `limit`.
  std::vector<ScanRow> scan(int64_t from, int64_t below, int limit);
  std::vector<EpochRow> epochs();
  // The end of the last entry in the log (0 for an empty log).
  int64_t log_end();
  // The replication core's hard state: (epoch, voted_for).
  std::pair<int64_t, std::string> hard_state();
  int64_t size_bytes();

 private:
  // Events, epochs and gaps with positions from `from` up to `end`, in log order.
  struct EntriesWindow {
    std::vector<StoredEntry> items;
    int64_t end = std::numeric_limits<int64_t>::max();  // max: up to the log's end
  };
  EntriesWindow entries_window(int64_t from);
  sqlite3_stmt* prepare(const char* sql);
  // The event at `position` when it is `number` of `stream` (a tail entry's event), on `s`.
  bool tail_event(sqlite3_stmt* s, const std::string& stream, const TailEntry& entry);
  const StreamTail& tail_;
  sqlite3* db_ = nullptr;
  std::vector<sqlite3_stmt*> statements_;
  sqlite3_stmt* last_record_ = nullptr;
  sqlite3_stmt* record_ = nullptr;
  sqlite3_stmt* range_asc_ = nullptr;
  sqlite3_stmt* range_desc_ = nullptr;
  sqlite3_stmt* all_fwd_ = nullptr;
  sqlite3_stmt* all_bwd_ = nullptr;
  sqlite3_stmt* events_from_ = nullptr;
  sqlite3_stmt* epochs_from_ = nullptr;
  sqlite3_stmt* gaps_from_ = nullptr;
  sqlite3_stmt* scavenged_end_ = nullptr;
  sqlite3_stmt* scan_ = nullptr;
  sqlite3_stmt* at_ = nullptr;        // the event at a position (tail lookups)
  sqlite3_stmt* at_visit_ = nullptr;  // the same for range_rows, whose visitor may use at_
};

// A fixed set of ReadConnections lent to reader threads.
class ReadPool {
 public:
  ReadPool(const Database& db, int size);
  ~ReadPool();
  class Lease {
   public:
    Lease(ReadPool& pool, std::unique_ptr<ReadConnection> c) : pool_(pool), c_(std::move(c)) {}
    ~Lease() { pool_.give_back(std::move(c_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ReadConnection* operator->() { return c_.get(); }
    ReadConnection& operator*() { return *c_; }

   private:
    ReadPool& pool_;
    std::unique_ptr<ReadConnection> c_;
  };
  Lease borrow();

 private:
  void give_back(std::unique_ptr<ReadConnection> c);
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<ReadConnection>> free_;
};

// Writes the hard state synchronously (elections are rare; the vote must be on disk before it
// is sent). Used by the engine's core thread.
class HardStateStore {
 public:
  explicit HardStateStore(const Database& db);
  ~HardStateStore();
  void save(int64_t epoch, const std::string& voted_for);

 private:
  sqlite3* db_ = nullptr;
};

struct FlushStats {
  size_t records = 0;
  size_t bytes = 0;
  int64_t duration_us = 0;
  uint64_t checkpoint_failures = 0;  // since the writer started
};

class StorageWriter {
 public:
  // on_durable(log_end, generation, stats) runs on the writer thread after each committed
  // transaction; on_failure(message) once if SQLite fails, after which the writer refuses all.
  StorageWriter(const Database& db,
                std::function<void(int64_t, uint64_t, const FlushStats&)> on_durable,
                std::function<void(const std::string&)> on_failure);
  ~StorageWriter();
  StorageWriter(const StorageWriter&) = delete;
  StorageWriter& operator=(const StorageWriter&) = delete;

  // Queues a batch. False when the queue is full or the writer has failed or stopped. Without
  // `wake` the writer's thread is not woken: the caller then calls write_queued_here().
  bool submit(LogBatch batch, bool wake = true);
  // Writes what is queued on the calling thread, as the writer's thread would (callbacks
  // included), when that thread is idle and no maintenance waits; otherwise wakes it and
  // returns false. A follower's core thread writes the leader's entries itself this way when
  // its disk is fast: one thread wake-up fewer on the path of each write.
  bool write_queued_here();
  // Wakes the writer's thread for what is queued (batches submitted without `wake`).
  void wake();
  // Queues maintenance work, done after the log batches queued with it. False when the writer
  // has failed or stopped (the job is then dropped without its `done`).
  bool submit(MaintenanceJob job);
  // Writes what is queued, then stops the thread and closes the connection.
  void stop();

 private:
  void run();
  void write_transaction(std::vector<LogBatch>& batches, FlushStats& stats);
  // One log transaction and its callbacks; false when it failed (the writer has failed then).
  bool commit_batches(std::vector<LogBatch>& batches);
  // An epoch or a gap row.
  void insert(const StoredEntry& entry);
  // Event rows, in one statement; `run` is emptied.
  void insert_events(std::vector<const EventRecord*>& run, FlushStats& stats,
                     std::vector<std::pair<std::string, TailEntry>>& added);
  void index_in_bulk(const std::vector<std::pair<std::string, TailEntry>>& added);
  // A truncation at `to`: the runs of the table's events from `to` on leave it.
  void unindex_from(int64_t to);
  void set_indexed_end(int64_t end);
  MaintenanceResult maintain(const MaintenanceJob& job);
  std::vector<LogBatch> take_batches();
  void drop_maintenance(const std::string& why);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  std::vector<sqlite3_stmt*> insert_events_;  // [n]: the INSERT of n event rows, or null
  sqlite3_stmt* insert_epoch_ = nullptr;
  sqlite3_stmt* truncate_events_ = nullptr;
  sqlite3_stmt* truncate_epochs_ = nullptr;
  sqlite3_stmt* insert_gap_ = nullptr;
  sqlite3_stmt* truncate_gaps_ = nullptr;
  sqlite3_stmt* remove_event_ = nullptr;
  sqlite3_stmt* raise_scavenged_end_ = nullptr;
  sqlite3_stmt* index_entry_ = nullptr;        // the bulk insert into stream_index: one row
  sqlite3_stmt* index_entries_ = nullptr;      // ... and kIndexRowsPerStatement rows
  sqlite3_stmt* truncated_streams_ = nullptr;  // a truncation's streams, first numbers cut
  sqlite3_stmt* cut_runs_ = nullptr;           // ... their runs from those numbers on
  sqlite3_stmt* shorten_run_ = nullptr;        // ... and the run that straddles the cut
  sqlite3_stmt* unindex_event_ = nullptr;      // a scavenged event's entry out of stream_index
  sqlite3_stmt* set_indexed_end_ = nullptr;
  StreamTail& tail_;
  int64_t indexed_end_ = 0;  // as in the file (the tail's may run ahead within a transaction)
  // The tail's entries as of the last commit (the writer's own copy, so that the bulk insert
  // binds them without holding the readers' lock): the events from indexed_end_ on.
  std::vector<std::pair<std::string, TailEntry>> unindexed_;
  std::function<void(int64_t, uint64_t, const FlushStats&)> on_durable_;
  std::function<void(const std::string&)> on_failure_;
  // SQLite's wal hook on the writer's connection: the automatic checkpoint, with its failures
  // seen (SQLite's own ignores them). Runs on the writer thread, inside a COMMIT.
  static int checkpoint_after_commit(void* writer, sqlite3* db, const char* name, int frames);
  uint64_t checkpoint_failures_ = 0;
  uint64_t checkpoint_failures_logged_ = 0;
  std::chrono::steady_clock::time_point checkpoint_failure_logged_at_{};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<LogBatch> queue_;
  std::deque<MaintenanceJob> maintenance_;
  size_t queued_bytes_ = 0;
  int64_t last_end_ = 0;
  bool stopping_ = false;
  bool failed_ = false;
  bool busy_ = false;  // a transaction is being written (by the thread or write_queued_here)
  std::thread thread_;
};

}  // namespace chorus
