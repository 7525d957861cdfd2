// The backup subcommands: `backup NAME` (the node's manager takes an online backup into its
// BackupRoot), `backups` (what the managers hold), `restore NAME --folder F` (through the manager,
// onto a stopped node) and the offline forms that need no manager: `restore --from DIR --to DATA`
// (checks the manifest's checksums, then places the database into a data folder) and
// `verify-backup DIR`.
#include <Poco/JSON/Array.h>

#include <iostream>

#include "cli/app.hpp"
#include "cli/manager_api.hpp"
#include "cli/table.hpp"
#include "common/backup.hpp"

namespace chorus::cli {
namespace {

std::string text_of(const Poco::JSON::Object::Ptr& o, const std::string& key) {
  if (!o || !o->has(key) || o->isNull(key)) return "-";
  return o->get(key).convert<std::string>();
}

void print_manifest_summary(const std::string& what, const backup::Manifest& m) {
  std::cout << what << ": node " << m.node << " (cluster " << m.cluster << "), epoch "
            << m.epoch_number << ", log position " << m.log_position << ", commit position "
            << m.commit_position << ", taken " << m.created_at << "\n";
}

int restore_offline(const Context& ctx, const std::string& from, const std::string& to) {
  std::string error;
  const auto manifest = backup::restore_backup(from, to, &error);
  if (!manifest) throw Failure("restore: " + error);
  if (ctx.json) {
    print_json(json_object(backup::to_json(*manifest), "the manifest"));
  } else {
    print_manifest_summary("restored into " + to, *manifest);
  }
  return kExitOk;
}

}  // namespace

int cmd_backup(const Context& ctx) {
  std::string name;
  std::string folder;
  po::options_description options("backup options");
  options.add_options()("name", po::value(&name)->required(), "the node's name")(
      "folder", po::value(&folder), "folder under the manager's BackupRoot (default NAME-<time>)");
  po::positional_options_description positional;
  positional.add("name", 1);
  po::variables_map vm;
  if (!ctx.parse("backup NAME [--folder F]", options, positional, vm)) return kExitOk;
  if (!ctx.credentials) throw UsageError("backup needs --user/--password of an admin");
  const ManagerNodes manager = manager_of(ctx, name);
  std::string path = "/api/nodes/" + path_segment(name) + "/backup";
  if (!folder.empty()) path += "?folder=" + path_segment(folder);
  const Poco::JSON::Object::Ptr body = post_action(ctx, manager.endpoint, path, kBackupTimeoutMs);
  if (ctx.json) {
    print_json(body);
    return kExitOk;
  }
  const Poco::JSON::Object::Ptr m = body->getObject("manifest");
  std::cout << name << ": backup in " << text_of(body, "folder") << " (log position "
            << text_of(m, "logPosition") << ", commit position " << text_of(m, "commitPosition")
            << ", " << text_of(m, "durationMs") << " ms)\n";
  return kExitOk;
}

int cmd_backups(const Context& ctx) {
  po::options_description options("backups options");
  po::variables_map vm;
  if (!ctx.parse("backups", options, {}, vm)) return kExitOk;
  if (!ctx.credentials) throw UsageError("backups needs --user/--password of an admin");
  Poco::JSON::Array::Ptr all = new Poco::JSON::Array;
  Table table({"MANAGER", "FOLDER", "NODE", "CREATED", "LOG POSITION", "BYTES"});
  for (const ManagerNodes& m : find_managers(ctx)) {
    const HttpReply reply =
        http_request(m.endpoint, "GET", "/api/backups", ctx.credentials, kHttpTimeoutMs);
    if (reply.status != 200) {
      throw Failure(client::to_string(m.endpoint) + "/api/backups: HTTP " +
                    std::to_string(reply.status) + ": " + reply.body);
    }
    const Poco::JSON::Object::Ptr doc = json_object(reply.body, "/api/backups");
    const Poco::JSON::Array::Ptr list = doc->getArray("backups");
    for (size_t i = 0; list && i < list->size(); ++i) {
      Poco::JSON::Object::Ptr b = list->getObject(static_cast<unsigned>(i));
      const Poco::JSON::Object::Ptr man = b->getObject("manifest");
      const Poco::JSON::Array::Ptr files = man ? man->getArray("files") : nullptr;
      const Poco::JSON::Object::Ptr file =
          files && files->size() > 0 ? files->getObject(0) : nullptr;
      table.add({client::to_string(m.endpoint), text_of(b, "folder"), text_of(man, "node"),
                 text_of(man, "createdAt"), text_of(man, "logPosition"), text_of(file, "bytes")});
      b->set("manager", client::to_string(m.endpoint));
      all->add(b);
    }
  }
  if (ctx.json) {
    print_json(all);
  } else {
    table.print(std::cout);
  }
  return kExitOk;
}

int cmd_restore(const Context& ctx) {
  std::string name;
  std::string folder;
  std::string from;
  std::string to;
  po::options_description options("restore options");
  options.add_options()("name", po::value(&name), "the (stopped) node, through its manager")(
      "folder", po::value(&folder), "the backup's folder under the manager's BackupRoot")(
      "from", po::value(&from), "offline: a backup folder on this machine")(
      "to", po::value(&to), "offline: the data folder of a stopped or new node");
  po::positional_options_description positional;
  positional.add("name", 1);
  po::variables_map vm;
  if (!ctx.parse("restore NAME --folder F | restore --from BACKUP --to DATA", options, positional,
                 vm)) {
    return kExitOk;
  }
  if (!from.empty() || !to.empty()) {
    if (from.empty() || to.empty() || !name.empty()) {
      throw UsageError("restore: the offline form takes --from and --to, and no node name");
    }
    return restore_offline(ctx, from, to);
  }
  if (name.empty() || folder.empty()) throw UsageError("restore: give NAME and --folder");
  if (!ctx.credentials) throw UsageError("restore needs --user/--password of an admin");
  const ManagerNodes manager = manager_of(ctx, name);
  const Poco::JSON::Object::Ptr body =
      post_action(ctx, manager.endpoint,
                  "/api/nodes/" + path_segment(name) + "/restore?folder=" + path_segment(folder),
                  kBackupTimeoutMs);
  if (ctx.json) {
    print_json(body);
  } else {
    std::cout << name << ": restored from " << text_of(body, "folder") << "; start it with "
              << "`chorus node start " << name << "`\n";
    // A restore into a wiped folder gives the node a new instance id and moves its seat to it.
    if (body->has("seatError")) {
      std::cout << name << ": its seat was not moved to its new instance id ("
                << text_of(body, "seatError")
                << "); once the cluster has a leader, move it with POST /admin/members/replace "
                   "(docs/operations.md, Replacing a member)\n";
    } else if (body->has("seatMoved")) {
      std::cout << name << ": its seat in the cluster moved to its new instance id\n";
    }
  }
  return kExitOk;
}

int cmd_verify_backup(const Context& ctx) {
  std::string folder;
  po::options_description options("verify-backup options");
  options.add_options()("folder", po::value(&folder)->required(), "a backup folder");
  po::positional_options_description positional;
  positional.add("folder", 1);
  po::variables_map vm;
  if (!ctx.parse("verify-backup FOLDER", options, positional, vm)) return kExitOk;
  std::string error;
  const auto manifest = backup::verify_backup(folder, &error);
  if (!manifest) throw Failure("verify-backup: " + error);
  if (ctx.json) {
    print_json(json_object(backup::to_json(*manifest), "the manifest"));
  } else {
    print_manifest_summary(folder + ": checksums match", *manifest);
  }
  return kExitOk;
}

}  // namespace chorus::cli
