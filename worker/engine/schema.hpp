// The layout of a node's SQLite file and its version (PRAGMA user_version): creates a new file at
// the current version and migrates every older layout forward, one version at a time, at start.
// A file written by a newer release is refused (SchemaTooNew) and left untouched.
// Called once per database, before any other connection is opened; not thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;

namespace chorus {

// Versions of the layout (docs/operations.md "Schema versions" tells operators the same):
// 1: events, epochs, hard_state (every file written before versions existed; user_version 0)
// 2: auto_vacuum=INCREMENTAL, so that a scavenge can give freed pages back to the file system
// 3: log_gaps (ranges a scavenging leader no longer holds) and checkpoints (the scavenged end)
// 4: stream_index, a table written in bulk, replaces the index events_by_stream
// 5: stream_index holds one entry per run of a stream's consecutive events
inline constexpr int kSchemaVersion = 5;

// The most events one stream index entry covers: a read of one event scans at most this many
// rows of its run (a write of more events gets several entries).
inline constexpr int64_t kStreamRunEventsMax = 32;

// Whether an event (`stream`, `number`) that directly follows (`prev_stream`, `prev_number`) in
// the log joins that event's run of `count` events: the same stream, the next number, room left.
inline bool joins_run(std::string_view prev_stream, int64_t prev_number, int64_t count,
                      std::string_view stream, int64_t number) {
  return count < kStreamRunEventsMax && prev_number < std::numeric_limits<int64_t>::max() &&
         number == prev_number + 1 && stream == prev_stream;
}

// Inserts into `table`(stream, first, pos, last_pos, count) the runs of the events at positions
// >= `from_pos`, read once in log order (the events' rowid): no sort, no temporary file, and
// memory for one run, whatever the file's size. Runs inside the caller's transaction.
void index_runs_from_events(sqlite3* db, const std::string& table, int64_t from_pos);

// The file was written by a release that knows a newer layout than this binary.
class SchemaTooNew : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The layout version of the open database: its user_version, or 1 for a file written before
// versions existed (user_version 0 with an events table), or 0 for an empty database.
int schema_version(sqlite3* db);

// Brings `db` (the only open connection) to kSchemaVersion. `location` names the file in
// messages. Throws SchemaTooNew for a newer file, std::runtime_error when a step fails (each step
// runs in its own transaction, so a failed step leaves the previous version intact).
void migrate_schema(sqlite3* db, const std::string& location);

}  // namespace chorus
