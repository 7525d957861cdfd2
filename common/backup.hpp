// Backups of a node's database: the manifest (what was copied, from which node, at which log
// positions, with SHA-256 checksums), the checks of a backup folder before it is trusted, the
// choice of a destination inside a backup root, and the restore that places a verified copy into
// a stopped node's data folder. Used by the worker (writes the manifest), the manager (backup and
// restore API) and the `chorus` CLI (offline restore). Plain functions over the file system,
// SQLite and OpenSSL; any thread, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chorus::backup {

// Limits (one place, with their reasons).
// A manifest lists a few files; anything larger is not a manifest and is refused unread.
inline constexpr size_t kManifestBytesMax = 1024 * 1024;
// The layout of manifest.json this code writes and reads; a newer one is refused.
inline constexpr int kManifestFormat = 1;
inline constexpr const char* kManifestFileName = "manifest.json";
inline constexpr const char* kDatabaseFileName = "chorus.db";
// The node's instance id (its identity in replication, docs/cluster.md) in its data folder.
inline constexpr const char* kInstanceIdFileName = "instance-id";

struct FileEntry {
  std::string name;  // a plain file name inside the backup folder
  int64_t bytes = 0;
  std::string sha256;  // lower-case hex
};

struct Manifest {
  int format = kManifestFormat;
  std::string node;         // the node's name (its manager's), or its internal endpoint
  std::string node_id;      // internal TCP endpoint, the node's identity in replication
  std::string instance_id;  // the node's instance id (gossip); a restored node keeps its own
  std::string cluster;
  std::string chorus_version;
  std::string created_at;  // ISO 8601 UTC
  int64_t schema_version = 0;
  int64_t epoch_number = -1;
  std::string epoch_id;
  int64_t epoch_position = -1;
  // The end of the log in the copy: every entry below it is in the copy (some of the last ones
  // may not have been committed yet; a restored node truncates those if the cluster has others).
  int64_t log_position = 0;
  // The cluster's commit position when the copy began: everything below it is committed and in
  // the copy. The copy is a consistent prefix of the cluster's log at least this long.
  int64_t commit_position = 0;
  int64_t duration_ms = 0;
  std::vector<FileEntry> files;
};

std::string to_json(const Manifest& manifest);
// nullopt with `error` when the text is not a manifest of a format this code knows, or names a
// file that is not a plain file name.
std::optional<Manifest> manifest_from_json(const std::string& text, std::string* error);

// SHA-256 of a file's bytes as lower-case hex (OpenSSL); "" with `error` when unreadable.
std::string sha256_file(const std::string& path, std::string* error);

// Flushes a file or folder to disk (fsync); false when it cannot.
bool sync_path(const std::string& path);

// Where a backup named `requested` goes under `root`: a relative name is taken inside the root,
// an absolute path must lie inside it. Refuses (nullopt + `error`) an empty root or name, a path
// that leaves the root (.., or a symbolic link pointing outside), the root itself, and a folder
// that exists and is not empty. Creates nothing.
std::optional<std::string> destination_in_root(const std::string& root,
                                               const std::string& requested, std::string* error);

// The existing backup folder named `requested` (as for destination_in_root) inside `root`;
// nullopt + `error` when it leaves the root or is not a folder.
std::optional<std::string> backup_in_root(const std::string& root, const std::string& requested,
                                          std::string* error);

// Reads `folder`/manifest.json and checks every file it lists (present, same size, same
// SHA-256) and that it holds the database. nullopt + `error` naming the first problem.
std::optional<Manifest> verify_backup(const std::string& folder, std::string* error);

// Whether a process has the SQLite database at `path` open (a running node): tries to take its
// lock exclusively. False when the file does not exist.
bool database_in_use(const std::string& path);

// Places a verified backup into a node's data folder (created if missing): checks the backup
// (verify_backup), refuses when the folder's database is in use, copies the database beside the
// old one, keeps the old file's replication vote when it is of a later epoch than the copy's (a
// node must never vote twice in one epoch), removes the old WAL files and renames the copy into
// place. The node's instance-id file is left alone (a new node makes its own). Returns the
// manifest, or nullopt + `error` with the data folder unchanged (unless only the rename failed).
std::optional<Manifest> restore_backup(const std::string& backup_folder,
                                       const std::string& data_folder, std::string* error);

}  // namespace chorus::backup
