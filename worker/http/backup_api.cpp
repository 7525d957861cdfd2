// The backup endpoint of the health listener (see backup_api.hpp).
#include "worker/http/backup_api.hpp"

#include "worker/engine/backup_copy.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>

namespace chorus::http {
namespace {

using Poco::JSON::Object;

Reply error_json(int status, const std::string& message) {
  Object::Ptr o = new Object;
  o->set("error", message);
  std::ostringstream out;
  o->stringify(out);
  return json_reply(status, out.str());
}

std::string option_value(const NodeConfig& config, const std::string& name) {
  for (const OptionRow& row : config.options) {
    if (row.name == name) return row.value;
  }
  return "";
}

Reply backup(Request& request, Engine& engine, HttpNode& node) {
  static std::mutex one_at_a_time;
  const NodeConfig& config = node.config();
  if (config.in_memory) return error_json(409, "this node keeps its data in memory (--mem-db)");
  std::string folder;
  std::string name;
  try {
    Poco::JSON::Parser parser;
    const Object::Ptr body = parser.parse(request.body).extract<Object::Ptr>();
    folder = body->optValue<std::string>("folder", "");
    name = body->optValue<std::string>("node", "");
  } catch (const std::exception&) {
    return error_json(400, R"(expected a JSON body {"folder":"/absolute/path","node":"name"})");
  }
  if (folder.empty() || !std::filesystem::path(folder).is_absolute()) {
    return error_json(400, "folder must be an absolute path");
  }
  std::unique_lock lock(one_at_a_time, std::try_to_lock);
  if (!lock.owns_lock()) return error_json(409, "a backup of this node is already running");
  BackupSource source;
  source.db_file = (std::filesystem::path(config.db_folder) / backup::kDatabaseFileName).string();
  source.node_id = config.int_ip + ":" + std::to_string(config.int_tcp_port);
  source.node = name.empty() ? source.node_id : name;
  source.instance_id = node.instance_id();
  source.cluster = option_value(config, "ClusterName");
  source.chorus_version = config.version;
  // Read before the snapshot begins: everything committed up to here is in the copy.
  const int64_t commit = engine.status().commit_checkpoint;
  std::string error;
  const auto manifest = copy_database(source, folder, commit, &error);
  if (!manifest) {
    std::cerr << "chorus-worker: backup into " << folder << " failed: " << error << std::endl;
    return error_json(500, "backup failed: " + error);
  }
  std::cerr << "chorus-worker: backup into " << folder << " done: log position "
            << manifest->log_position << ", commit position " << manifest->commit_position << ", "
            << manifest->duration_ms << " ms" << std::endl;
  return json_reply(200, backup::to_json(*manifest));
}

}  // namespace

void register_backup_routes(Router& router, Engine& engine, HttpNode& node) {
  router.add("POST", "/admin/backup",
             [&engine, &node](Request& r) { return backup(r, engine, node); });
}

}  // namespace chorus::http
