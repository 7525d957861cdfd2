// The online copy of a node's database for a backup: SQLite's backup API on a read-only
// connection of its own, inside one read transaction, so the copy is one consistent snapshot and
// the writer goes on committing meanwhile (WAL: a reader never blocks it). The log positions of
// the manifest are read from that same snapshot. Any thread except the engine's; blocks for as
// long as the copy takes. The caller allows one copy at a time per node.
#pragma once

#include "common/backup.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace chorus {

struct BackupSource {
  std::string db_file;  // the node's chorus.db
  std::string node;     // name for the manifest (the manager's), or the node id
  std::string node_id;
  std::string instance_id;
  std::string cluster;
  std::string chorus_version;
};

// Copies the database into `folder` (created; it must not exist or be empty), converts the copy
// to a single self-contained file, flushes it, hashes it and writes manifest.json last, so that a
// folder without a manifest is recognisably unfinished. `commit_position` must have been read
// before the call: the copy then holds at least everything committed up to it. On failure removes
// what it wrote and returns nullopt with `error`.
std::optional<backup::Manifest> copy_database(const BackupSource& source, const std::string& folder,
                                              int64_t commit_position, std::string* error);

}  // namespace chorus
