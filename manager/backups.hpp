// Backups and restores of this machine's nodes for the management API: a backup is taken by the
// running node itself (POST /admin/backup over its health listener, the manager's private Unix
// socket) into a folder below BackupRoot; a restore checks a backup's manifest and checksums and
// places its database into a stopped node's data folder (common/backup.hpp). The caller checks
// the credentials ($admins only). HTTP request threads; each call blocks for its copy.
#pragma once

#include "manager/config.hpp"
#include "manager/supervisor.hpp"

#include <cstdint>
#include <string>

namespace chorus::manager {

// A backup of a large database takes as long as reading and writing the file; the API waits
// this long for the node's answer (the copy goes on, and finishes, if the caller goes away).
inline constexpr int kBackupTimeoutMs = 60 * 60 * 1000;

struct BackupReply {
  int status = 200;
  std::string json;  // the body: {"ok":true,...} or {"error":"..."}
};

// The folder name used when the caller names none: "<node>-<UTC time>", e.g.
// n1-20261202T071500Z.
std::string default_backup_name(const std::string& node, int64_t unix_ms);

// POST /api/nodes/{name}/backup?folder=<name under BackupRoot>.
BackupReply backup_node(const ManagerConfig& config, const NodeView& node,
                        const std::string& folder);

// POST /api/nodes/{name}/restore?folder=<backup under BackupRoot>: the node must be stopped.
BackupReply restore_node(const ManagerConfig& config, const NodeView& node,
                         const std::string& folder);

// GET /api/backups: the folders below BackupRoot with their manifests (not re-checked).
BackupReply list_backups(const ManagerConfig& config);

}  // namespace chorus::manager
