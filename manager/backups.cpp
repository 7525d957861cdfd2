// Backups and restores of this machine's nodes (see backups.hpp).
#include "manager/backups.hpp"

#include "common/backup.hpp"
#include "manager/http_client.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace chorus::manager {
namespace {

namespace fs = std::filesystem;
using Poco::JSON::Array;
using Poco::JSON::Object;

// Backups listed by GET /api/backups at most (newest names last); a root holding more is
// listed in part, with "truncated": true.
constexpr size_t kBackupsListedMax = 1000;

std::string stringify(const Object::Ptr& o) {
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

BackupReply error(int status, const std::string& message) {
  Object::Ptr o = new Object;
  o->set("error", message);
  return {status, stringify(o)};
}

Object::Ptr parse(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    return parser.parse(text).extract<Object::Ptr>();
  } catch (const std::exception&) {
    return nullptr;
  }
}

Object::Ptr manifest_object(const backup::Manifest& m) { return parse(backup::to_json(m)); }

}  // namespace

std::string default_backup_name(const std::string& node, int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  return node + "-" + stamp;
}

BackupReply backup_node(const ManagerConfig& config, const NodeView& node,
                        const std::string& folder) {
  const NodeSpec& spec = *node.spec;
  if (spec.db_folder.empty()) return error(409, spec.name + " keeps its data in memory (MemDb)");
  if (node.state != NodeState::kRunning || !node.pid) {
    return error(409, spec.name + " is not running (" + std::string(to_string(node.state)) +
                          "); a backup is taken by the running node");
  }
  if (node.health_socket.empty()) {
    return error(409, spec.name + " has no health listener (its socket path is too long)");
  }
  std::string problem;
  const auto target = backup::destination_in_root(config.backup_root, folder, &problem);
  if (!target) return error(400, problem);
  Object::Ptr request = new Object;
  request->set("folder", *target);
  request->set("node", spec.name);
  const auto answer = http_request_unix(node.health_socket, "POST", "/admin/backup",
                                        stringify(request), kBackupTimeoutMs);
  if (!answer) return error(502, spec.name + " did not answer the backup request");
  const Object::Ptr body = parse(answer->body);
  if (answer->status != 200 || !body) {
    const std::string why =
        body ? body->optValue<std::string>("error", answer->body) : answer->body;
    return error(answer->status == 409 ? 409 : 502, spec.name + ": " + why);
  }
  Object::Ptr o = new Object;
  o->set("ok", true);
  o->set("node", spec.name);
  o->set("folder", *target);
  o->set("manifest", body);
  return {200, stringify(o)};
}

BackupReply restore_node(const ManagerConfig& config, const NodeView& node,
                         const std::string& folder) {
  const NodeSpec& spec = *node.spec;
  if (spec.db_folder.empty()) return error(409, spec.name + " keeps its data in memory (MemDb)");
  if ((node.state != NodeState::kStopped && node.state != NodeState::kFailed) || node.pid) {
    return error(409, spec.name + " is " + std::string(to_string(node.state)) +
                          "; stop it first (POST /api/nodes/" + spec.name + "/stop)");
  }
  std::string problem;
  const auto source = backup::backup_in_root(config.backup_root, folder, &problem);
  if (!source) return error(400, problem);
  // The manifest is read once to compare the cluster; restore_backup checks it fully.
  const auto manifest = backup::verify_backup(*source, &problem);
  if (!manifest) return error(400, problem);
  if (!manifest->cluster.empty() && manifest->cluster != spec.cluster) {
    return error(409, "the backup is of cluster '" + manifest->cluster + "', " + spec.name +
                          " belongs to '" + spec.cluster + "'");
  }
  const auto restored = backup::restore_backup(*source, spec.db_folder, &problem);
  if (!restored) return error(500, problem);
  Object::Ptr o = new Object;
  o->set("ok", true);
  o->set("node", spec.name);
  o->set("folder", *source);
  o->set("dataFolder", spec.db_folder);
  o->set("manifest", manifest_object(*restored));
  return {200, stringify(o)};
}

BackupReply list_backups(const ManagerConfig& config) {
  std::vector<fs::path> folders;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(config.backup_root, ec)) {
    if (entry.is_directory(ec)) folders.push_back(entry.path());
  }
  std::sort(folders.begin(), folders.end());
  const bool truncated = folders.size() > kBackupsListedMax;
  if (truncated) folders.erase(folders.begin(), folders.end() - kBackupsListedMax);
  Array::Ptr list = new Array;
  for (const fs::path& folder : folders) {
    Object::Ptr item = new Object;
    item->set("folder", folder.filename().string());
    const fs::path file = folder / backup::kManifestFileName;
    std::string problem;
    std::optional<backup::Manifest> manifest;
    if (fs::file_size(file, ec) <= backup::kManifestBytesMax && !ec) {
      std::ifstream in(file, std::ios::binary);
      std::ostringstream read;
      read << in.rdbuf();
      manifest = backup::manifest_from_json(read.str(), &problem);
    }
    if (manifest) {
      item->set("manifest", manifest_object(*manifest));
    } else {
      item->set("error", problem.empty() ? "no manifest (unfinished or not a backup)" : problem);
    }
    list->add(item);
  }
  Object::Ptr o = new Object;
  o->set("root", config.backup_root);
  o->set("backups", list);
  o->set("truncated", truncated);
  return {200, stringify(o)};
}

}  // namespace chorus::manager
