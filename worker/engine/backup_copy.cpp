// The online copy of a node's database (see backup_copy.hpp).
#include "worker/engine/backup_copy.hpp"

#include "common/gossip.hpp"
#include "common/guid.hpp"
#include "worker/engine/storage_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

namespace chorus {
namespace {

namespace fs = std::filesystem;

// The writer holds its lock for one group commit (milliseconds); a read transaction only waits
// for a WAL checkpoint's brief lock, so a few seconds is ample.
constexpr int kBusyTimeoutMs = 10000;

struct Closer {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using Connection = std::unique_ptr<sqlite3, Closer>;

// vfs: kDatabaseVfs for the node's own file, null (SQLite's default) for the copy.
Connection open(const std::string& path, int flags, const char* vfs, std::string* error) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, vfs);
  Connection db(raw);
  if (rc != SQLITE_OK) {
    *error = "cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory");
    return nullptr;
  }
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  return db;
}

bool exec(sqlite3* db, const char* sql, std::string* error) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) == SQLITE_OK) return true;
  *error = std::string("SQLite ") + sql + ": " + (message ? message : sqlite3_errmsg(db));
  sqlite3_free(message);
  return false;
}

int64_t scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  int64_t v = 0;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
    v = sqlite3_column_int64(s, 0);
  }
  sqlite3_finalize(s);
  return v;
}

// Positions and the last epoch as the snapshot has them (inside the open read transaction).
void read_positions(sqlite3* db, backup::Manifest& m) {
  // As storage's log end: the last of events, epoch records and scavenged ranges (log_gaps).
  m.log_position = std::max(
      {scalar(db, "SELECT COALESCE((SELECT end_pos FROM events ORDER BY pos DESC LIMIT 1), 0)"),
       scalar(db, "SELECT COALESCE((SELECT end_pos FROM epochs ORDER BY pos DESC LIMIT 1), 0)"),
       scalar(db, "SELECT COALESCE((SELECT end_pos FROM log_gaps ORDER BY pos DESC LIMIT 1), 0)")});
  m.schema_version = scalar(db, "PRAGMA user_version");
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT number, epoch_id, pos FROM epochs ORDER BY pos DESC LIMIT 1",
                         -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    m.epoch_number = sqlite3_column_int64(s, 0);
    const auto* id = static_cast<const char*>(sqlite3_column_blob(s, 1));
    const std::string raw =
        id ? std::string(id, static_cast<size_t>(sqlite3_column_bytes(s, 1))) : std::string();
    m.epoch_id = to_string(from_raw_bytes(raw).value_or(Guid{}));
    m.epoch_position = sqlite3_column_int64(s, 2);
  }
  sqlite3_finalize(s);
}

// Copies every page of `source` (whose read transaction is open) into a new file at `to`, then
// makes the copy a rollback-journal file, so it is complete without a -wal beside it.
bool copy_pages(sqlite3* source, const std::string& to, std::string* error) {
  Connection dest = open(to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr, error);
  if (!dest) return false;
  sqlite3_backup* copy = sqlite3_backup_init(dest.get(), "main", source, "main");
  if (!copy) {
    *error = std::string("SQLite backup: ") + sqlite3_errmsg(dest.get());
    return false;
  }
  // One step of every page: the source's open read transaction keeps the snapshot; stepping in
  // pieces would restart the copy each time the writer commits.
  const int rc = sqlite3_backup_step(copy, -1);
  sqlite3_backup_finish(copy);
  if (rc != SQLITE_DONE) {
    *error = std::string("SQLite backup: ") + sqlite3_errstr(rc);
    return false;
  }
  return exec(dest.get(), "PRAGMA journal_mode=DELETE", error);
}

bool write_manifest(const fs::path& folder, const backup::Manifest& m, std::string* error) {
  const fs::path temporary = folder / (std::string(backup::kManifestFileName) + ".tmp");
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << backup::to_json(m);
    out.flush();
    if (!out) {
      *error = "cannot write " + temporary.string();
      return false;
    }
  }
  std::error_code ec;
  if (!backup::sync_path(temporary.string())) {
    *error = "cannot flush " + temporary.string();
    return false;
  }
  fs::rename(temporary, folder / backup::kManifestFileName, ec);
  if (ec) {
    *error = "cannot write the manifest: " + ec.message();
    return false;
  }
  backup::sync_path(folder.string());
  return true;
}

int64_t elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               since)
      .count();
}

// Takes the snapshot and copies it; fills the positions of `m`.
bool snapshot_into(const BackupSource& source, const fs::path& file, backup::Manifest& m,
                   std::string* error) {
  Connection db = open(source.db_file, SQLITE_OPEN_READWRITE, kDatabaseVfs, error);
  if (!db) return false;
  if (!exec(db.get(), "PRAGMA query_only=1", error) || !exec(db.get(), "BEGIN", error)) {
    return false;
  }
  // The first read opens the read transaction: from here on this connection sees one snapshot.
  read_positions(db.get(), m);
  const bool copied = copy_pages(db.get(), file.string(), error);
  std::string ignored;
  exec(db.get(), "COMMIT", &ignored);
  return copied;
}

}  // namespace

std::optional<backup::Manifest> copy_database(const BackupSource& source, const std::string& folder,
                                              int64_t commit_position, std::string* error) {
  const auto started = std::chrono::steady_clock::now();
  const fs::path dir(folder);
  std::error_code ec;
  const bool existed = fs::exists(dir, ec);
  if (existed && (!fs::is_directory(dir, ec) || !fs::is_empty(dir, ec))) {
    *error = folder + " exists and is not an empty folder";
    return std::nullopt;
  }
  fs::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create " + folder + ": " + ec.message();
    return std::nullopt;
  }
  backup::Manifest m;
  m.node = source.node;
  m.node_id = source.node_id;
  m.instance_id = source.instance_id;
  m.cluster = source.cluster;
  m.chorus_version = source.chorus_version;
  m.commit_position = commit_position;
  m.created_at = iso8601_utc(std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
  const fs::path file = dir / backup::kDatabaseFileName;
  bool ok = snapshot_into(source, file, m, error);
  if (ok && !backup::sync_path(file.string())) {
    *error = "cannot flush " + file.string() + " to disk";
    ok = false;
  }
  if (ok) {
    const std::string sum = backup::sha256_file(file.string(), error);
    ok = !sum.empty();
    m.files.push_back(
        {backup::kDatabaseFileName, static_cast<int64_t>(fs::file_size(file, ec)), sum});
  }
  m.duration_ms = elapsed_ms(started);
  if (ok) ok = write_manifest(dir, m, error);
  if (!ok) {
    if (existed) {
      for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove(entry.path(), ec);
    } else {
      fs::remove_all(dir, ec);
    }
    return std::nullopt;
  }
  return m;
}

}  // namespace chorus
