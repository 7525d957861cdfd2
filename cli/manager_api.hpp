// The manager's HTTP API (docs/management-api.md) and the gossip document, through Poco's HTTP
// client: one request per call, Basic credentials when the command has them, a timeout per
// request. Used by status, nodes, node, rolling-restart and logs. One thread (the command's).
#pragma once

#include <chorus/settings.hpp>

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Object.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.hpp"
#include "common/gossip.hpp"

namespace chorus::cli {

// Plain requests (gossip, node lists) answer quickly or not at all.
inline constexpr int kHttpTimeoutMs = 5000;
// A stop waits for the node's grace period, a rolling restart for every node of the machine.
inline constexpr int kNodeActionTimeoutMs = 120000;
inline constexpr int kRollingRestartTimeoutMs = 30 * 60 * 1000;
// A backup copies the whole database; the manager waits up to an hour for its node.
inline constexpr int kBackupTimeoutMs = 60 * 60 * 1000;
// An HTTP body larger than this is refused (a log page of 10,000 lines fits easily).
inline constexpr size_t kHttpBodyBytesMax = 64 * 1024 * 1024;

struct HttpReply {
  int status = 0;
  std::string body;
};

// Throws Failure when the endpoint cannot be reached.
HttpReply http_request(const client::Endpoint& endpoint, const std::string& method,
                       const std::string& path, const std::optional<client::Credentials>& creds,
                       int timeout_ms);
// Streams the body line by line to `on_line` until it ends (for `logs -f`).
void http_stream_lines(const client::Endpoint& endpoint, const std::string& path,
                       const std::optional<client::Credentials>& creds,
                       const std::function<void(const std::string&)>& on_line);
// The JSON object of a body; throws Failure naming `what` when it is not one.
Poco::JSON::Object::Ptr json_object(const std::string& body, const std::string& what);

// The cluster's gossip from the first seed that answers, and the seed that did.
struct SeedGossip {
  ClusterInfo gossip;
  client::Endpoint seed;
};
SeedGossip first_gossip(const Context& ctx);

// A manager of the cluster and its /api/nodes document.
struct ManagerNodes {
  client::Endpoint endpoint;
  Poco::JSON::Object::Ptr document;
};
// Every manager reachable from the seeds: the seeds that are managers, and the members in state
// Manager of their gossip. Throws Failure when none answers.
std::vector<ManagerNodes> find_managers(const Context& ctx);
// The manager that runs node `name`; throws Failure when no manager has it.
ManagerNodes manager_of(const Context& ctx, const std::string& name);

// A node name (or any text) as one URL path segment or query value.
std::string path_segment(const std::string& name);
// POSTs `path` to `manager` with the command's credentials; throws Failure unless 200.
Poco::JSON::Object::Ptr post_action(const Context& ctx, const client::Endpoint& manager,
                                    const std::string& path, int timeout_ms);

}  // namespace chorus::cli
