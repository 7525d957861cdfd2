// The cluster subcommands: status (gossip through any seed) and the ones that talk to the
// managers' HTTP API: nodes, node ACTION NAME, rolling-restart and logs.
#include <Poco/JSON/Array.h>
#include <Poco/URI.h>

#include <iostream>

#include "cli/app.hpp"
#include "cli/manager_api.hpp"
#include "cli/table.hpp"

namespace chorus::cli {
namespace {

std::string endpoint_text(const std::string& ip, int port) {
  return port > 0 ? ip + ":" + std::to_string(port) : "-";
}

const MemberInfo* leader_of(const ClusterInfo& gossip) {
  for (const MemberInfo& m : gossip.members) {
    if (m.state == "Leader" && m.is_alive) return &m;
  }
  return nullptr;
}

Poco::JSON::Object::Ptr member_json(const MemberInfo& m, const MemberInfo* leader) {
  Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("state", m.state);
  o->set("isAlive", m.is_alive);
  o->set("instanceId", m.instance_id);
  o->set("externalTcp", endpoint_text(m.external_tcp_ip, m.external_tcp_port));
  o->set("http", endpoint_text(m.external_http_ip, m.external_http_port));
  if (m.state == "Manager") return o;
  o->set("epochNumber", m.epoch_number);
  o->set("writerCheckpoint", m.writer_checkpoint);
  o->set("chaserCheckpoint", m.chaser_checkpoint);
  o->set("lastCommitPosition", m.last_commit_position);
  if (leader)
    o->set("lagBytes", std::max<int64_t>(0, leader->writer_checkpoint - m.writer_checkpoint));
  return o;
}

std::string text_of(const Poco::JSON::Object::Ptr& o, const std::string& key) {
  if (!o->has(key) || o->isNull(key)) return "-";
  return o->get(key).convert<std::string>();
}

}  // namespace

int cmd_status(const Context& ctx) {
  po::options_description options("status options");
  po::variables_map vm;
  if (!ctx.parse("status", options, {}, vm)) return kExitOk;
  const SeedGossip sg = first_gossip(ctx);
  const MemberInfo* leader = leader_of(sg.gossip);
  if (ctx.json) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("seed", client::to_string(sg.seed));
    o->set("leader", leader ? Poco::Dynamic::Var(
                                  endpoint_text(leader->external_tcp_ip, leader->external_tcp_port))
                            : Poco::Dynamic::Var());
    Poco::JSON::Array::Ptr members = new Poco::JSON::Array;
    for (const MemberInfo& m : sg.gossip.members) members->add(member_json(m, leader));
    o->set("members", members);
    print_json(o);
    return kExitOk;
  }
  Table table({"STATE", "ALIVE", "TCP", "HTTP", "EPOCH", "WRITER", "CHASER", "COMMIT", "LAG"});
  for (const MemberInfo& m : sg.gossip.members) {
    const bool node = m.state != "Manager";
    const auto num = [node](int64_t v) { return node ? std::to_string(v) : std::string("-"); };
    table.add(
        {m.state, m.is_alive ? "yes" : "no", endpoint_text(m.external_tcp_ip, m.external_tcp_port),
         endpoint_text(m.external_http_ip, m.external_http_port), num(m.epoch_number),
         num(m.writer_checkpoint), num(m.chaser_checkpoint), num(m.last_commit_position),
         node && leader
             ? std::to_string(std::max<int64_t>(0, leader->writer_checkpoint - m.writer_checkpoint))
             : "-"});
  }
  std::cout << "cluster seen through " << client::to_string(sg.seed) << ": "
            << (leader
                    ? "leader " + endpoint_text(leader->external_tcp_ip, leader->external_tcp_port)
                    : std::string("NO LEADER"))
            << "\n";
  table.print(std::cout);
  return kExitOk;
}

int cmd_nodes(const Context& ctx) {
  po::options_description options("nodes options");
  po::variables_map vm;
  if (!ctx.parse("nodes", options, {}, vm)) return kExitOk;
  const std::vector<ManagerNodes> managers = find_managers(ctx);
  if (ctx.json) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
    for (const ManagerNodes& m : managers) {
      Poco::JSON::Object::Ptr entry = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
      entry->set("endpoint", client::to_string(m.endpoint));
      entry->set("manager", m.document->getObject("manager"));
      entry->set("nodes", m.document->getArray("nodes"));
      list->add(entry);
    }
    o->set("managers", list);
    print_json(o);
    return kExitOk;
  }
  Table table({"MANAGER", "NODE", "CLUSTER", "STATE", "ROLE", "PID", "RESTARTS", "WRITER"});
  for (const ManagerNodes& m : managers) {
    Poco::JSON::Array::Ptr nodes = m.document->getArray("nodes");
    for (size_t i = 0; nodes && i < nodes->size(); ++i) {
      Poco::JSON::Object::Ptr n = nodes->getObject(static_cast<unsigned>(i));
      table.add({client::to_string(m.endpoint), text_of(n, "name"), text_of(n, "cluster"),
                 text_of(n, "state"), text_of(n, "role"), text_of(n, "pid"), text_of(n, "restarts"),
                 text_of(n, "writerCheckpoint")});
    }
  }
  table.print(std::cout);
  return kExitOk;
}

int cmd_node(const Context& ctx) {
  std::string action;
  std::string name;
  po::options_description options("node options");
  options.add_options()("action", po::value(&action)->required(),
                        "start | stop | restart | resign")(
      "name", po::value(&name)->required(), "the node's name (as `chorus nodes` lists it)");
  po::positional_options_description positional;
  positional.add("action", 1).add("name", 1);
  po::variables_map vm;
  if (!ctx.parse("node start|stop|restart|resign NAME", options, positional, vm)) return kExitOk;
  if (action != "start" && action != "stop" && action != "restart" && action != "resign") {
    throw UsageError("node: the action must be start, stop, restart or resign");
  }
  if (!ctx.credentials) throw UsageError("node " + action + " needs --user/--password");
  const ManagerNodes manager = manager_of(ctx, name);
  Poco::JSON::Object::Ptr body =
      post_action(ctx, manager.endpoint, "/api/nodes/" + path_segment(name) + "/" + action,
                  kNodeActionTimeoutMs);
  if (ctx.json) {
    print_json(body);
  } else {
    std::cout << name << ": " << action << " done";
    if (body->has("node"))
      std::cout << " (now " << text_of(body->getObject("node"), "state") << ")";
    std::cout << "\n";
  }
  return kExitOk;
}

int cmd_rolling_restart(const Context& ctx) {
  std::string cluster = "default";
  po::options_description options("rolling-restart options");
  options.add_options()("cluster", po::value(&cluster)->default_value(cluster),
                        "the cluster whose nodes restart");
  po::variables_map vm;
  if (!ctx.parse("rolling-restart [--cluster NAME]", options, {}, vm)) return kExitOk;
  if (!ctx.credentials) throw UsageError("rolling-restart needs --user/--password");
  Poco::JSON::Array::Ptr results = new Poco::JSON::Array;
  // One machine at a time, so the cluster keeps a quorum.
  for (const ManagerNodes& m : find_managers(ctx)) {
    Poco::JSON::Object::Ptr body = post_action(
        ctx, m.endpoint, "/api/cluster/rolling-restart?cluster=" + path_segment(cluster),
        kRollingRestartTimeoutMs);
    Poco::JSON::Object::Ptr entry = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    entry->set("manager", client::to_string(m.endpoint));
    entry->set("steps", body->has("steps") ? body->get("steps") : Poco::Dynamic::Var());
    results->add(entry);
    if (!ctx.json) {
      Poco::JSON::Array::Ptr steps = body->getArray("steps");
      for (size_t i = 0; steps && i < steps->size(); ++i) {
        Poco::JSON::Object::Ptr s = steps->getObject(static_cast<unsigned>(i));
        std::cout << client::to_string(m.endpoint) << ": " << text_of(s, "node") << " "
                  << text_of(s, "action") << " (" << text_of(s, "ms") << " ms)\n";
      }
    }
  }
  if (ctx.json) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
    o->set("managers", results);
    print_json(o);
  }
  return kExitOk;
}

int cmd_logs(const Context& ctx) {
  std::string name;
  bool follow = false;
  int lines = -1;
  po::options_description options("logs options");
  options.add_options()("name", po::value(&name)->required(), "the node's name")(
      "follow,f", po::bool_switch(&follow), "keep printing new lines (Ctrl-C stops)")(
      "lines,n", po::value(&lines), "lines of the past to print (default 200, 0 with -f)");
  po::positional_options_description positional;
  positional.add("name", 1);
  po::variables_map vm;
  if (!ctx.parse("logs NAME [-f] [-n LINES]", options, positional, vm)) return kExitOk;
  const ManagerNodes manager = manager_of(ctx, name);
  std::string path = "/api/nodes/" + path_segment(name) + "/log";
  if (lines >= 0) path += "?lines=" + std::to_string(lines);
  if (follow) {
    path += (lines >= 0 ? "&" : "?") + std::string("follow=true");
    http_stream_lines(manager.endpoint, path, ctx.credentials, [&](const std::string& line) {
      if (line.rfind("data: ", 0) == 0) std::cout << line.substr(6) << std::endl;
    });
    return kExitOk;
  }
  HttpReply reply = http_request(manager.endpoint, "GET", path, ctx.credentials, kHttpTimeoutMs);
  if (reply.status != 200) {
    throw Failure(path + ": HTTP " + std::to_string(reply.status) + ": " + reply.body);
  }
  Poco::JSON::Object::Ptr body = json_object(reply.body, path);
  if (ctx.json) {
    print_json(body);
    return kExitOk;
  }
  Poco::JSON::Array::Ptr list = body->getArray("lines");
  for (size_t i = 0; list && i < list->size(); ++i) {
    std::cout << list->getElement<std::string>(static_cast<unsigned>(i)) << "\n";
  }
  return kExitOk;
}

}  // namespace chorus::cli
