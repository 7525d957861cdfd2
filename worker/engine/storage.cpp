// SQLite storage: schema, group-commit writer thread, pooled read connections.
#include "worker/engine/storage.hpp"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

namespace chorus {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events(
  pos INTEGER PRIMARY KEY,
  commit_pos INTEGER NOT NULL,
  stream TEXT NOT NULL,
  number INTEGER NOT NULL,
  event_id BLOB NOT NULL,
  type TEXT NOT NULL,
  flags INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  data BLOB NOT NULL,
  metadata BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events(stream, number);
)sql";

constexpr const char* kColumns =
    "pos, commit_pos, stream, number, event_id, type, flags, created_ms, data, metadata";
constexpr int kFlagDataJson = 1;
constexpr int kFlagMetadataJson = 2;
constexpr int kBusyTimeoutMs = 10000;

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw std::runtime_error(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

void exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw std::runtime_error(std::string("SQLite: ") + sql + ": " + message);
  }
}

std::string blob(sqlite3_stmt* s, int column) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(s, column));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, column))) : std::string();
}

EventRecord row_to_record(sqlite3_stmt* s) {
  EventRecord r;
  r.position.prepare = sqlite3_column_int64(s, 0);
  r.position.commit = sqlite3_column_int64(s, 1);
  r.stream = blob(s, 2);
  r.number = sqlite3_column_int64(s, 3);
  r.event_id = from_raw_bytes(blob(s, 4)).value_or(Guid{});
  r.event_type = blob(s, 5);
  const int flags = sqlite3_column_int(s, 6);
  r.data_is_json = (flags & kFlagDataJson) != 0;
  r.metadata_is_json = (flags & kFlagMetadataJson) != 0;
  r.created_ms = sqlite3_column_int64(s, 7);
  r.data = blob(s, 8);
  r.metadata = blob(s, 9);
  return r;
}

std::vector<EventRecord> collect(sqlite3* db, sqlite3_stmt* s) {
  std::vector<EventRecord> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(row_to_record(s));
  if (rc != SQLITE_DONE) fail(db, "SQLite read");
  sqlite3_reset(s);
  return out;
}

std::optional<EventRecord> first_of(sqlite3* db, sqlite3_stmt* s) {
  auto rows = collect(db, s);
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

void bind_text(sqlite3_stmt* s, int index, const std::string& text) {
  sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

}  // namespace

int64_t record_end(const EventRecord& r) {
  return r.position.prepare + kRecordOverheadBytes + static_cast<int64_t>(r.stream.size()) +
         static_cast<int64_t>(r.event_type.size()) + static_cast<int64_t>(r.data.size()) +
         static_cast<int64_t>(r.metadata.size());
}

Database::Database(const StorageLocation& where) : in_memory_(where.in_memory) {
  if (where.in_memory) {
    uri_ = "file:chorus-mem-" + to_string(random_guid()) + "?mode=memory&cache=shared";
    flags_ = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI |
             SQLITE_OPEN_SHAREDCACHE | SQLITE_OPEN_NOMUTEX;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(where.db_folder, ec);
    if (ec) {
      throw std::runtime_error("cannot create the database folder " + where.db_folder + ": " +
                               ec.message());
    }
    uri_ = (std::filesystem::path(where.db_folder) / "chorus.db").string();
    flags_ = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  }
  keeper_ = open_connection(true);
  exec(keeper_, kSchema);
}

Database::~Database() { sqlite3_close(keeper_); }

sqlite3* Database::open_connection(bool writer) const {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(uri_.c_str(), &db, flags_, nullptr) != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("cannot open the database " + uri_ + ": " + message);
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (!in_memory_) {
    exec(db, "PRAGMA journal_mode=WAL");
    // FULL: every commit fsyncs the WAL, so an acknowledged write survives a crash.
    exec(db, writer ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  } else if (!writer) {
    // Shared-cache readers would otherwise wait for the writer's table lock; they only read
    // positions at or below the committed one, which are complete.
    exec(db, "PRAGMA read_uncommitted=1");
  }
  if (!writer) exec(db, "PRAGMA query_only=1");
  return db;
}

ReadConnection::ReadConnection(const Database& db) : db_(db.open_connection(false)) {
  const std::string cols = kColumns;
  last_record_ = prepare(
      ("SELECT " + cols + " FROM events WHERE stream=?1 AND pos<=?2 ORDER BY number DESC LIMIT 1")
          .c_str());
  record_ = prepare(
      ("SELECT " + cols + " FROM events WHERE stream=?1 AND number=?2 AND pos<=?3").c_str());
  range_asc_ = prepare(("SELECT " + cols +
                        " FROM events WHERE stream=?1 AND number>=?2 AND number<=?3 AND pos<=?4"
                        " ORDER BY number ASC LIMIT ?5")
                           .c_str());
  range_desc_ = prepare(("SELECT " + cols +
                         " FROM events WHERE stream=?1 AND number>=?2 AND number<=?3 AND pos<=?4"
                         " ORDER BY number DESC LIMIT ?5")
                            .c_str());
  all_fwd_ = prepare(
      ("SELECT " + cols + " FROM events WHERE pos>=?1 AND pos<=?2 ORDER BY pos ASC LIMIT ?3")
          .c_str());
  all_bwd_ = prepare(
      ("SELECT " + cols + " FROM events WHERE pos<?1 AND pos<=?2 ORDER BY pos DESC LIMIT ?3")
          .c_str());
  last_in_log_ = prepare(("SELECT " + cols + " FROM events ORDER BY pos DESC LIMIT 1").c_str());
}

ReadConnection::~ReadConnection() {
  for (auto* s :
       {last_record_, record_, range_asc_, range_desc_, all_fwd_, all_bwd_, last_in_log_}) {
    sqlite3_finalize(s);
  }
  sqlite3_close(db_);
}

sqlite3_stmt* ReadConnection::prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    fail(db_, std::string("SQLite prepare ") + sql);
  }
  return s;
}

std::optional<EventRecord> ReadConnection::last_record(const std::string& stream, int64_t max_pos) {
  bind_text(last_record_, 1, stream);
  sqlite3_bind_int64(last_record_, 2, max_pos);
  return first_of(db_, last_record_);
}

std::optional<EventRecord> ReadConnection::record(const std::string& stream, int64_t number,
                                                  int64_t max_pos) {
  bind_text(record_, 1, stream);
  sqlite3_bind_int64(record_, 2, number);
  sqlite3_bind_int64(record_, 3, max_pos);
  return first_of(db_, record_);
}

std::vector<EventRecord> ReadConnection::range(const std::string& stream, int64_t first,
                                               int64_t last, bool ascending, int64_t max_pos,
                                               int limit) {
  sqlite3_stmt* s = ascending ? range_asc_ : range_desc_;
  bind_text(s, 1, stream);
  sqlite3_bind_int64(s, 2, first);
  sqlite3_bind_int64(s, 3, last);
  sqlite3_bind_int64(s, 4, max_pos);
  sqlite3_bind_int(s, 5, limit);
  return collect(db_, s);
}

std::vector<EventRecord> ReadConnection::all(int64_t from_pos, bool forward, int64_t max_pos,
                                             int limit) {
  sqlite3_stmt* s = forward ? all_fwd_ : all_bwd_;
  sqlite3_bind_int64(s, 1, from_pos);
  sqlite3_bind_int64(s, 2, max_pos);
  sqlite3_bind_int(s, 3, limit);
  return collect(db_, s);
}

std::optional<EventRecord> ReadConnection::last_in_log() { return first_of(db_, last_in_log_); }

ReadPool::ReadPool(const Database& db, int size) {
  for (int i = 0; i < size; ++i) free_.push_back(std::make_unique<ReadConnection>(db));
}

ReadPool::~ReadPool() = default;

ReadPool::Lease ReadPool::borrow() {
  std::unique_lock lock(mutex_);
  available_.wait(lock, [&] { return !free_.empty(); });
  auto c = std::move(free_.back());
  free_.pop_back();
  return Lease(*this, std::move(c));
}

void ReadPool::give_back(std::unique_ptr<ReadConnection> c) {
  {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(c));
  }
  available_.notify_one();
}

StorageWriter::StorageWriter(const Database& db,
                             std::function<void(int64_t, const FlushStats&)> on_durable,
                             std::function<void(const std::string&)> on_failure)
    : db_(db.open_connection(true)),
      on_durable_(std::move(on_durable)),
      on_failure_(std::move(on_failure)) {
  const std::string sql =
      std::string("INSERT INTO events(") + kColumns + ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)";
  if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &insert_, nullptr) !=
      SQLITE_OK) {
    fail(db_, "SQLite prepare insert");
  }
  thread_ = std::thread([this] { run(); });
}

StorageWriter::~StorageWriter() {
  stop();
  sqlite3_finalize(insert_);
  sqlite3_close(db_);
}

bool StorageWriter::submit(std::vector<EventRecord> records) {
  size_t bytes = 0;
  for (const auto& r : records) bytes += static_cast<size_t>(record_end(r) - r.position.prepare);
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || failed_ || queued_bytes_ + bytes > kWriterQueueBytesMax) return false;
    queued_bytes_ += bytes;
    queue_.push_back(std::move(records));
  }
  wake_.notify_one();
  return true;
}

void StorageWriter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void StorageWriter::run() {
  for (;;) {
    std::vector<std::vector<EventRecord>> batches;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty() || failed_) return;
      // Take whole batches up to the flush cap; at least one so a huge batch still goes through.
      size_t bytes = 0;
      size_t taken = 0;
      while (taken < queue_.size()) {
        size_t b = 0;
        for (const auto& r : queue_[taken])
          b += static_cast<size_t>(record_end(r) - r.position.prepare);
        if (taken > 0 && bytes + b > kFlushBytesMax) break;
        bytes += b;
        ++taken;
      }
      batches.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() + static_cast<long>(taken)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(taken));
      queued_bytes_ -= bytes;
    }
    FlushStats stats;
    try {
      write_transaction(batches, stats);
    } catch (const std::exception& e) {
      {
        std::lock_guard lock(mutex_);
        failed_ = true;
        queue_.clear();
      }
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      on_failure_(e.what());
      return;
    }
    on_durable_(batches.back().back().position.prepare, stats);
  }
}

void StorageWriter::write_transaction(std::vector<std::vector<EventRecord>>& batches,
                                      FlushStats& stats) {
  const auto started = std::chrono::steady_clock::now();
  exec(db_, "BEGIN IMMEDIATE");
  for (const auto& batch : batches) {
    for (const auto& r : batch) {
      sqlite3_bind_int64(insert_, 1, r.position.prepare);
      sqlite3_bind_int64(insert_, 2, r.position.commit);
      bind_text(insert_, 3, r.stream);
      sqlite3_bind_int64(insert_, 4, r.number);
      const std::string id = to_raw_bytes(r.event_id);
      sqlite3_bind_blob(insert_, 5, id.data(), 16, SQLITE_TRANSIENT);
      bind_text(insert_, 6, r.event_type);
      sqlite3_bind_int(
          insert_, 7,
          (r.data_is_json ? kFlagDataJson : 0) | (r.metadata_is_json ? kFlagMetadataJson : 0));
      sqlite3_bind_int64(insert_, 8, r.created_ms);
      sqlite3_bind_blob64(insert_, 9, r.data.data(), r.data.size(), SQLITE_STATIC);
      sqlite3_bind_blob64(insert_, 10, r.metadata.data(), r.metadata.size(), SQLITE_STATIC);
      if (sqlite3_step(insert_) != SQLITE_DONE) {
        sqlite3_reset(insert_);
        fail(db_, "SQLite insert of " + r.stream + "@" + std::to_string(r.number));
      }
      sqlite3_reset(insert_);
      stats.records += 1;
      stats.bytes += r.data.size() + r.metadata.size();
    }
  }
  exec(db_, "COMMIT");
  stats.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
}

}  // namespace chorus
