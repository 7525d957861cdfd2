// Storage: the SQLite file of one node. One StorageWriter thread appends records in group-commit
// transactions (many client writes per fsync); ReadConnections (a fixed pool) answer queries and
// see only positions up to a bound the caller gives (the committed position). WAL on disk;
// `--mem-db` uses a shared-cache in-memory database instead.
// Threading: StorageWriter methods from any thread; a ReadConnection by one thread at a time.
#pragma once

#include "worker/engine/types.hpp"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace chorus {

// Bounds of the storage layer (one place, with their reasons).
// A group-commit transaction stops taking batches past this many bytes, to bound fsync latency.
inline constexpr size_t kFlushBytesMax = 32u * 1024u * 1024u;
// Bytes queued for the writer before new writes are refused (clients retry on PrepareTimeout).
inline constexpr size_t kWriterQueueBytesMax = 256u * 1024u * 1024u;
// Fixed cost added to each record's size when positions are assigned (header, ids, numbers).
inline constexpr int64_t kRecordOverheadBytes = 64;
// The first position of an empty log; positions are never 0 so no event sits at (0,0).
inline constexpr int64_t kFirstLogPosition = 1;

// The log position after `record`: positions advance by the record's size, like byte offsets.
int64_t record_end(const EventRecord& record);

struct StorageLocation {
  std::string db_folder;
  bool in_memory = false;
};

// Opens and owns nothing but the name; creates the schema. Throws std::runtime_error.
class Database {
 public:
  explicit Database(const StorageLocation& where);
  ~Database();
  // The SQLite URI/path every connection opens, and the flags to open it with.
  const std::string& uri() const { return uri_; }
  int open_flags() const { return flags_; }
  bool in_memory() const { return in_memory_; }
  sqlite3* open_connection(bool writer) const;

 private:
  std::string uri_;
  int flags_ = 0;
  bool in_memory_ = false;
  sqlite3* keeper_ = nullptr;  // keeps a shared in-memory database alive
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
  // The last record of the log, if any.
  std::optional<EventRecord> last_in_log();

 private:
  sqlite3_stmt* prepare(const char* sql);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* last_record_ = nullptr;
  sqlite3_stmt* record_ = nullptr;
  sqlite3_stmt* range_asc_ = nullptr;
  sqlite3_stmt* range_desc_ = nullptr;
  sqlite3_stmt* all_fwd_ = nullptr;
  sqlite3_stmt* all_bwd_ = nullptr;
  sqlite3_stmt* last_in_log_ = nullptr;
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

struct FlushStats {
  size_t records = 0;
  size_t bytes = 0;
  int64_t duration_us = 0;
};

class StorageWriter {
 public:
  // on_durable(last_position, stats) runs on the writer thread after each committed transaction;
  // on_failure(message) once if SQLite fails, after which the writer refuses everything.
  StorageWriter(const Database& db, std::function<void(int64_t, const FlushStats&)> on_durable,
                std::function<void(const std::string&)> on_failure);
  ~StorageWriter();
  StorageWriter(const StorageWriter&) = delete;
  StorageWriter& operator=(const StorageWriter&) = delete;

  // Queues records (positions already assigned, ascending). False when the queue is full or the
  // writer has failed or stopped.
  bool submit(std::vector<EventRecord> records);
  // Writes what is queued, then stops the thread and closes the connection.
  void stop();

 private:
  void run();
  void write_transaction(std::vector<std::vector<EventRecord>>& batches, FlushStats& stats);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  std::function<void(int64_t, const FlushStats&)> on_durable_;
  std::function<void(const std::string&)> on_failure_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::vector<EventRecord>> queue_;
  size_t queued_bytes_ = 0;
  bool stopping_ = false;
  bool failed_ = false;
  std::thread thread_;
};

}  // namespace chorus
