// Proves the schema versions of a node's SQLite file: a new file is created at the current
// version with incremental vacuum; a file written by the release before versions existed
// (made from tests/fixtures/schema_v1.sql) migrates forward with every record intact; a version 4
// file gets exactly the stream index runs its events make; a file from a newer release is refused
// with a clear message and left untouched.
#include "worker/engine/schema.hpp"
#include "worker/engine/storage.hpp"

#include "tests/unit/sqlite_file.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace chorus {
namespace {

namespace fs = std::filesystem;
using test_files::query;
using test_files::TempFolder;

void exec_on(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "") << " in " << sql;
  sqlite3_free(error);
  sqlite3_close(db);
}

// A node's file in layout 1, made from tests/fixtures/schema_v1.sql (the `.dump` of a file an
// early release wrote; see its README): same tables, rows and header fields (user_version 0, no
// auto-vacuum, WAL mode).
void write_v1_fixture(const fs::path& file) {
  std::ifstream in(fs::path(CHORUS_FIXTURES_DIR) / "schema_v1.sql");
  ASSERT_TRUE(in) << "tests/fixtures/schema_v1.sql";
  std::stringstream sql;
  sql << in.rdbuf();
  exec_on(file, sql.str() + "PRAGMA journal_mode=WAL;");
}

void set_user_version(const fs::path& file, int version) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  const std::string sql = "PRAGMA user_version=" + std::to_string(version);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

TEST(Schema, ANewFileIsCreatedAtTheCurrentVersionWithIncrementalVacuum) {
  TempFolder dir;
  { Database db(StorageLocation{dir.path().string(), false}); }
  const auto file = dir.path() / "chorus.db";
  EXPECT_EQ(query(file, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(query(file, "PRAGMA auto_vacuum"), 2);  // INCREMENTAL
}

TEST(Schema, AnInMemoryDatabaseIsAtTheCurrentVersion) {
  Database db(StorageLocation{"", true});
  sqlite3* c = db.open_connection(false);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(c, "PRAGMA user_version", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), kSchemaVersion);
  sqlite3_finalize(s);
  sqlite3_close(c);
}

TEST(Schema, TheVersion1FixtureMigratesForwardWithEveryRecordIntact) {
  TempFolder dir;
  const auto file = dir.path() / "chorus.db";
  write_v1_fixture(file);
  ASSERT_EQ(query(file, "PRAGMA user_version"), 0);  // written before versions existed
  ASSERT_EQ(query(file, "PRAGMA auto_vacuum"), 0);
  const int64_t events = query(file, "SELECT count(*) FROM events");
  ASSERT_EQ(events, 15);
  {
    Database db(StorageLocation{dir.path().string(), false});
    ReadConnection c(db);
    EXPECT_EQ(c.log_end(), query(file, "SELECT max(end_pos) FROM events"));
    const auto all = c.all(0, true, c.log_end(), 100);
    ASSERT_EQ(all.size(), 15u);
    EXPECT_EQ(all[4].stream, "fixture-a");
    EXPECT_EQ(all[4].data, R"({"n":0})");
    EXPECT_EQ(all.back().stream, "fixture-c");
    EXPECT_EQ(all.back().number, kDeletedStreamNumber);
    EXPECT_EQ(c.epochs().size(), 1u);
    // Version 4: the streams read through the stream index's table.
    const auto a = c.range("fixture-a", 0, 100, true, c.log_end(), 100);
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a.front().data, R"({"n":0})");
    const auto tombstone = c.last_record("fixture-c", c.log_end());
    ASSERT_TRUE(tombstone.has_value());
    EXPECT_EQ(tombstone->number, kDeletedStreamNumber);
    // Every record by its stream and number, and every stream both ways.
    for (const auto& r : all) {
      const auto found = c.record(r.stream, r.number, c.log_end());
      ASSERT_TRUE(found.has_value()) << r.stream << "@" << r.number;
      EXPECT_EQ(found->position.prepare, r.position.prepare);
      const auto forward = c.range(r.stream, 0, kDeletedStreamNumber, true, c.log_end(), 100);
      const auto backward = c.range(r.stream, 0, kDeletedStreamNumber, false, c.log_end(), 100);
      EXPECT_EQ(forward.size(), backward.size());
      EXPECT_EQ(std::count_if(all.begin(), all.end(),
                              [&](const EventRecord& e) { return e.stream == r.stream; }),
                static_cast<long>(forward.size()));
    }
  }
  EXPECT_EQ(query(file, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(query(file, "PRAGMA auto_vacuum"), 2);
  EXPECT_EQ(query(file, "SELECT count(*) FROM events"), events);
  // Version 5: one entry per run of a stream's consecutive events, covering every event.
  EXPECT_EQ(query(file, "SELECT sum(count) FROM stream_index"), events);
  EXPECT_LT(query(file, "SELECT count(*) FROM stream_index"), events);
  EXPECT_EQ(query(file, "SELECT count(*) FROM sqlite_schema WHERE name='events_by_stream'"), 0);
  EXPECT_EQ(query(file, "SELECT value FROM checkpoints WHERE name='stream_index_end'"),
            query(file, "SELECT max(end_pos) FROM events"));
  // A second start finds the current version and changes nothing.
  { Database again(StorageLocation{dir.path().string(), false}); }
  EXPECT_EQ(query(file, "PRAGMA user_version"), kSchemaVersion);
}

using IndexRun = std::tuple<std::string, int64_t, int64_t, int64_t, int64_t>;  // stream..count

std::vector<IndexRun> runs_in_log_order(const fs::path& file) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db,
                               "SELECT stream, first, pos, last_pos, count FROM stream_index "
                               "ORDER BY pos",
                               -1, &s, nullptr),
            SQLITE_OK);
  std::vector<IndexRun> runs;
  while (sqlite3_step(s) == SQLITE_ROW) {
    runs.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
                      sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                      sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return runs;
}

// The 4 -> 5 migration reads the events once in log order (no sort, no temporary table): a run
// is the events that follow each other in the log as the next numbers of one stream, cut at
// kStreamRunEventsMax; anything else starts a new one.
TEST(Schema, AVersion4FileGetsTheStreamIndexRunsOfItsEvents) {
  TempFolder dir;
  const auto file = dir.path() / "chorus.db";
  { Database db(StorageLocation{dir.path().string(), false}); }
  constexpr int64_t kTombstone = std::numeric_limits<int64_t>::max();
  std::vector<std::pair<std::string, int64_t>> events;
  for (int64_t n = 0; n < 70; ++n) events.emplace_back("a", n);  // 32 + 32 + 6
  for (const auto& e : {std::pair<std::string, int64_t>{"b", 0},
                        {"c", 0},
                        {"b", 1},
                        {"c", 1},
                        {"d", 0},
                        {"d", 1},
                        {"d", 3},
                        {"e", 0},
                        {"e", kTombstone},
                        {"f", 5},
                        {"f", 6},
                        {"a", 70}}) {
    events.push_back(e);
  }
  std::string sql = "BEGIN;";
  for (size_t i = 0; i < events.size(); ++i) {
    const int64_t pos = static_cast<int64_t>(i) * 10;
    sql +=
        "INSERT INTO events(pos, end_pos, stream, number, event_id, type, flags, created_ms, "
        "data, metadata) VALUES(" +
        std::to_string(pos) + "," + std::to_string(pos + 10) + ",'" + events[i].first + "'," +
        std::to_string(events[i].second) + ",randomblob(16),'t',0,0,x'',x'');";
  }
  // Back to layout 4: its per-event table (left empty: the migration must not trust it).
  sql += R"sql(
DROP TABLE stream_index;
CREATE TABLE stream_index(stream TEXT NOT NULL, number INTEGER NOT NULL, pos INTEGER NOT NULL,
  PRIMARY KEY(stream, number)) WITHOUT ROWID;
UPDATE checkpoints SET value=0 WHERE name='stream_index_end';
PRAGMA user_version=4;
COMMIT;)sql";
  exec_on(file, sql);
  ASSERT_EQ(query(file, "PRAGMA user_version"), 4);
  {
    Database db(StorageLocation{dir.path().string(), false});
    ReadConnection c(db);
    const auto a = c.range("a", 0, 100, true, c.log_end(), 100);
    ASSERT_EQ(a.size(), 71u);
    EXPECT_EQ(a.back().position.prepare, 810);
    EXPECT_EQ(c.record("d", 3, c.log_end())->position.prepare, 760);
    EXPECT_FALSE(c.record("d", 2, c.log_end()).has_value());
  }
  EXPECT_EQ(query(file, "PRAGMA user_version"), kSchemaVersion);
  const std::vector<IndexRun> expected = {
      {"a", 0, 0, 310, 32},  {"a", 32, 320, 630, 32},        {"a", 64, 640, 690, 6},
      {"b", 0, 700, 700, 1}, {"c", 0, 710, 710, 1},          {"b", 1, 720, 720, 1},
      {"c", 1, 730, 730, 1}, {"d", 0, 740, 750, 2},          {"d", 3, 760, 760, 1},
      {"e", 0, 770, 770, 1}, {"e", kTombstone, 780, 780, 1}, {"f", 5, 790, 800, 2},
      {"a", 70, 810, 810, 1}};
  EXPECT_EQ(runs_in_log_order(file), expected);
  EXPECT_EQ(query(file, "SELECT value FROM checkpoints WHERE name='stream_index_end'"), 820);
}

TEST(Schema, AFileFromANewerReleaseIsRefusedAndLeftUntouched) {
  TempFolder dir;
  const auto file = dir.path() / "chorus.db";
  write_v1_fixture(file);
  set_user_version(file, kSchemaVersion + 1);
  try {
    Database db(StorageLocation{dir.path().string(), false});
    FAIL() << "a newer schema was opened";
  } catch (const SchemaTooNew& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("schema version " + std::to_string(kSchemaVersion + 1)),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("newer"), std::string::npos) << message;
  }
  EXPECT_EQ(query(file, "PRAGMA user_version"), kSchemaVersion + 1);
  EXPECT_EQ(query(file, "PRAGMA auto_vacuum"), 0);
  EXPECT_EQ(query(file, "SELECT count(*) FROM events"), 15);
}

}  // namespace
}  // namespace chorus
