// SQLite storage: schema, group-commit writer thread, pooled read connections, hard state.
#include "worker/engine/storage.hpp"

#include "common/thread_name.hpp"
#include "common/thread_slice.hpp"
#include "worker/engine/schema.hpp"
#include "worker/engine/storage_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace chorus {
namespace {

constexpr const char* kColumns =
    "pos, end_pos, stream, number, event_id, type, flags, created_ms, data, metadata";
// kColumns with each name behind `prefix` (a table's alias in a join).
std::string prefixed_columns(const std::string& prefix) {
  std::string out;
  std::string_view rest = kColumns;
  for (;;) {
    const auto comma = rest.find(',');
    out += prefix;
    out += rest.substr(0, comma);
    if (comma == std::string_view::npos) return out;
    out += ", ";
    rest = rest.substr(comma + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  }
}

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

sqlite3_stmt* prepare_on(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
      SQLITE_OK) {
    fail(db, "SQLite prepare " + sql);
  }
  return s;
}

void step_done(sqlite3* db, sqlite3_stmt* s, const std::string& what) {
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) fail(db, what);
}

std::string blob(sqlite3_stmt* s, int column) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(s, column));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, column))) : std::string();
}

std::string_view text_view(sqlite3_stmt* s, int column) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(s, column));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s, column)))
           : std::string_view();
}

// The current row of a query on kColumns, in SQLite's memory (valid until the next step).
RecordView row_view(sqlite3_stmt* s) {
  RecordView r;
  r.position.prepare = sqlite3_column_int64(s, 0);
  r.log_end = sqlite3_column_int64(s, 1);
  // An event's commit position is its end: every later event, and the head position echoed for
  // reads from the end, then compare strictly below it, as with EventStore's commit records.
  r.position.commit = r.log_end;
  r.stream = text_view(s, 2);
  r.number = sqlite3_column_int64(s, 3);
  r.event_id = text_view(s, 4);
  r.event_type = text_view(s, 5);
  const int flags = sqlite3_column_int(s, 6);
  r.data_is_json = (flags & kFlagDataJson) != 0;
  r.metadata_is_json = (flags & kFlagMetadataJson) != 0;
  r.created_ms = sqlite3_column_int64(s, 7);
  r.data = text_view(s, 8);
  r.metadata = text_view(s, 9);
  return r;
}

EventRecord row_to_record(sqlite3_stmt* s) { return to_record(row_view(s)); }

// Hands each row of `s` to `visit` without copying it; the statement is reset even when
// `visit` throws. Returns the rows visited.
int visit_rows(sqlite3* db, sqlite3_stmt* s, const std::function<void(const RecordView&)>& visit) {
  struct Reset {
    sqlite3_stmt* s;
    ~Reset() { sqlite3_reset(s); }
  } reset{s};
  int rows = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    visit(row_view(s));
    ++rows;
  }
  if (rc != SQLITE_DONE) fail(db, "SQLite read");
  return rows;
}

EpochRow row_to_epoch(sqlite3_stmt* s) {
  EpochRow e;
  e.position = sqlite3_column_int64(s, 0);
  e.end = sqlite3_column_int64(s, 1);
  e.number = sqlite3_column_int64(s, 2);
  e.id = from_raw_bytes(blob(s, 3)).value_or(Guid{});
  e.leader = blob(s, 4);
  return e;
}

std::vector<EventRecord> collect(sqlite3* db, sqlite3_stmt* s) {
  std::vector<EventRecord> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(row_to_record(s));
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) fail(db, "SQLite read");
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

// Without SQLite's copy: only for text that outlives the statement's step (as the event
// inserts' data and metadata blobs are bound).
void bind_text_static(sqlite3_stmt* s, int index, const std::string& text) {
  sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

int64_t scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = prepare_on(db, sql);
  int64_t v = 0;
  if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

// The end of the log: the end of the entry at the highest position. The log is contiguous, so
// that entry also has the highest end; looking it up by the rowid is O(log n), where MAX(end_pos)
// scanned the whole table and made a large database slow to start.
int64_t stored_log_end(sqlite3* db) {
  return std::max(
      {scalar(db, "SELECT COALESCE((SELECT end_pos FROM events ORDER BY pos DESC LIMIT 1), 0)"),
       scalar(db, "SELECT COALESCE((SELECT end_pos FROM epochs ORDER BY pos DESC LIMIT 1), 0)"),
       scalar(db, "SELECT COALESCE((SELECT end_pos FROM log_gaps ORDER BY pos DESC LIMIT 1), 0)")});
}

// A read transaction: entries() merges three tables and must see them at one moment.
class Snapshot {
 public:
  explicit Snapshot(sqlite3* db) : db_(db) { exec(db_, "BEGIN"); }
  ~Snapshot() { sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr); }
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

 private:
  sqlite3* db_;
};

// The end of a stored gap that starts before `position` and ends after it; 0 when none. Only
// catch-up reads ask (rarely), so the statement is prepared each time.
int64_t stored_gap_end_around(sqlite3* db, int64_t position) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT end_pos FROM log_gaps WHERE pos<?1 AND end_pos>?1"
                         " ORDER BY pos DESC LIMIT 1",
                         -1, &s, nullptr) != SQLITE_OK) {
    fail(db, "SQLite prepare of a gap lookup");
  }
  sqlite3_bind_int64(s, 1, position);
  int64_t end = 0;
  if (sqlite3_step(s) == SQLITE_ROW) end = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return end;
}

// The name of this node's scavenged end in the checkpoints table.
constexpr const char* kScavengedEnd = "scavenged_end";
// ... and of the stream index's end: every event below it has its entry in stream_index.
constexpr const char* kStreamIndexEnd = "stream_index_end";

std::string set_stream_index_end_sql() {
  return std::string("INSERT INTO checkpoints(name, value) VALUES('") + kStreamIndexEnd +
         "', ?1) ON CONFLICT(name) DO UPDATE SET value=excluded.value";
}
// The writer's bulk step binds this many stream index entries to one INSERT: a statement's own
// work (step, cursor, reset) then comes once per this many rows, not once per row.
constexpr size_t kIndexRowsPerStatement = 64;

// Event rows of one transaction go to one INSERT in runs of up to this many: as with the stream
// index, the statement's own work then comes once per run.
constexpr size_t kEventRowsPerStatement = 16;
constexpr int kEventColumns = 10;

// INSERT INTO events of `rows` events, each bound as kColumns in order.
std::string insert_event_rows_sql(size_t rows) {
  std::string sql = std::string("INSERT INTO events(") + kColumns + ") VALUES";
  for (size_t i = 0; i < rows; ++i)
    sql += i == 0 ? "(?,?,?,?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?,?,?,?,?)";
  return sql;
}

// INSERT INTO stream_index of `rows` runs, each bound as (stream, first, pos, last_pos, count).
constexpr int kRunColumns = 5;
std::string insert_index_rows_sql(size_t rows) {
  std::string sql = "INSERT INTO stream_index(stream, first, pos, last_pos, count) VALUES";
  for (size_t i = 0; i < rows; ++i) sql += i == 0 ? "(?,?,?,?,?)" : ",(?,?,?,?,?)";
  return sql;
}

// The runs of the stream index that may hold number `n` (an SQL expression) start in
// (n - kStreamRunEventsMax, n]: a condition on the table's key, so that a lookup is one seek.
std::string runs_around_sql(const std::string& n) {
  return "first<=" + n + " AND first>" + n + "-" + std::to_string(kStreamRunEventsMax);
}

// At start, before any reader: the events that a stopped writer had not indexed yet go into
// the table, so that the tail starts empty. Returns the index's end (the log's end).
int64_t index_stored_tail(sqlite3* db) {
  const int64_t indexed_end =
      scalar(db, (std::string("SELECT COALESCE((SELECT value FROM checkpoints WHERE name='") +
                  kStreamIndexEnd + "'), 0)")
                     .c_str());
  const int64_t end = stored_log_end(db);
  if (end <= indexed_end) return indexed_end;
  exec(db, "BEGIN IMMEDIATE");
  try {
    index_runs_from_events(db, "stream_index", indexed_end);
    sqlite3_stmt* s = prepare_on(db, set_stream_index_end_sql());
    sqlite3_bind_int64(s, 1, end);
    const int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) fail(db, "SQLite indexing the stored tail");
    exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return end;
}

size_t entry_bytes(const StoredEntry& e) {
  return static_cast<size_t>(entry_end(e) - entry_position(e));
}

}  // namespace

const EventRecord* event_record(const StoredEntry& e) {
  if (const auto* r = std::get_if<EventRecord>(&e)) return r;
  if (const auto* shared = std::get_if<SharedRecord>(&e)) return shared->get();
  return nullptr;
}

int64_t entry_position(const StoredEntry& e) {
  if (const auto* r = event_record(e)) return r->position.prepare;
  if (const auto* epoch = std::get_if<EpochRow>(&e)) return epoch->position;
  return std::get<GapRow>(e).position;
}

int64_t entry_end(const StoredEntry& e) {
  if (const auto* r = event_record(e)) return r->log_end;
  if (const auto* epoch = std::get_if<EpochRow>(&e)) return epoch->end;
  return std::get<GapRow>(e).end;
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
  try {
    migrate_schema(keeper_, in_memory_ ? std::string("the in-memory database") : uri_);
    tail_ = std::make_unique<StreamTail>(index_stored_tail(keeper_));
  } catch (...) {
    sqlite3_close(keeper_);
    throw;
  }
}

Database::~Database() { sqlite3_close(keeper_); }

sqlite3* Database::open_connection(bool writer, bool gather_wal_writes) const {
  sqlite3* db = nullptr;
  const char* vfs = in_memory_ ? nullptr : gather_wal_writes ? wal_gathering_vfs() : kDatabaseVfs;
  if (sqlite3_open_v2(uri_.c_str(), &db, flags_, vfs) != SQLITE_OK) {
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

ReadConnection::ReadConnection(const Database& db)
    : tail_(db.stream_tail()), db_(db.open_connection(false)) {
  const std::string cols = kColumns;
  const std::string from = "SELECT " + cols + " FROM events WHERE ";
  // Through the stream index's runs (the events it holds: positions up to ?2, which the
  // caller sets below the tail's indexed end), then each run's rows by their rowids. CROSS
  // JOIN keeps that order: the index drives, as an index on events did. A run's rows are
  // filtered on their own stream and number: a scavenge may have removed some of them. The
  // rows' upper bound is one min(): with two, SQLite may end its scan of a run at ?2 instead.
  const std::string indexed = "SELECT " + prefixed_columns("e.") +
                              " FROM stream_index r CROSS JOIN events e"
                              " ON e.pos>=r.pos AND e.pos<=min(r.last_pos, ?2)"
                              " WHERE r.stream=?1 AND r.pos<=?2 AND e.stream=?1";
  const std::string runs_in_range = " AND r.first<=?4 AND r.first>?3-" +
                                    std::to_string(kStreamRunEventsMax) +
                                    " AND e.number>=?3 AND e.number<=?4";
  last_record_ = prepare((indexed + " ORDER BY r.first DESC, e.pos DESC LIMIT 1").c_str());
  record_ =
      prepare((indexed + " AND r." + runs_around_sql("?3") + " AND e.number=?3 LIMIT 1").c_str());
  range_asc_ =
      prepare((indexed + runs_in_range + " ORDER BY r.first ASC, e.pos ASC LIMIT ?5").c_str());
  range_desc_ =
      prepare((indexed + runs_in_range + " ORDER BY r.first DESC, e.pos DESC LIMIT ?5").c_str());
  at_ = prepare((from + "pos=?1").c_str());
  at_visit_ = prepare((from + "pos=?1").c_str());
  all_fwd_ = prepare((from + "pos>=?1 AND pos<=?2 ORDER BY pos ASC LIMIT ?3").c_str());
  all_bwd_ = prepare((from + "pos<?1 AND pos<=?2 ORDER BY pos DESC LIMIT ?3").c_str());
  events_from_ = prepare((from + "pos>=?1 ORDER BY pos ASC LIMIT ?2").c_str());
  epochs_from_ = prepare(
      "SELECT pos, end_pos, number, epoch_id, leader FROM epochs WHERE pos>=?1 ORDER BY pos");
  gaps_from_ =
      prepare("SELECT pos, end_pos FROM log_gaps WHERE pos>=?1 AND pos<?2 ORDER BY pos LIMIT ?3");
  scavenged_end_ =
      prepare((std::string("SELECT COALESCE((SELECT value FROM checkpoints WHERE name='") +
               kScavengedEnd + "'), 0)")
                  .c_str());
  scan_ = prepare(
      "SELECT pos, end_pos, stream, number, created_ms FROM events WHERE pos>=?1 AND pos<?2"
      " ORDER BY pos LIMIT ?3");
}

ReadConnection::~ReadConnection() {
  for (auto* s : statements_) sqlite3_finalize(s);
  sqlite3_close(db_);
}

sqlite3_stmt* ReadConnection::prepare(const char* sql) {
  statements_.push_back(prepare_on(db_, sql));
  return statements_.back();
}

namespace {

// The highest position a query of the stream index's table may return: below the tail's
// indexed end (the tail answers from there on) and at most max_pos.
int64_t indexed_bound(const StreamTail::View& tail, int64_t max_pos) {
  return std::min(max_pos, tail.indexed_end - 1);
}

}  // namespace

bool ReadConnection::tail_event(sqlite3_stmt* s, const std::string& stream,
                                const TailEntry& entry) {
  sqlite3_bind_int64(s, 1, entry.position);
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    // A scavenged event is gone; a truncated one may have been replaced by another stream's.
    if (text_view(s, 2) == stream && sqlite3_column_int64(s, 3) == entry.number) return true;
  } else if (rc != SQLITE_DONE) {
    sqlite3_reset(s);
    fail(db_, "SQLite read");
  }
  sqlite3_reset(s);
  return false;
}

std::optional<EventRecord> ReadConnection::last_record(const std::string& stream, int64_t max_pos) {
  // The newest tail entries first, a few at a time: one whose event a scavenge removed is
  // skipped (rare), and the table answers once the tail has nothing left below `last`.
  constexpr size_t kTailStep = 4;
  int64_t last = std::numeric_limits<int64_t>::max();
  for (;;) {
    const auto tail = tail_.of(stream, 0, last, max_pos, kTailStep, false);
    for (const auto& e : tail.entries) {
      if (tail_event(at_, stream, e)) {
        auto record = row_to_record(at_);
        sqlite3_reset(at_);
        return record;
      }
    }
    if (tail.entries.size() < kTailStep) {
      bind_text(last_record_, 1, stream);
      sqlite3_bind_int64(last_record_, 2, indexed_bound(tail, max_pos));
      return first_of(db_, last_record_);
    }
    last = tail.entries.back().number - 1;
  }
}

std::optional<EventRecord> ReadConnection::record(const std::string& stream, int64_t number,
                                                  int64_t max_pos) {
  const auto tail = tail_.of(stream, number, number, max_pos, 1, true);
  if (!tail.entries.empty()) {
    if (!tail_event(at_, stream, tail.entries.front())) return std::nullopt;
    auto record = row_to_record(at_);
    sqlite3_reset(at_);
    return record;
  }
  bind_text(record_, 1, stream);
  sqlite3_bind_int64(record_, 2, indexed_bound(tail, max_pos));
  sqlite3_bind_int64(record_, 3, number);
  return first_of(db_, record_);
}

std::vector<EventRecord> ReadConnection::range(const std::string& stream, int64_t first,
                                               int64_t last, bool ascending, int64_t max_pos,
                                               int limit) {
  std::vector<EventRecord> out;
  range_rows(stream, first, last, ascending, max_pos, limit,
             [&out](const RecordView& row) { out.push_back(to_record(row)); });
  return out;
}

// A stream's numbers grow with their positions, so the table's rows (below the tail's indexed
// end) all come before the tail's: ascending reads the table first, descending the tail first.
int ReadConnection::range_rows(const std::string& stream, int64_t first, int64_t last,
                               bool ascending, int64_t max_pos, int limit,
                               const std::function<void(const RecordView&)>& visit) {
  // All of the range's tail entries (fewer than kStreamIndexDeferredMax): one whose event a
  // scavenge removed is skipped, and the next one must be at hand.
  const auto tail =
      tail_.of(stream, first, last, max_pos, std::numeric_limits<size_t>::max(), ascending);
  int rows = 0;
  const auto from_table = [&] {
    if (rows >= limit) return;
    sqlite3_stmt* s = ascending ? range_asc_ : range_desc_;
    bind_text(s, 1, stream);
    sqlite3_bind_int64(s, 2, indexed_bound(tail, max_pos));
    sqlite3_bind_int64(s, 3, first);
    sqlite3_bind_int64(s, 4, last);
    sqlite3_bind_int(s, 5, limit - rows);
    rows += visit_rows(db_, s, visit);
  };
  const auto from_tail = [&] {
    const auto visit_entry = [&](const TailEntry& e) {
      if (rows >= limit || !tail_event(at_visit_, stream, e)) return;
      struct Reset {
        sqlite3_stmt* s;
        ~Reset() { sqlite3_reset(s); }
      } reset{at_visit_};
      visit(row_view(at_visit_));
      ++rows;
    };
    for (const auto& e : tail.entries) visit_entry(e);
  };
  if (ascending) {
    from_table();
    from_tail();
  } else {
    from_tail();
    from_table();
  }
  return rows;
}

std::vector<EventRecord> ReadConnection::all(int64_t from_pos, bool forward, int64_t max_pos,
                                             int limit) {
  std::vector<EventRecord> out;
  all_rows(from_pos, forward, max_pos, limit,
           [&out](const RecordView& row) { out.push_back(to_record(row)); });
  return out;
}

int ReadConnection::all_rows(int64_t from_pos, bool forward, int64_t max_pos, int limit,
                             const std::function<void(const RecordView&)>& visit) {
  sqlite3_stmt* s = forward ? all_fwd_ : all_bwd_;
  sqlite3_bind_int64(s, 1, from_pos);
  sqlite3_bind_int64(s, 2, max_pos);
  sqlite3_bind_int(s, 3, limit);
  return visit_rows(db_, s, visit);
}

namespace {

constexpr int kEntriesPageRows = 256;
constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();

}  // namespace

std::vector<StoredEntry> ReadConnection::entries(int64_t from, size_t bytes_max) {
  Snapshot snapshot(db_);
  const int64_t scavenged_end = [&] {
    int64_t v = 0;
    if (sqlite3_step(scavenged_end_) == SQLITE_ROW) v = sqlite3_column_int64(scavenged_end_, 0);
    sqlite3_reset(scavenged_end_);
    return v;
  }();
  std::vector<StoredEntry> out;
  size_t bytes = 0;
  int64_t expected = from;
  // A follower may end inside a gap this node stores (it got whole events from an earlier
  // leader's memory where this node got the gap): the rest of that gap comes first.
  if (const int64_t gap_end = stored_gap_end_around(db_, from); gap_end > from) {
    out.emplace_back(GapRow{from, gap_end});
    bytes += static_cast<size_t>(gap_end - from);
    expected = gap_end;
    if (bytes >= bytes_max) return out;
  }
  for (;;) {
    auto window = entries_window(expected);
    for (auto& item : window.items) {
      const int64_t position = entry_position(item);
      if (position < expected) continue;
      if (position > expected) {
        // A hole: records this node's scavenges removed become one gap; any other hole (there
        // should be none) ends what can be sent.
        if (position > scavenged_end) return out;
        out.emplace_back(GapRow{expected, position});
        bytes += static_cast<size_t>(position - expected);
        expected = position;
        if (bytes >= bytes_max) return out;
      }
      expected = entry_end(item);
      bytes += entry_bytes(item);
      out.push_back(std::move(item));
      if (bytes >= bytes_max) return out;
    }
    if (window.end == kNoLimit) return out;
  }
}

// Reads events from `from` (a page), then the epochs and gaps below the page's last event (the
// window's end; that event opens the next window), merged by position.
ReadConnection::EntriesWindow ReadConnection::entries_window(int64_t from) {
  EntriesWindow w;
  sqlite3_bind_int64(events_from_, 1, from);
  sqlite3_bind_int(events_from_, 2, kEntriesPageRows);
  auto events = collect(db_, events_from_);
  if (static_cast<int>(events.size()) == kEntriesPageRows) {
    w.end = events.back().position.prepare;
    events.pop_back();
  }
  sqlite3_bind_int64(gaps_from_, 1, from);
  sqlite3_bind_int64(gaps_from_, 2, w.end);
  sqlite3_bind_int(gaps_from_, 3, kEntriesPageRows);
  std::vector<GapRow> gaps;
  int rc;
  while ((rc = sqlite3_step(gaps_from_)) == SQLITE_ROW) {
    gaps.push_back(
        GapRow{sqlite3_column_int64(gaps_from_, 0), sqlite3_column_int64(gaps_from_, 1)});
  }
  sqlite3_reset(gaps_from_);
  if (rc != SQLITE_DONE) fail(db_, "SQLite read of log gaps");
  if (static_cast<int>(gaps.size()) == kEntriesPageRows) {
    w.end = gaps.back().position;  // more gaps than a page: the window ends at the last one
    gaps.pop_back();
  }
  sqlite3_bind_int64(epochs_from_, 1, from);
  while (sqlite3_step(epochs_from_) == SQLITE_ROW) {
    auto epoch = row_to_epoch(epochs_from_);
    if (epoch.position >= w.end) break;
    w.items.emplace_back(std::move(epoch));
  }
  sqlite3_reset(epochs_from_);
  for (auto& e : events) {
    if (e.position.prepare < w.end) w.items.emplace_back(std::move(e));
  }
  for (auto& g : gaps) w.items.emplace_back(g);
  std::sort(w.items.begin(), w.items.end(), [](const StoredEntry& a, const StoredEntry& b) {
    return entry_position(a) < entry_position(b);
  });
  return w;
}

std::vector<ScanRow> ReadConnection::scan(int64_t from, int64_t below, int limit) {
  sqlite3_bind_int64(scan_, 1, from);
  sqlite3_bind_int64(scan_, 2, below);
  sqlite3_bind_int(scan_, 3, limit);
  std::vector<ScanRow> out;
  int rc;
  while ((rc = sqlite3_step(scan_)) == SQLITE_ROW) {
    out.push_back(ScanRow{sqlite3_column_int64(scan_, 0), sqlite3_column_int64(scan_, 1),
                          blob(scan_, 2), sqlite3_column_int64(scan_, 3),
                          sqlite3_column_int64(scan_, 4)});
  }
  sqlite3_reset(scan_);
  if (rc != SQLITE_DONE) fail(db_, "SQLite scan");
  return out;
}

std::vector<EpochRow> ReadConnection::epochs() {
  std::vector<EpochRow> out;
  sqlite3_bind_int64(epochs_from_, 1, 0);
  while (sqlite3_step(epochs_from_) == SQLITE_ROW) out.push_back(row_to_epoch(epochs_from_));
  sqlite3_reset(epochs_from_);
  return out;
}

int64_t ReadConnection::log_end() { return stored_log_end(db_); }

std::pair<int64_t, std::string> ReadConnection::hard_state() {
  sqlite3_stmt* s = prepare_on(db_, "SELECT epoch, voted_for FROM hard_state WHERE id=1");
  std::pair<int64_t, std::string> out{0, ""};
  if (sqlite3_step(s) == SQLITE_ROW) out = {sqlite3_column_int64(s, 0), blob(s, 1)};
  sqlite3_finalize(s);
  return out;
}

int64_t ReadConnection::size_bytes() {
  return scalar(db_, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
}

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

HardStateStore::HardStateStore(const Database& db)
    : db_(db.in_memory() ? nullptr : db.open_connection(true)) {}

HardStateStore::~HardStateStore() { sqlite3_close(db_); }

void HardStateStore::save(int64_t epoch, const std::string& voted_for) {
  // An in-memory database dies with the process, and its hard state with it.
  if (!db_) return;
  sqlite3_stmt* s =
      prepare_on(db_, "INSERT OR REPLACE INTO hard_state(id, epoch, voted_for) VALUES(1, ?1, ?2)");
  sqlite3_bind_int64(s, 1, epoch);
  bind_text(s, 2, voted_for);
  const int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) fail(db_, "SQLite save hard state");
}

StorageWriter::StorageWriter(const Database& db,
                             std::function<void(int64_t, uint64_t, const FlushStats&)> on_durable,
                             std::function<void(const std::string&)> on_failure)
    : db_(db.open_connection(true, true)),
      tail_(db.stream_tail()),
      indexed_end_(tail_.indexed_end()),
      on_durable_(std::move(on_durable)),
      on_failure_(std::move(on_failure)) {
  sqlite3_wal_hook(db_, &StorageWriter::checkpoint_after_commit, this);
  begin_ = prepare_on(db_, "BEGIN IMMEDIATE");
  commit_ = prepare_on(db_, "COMMIT");
  insert_events_.resize(kEventRowsPerStatement + 1, nullptr);  // prepared when first needed
  insert_epoch_ = prepare_on(
      db_, "INSERT INTO epochs(pos, end_pos, number, epoch_id, leader) VALUES(?1,?2,?3,?4,?5)");
  truncate_events_ = prepare_on(db_, "DELETE FROM events WHERE pos>=?1");
  truncate_epochs_ = prepare_on(db_, "DELETE FROM epochs WHERE pos>=?1");
  insert_gap_ = prepare_on(db_, "INSERT INTO log_gaps(pos, end_pos) VALUES(?1,?2)");
  truncate_gaps_ = prepare_on(db_, "DELETE FROM log_gaps WHERE pos>=?1");
  remove_event_ =
      prepare_on(db_, "DELETE FROM events WHERE pos=?1 RETURNING end_pos, stream, number");
  raise_scavenged_end_ = prepare_on(
      db_, std::string("INSERT INTO checkpoints(name, value) VALUES('") + kScavengedEnd +
               "', ?1) ON CONFLICT(name) DO UPDATE SET value=max(value, excluded.value)");
  index_entry_ = prepare_on(db_, insert_index_rows_sql(1));
  index_entries_ = prepare_on(db_, insert_index_rows_sql(kIndexRowsPerStatement));
  truncated_streams_ = prepare_on(
      db_, "SELECT stream, min(number) FROM events WHERE pos>=?1 AND pos<?2 GROUP BY stream");
  // A truncation at the stream's number ?2 (position ?3): the runs from it on go, and the one
  // that straddles it keeps its events below ?3 (contiguous: a run holds no other stream's).
  cut_runs_ = prepare_on(db_, "DELETE FROM stream_index WHERE stream=?1 AND first>=?2");
  shorten_run_ = prepare_on(db_,
                            "UPDATE stream_index SET count=?2-first, last_pos=COALESCE("
                            "(SELECT max(e.pos) FROM events e WHERE e.pos>=stream_index.pos AND"
                            " e.pos<=min(stream_index.last_pos, ?3-1) AND e.stream=?1), pos)"
                            " WHERE stream=?1 AND " +
                                runs_around_sql("?2") + " AND first+count>?2");
  // A scavenged event's run goes once none of its rows is left.
  unindex_event_ =
      prepare_on(db_, "DELETE FROM stream_index WHERE stream=?1 AND " + runs_around_sql("?2") +
                          " AND first+count>?2 AND NOT EXISTS(SELECT 1 FROM events e"
                          " WHERE e.pos>=stream_index.pos AND"
                          " e.pos<=stream_index.last_pos AND e.stream=?1)");
  set_indexed_end_ = prepare_on(db_, set_stream_index_end_sql());
  last_end_ = stored_log_end(db_);
  thread_ = std::thread([this] {
    set_thread_name("writer");
    request_short_slice();  // woken by each fsync's completion
    run();
  });
}

StorageWriter::~StorageWriter() {
  stop();
  for (auto* s : insert_events_) sqlite3_finalize(s);
  for (auto* s : {begin_, commit_, insert_epoch_, truncate_events_, truncate_epochs_, insert_gap_,
                  truncate_gaps_, remove_event_, raise_scavenged_end_, index_entry_, index_entries_,
                  truncated_streams_, cut_runs_, shorten_run_, unindex_event_, set_indexed_end_}) {
    sqlite3_finalize(s);
  }
  sqlite3_close(db_);
}

bool StorageWriter::submit(LogBatch batch, bool wake) {
  size_t bytes = 0;
  for (const auto& e : batch.entries) bytes += entry_bytes(e);
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || failed_) return false;
    if (queued_bytes_ + bytes > kWriterQueueBytesMax) {
      // A batch that cannot be queued leaves a hole in the log: nothing after it may be
      // written (and so acknowledged) either. The owner treats this as a storage failure.
      failed_ = true;
      return false;
    }
    queued_bytes_ += bytes;
    queue_.push_back(std::move(batch));
  }
  if (wake) wake_.notify_one();
  return true;
}

void StorageWriter::wake() { wake_.notify_one(); }

bool StorageWriter::write_queued_here() {
  std::vector<LogBatch> batches;
  {
    std::lock_guard lock(mutex_);
    if (busy_ || failed_ || stopping_ || queue_.empty() || !maintenance_.empty()) {
      if (!queue_.empty() || !maintenance_.empty()) wake_.notify_one();
      return false;
    }
    busy_ = true;
    batches = take_batches();
  }
  const bool ok = commit_batches(batches);
  bool more = false;
  {
    std::lock_guard lock(mutex_);
    busy_ = false;
    more = !queue_.empty() || !maintenance_.empty() || stopping_;
  }
  if (more || !ok) wake_.notify_one();
  return true;
}

bool StorageWriter::commit_batches(std::vector<LogBatch>& batches) {
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
    drop_maintenance("storage failed");
    on_failure_(e.what());
    return false;
  }
  if (batches.back().on_written) {
    // Only when nothing else is queued: a busy writer goes on to its next transaction (the
    // owner then acknowledges from its own thread), since the send would delay that fsync.
    bool idle = false;
    {
      std::lock_guard lock(mutex_);
      idle = queue_.empty();
    }
    if (idle) batches.back().on_written(last_end_);
  }
  on_durable_(last_end_, batches.back().generation, stats);
  return true;
}

bool StorageWriter::submit(MaintenanceJob job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || failed_) return false;
    maintenance_.push_back(std::move(job));
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

// Jobs that will never run still answer, so that nobody waits for them.
void StorageWriter::drop_maintenance(const std::string& why) {
  std::deque<MaintenanceJob> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(maintenance_);
  }
  for (auto& job : dropped) {
    if (job.done) job.done(MaintenanceResult{false, why, 0, 0});
  }
}

void StorageWriter::run() {
  bool maintenance_turn = false;
  for (;;) {
    std::vector<LogBatch> batches;
    std::optional<MaintenanceJob> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] {
        return failed_ || (!busy_ && (!queue_.empty() || !maintenance_.empty() || stopping_));
      });
      if (failed_ || (stopping_ && queue_.empty())) break;
      busy_ = true;
      // Log batches come first, but under a steady stream of them every other transaction is
      // a maintenance job, so that a scavenge still progresses (throttled by the scavenger).
      maintenance_turn = !maintenance_turn;
      if (!maintenance_.empty() && (queue_.empty() || maintenance_turn)) {
        job = std::move(maintenance_.front());
        maintenance_.pop_front();
      } else {
        batches = take_batches();
      }
    }
    if (job) {
      const auto result = maintain(*job);
      if (job->done) job->done(result);
    } else if (!commit_batches(batches)) {
      return;
    }
    std::lock_guard lock(mutex_);
    busy_ = false;
  }
  drop_maintenance("the storage writer stopped");
}

// Whole batches up to the flush cap; at least one so that a huge batch still goes through.
// REQUIRES: mutex_ held, queue_ not empty.
std::vector<LogBatch> StorageWriter::take_batches() {
  size_t bytes = 0;
  size_t taken = 0;
  while (taken < queue_.size()) {
    size_t b = 0;
    for (const auto& e : queue_[taken].entries) b += entry_bytes(e);
    if (taken > 0 && bytes + b > kFlushBytesMax) break;
    bytes += b;
    ++taken;
  }
  std::vector<LogBatch> batches(std::make_move_iterator(queue_.begin()),
                                std::make_move_iterator(queue_.begin() + static_cast<long>(taken)));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(taken));
  queued_bytes_ -= bytes;
  return batches;
}

// A maintenance transaction commits with an fsync like a log transaction: the writer's
// connection gathers its WAL writes (storage_vfs.hpp), which is only safe with synchronous=FULL.
MaintenanceResult StorageWriter::maintain(const MaintenanceJob& job) {
  MaintenanceResult r;
  try {
    exec(db_, "BEGIN IMMEDIATE");
    int64_t scavenged_end = 0;
    std::vector<std::pair<std::string, int64_t>> removed;  // (stream, number)
    for (const int64_t position : job.remove_positions) {
      sqlite3_bind_int64(remove_event_, 1, position);
      int rc;
      const size_t before = removed.size();
      while ((rc = sqlite3_step(remove_event_)) == SQLITE_ROW) {
        scavenged_end = std::max<int64_t>(scavenged_end, sqlite3_column_int64(remove_event_, 0));
        removed.emplace_back(text_view(remove_event_, 1), sqlite3_column_int64(remove_event_, 2));
        ++r.removed;
      }
      sqlite3_reset(remove_event_);
      if (rc != SQLITE_DONE) fail(db_, "SQLite scavenge delete");
      // Its index entry, if it has one yet (one in the tail goes after the commit).
      if (removed.size() > before) {
        bind_text(unindex_event_, 1, removed.back().first);
        sqlite3_bind_int64(unindex_event_, 2, removed.back().second);
        step_done(db_, unindex_event_, "SQLite scavenge delete of an index entry");
      }
    }
    if (scavenged_end > 0) {
      sqlite3_bind_int64(raise_scavenged_end_, 1, scavenged_end);
      step_done(db_, raise_scavenged_end_, "SQLite scavenged end");
    }
    if (job.vacuum_pages > 0) {
      exec(db_, ("PRAGMA incremental_vacuum(" + std::to_string(job.vacuum_pages) + ")").c_str());
    }
    exec(db_, "COMMIT");
    if (!removed.empty() && !unindexed_.empty()) {
      const std::unordered_set<int64_t> gone(job.remove_positions.begin(),
                                             job.remove_positions.end());
      std::erase_if(unindexed_, [&](const auto& e) { return gone.count(e.second.position) > 0; });
    }
    for (const auto& [stream, number] : removed) tail_.remove(stream, number);
    if (job.checkpoint) {
      sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    r.freelist_pages = scalar(db_, "PRAGMA freelist_count");
  } catch (const std::exception& e) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    r = MaintenanceResult{false, e.what(), 0, 0};
  }
  return r;
}

int StorageWriter::checkpoint_after_commit(void* writer, sqlite3* db, const char* name,
                                           int frames) {
  if (frames < kWalCheckpointFrames) return SQLITE_OK;
  // PASSIVE, as SQLite's automatic checkpoint: copies what no reader still needs, never waits.
  const int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc == SQLITE_OK || rc == SQLITE_BUSY) return SQLITE_OK;  // BUSY: another checkpoint runs
  auto& self = *static_cast<StorageWriter*>(writer);
  ++self.checkpoint_failures_;
  const auto now = std::chrono::steady_clock::now();
  if (self.checkpoint_failures_logged_ == 0 ||
      now - self.checkpoint_failure_logged_at_ >=
          std::chrono::seconds(kCheckpointFailureLogIntervalS)) {
    std::cerr << "chorus-worker: WAL checkpoint into the database file failed ("
              << sqlite3_errstr(rc) << ": " << sqlite3_errmsg(db) << "), "
              << self.checkpoint_failures_ - self.checkpoint_failures_logged_
              << " time(s) since the last report; the WAL keeps every write and the next "
                 "commit tries again"
              << std::endl;
    self.checkpoint_failures_logged_ = self.checkpoint_failures_;
    self.checkpoint_failure_logged_at_ = now;
  }
  // The COMMIT that called this has committed: its caller must not see an error.
  return SQLITE_OK;
}

void StorageWriter::write_transaction(std::vector<LogBatch>& batches, FlushStats& stats) {
  const auto started = std::chrono::steady_clock::now();
  step_done(db_, begin_, "SQLite BEGIN");
  int64_t end = last_end_;
  std::optional<int64_t> truncated_to;
  std::vector<std::pair<std::string, TailEntry>> added;
  std::vector<const EventRecord*> run;  // event rows not inserted yet (log order)
  run.reserve(kEventRowsPerStatement);
  for (const auto& batch : batches) {
    if (batch.truncate_to) {
      insert_events(run, stats, added);
      const int64_t to = *batch.truncate_to;
      if (to < indexed_end_) {
        unindex_from(to);
        set_indexed_end(to);
      }
      for (auto* s : {truncate_events_, truncate_epochs_, truncate_gaps_}) {
        sqlite3_bind_int64(s, 1, to);
        step_done(db_, s, "SQLite truncate");
      }
      end = std::min(end, to);
      truncated_to = std::min(truncated_to.value_or(to), to);
      const auto truncated = [to](const auto& a) { return a.second.position >= to; };
      std::erase_if(added, truncated);
      std::erase_if(unindexed_, truncated);
    }
    for (const auto& e : batch.entries) {
      if (const auto* r = event_record(e)) {
        run.push_back(r);
        if (run.size() == kEventRowsPerStatement) insert_events(run, stats, added);
      } else {
        insert_events(run, stats, added);
        insert(e);
      }
      end = entry_end(e);
    }
  }
  insert_events(run, stats, added);
  std::optional<int64_t> indexed_to;
  if (!added.empty() && unindexed_.size() + added.size() >= kStreamIndexDeferredMax) {
    index_in_bulk(added);
    set_indexed_end(end);
    indexed_to = end;
  }
  step_done(db_, commit_, "SQLite COMMIT");
  if (indexed_to) {
    unindexed_.clear();
  } else {
    unindexed_.insert(unindexed_.end(), added.begin(), added.end());
  }
  // Readers bound by positions up to the end of this transaction look in the tail only after
  // on_durable_ tells the owner of that end (below).
  tail_.apply(truncated_to, std::move(added), indexed_to);
  last_end_ = end;
  stats.checkpoint_failures = checkpoint_failures_;
  stats.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
}

// From memory, not from the events: reading a few thousand rows back cost several times as much
// once they no longer fit the connection's page cache. The entries (in log order) become runs:
// an event that follows its predecessor in the log as the next number of the same stream joins
// its run, up to kStreamRunEventsMax. Inserted in stream order, so that each stream's runs
// append to its part of the table.
void StorageWriter::index_in_bulk(const std::vector<std::pair<std::string, TailEntry>>& added) {
  using Entry = std::pair<std::string, TailEntry>;
  struct Run {
    const Entry* first;
    int64_t last_pos;
    int64_t count;
    uint32_t rank;  // of the stream's name (below)
  };
  std::vector<Run> runs;
  const Entry* previous = nullptr;
  const std::initializer_list<const std::vector<Entry>*> parts = {&unindexed_, &added};
  for (const auto* part : parts) {
    for (const auto& e : *part) {
      const bool joins = previous && !runs.empty() &&
                         joins_run(previous->first, previous->second.number, runs.back().count,
                                   e.first, e.second.number);
      if (joins) {
        runs.back().last_pos = e.second.position;
        ++runs.back().count;
      } else {
        runs.push_back(Run{&e, e.second.position, 1, 0});
      }
      previous = &e;
    }
  }
  // Sorted by (the rank of the stream's name, first number): the names are compared once per
  // stream, not once per comparison of the sort (stream names often share a long prefix).
  std::unordered_map<std::string_view, uint32_t> rank_of;
  for (const auto& r : runs) rank_of.try_emplace(r.first->first, 0);
  std::vector<std::string_view> names;
  names.reserve(rank_of.size());
  for (const auto& [name, rank] : rank_of) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i < names.size(); ++i) rank_of[names[i]] = static_cast<uint32_t>(i);
  for (auto& r : runs) r.rank = rank_of[r.first->first];
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) {
    return a.rank != b.rank ? a.rank < b.rank : a.first->second.number < b.first->second.number;
  });
  const auto insert = [&](sqlite3_stmt* s, size_t from, size_t rows) {
    for (size_t i = 0; i < rows; ++i) {
      const Run& r = runs[from + i];
      const int at = static_cast<int>(kRunColumns * i);
      bind_text_static(s, at + 1, r.first->first);
      sqlite3_bind_int64(s, at + 2, r.first->second.number);
      sqlite3_bind_int64(s, at + 3, r.first->second.position);
      sqlite3_bind_int64(s, at + 4, r.last_pos);
      sqlite3_bind_int64(s, at + 5, r.count);
    }
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) fail(db_, "SQLite stream index from " + runs[from].first->first);
  };
  size_t i = 0;
  for (; i + kIndexRowsPerStatement <= runs.size(); i += kIndexRowsPerStatement) {
    insert(index_entries_, i, kIndexRowsPerStatement);
  }
  for (; i < runs.size(); ++i) insert(index_entry_, i, 1);
}

// Before the events go (their numbers say where each stream's runs are cut).
void StorageWriter::unindex_from(int64_t to) {
  std::vector<std::pair<std::string, int64_t>> cuts;  // (stream, its first number cut)
  sqlite3_bind_int64(truncated_streams_, 1, to);
  sqlite3_bind_int64(truncated_streams_, 2, indexed_end_);
  int rc;
  while ((rc = sqlite3_step(truncated_streams_)) == SQLITE_ROW) {
    cuts.emplace_back(text_view(truncated_streams_, 0),
                      sqlite3_column_int64(truncated_streams_, 1));
  }
  sqlite3_reset(truncated_streams_);
  if (rc != SQLITE_DONE) fail(db_, "SQLite truncate of the stream index");
  for (const auto& [stream, number] : cuts) {
    bind_text(cut_runs_, 1, stream);
    sqlite3_bind_int64(cut_runs_, 2, number);
    step_done(db_, cut_runs_, "SQLite truncate of the stream index");
    bind_text(shorten_run_, 1, stream);
    sqlite3_bind_int64(shorten_run_, 2, number);
    sqlite3_bind_int64(shorten_run_, 3, to);
    step_done(db_, shorten_run_, "SQLite truncate of the stream index");
  }
}

void StorageWriter::set_indexed_end(int64_t end) {
  sqlite3_bind_int64(set_indexed_end_, 1, end);
  step_done(db_, set_indexed_end_, "SQLite stream index end");
  indexed_end_ = end;
}

void StorageWriter::insert(const StoredEntry& entry) {
  if (const auto* gap = std::get_if<GapRow>(&entry)) {
    sqlite3_bind_int64(insert_gap_, 1, gap->position);
    sqlite3_bind_int64(insert_gap_, 2, gap->end);
    step_done(db_, insert_gap_, "SQLite insert of a log gap");
    return;
  }
  const auto& epoch = std::get<EpochRow>(entry);
  sqlite3_bind_int64(insert_epoch_, 1, epoch.position);
  sqlite3_bind_int64(insert_epoch_, 2, epoch.end);
  sqlite3_bind_int64(insert_epoch_, 3, epoch.number);
  const std::string id = to_raw_bytes(epoch.id);
  sqlite3_bind_blob(insert_epoch_, 4, id.data(), 16, SQLITE_TRANSIENT);
  bind_text(insert_epoch_, 5, epoch.leader);
  step_done(db_, insert_epoch_, "SQLite insert of epoch " + std::to_string(epoch.number));
}

void StorageWriter::insert_events(std::vector<const EventRecord*>& run, FlushStats& stats,
                                  std::vector<std::pair<std::string, TailEntry>>& added) {
  if (run.empty()) return;
  sqlite3_stmt*& s = insert_events_[run.size()];
  if (!s) s = prepare_on(db_, insert_event_rows_sql(run.size()));
  for (size_t i = 0; i < run.size(); ++i) {
    const EventRecord& r = *run[i];
    const int at = static_cast<int>(i) * kEventColumns;
    sqlite3_bind_int64(s, at + 1, r.position.prepare);
    sqlite3_bind_int64(s, at + 2, r.log_end);
    bind_text_static(s, at + 3, r.stream);
    sqlite3_bind_int64(s, at + 4, r.number);
    // The id's 16 bytes as they are in memory (RFC order), bound without a copy: r outlives the
    // step.
    sqlite3_bind_blob(s, at + 5, r.event_id.data, 16, SQLITE_STATIC);
    bind_text_static(s, at + 6, r.event_type);
    sqlite3_bind_int(
        s, at + 7,
        (r.data_is_json ? kFlagDataJson : 0) | (r.metadata_is_json ? kFlagMetadataJson : 0));
    sqlite3_bind_int64(s, at + 8, r.created_ms);
    sqlite3_bind_blob64(s, at + 9, r.data.data(), r.data.size(), SQLITE_STATIC);
    sqlite3_bind_blob64(s, at + 10, r.metadata.data(), r.metadata.size(), SQLITE_STATIC);
  }
  // The failure's text is built only on failure (it allocated on every insert).
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) {
    fail(db_, "SQLite insert of " + run.front()->stream + "@" +
                  std::to_string(run.front()->number) + " and the " +
                  std::to_string(run.size() - 1) + " events after it");
  }
  for (const EventRecord* r : run) {
    added.emplace_back(r->stream, TailEntry{r->number, r->position.prepare});
    stats.records += 1;
    stats.bytes += r->data.size() + r->metadata.size();
  }
  run.clear();
}

}  // namespace chorus
