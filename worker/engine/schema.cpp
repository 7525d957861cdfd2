// Schema versions and migrations of a node's SQLite file (see schema.hpp for the version list).
#include "worker/engine/schema.hpp"

#include <sqlite3.h>

#include <functional>
#include <iostream>
#include <string>

namespace chorus {
namespace {

// Layout 1, as every release before schema versions created it (kept verbatim: the migrations
// start from it, and a new file is created as version 1 and then migrated like an old one).
constexpr const char* kLayout1 = R"sql(
CREATE TABLE IF NOT EXISTS events(
  pos INTEGER PRIMARY KEY,
  end_pos INTEGER NOT NULL,
  stream TEXT NOT NULL,
  number INTEGER NOT NULL,
  event_id BLOB NOT NULL,
  type TEXT NOT NULL,
  flags INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  data BLOB NOT NULL,
  metadata BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events(stream, number);
CREATE TABLE IF NOT EXISTS epochs(
  pos INTEGER PRIMARY KEY,
  end_pos INTEGER NOT NULL,
  number INTEGER NOT NULL,
  epoch_id BLOB NOT NULL,
  leader TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hard_state(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  epoch INTEGER NOT NULL,
  voted_for TEXT NOT NULL);
)sql";

// Layout 3's additions. log_gaps: ranges of the log that a scavenging leader sent as gaps (their
// records are gone for good); checkpoints: named positions, e.g. the end of what this node's own
// scavenges removed (below it a missing record is a scavenged one, not a lost one).
constexpr const char* kLayout3Additions = R"sql(
CREATE TABLE IF NOT EXISTS log_gaps(
  pos INTEGER PRIMARY KEY,
  end_pos INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints(
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL);
)sql";

// Layout 4: the stream index as a table the storage writer fills in bulk (storage.hpp, "stream
// index"), instead of an index SQLite updates with every event row. At first it holds every
// event; stream_index_end (in checkpoints) says up to where it is complete.
constexpr const char* kLayout4Steps = R"sql(
CREATE TABLE stream_index(
  stream TEXT NOT NULL,
  number INTEGER NOT NULL,
  pos INTEGER NOT NULL,
  PRIMARY KEY(stream, number)) WITHOUT ROWID;
INSERT INTO stream_index(stream, number, pos)
  SELECT stream, number, pos FROM events ORDER BY stream, number;
DROP INDEX IF EXISTS events_by_stream;
INSERT INTO checkpoints(name, value)
  VALUES('stream_index_end', COALESCE((SELECT end_pos FROM events ORDER BY pos DESC LIMIT 1), 0));
)sql";

// Layout 5: the stream index holds one entry per run of a stream's consecutive events (a
// write's events are consecutive in number and in position), not one per event: (stream, the
// run's first number) -> the positions of its first and last events and its count. Rebuilt
// from the events (the layout 4 table may lag its stream_index_end), then renamed in its place.
constexpr const char* kLayout5Create = R"sql(
CREATE TABLE stream_runs(
  stream TEXT NOT NULL,
  first INTEGER NOT NULL,
  pos INTEGER NOT NULL,
  last_pos INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY(stream, first)) WITHOUT ROWID;
)sql";
constexpr const char* kLayout5Swap = R"sql(
DROP TABLE stream_index;
ALTER TABLE stream_runs RENAME TO stream_index;
INSERT INTO checkpoints(name, value)
  VALUES('stream_index_end', COALESCE((SELECT end_pos FROM events ORDER BY pos DESC LIMIT 1), 0))
  ON CONFLICT(name) DO UPDATE SET value=excluded.value;
)sql";

constexpr int kAutoVacuumIncremental = 2;  // PRAGMA auto_vacuum's value for INCREMENTAL

void exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw std::runtime_error("SQLite: " + sql.substr(0, 60) + ": " + message);
  }
}

int64_t scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) {
    throw std::runtime_error(std::string("SQLite prepare ") + sql + ": " + sqlite3_errmsg(db));
  }
  int64_t v = 0;
  if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

bool is_memory(sqlite3* db) {
  const char* file = sqlite3_db_filename(db, "main");
  return file == nullptr || *file == '\0';
}

// Runs `step` and stamps `version` in one transaction: a crash leaves the old version whole.
void in_transaction(sqlite3* db, int version, const std::function<void()>& step) {
  exec(db, "BEGIN IMMEDIATE");
  try {
    step();
    exec(db, "PRAGMA user_version=" + std::to_string(version));
    exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

// 1 -> 2: turn on incremental auto-vacuum. An existing file only changes mode by being rebuilt
// (VACUUM, which cannot run inside a transaction; it is atomic by itself). The file may be large:
// this runs once, and the log says why start-up takes longer.
void migrate_1_to_2(sqlite3* db, const std::string& location) {
  if (scalar(db, "PRAGMA auto_vacuum") != kAutoVacuumIncremental) {
    exec(db, "PRAGMA auto_vacuum=INCREMENTAL");
    if (!is_memory(db)) {
      std::cerr << "chorus-worker: rebuilding " << location
                << " once for incremental vacuum (schema version 2)" << std::endl;
    }
    exec(db, "VACUUM");
  }
  in_transaction(db, 2, [] {});
}

void migrate_2_to_3(sqlite3* db) {
  in_transaction(db, 3, [db] { exec(db, kLayout3Additions); });
}

// 3 -> 4: one pass over the events (a large file takes a while, once; the log says so).
void migrate_3_to_4(sqlite3* db, const std::string& location) {
  if (!is_memory(db) && scalar(db, "SELECT count(*) FROM events") > 0) {
    std::cerr << "chorus-worker: rebuilding the stream index of " << location
              << " once (schema version 4)" << std::endl;
  }
  in_transaction(db, 4, [db] { exec(db, kLayout4Steps); });
}

// 4 -> 5: one pass over the events, like 3 -> 4.
void migrate_4_to_5(sqlite3* db, const std::string& location) {
  if (!is_memory(db) && scalar(db, "SELECT count(*) FROM events") > 0) {
    std::cerr << "chorus-worker: rebuilding the stream index of " << location
              << " once, in runs (schema version 5)" << std::endl;
  }
  in_transaction(db, 5, [db] {
    exec(db, kLayout5Create);
    index_runs_from_events(db, "stream_runs", 0);
    exec(db, kLayout5Swap);
  });
}

}  // namespace

void index_runs_from_events(sqlite3* db, const std::string& table, int64_t from_pos) {
  sqlite3_stmt* read = nullptr;
  sqlite3_stmt* insert = nullptr;
  const auto finish = [&] {
    sqlite3_finalize(read);
    sqlite3_finalize(insert);
  };
  const std::string insert_sql =
      "INSERT INTO " + table + "(stream, first, pos, last_pos, count) VALUES(?1,?2,?3,?4,?5)";
  if (sqlite3_prepare_v2(db, "SELECT stream, number, pos FROM events WHERE pos>=?1 ORDER BY pos",
                         -1, &read, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db, insert_sql.c_str(), -1, &insert, nullptr) != SQLITE_OK) {
    const std::string message = sqlite3_errmsg(db);
    finish();
    throw std::runtime_error("SQLite preparing the stream index's rebuild: " + message);
  }
  struct Run {
    std::string stream;
    int64_t first = 0, last = 0, pos = 0, last_pos = 0, count = 0;
  } run;
  const auto flush = [&] {
    if (run.count == 0) return;
    sqlite3_bind_text(insert, 1, run.stream.data(), static_cast<int>(run.stream.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(insert, 2, run.first);
    sqlite3_bind_int64(insert, 3, run.pos);
    sqlite3_bind_int64(insert, 4, run.last_pos);
    sqlite3_bind_int64(insert, 5, run.count);
    const int rc = sqlite3_step(insert);
    sqlite3_reset(insert);
    if (rc != SQLITE_DONE) {
      throw std::runtime_error(std::string("SQLite rebuilding the stream index: ") +
                               sqlite3_errmsg(db));
    }
  };
  try {
    sqlite3_bind_int64(read, 1, from_pos);
    int rc;
    while ((rc = sqlite3_step(read)) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(read, 0));
      const std::string_view stream(text ? text : "",
                                    static_cast<size_t>(sqlite3_column_bytes(read, 0)));
      const int64_t number = sqlite3_column_int64(read, 1);
      const int64_t pos = sqlite3_column_int64(read, 2);
      if (run.count > 0 && joins_run(run.stream, run.last, run.count, stream, number)) {
        run.last = number;
        run.last_pos = pos;
        ++run.count;
        continue;
      }
      flush();
      run.stream.assign(stream);
      run.first = run.last = number;
      run.pos = run.last_pos = pos;
      run.count = 1;
    }
    if (rc != SQLITE_DONE) {
      throw std::runtime_error(std::string("SQLite reading the events to index: ") +
                               sqlite3_errmsg(db));
    }
    flush();
  } catch (...) {
    finish();
    throw;
  }
  finish();
}

int schema_version(sqlite3* db) {
  const auto version = static_cast<int>(scalar(db, "PRAGMA user_version"));
  if (version != 0) return version;
  const bool has_events =
      scalar(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='events'") > 0;
  return has_events ? 1 : 0;
}

void migrate_schema(sqlite3* db, const std::string& location) {
  int version = schema_version(db);
  if (version > kSchemaVersion) {
    throw SchemaTooNew("the database " + location + " has schema version " +
                       std::to_string(version) + ", newer than the " +
                       std::to_string(kSchemaVersion) +
                       " this chorus-worker knows: it was written by a newer release. Run that "
                       "release (or newer) on it; this one leaves the file untouched.");
  }
  if (version == 0) {
    // A new file: incremental vacuum is set before the first table. A file that already has
    // its header (WAL mode writes one) only takes the mode by a VACUUM, instant while empty.
    exec(db, "PRAGMA auto_vacuum=INCREMENTAL");
    if (scalar(db, "PRAGMA auto_vacuum") != kAutoVacuumIncremental) exec(db, "VACUUM");
    in_transaction(db, 1, [db] { exec(db, kLayout1); });
    version = 1;
  } else if (scalar(db, "PRAGMA user_version") == 0) {
    in_transaction(db, 1, [] {});  // a file from before versions: stamp what it is
  }
  if (version < 2) migrate_1_to_2(db, location);
  if (version < 3) migrate_2_to_3(db);
  if (version < 4) migrate_3_to_4(db, location);
  if (version < 5) migrate_4_to_5(db, location);
}

}  // namespace chorus
