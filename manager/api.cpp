// The manager's HTTP endpoints: routing, JSON documents, auth, log tails, the dashboard's files.
#include "manager/api.hpp"

#include "common/backup.hpp"
#include "common/thread_name.hpp"
#include "manager/backups.hpp"
#include "manager/http_client.hpp"
#include "manager/scavenges.hpp"
#include "manager/static_files.hpp"

#include <Poco/Base64Decoder.h>
#include <Poco/DigestEngine.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/SHA2Engine.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>
#include <Poco/UUIDGenerator.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace chorus::manager {
namespace {

namespace fs = std::filesystem;
using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr int kLogLinesDefault = 200;
constexpr int kLogLinesMax = 10000;
constexpr int kHistoryDefault = 200;
// Chart samples sent when the page gives no ?since: the charts' default window.
constexpr int64_t kDefaultHistoryWindowMs = int64_t{5} * 60 * 1000;
constexpr int kNodeCallTimeoutMs = 5000;  // proxied calls to a node
// A member replacement is answered once committed; the node waits for that up to 10 s.
constexpr int kSeatMoveTimeoutMs = 15000;
constexpr int kAuthCallTimeoutMs = 2000;          // credential checks
constexpr int64_t kRollingNodeTimeoutMs = 60000;  // one node of a rolling restart
constexpr int64_t kResignWaitMs = 10000;          // for another leader after a resign
constexpr int kFollowersMax = 8;                  // log streams at once (each holds a thread)
constexpr int kFollowPollMs = 250;
constexpr int kKeepAlivePolls = 20;  // a keep-alive comment every 5 s of silence
constexpr size_t kRequestBodyMax = size_t{4} * 1024 * 1024;  // gossip documents are a few KB

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;
};

Reply json(int status, const Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return Reply{status, out.str(), "application/json", {}};
}

Reply error_reply(int status, const std::string& message) {
  Object::Ptr o = new Object;
  o->set("error", message);
  if (status >= 500) o->set("ok", false);
  return json(status, o);
}

std::string query_value(const Poco::URI& uri, const std::string& name) {
  for (const auto& [k, v] : uri.getQueryParameters()) {
    if (k == name) return v;
  }
  return "";
}

int int_query(const Poco::URI& uri, const std::string& name, int fallback, int max) {
  const std::string v = query_value(uri, name);
  if (v.empty()) return fallback;
  try {
    return std::clamp(std::stoi(v), 0, max);
  } catch (const std::exception&) {
    return fallback;
  }
}

std::string host_for(const std::string& ip) { return ip == "0.0.0.0" ? "127.0.0.1" : ip; }

std::string member_key_of(const NodeSpec& spec) {
  return spec.resolved.int_ip + ":" + std::to_string(spec.resolved.int_http_port);
}

// The last `n` lines of a file (reads at most the last few MB).
std::vector<std::string> tail_lines(const std::string& path, int n) {
  std::ifstream in(path, std::ios::binary);
  std::deque<std::string> lines;
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff window = std::streamoff{8} * 1024 * 1024;
  in.seekg(std::max<std::streamoff>(0, size - window));
  if (size > window) {
    std::string partial;
    std::getline(in, partial);
  }
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (static_cast<int>(lines.size()) > n) lines.pop_front();
  }
  return {lines.begin(), lines.end()};
}

std::string content_type_for(const fs::path& path) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".map", "application/json"},
      {".txt", "text/plain"},
      {".woff2", "font/woff2"}};
  auto it = kTypes.find(path.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  // v5_state_names: the ExtHttpPortV5 server, whose /gossip uses EventStore 5's state names.
  Handler(ApiContext& ctx, AuthCache& auth, ScavengeJobs& scavenges, bool internal,
          bool v5_state_names, auth::ReplayGuard& replay)
      : ctx_(ctx),
        auth_(auth),
        scavenges_(scavenges),
        internal_(internal),
        v5_state_names_(v5_state_names),
        replay_(replay) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    Reply reply;
    try {
      Poco::URI uri(request.getURI());
      std::string body;
      // Without Content-Length or chunking Poco would read until the connection closes.
      const bool has_body = request.getMethod() == "POST" || request.getMethod() == "PUT";
      if (has_body && (request.hasContentLength() || request.getChunkedTransferEncoding())) {
        std::string chunk(size_t{64} * 1024, '\0');
        auto& in = request.stream();
        while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) ||
               in.gcount() > 0) {
          body.append(chunk.data(), static_cast<size_t>(in.gcount()));
          if (body.size() > kRequestBodyMax) break;
        }
      }
      // The request has arrived; what follows may wait on nodes (bounded by their own
      // deadlines, a backup by kBackupTimeoutMs), which the I/O deadline does not count.
      http::ConnectionWatch::engine_phase();
      if (body.size() > kRequestBodyMax) {
        reply = error_reply(413, "request body too large");
      } else if (is_follow(request, uri)) {
        return follow_log(request, response, uri);
      } else {
        reply = route(request, uri, body);
      }
    } catch (const std::exception& e) {
      reply = error_reply(500, e.what());
    }
    send(response, reply);
  }

 private:
  static void cors(Poco::Net::HTTPServerResponse& response) {
    response.set("Access-Control-Allow-Origin", "*");
    response.set("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    response.set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept");
    response.set("Access-Control-Expose-Headers", "WWW-Authenticate");
  }

  static void send(Poco::Net::HTTPServerResponse& response, const Reply& reply) {
    http::ConnectionWatch::io_phase();  // writing the answer, then waiting for the next request
    cors(response);
    response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status));
    for (const auto& [k, v] : reply.headers) response.set(k, v);
    if (reply.status == 204) {
      response.setContentLength(0);
      response.send();
      return;
    }
    response.setContentType(reply.content_type);
    response.setContentLength(static_cast<std::streamsize>(reply.body.size()));
    response.send() << reply.body;
  }

  Reply route(Poco::Net::HTTPServerRequest& request, const Poco::URI& uri,
              const std::string& body) {
    const std::string& method = request.getMethod();
    const std::string& path = uri.getPath();
    if (method == "OPTIONS") return Reply{204, "", "", {}};
    if (path == "/gossip") return gossip(request, method, uri, body);
    if (method == "GET" && path == "/health/live") {
      if (query_value(uri, "liveCode") == "200") return Reply{200, "", "text/plain", {}};
      return Reply{204, "", "", {}};
    }
    if (method == "GET" && path == "/metrics") return metrics();
    if (internal_) {
      // Peer managers read this machine's nodes here for their Machines view.
      if (method == "GET" && path == "/api/nodes") return nodes_document();
      return error_reply(404, "not found on the internal port");
    }
    if (path.rfind("/api/", 0) == 0) return api(request, method, uri, body);
    if (method == "GET") return static_file(path);
    return error_reply(404, "not found");
  }

  Reply gossip(const Poco::Net::HTTPServerRequest& request, const std::string& method,
               const Poco::URI& uri, const std::string& body) {
    if (method == "POST") {
      if (!internal_) return error_reply(404, "gossip is pushed to the internal port");
      const auth::Secret& secret = ctx_.config.cluster_secret;
      const std::string signature = request.get(auth::kAuthHeader, "");
      if (!secret.empty()) {
        const std::string problem = auth::verify_request(secret, method, uri.getPath(), body,
                                                         signature, auth::now_unix_ms(), replay_);
        if (!problem.empty()) {
          ctx_.log.warn("gossip push from " + request.clientAddress().host().toString() +
                        " refused: " + problem);
          return Reply{401, "Gossip refused: " + problem, "text/plain", {}};
        }
      }
      Reply reply = is_unchanged_gossip(body) ? unchanged_gossip(body) : whole_gossip(body);
      if (reply.status == 200 && !secret.empty()) {
        reply.headers[auth::kAuthHeader] = auth::sign_answer(secret, signature, 200, reply.body);
      }
      return reply;
    }
    if (method != "GET") return error_reply(405, "GET or POST");
    const auto view = ctx_.relay.view(query_value(uri, "cluster"));
    if (!view) return error_reply(404, "no cluster named " + query_value(uri, "cluster"));
    return Reply{
        200, to_json(v5_state_names_ ? with_v5_state_names(*view) : *view), "application/json", {}};
  }

  // A pushed view (its signature checked): merged, our view answered.
  Reply whole_gossip(const std::string& body) {
    std::string error;
    const auto view = cluster_info_from_json(body, &error);
    if (!view) return Reply{400, "Malformed gossip: " + error, "text/plain", {}};
    const auto merged = ctx_.relay.handle_push(*view, &error);
    if (!merged) return Reply{409, "Gossip refused: " + error, "text/plain", {}};
    return Reply{200, to_json(*merged), "application/json", {}};
  }

  // An unchanged push (common/gossip_unchanged.hpp), its signature checked.
  Reply unchanged_gossip(const std::string& body) {
    std::string error;
    const auto push = unchanged_push_from_text(body, &error);
    if (!push) return Reply{400, "Malformed gossip: " + error, "text/plain", {}};
    const UnchangedReply r = ctx_.relay.handle_unchanged(*push);
    switch (r.kind) {
      case UnchangedReply::Kind::kUnchanged:
        return Reply{200, to_text(r.unchanged), "text/plain", {}};
      case UnchangedReply::Kind::kWholeView:
        return Reply{200, to_json(r.view), "application/json", {}};
      case UnchangedReply::Kind::kRefused:
        return Reply{409, "Gossip refused: " + r.error, "text/plain", {}};
      case UnchangedReply::Kind::kWantsWhole:
        break;
    }
    return Reply{
        kGossipWholeViewStatus,
        "Gossip: this manager holds no view from " + push->sender + "; push the whole view",
        "text/plain",
        {}};
  }

  Reply api(Poco::Net::HTTPServerRequest& request, const std::string& method, const Poco::URI& uri,
            const std::string& body) {
    (void)body;
    const std::string& path = uri.getPath();
    std::vector<std::string> parts;
    uri.getPathSegments(parts);  // "api", ...
    const std::string auth_header = request.get("Authorization", "");
    if (parts.size() >= 2 && parts[1] == "subscriptions") {
      return proxy_subscriptions(request, method, uri);
    }
    // The users and projections APIs keep their own methods and rules: the node decides (PUT,
    // DELETE too), and passes projection calls on to its leader.
    if (parts.size() >= 2 &&
        (parts[1] == "users" || parts[1] == "projections" || parts[1] == "projection")) {
      return proxy_users(request, uri, body);
    }
    if (method == "GET") {
      if (path == "/api/nodes") return nodes_document();
      if (path == "/api/clusters") return clusters_document();
      if (path == "/api/machines") return machines_document();
      if (path == "/api/metrics-history") return metrics_history(uri);
      // Logs and the restart history leak operational detail: $admins or $ops only.
      if (path == "/api/history") {
        if (auto refused = authorize(auth_header)) return *refused;
        return history(uri);
      }
      if (path == "/api/auth") return auth_document(auth_header);
      if (path == "/api/backups") {
        if (auto refused = authorize_admin(auth_header)) return *refused;
        return as_reply(list_backups(ctx_.config));
      }
      if (path == "/api/recent-streams") return recent_streams(auth_header, uri);
      if (parts.size() >= 2 && parts[1] == "streams") return proxy_streams(request, uri);
      if (parts.size() == 4 && parts[1] == "nodes" && parts[3] == "log") {
        if (auto refused = authorize(auth_header)) return *refused;
        return node_log(parts[2], uri);
      }
      if (parts.size() == 4 && parts[1] == "nodes" && parts[3] == "scavenge") {
        if (auto refused = authorize(auth_header)) return *refused;
        const auto v = ctx_.supervisor.node(parts[2]);
        if (!v) return error_reply(404, "no node named " + parts[2]);
        return as_reply(scavenges_.node_progress(*v, auth_header));
      }
      if (path == "/api/cluster/scavenge") {
        if (auto refused = authorize(auth_header)) return *refused;
        return as_reply(scavenges_.cluster_progress(cluster_or_default(uri)));
      }
      return error_reply(404, "not found");
    }
    if (method != "POST") return error_reply(405, "GET or POST");
    if (path == "/api/cluster/scavenge") {
      if (auto refused = authorize(auth_header)) return *refused;
      return cluster_scavenge(cluster_or_default(uri), auth_header);
    }
    const bool node_action = parts.size() == 4 && parts[1] == "nodes";
    const bool rolling = path == "/api/cluster/rolling-restart";
    if (!node_action && !rolling) return error_reply(404, "not found");
    if (node_action && !ctx_.supervisor.has_node(parts[2])) {
      return error_reply(404, "no node named " + parts[2]);
    }
    if (node_action && (parts[3] == "backup" || parts[3] == "restore")) {
      if (auto refused = authorize_admin(auth_header)) return *refused;
      return backup_action(parts[2], parts[3], query_value(uri, "folder"), auth_header);
    }
    if (auto refused = authorize(auth_header)) return *refused;
    if (rolling) return rolling_restart(auth_header, query_value(uri, "cluster"));
    if (parts[3] == "scavenge") {
      return as_reply(scavenges_.start_node(*ctx_.supervisor.node(parts[2]), auth_header,
                                            query_value(uri, "startFromChunk"),
                                            query_value(uri, "threads")));
    }
    return node_action_reply(parts[2], parts[3], auth_header);
  }

  // --- authorization ---

  // nullopt when the caller may change things; else the 401 (or 503) reply.
  std::optional<Reply> authorize(const std::string& header) {
    Reply denied = error_reply(401, "credentials of a user in $admins or $ops are required");
    denied.headers["WWW-Authenticate"] = "Basic realm=\"chorus-manager\"";
    if (header.empty()) return denied;
    const int64_t now = steady_now_ms();
    const auto node = running_node("");
    switch (auth_.lookup(header, now, node.has_value())) {
      case AuthCache::Verdict::kAllowed:
        return std::nullopt;
      case AuthCache::Verdict::kDenied:
        return denied;
      case AuthCache::Verdict::kUnknown:
        break;
    }
    if (!node) return error_reply(503, "no running node can check the credentials");
    // The node says who the caller is; changes need $admins or $ops.
    const auto answer = http_request(
        "GET", host_for(node->resolved.ext_ip), node->resolved.ext_http_port, "/users/%24current",
        "", {{"Authorization", header}}, kAuthCallTimeoutMs, ctx_.config.http_client_tls);
    if (!answer) return error_reply(503, "the node did not answer the credential check");
    bool allowed = false;
    if (answer->status == 200) {
      const Object::Ptr body = parse_json_object(answer->body);
      const Object::Ptr data = body && body->has("data") ? body->getObject("data") : nullptr;
      const Array::Ptr groups = data && data->has("groups") ? data->getArray("groups") : nullptr;
      for (size_t i = 0; groups && i < groups->size(); ++i) {
        const std::string g = groups->getElement<std::string>(static_cast<unsigned>(i));
        allowed = allowed || g == "$admins" || g == "$ops";
      }
    }
    auth_.remember(header, allowed, now);
    if (!allowed) return denied;
    return std::nullopt;
  }

  // nullopt when the caller is in $admins (backups and restores write and replace data files):
  // 401 without valid credentials, 403 for any other user, 503 when no node can tell. A header
  // proven an admin's is remembered like authorize()'s, so that a cluster whose nodes are all
  // stopped can still be restored.
  std::optional<Reply> authorize_admin(const std::string& header) {
    Reply denied = error_reply(401, "credentials of a user in $admins are required");
    denied.headers["WWW-Authenticate"] = "Basic realm=\"chorus-manager\"";
    if (header.empty()) return denied;
    const int64_t now = steady_now_ms();
    const std::string key = "$admins " + header;  // its own cache entry, apart from authorize()'s
    const auto node = running_node("");
    if (auth_.lookup(key, now, node.has_value()) == AuthCache::Verdict::kAllowed) {
      return std::nullopt;
    }
    if (!node) return error_reply(503, "no running node can check the credentials");
    const auto answer = http_request(
        "GET", host_for(node->resolved.ext_ip), node->resolved.ext_http_port, "/users/%24current",
        "", {{"Authorization", header}}, kAuthCallTimeoutMs, ctx_.config.http_client_tls);
    if (!answer) return error_reply(503, "the node did not answer the credential check");
    if (answer->status != 200) return denied;
    const Object::Ptr body = parse_json_object(answer->body);
    const Object::Ptr data = body && body->has("data") ? body->getObject("data") : nullptr;
    const Array::Ptr groups = data && data->has("groups") ? data->getArray("groups") : nullptr;
    for (size_t i = 0; groups && i < groups->size(); ++i) {
      if (groups->getElement<std::string>(static_cast<unsigned>(i)) == "$admins") {
        auth_.remember(key, true, now);
        return std::nullopt;
      }
    }
    return error_reply(403, "backups and restores need a user in $admins");
  }

  // A running node of `cluster` (any cluster if empty); the leader if it runs here, since
  // followers serve committed data only and may lag by a moment.
  std::optional<NodeSpec> running_node(const std::string& cluster) {
    std::optional<NodeSpec> found;
    for (const NodeView& v : ctx_.supervisor.nodes()) {
      if (v.state != NodeState::kRunning) continue;
      if (!cluster.empty() && v.spec->cluster != cluster) continue;
      if (role_of(*v.spec) == "Leader") return *v.spec;
      if (!found) found = *v.spec;
    }
    return found;
  }

  Reply auth_document(const std::string& header) {
    if (header.empty()) return authorize(header).value();
    const auto node = running_node("");
    if (!node) return error_reply(503, "no running node can check the credentials");
    const std::string host = host_for(node->resolved.ext_ip);
    const int port = node->resolved.ext_http_port;
    const auto ping = http_request("GET", host, port, "/ping", "", {{"Authorization", header}},
                                   kAuthCallTimeoutMs, ctx_.config.http_client_tls);
    if (!ping || ping->status == 401) return authorize("").value();
    std::string login;
    try {
      const std::string encoded = header.substr(header.find(' ') + 1);
      std::istringstream in(encoded);
      std::ostringstream decoded;
      Poco::Base64Decoder decoder(in);
      Poco::StreamCopier::copyStream(decoder, decoded);
      login = decoded.str().substr(0, decoded.str().find(':'));
    } catch (const std::exception&) {
      return authorize("").value();
    }
    Array::Ptr groups = new Array;
    const bool may_change = !authorize(header).has_value();
    const auto user =
        http_request("GET", host, port, "/users/%24current", "", {{"Authorization", header}},
                     kAuthCallTimeoutMs, ctx_.config.http_client_tls);
    const Object::Ptr body = user && user->status == 200 ? parse_json_object(user->body) : nullptr;
    const Object::Ptr data = body && body->has("data") ? body->getObject("data") : nullptr;
    if (data && data->has("groups")) groups = data->getArray("groups");
    Object::Ptr o = new Object;
    o->set("login", login);
    o->set("groups", groups);
    o->set("mayChange", may_change);
    return json(200, o);
  }

  // --- documents ---

  Object::Ptr manager_object() {
    Object::Ptr m = new Object;
    m->set("name", ctx_.config.name);
    m->set("version", ctx_.version);
    m->set("intHttp", ctx_.config.int_ip + ":" + std::to_string(ctx_.config.int_http_port));
    m->set("extHttp", ctx_.config.ext_ip + ":" + std::to_string(ctx_.config.ext_http_port));
    Array::Ptr peers = new Array;
    for (const HostPort& p : ctx_.config.gossip_seeds) {
      peers->add(p.host + ":" + std::to_string(p.port));
    }
    m->set("peers", peers);
    m->set("defaultCluster", ctx_.config.default_cluster);
    m->set("uptimeSeconds", static_cast<double>(steady_now_ms() - ctx_.started_ms) / 1000.0);
    return m;
  }

  Object::Ptr node_object(const NodeView& v, const std::map<std::string, ClusterInfo>& views) {
    const NodeSpec& s = *v.spec;
    Object::Ptr o = new Object;
    o->set("name", s.name);
    o->set("cluster", s.cluster);
    o->set("state", std::string(to_string(v.state)));
    o->set("pid", v.pid ? Poco::Dynamic::Var(*v.pid) : Poco::Dynamic::Var());
    o->set("uptimeSeconds",
           v.uptime_seconds ? Poco::Dynamic::Var(*v.uptime_seconds) : Poco::Dynamic::Var());
    o->set("restarts", v.record.restarts);
    if (v.record.last_exit_at.empty()) {
      o->set("lastExit", Poco::Dynamic::Var());
    } else {
      Object::Ptr e = new Object;
      const auto& r = v.record;
      e->set("code",
             r.last_exit_code ? Poco::Dynamic::Var(*r.last_exit_code) : Poco::Dynamic::Var());
      e->set("signal",
             r.last_exit_signal ? Poco::Dynamic::Var(*r.last_exit_signal) : Poco::Dynamic::Var());
      e->set("at", r.last_exit_at);
      e->set("reason", r.last_exit_reason);
      o->set("lastExit", e);
    }
    o->set("nextStartInMs",
           v.next_start_in_ms ? Poco::Dynamic::Var(*v.next_start_in_ms) : Poco::Dynamic::Var());
    Object::Ptr ports = new Object;
    ports->set("intTcp", s.resolved.int_tcp_port);
    ports->set("extTcp", s.resolved.ext_tcp_port);
    ports->set("intHttp", s.resolved.int_http_port);
    ports->set("extHttp", s.resolved.ext_http_port);
    o->set("ports", ports);
    Object::Ptr ip = new Object;
    ip->set("int", s.resolved.int_ip);
    ip->set("ext", s.resolved.ext_ip);
    o->set("ip", ip);
    o->set("dataFolder", s.db_folder);
    o->set("role", Poco::Dynamic::Var());
    o->set("epochNumber", Poco::Dynamic::Var());
    add_stats(o, v);
    if (v.pid) add_role(o, s, views);
    return o;
  }

  static void add_stats(Object::Ptr& o, const NodeView& v) {
    const Object::Ptr stats = parse_json_object(v.stats_json);
    const Object::Ptr process = stats ? stats->getObject("process") : nullptr;
    const Object::Ptr storage = stats ? stats->getObject("storage") : nullptr;
    auto copy = [&](const Object::Ptr& from, const char* key, const char* as) {
      o->set(as, from && from->has(key) ? from->get(key) : Poco::Dynamic::Var());
    };
    copy(storage, "dbSizeBytes", "dataBytes");
    copy(process, "cpuSeconds", "cpuSeconds");
    copy(process, "rssBytes", "rssBytes");
    copy(storage, "writerCheckpoint", "writerCheckpoint");
    copy(storage, "chaserCheckpoint", "chaserCheckpoint");
    copy(storage, "commitCheckpoint", "commitCheckpoint");
    copy(storage, "eventsWritten", "eventsWritten");
    copy(storage, "eventsRead", "eventsRead");
    // Disk use and the data volume's free space (the node's SpaceMonitor); none in memory.
    const Object::Ptr space = storage ? storage->getObject("space") : nullptr;
    const bool on_disk = space && !space->optValue<bool>("inMemory", false);
    o->set("space", on_disk ? Poco::Dynamic::Var(space_object(space)) : Poco::Dynamic::Var());
  }

  static Object::Ptr space_object(const Object::Ptr& space) {
    Object::Ptr o = new Object;
    for (const char* key : {"databaseBytes", "walBytes", "logBytes", "indexBytes", "otherBytes",
                            "reclaimableBytes", "breakdownAt", "diskFreeBytes", "diskTotalBytes",
                            "minFreeDiskBytes", "writesRefusedLowDisk"}) {
      o->set(key, space->has(key) ? space->get(key) : Poco::Dynamic::Var());
    }
    return o;
  }

  static void add_role(Object::Ptr& o, const NodeSpec& s,
                       const std::map<std::string, ClusterInfo>& views) {
    auto it = views.find(s.cluster);
    if (it == views.end()) return;
    for (const MemberInfo& m : it->second.members) {
      const std::string key = m.internal_http_ip + ":" + std::to_string(m.internal_http_port);
      if (key != member_key_of(s) || m.state == "Manager" || !m.is_alive) continue;
      o->set("role", m.state);
      o->set("epochNumber", m.epoch_number);
    }
  }

  std::map<std::string, ClusterInfo> cluster_views() {
    std::map<std::string, ClusterInfo> out;
    for (const std::string& c : ctx_.relay.clusters()) {
      if (auto v = ctx_.relay.view(c)) out[c] = *v;
    }
    return out;
  }

  Reply nodes_document() {
    const auto views = cluster_views();
    Array::Ptr nodes = new Array;
    for (const NodeView& v : ctx_.supervisor.nodes()) nodes->add(node_object(v, views));
    Object::Ptr o = new Object;
    o->set("manager", manager_object());
    o->set("nodes", nodes);
    return json(200, o);
  }

  Reply machines_document() {
    const std::string self = ctx_.config.int_ip + ":" + std::to_string(ctx_.config.int_http_port);
    auto build = [&] {
      return machines_json(self, nodes_document().body, ctx_.relay.peer_managers(),
                           ctx_.config.http_client_tls);
    };
    const std::string doc = ctx_.machines ? ctx_.machines->get(steady_now_ms(), build) : build();
    return Reply{200, doc, "application/json", {}};
  }

  // ?resolution=1s (default: the last 5 minutes) or 1m (the last day); ?since=<Unix ms>.
  Reply metrics_history(const Poco::URI& uri) {
    if (!ctx_.history) return error_reply(404, "this manager keeps no chart history");
    const std::string resolution = query_value(uri, "resolution");
    if (!resolution.empty() && resolution != "1s" && resolution != "1m") {
      return error_reply(400, "resolution: expected 1s or 1m, got '" + resolution + "'");
    }
    const bool minutes = resolution == "1m";
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    int64_t since = now - (minutes ? static_cast<int64_t>(kMinuteSamplesMax) * kMinuteMs
                                   : kDefaultHistoryWindowMs);
    if (const std::string text = query_value(uri, "since"); !text.empty()) {
      size_t used = 0;
      try {
        since = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != text.size() || since < 0) {
        return error_reply(400, "since: expected Unix milliseconds, got '" + text + "'");
      }
    }
    return Reply{
        200,
        history_json(*ctx_.history, minutes ? Resolution::kMinute : Resolution::kSecond, since),
        "application/json",
        {}};
  }

  Reply clusters_document() {
    Array::Ptr names = new Array;
    for (const std::string& c : ctx_.relay.clusters()) names->add(c);
    Object::Ptr o = new Object;
    o->set("clusters", names);
    o->set("default", ctx_.config.default_cluster);
    return json(200, o);
  }

  Reply history(const Poco::URI& uri) {
    const int limit = int_query(uri, "limit", kHistoryDefault, kHistoryRowsMax);
    Array::Ptr events = new Array;
    for (const HistoryEvent& e : ctx_.store.history(limit)) {
      Object::Ptr o = new Object;
      o->set("at", e.at);
      o->set("node", e.node);
      o->set("event", e.event);
      o->set("detail", e.detail);
      events->add(o);
    }
    Object::Ptr o = new Object;
    o->set("events", events);
    return json(200, o);
  }

  Reply node_log(const std::string& name, const Poco::URI& uri) {
    const auto v = ctx_.supervisor.node(name);
    if (!v) return error_reply(404, "no node named " + name);
    Array::Ptr lines = new Array;
    for (auto& line :
         tail_lines(v->log_file, int_query(uri, "lines", kLogLinesDefault, kLogLinesMax))) {
      lines->add(line);
    }
    Object::Ptr o = new Object;
    o->set("lines", lines);
    return json(200, o);
  }

  bool is_follow(Poco::Net::HTTPServerRequest& request, const Poco::URI& uri) {
    std::vector<std::string> parts;
    uri.getPathSegments(parts);
    return !internal_ && request.getMethod() == "GET" && parts.size() == 4 && parts[0] == "api" &&
           parts[1] == "nodes" && parts[3] == "log" && query_value(uri, "follow") == "true";
  }

  // text/event-stream: the last N lines, then each new line, until the client goes away.
  void follow_log(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response,
                  const Poco::URI& uri) {
    if (auto refused = authorize(request.get("Authorization", ""))) return send(response, *refused);
    static std::atomic<int> followers{0};
    if (followers.fetch_add(1) >= kFollowersMax) {
      followers.fetch_sub(1);
      return send(response, error_reply(503, "too many log streams; try again later"));
    }
    struct Release {
      std::atomic<int>& count;
      ~Release() { count.fetch_sub(1); }
    } release{followers};
    std::vector<std::string> parts;
    uri.getPathSegments(parts);
    const auto v = ctx_.supervisor.node(parts[2]);
    if (!v) return send(response, error_reply(404, "no node named " + parts[2]));
    http::ConnectionWatch::io_phase();
    cors(response);
    response.setContentType("text/event-stream");
    response.set("Cache-Control", "no-cache");
    response.setChunkedTransferEncoding(true);
    std::ostream& out = response.send();
    for (const auto& line : tail_lines(v->log_file, int_query(uri, "lines", 0, kLogLinesMax))) {
      out << "data: " << line << "\n\n";
    }
    out.flush();
    std::error_code ec;
    auto offset = fs::file_size(v->log_file, ec);
    if (ec) offset = 0;
    std::string pending;
    int idle_polls = 0;
    while (out.good() && !ctx_.stopping->load()) {
      // Waiting for new lines is not I/O; a client that stops reading is cut once a write of
      // its stream takes longer than kHttpIoDeadlineMs.
      http::ConnectionWatch::engine_phase();
      std::this_thread::sleep_for(std::chrono::milliseconds(kFollowPollMs));
      http::ConnectionWatch::io_phase();
      const auto size = fs::file_size(v->log_file, ec);
      if (ec) continue;
      if (size < offset) offset = 0;  // rotated
      if (size == offset) {
        if (++idle_polls % kKeepAlivePolls == 0) {
          out << ": keep-alive\n\n";  // also finds a client that went away
          out.flush();
        }
        continue;
      }
      std::ifstream in(v->log_file, std::ios::binary);
      in.seekg(static_cast<std::streamoff>(offset));
      std::string chunk(size - offset, '\0');
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      offset += static_cast<uintmax_t>(in.gcount());
      pending += chunk.substr(0, static_cast<size_t>(in.gcount()));
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        out << "data: " << pending.substr(0, nl) << "\n\n";
        pending.erase(0, nl + 1);
      }
      out.flush();
    }
  }

  // --- actions ---

  Reply node_action_reply(const std::string& name, const std::string& action,
                          const std::string& auth_header) {
    Supervisor& sup = ctx_.supervisor;
    if (action == "start") {
      sup.start_node(name);
    } else if (action == "stop") {
      if (!sup.stop_node(name)) return error_reply(500, "the node did not stop in time");
    } else if (action == "restart") {
      if (!sup.stop_node(name)) return error_reply(500, "the node did not stop in time");
      sup.start_node(name);
    } else if (action == "resign") {
      return resign(name, auth_header);
    } else {
      return error_reply(404, "no action " + action);
    }
    Object::Ptr o = new Object;
    o->set("ok", true);
    o->set("node", node_object(*sup.node(name), cluster_views()));
    return json(200, o);
  }

  static Reply as_reply(const BackupReply& r) {
    return Reply{r.status, r.json, "application/json", {}};
  }

  static Reply as_reply(const ScavengeReply& r) {
    Reply reply{r.status, r.json, "application/json", {}};
    if (r.status == 401) reply.headers["WWW-Authenticate"] = "Basic realm=\"chorus-manager\"";
    return reply;
  }

  std::string cluster_or_default(const Poco::URI& uri) {
    const std::string cluster = query_value(uri, "cluster");
    return cluster.empty() ? ctx_.config.default_cluster : cluster;
  }

  // This machine's nodes of `cluster`, followers first and the leader last: a follower's
  // scavenge slows only that follower, and the leader's comes when the others are done.
  Reply cluster_scavenge(const std::string& cluster, const std::string& auth_header) {
    std::vector<NodeSpec> order;
    std::optional<NodeSpec> leader;
    for (const NodeSpec& s : ctx_.config.nodes) {
      if (s.cluster != cluster) continue;
      if (role_of(s) == "Leader") {
        leader = s;
      } else {
        order.push_back(s);
      }
    }
    if (leader) order.push_back(*leader);
    if (order.empty())
      return error_reply(404, "no node of cluster " + cluster + " on this machine");
    ctx_.log.info("scavenge of cluster " + cluster + " started");
    return as_reply(scavenges_.start_cluster(cluster, order, auth_header));
  }

  Reply backup_action(const std::string& name, const std::string& action, const std::string& folder,
                      const std::string& auth_header) {
    const auto v = ctx_.supervisor.node(name);
    if (!v) return error_reply(404, "no node named " + name);
    if (action == "restore") {
      if (folder.empty())
        return error_reply(400, "restore needs ?folder=<backup under BackupRoot>");
      const fs::path id_file = fs::path(v->spec->db_folder) / backup::kInstanceIdFileName;
      std::error_code ec;
      const bool had_identity = !v->spec->db_folder.empty() && fs::exists(id_file, ec);
      BackupReply r = restore_node(ctx_.config, *v, folder);
      ctx_.log.info("restore of " + name + " from " + folder + ": " + std::to_string(r.status));
      if (r.status == 200 && !had_identity && v->spec->resolved.cluster_size > 1) {
        r.json = with_seat(r.json, move_seat(*v->spec, auth_header));
      }
      return as_reply(r);
    }
    const int64_t now_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    const std::string target = folder.empty() ? default_backup_name(name, now_unix_ms) : folder;
    const BackupReply r = backup_node(ctx_.config, *v, target);
    ctx_.log.info("backup of " + name + " into " + target + ": " + std::to_string(r.status));
    return as_reply(r);
  }

  // A restore into a folder without an instance id (wiped, or a new disk): the node would start
  // with a new id, which its cluster refuses at its pinned seat. It gets a new id now, and the
  // leader moves the node's seat to it through the log (POST /admin/members/replace, with the
  // caller's credentials), so the restored node keeps its seat without ever voting under the old
  // id with a log and votes it no longer holds. "" when moved, else why not.
  std::string move_seat(const NodeSpec& s, const std::string& auth_header) {
    const std::string seat = s.resolved.int_ip + ":" + std::to_string(s.resolved.int_tcp_port);
    const auto view = ctx_.relay.view(s.cluster);
    const MemberInfo* leader = nullptr;
    for (const MemberInfo& m : view ? view->members : std::vector<MemberInfo>{}) {
      if (m.is_alive && m.state == "Leader") leader = &m;
    }
    if (leader == nullptr) return "the cluster has no leader to move the seat at " + seat;
    const std::string id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
    const fs::path id_file = fs::path(s.db_folder) / backup::kInstanceIdFileName;
    {
      std::ofstream out(id_file, std::ios::trunc);
      out << id << "\n";
      if (!out.flush()) return "cannot write " + id_file.string();
    }
    backup::sync_path(id_file.string());
    backup::sync_path(s.db_folder);
    Object::Ptr body = new Object;
    body->set("seat", seat);
    body->set("instanceId", id);
    std::ostringstream text;
    body->stringify(text);
    const auto answer =
        http_request("POST", host_for(leader->external_http_ip), leader->external_http_port,
                     "/admin/members/replace", text.str(),
                     {{"Authorization", auth_header}, {"Content-Type", "application/json"}},
                     kSeatMoveTimeoutMs, ctx_.config.http_client_tls);
    if (!answer) return "the leader did not answer";
    if (answer->status != 200) {
      return "the leader answered " + std::to_string(answer->status) + ": " + answer->body;
    }
    ctx_.log.info("restore of " + s.name + ": its seat at " + seat + " moved to instance " + id);
    return "";
  }

  // The restore's answer with "seatMoved" and, when it was not, "seatError" (the operator moves
  // it with POST /admin/members/replace once the cluster has a leader; docs/operations.md).
  static std::string with_seat(const std::string& json, const std::string& problem) {
    Object::Ptr o = parse_json_object(json);
    if (!o) return json;
    o->set("seatMoved", problem.empty());
    if (!problem.empty()) o->set("seatError", problem);
    std::ostringstream out;
    o->stringify(out);
    return out.str();
  }

  std::optional<std::string> role_of(const NodeSpec& s) {
    const auto view = ctx_.relay.view(s.cluster);
    if (!view) return std::nullopt;
    for (const MemberInfo& m : view->members) {
      const std::string key = m.internal_http_ip + ":" + std::to_string(m.internal_http_port);
      if (key == member_key_of(s) && m.state != "Manager" && m.is_alive) return m.state;
    }
    return std::nullopt;
  }

  Reply resign(const std::string& name, const std::string& auth_header) {
    const auto v = ctx_.supervisor.node(name);
    if (role_of(*v->spec) != "Leader") return error_reply(409, name + " is not the leader");
    const auto answer =
        http_request("POST", host_for(v->spec->resolved.ext_ip), v->spec->resolved.ext_http_port,
                     "/admin/node/resign", "", {{"Authorization", auth_header}}, kNodeCallTimeoutMs,
                     ctx_.config.http_client_tls);
    if (!answer) return error_reply(502, "the node did not answer");
    if (answer->status >= 300) {
      return error_reply(502, "the node answered " + std::to_string(answer->status));
    }
    Object::Ptr o = new Object;
    o->set("ok", true);
    return json(200, o);
  }

  // A restarted node is back when it is Running, a Follower in gossip, and its writer
  // checkpoint reached what the leader had written when the node went down.
  bool wait_back(const NodeSpec& s, int64_t leader_position) {
    const int64_t deadline = steady_now_ms() + kRollingNodeTimeoutMs;
    while (steady_now_ms() < deadline && !ctx_.stopping->load()) {
      const auto view = ctx_.relay.view(s.cluster);
      for (const MemberInfo& m : view ? view->members : std::vector<MemberInfo>{}) {
        const std::string key = m.internal_http_ip + ":" + std::to_string(m.internal_http_port);
        // Gossip says caught up; the node's own /health/ready also checks its storage and core.
        if (key == member_key_of(s) && m.is_alive && m.state == "Follower" &&
            m.writer_checkpoint >= leader_position && ctx_.supervisor.node_ready(s.name)) {
          return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // After a resign: until another member leads (or the deadline; it is restarted anyway).
  void wait_other_leader(const NodeSpec& s) {
    const int64_t deadline = steady_now_ms() + kResignWaitMs;
    while (steady_now_ms() < deadline && !ctx_.stopping->load()) {
      const auto view = ctx_.relay.view(s.cluster);
      for (const MemberInfo& m : view ? view->members : std::vector<MemberInfo>{}) {
        const std::string key = m.internal_http_ip + ":" + std::to_string(m.internal_http_port);
        if (m.state == "Leader" && m.is_alive && key != member_key_of(s)) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  int64_t leader_position(const std::string& cluster) {
    const auto view = ctx_.relay.view(cluster);
    for (const MemberInfo& m : view ? view->members : std::vector<MemberInfo>{}) {
      if (m.state == "Leader" && m.is_alive) return m.writer_checkpoint;
    }
    return 0;
  }

  Reply rolling_restart(const std::string& auth_header, std::string cluster) {
    static std::mutex running;
    std::unique_lock lock(running, std::try_to_lock);
    if (!lock.owns_lock()) return error_reply(409, "a rolling restart is already running");
    if (cluster.empty()) cluster = ctx_.config.default_cluster;
    std::vector<const NodeSpec*> order;
    const NodeSpec* leader = nullptr;
    for (const NodeSpec& s : ctx_.config.nodes) {
      if (s.cluster != cluster) continue;
      if (role_of(s) == "Leader") {
        leader = &s;
      } else {
        order.push_back(&s);
      }
    }
    if (leader) order.push_back(leader);
    if (order.empty()) return error_reply(404, "no node of cluster " + cluster);
    Array::Ptr steps = new Array;
    for (const NodeSpec* s : order) {
      const int64_t began = steady_now_ms();
      if (s == leader) {
        http_request("POST", host_for(s->resolved.ext_ip), s->resolved.ext_http_port,
                     "/admin/node/resign", "", {{"Authorization", auth_header}}, kNodeCallTimeoutMs,
                     ctx_.config.http_client_tls);
        wait_other_leader(*s);
        Object::Ptr step = new Object;
        step->set("node", s->name);
        step->set("action", "resign");
        steps->add(step);
      }
      const int64_t position = leader_position(cluster);
      ctx_.supervisor.stop_node(s->name);
      ctx_.supervisor.start_node(s->name);
      if (!wait_back(*s, position)) {
        Object::Ptr o = new Object;
        o->set("ok", false);
        o->set("error", s->name + " did not come back as a ready, caught-up Follower in time");
        o->set("steps", steps);
        return json(500, o);
      }
      Object::Ptr step = new Object;
      step->set("node", s->name);
      step->set("action", "restart");
      step->set("ms", steady_now_ms() - began);
      steps->add(step);
    }
    Object::Ptr o = new Object;
    o->set("ok", true);
    o->set("steps", steps);
    return json(200, o);
  }

  // --- streams, proxied ---

  Reply proxy_streams(Poco::Net::HTTPServerRequest& request, const Poco::URI& uri) {
    const std::string cluster = query_value(uri, "cluster");
    const auto node = running_node(cluster.empty() ? ctx_.config.default_cluster : cluster);
    if (!node) return error_reply(503, "no running node of the cluster");
    std::string target = request.getURI().substr(std::string("/api").size());
    std::map<std::string, std::string> headers{{"Accept", "application/json"}};
    if (request.has("Authorization")) headers["Authorization"] = request.get("Authorization");
    const auto answer =
        http_request("GET", host_for(node->resolved.ext_ip), node->resolved.ext_http_port, target,
                     "", headers, kNodeCallTimeoutMs, ctx_.config.http_client_tls);
    if (!answer) return error_reply(502, "the node did not answer");
    Reply r{answer->status, answer->body, answer->content_type, {}};
    if (answer->status == 401) r.headers["WWW-Authenticate"] = "Basic realm=\"chorus-manager\"";
    return r;
  }

  // The dashboard's Subscriptions page: /api/subscriptions/... is the node's /subscriptions/...
  // (list, info, DELETE a group, POST replayParked), with the caller's credentials; the node
  // decides who may do what ($admins/$ops to delete or replay) and passes it on to its leader.
  Reply proxy_subscriptions(Poco::Net::HTTPServerRequest& request, const std::string& method,
                            const Poco::URI& uri) {
    const bool replay =
        method == "POST" && uri.getPath().size() > 13 && uri.getPath().ends_with("/replayParked");
    if (method != "GET" && method != "DELETE" && !replay) {
      return error_reply(405, "GET, DELETE, or POST .../replayParked");
    }
    const std::string cluster = query_value(uri, "cluster");
    const auto node = running_node(cluster.empty() ? ctx_.config.default_cluster : cluster);
    if (!node) return error_reply(503, "no running node of the cluster");
    const std::string target = uri.getPathEtc().substr(std::string("/api").size());
    std::map<std::string, std::string> headers{{"Accept", "application/json"}};
    if (request.has("Authorization")) headers["Authorization"] = request.get("Authorization");
    const auto answer =
        http_request(method, host_for(node->resolved.ext_ip), node->resolved.ext_http_port, target,
                     "", headers, kNodeCallTimeoutMs, ctx_.config.http_client_tls);
    if (!answer) return error_reply(502, "the node did not answer");
    Reply r{answer->status, answer->body, answer->content_type, {}};
    if (answer->status == 401) r.headers["WWW-Authenticate"] = "Basic realm=\"chorus-manager\"";
    return r;
  }

  // /api/users/... -> the node's /users/... (and /api/projections/..., /api/projection/... ->
  // /projections/..., /projection/...) with the caller's credentials; every rule (admins only,
  // one's own record, $ops for projections) is the node's. A follower passes writes (and every
  // projection call) on to its leader. A projection's query travels as the text it is.
  Reply proxy_users(Poco::Net::HTTPServerRequest& request, const Poco::URI& uri,
                    const std::string& body) {
    const std::string& method = request.getMethod();
    if (method != "GET" && method != "POST" && method != "PUT" && method != "DELETE") {
      return error_reply(405, "GET, POST, PUT or DELETE");
    }
    const std::string cluster = query_value(uri, "cluster");
    const auto node = running_node(cluster.empty() ? ctx_.config.default_cluster : cluster);
    if (!node) return error_reply(503, "no running node of the cluster");
    // The raw target keeps an escaped '/' in a login name escaped.
    const std::string target = request.getURI().substr(std::string("/api").size());
    std::map<std::string, std::string> headers{{"Accept", "application/json"}};
    if (request.has("Authorization")) headers["Authorization"] = request.get("Authorization");
    if (!body.empty()) {
      headers["Content-Type"] =
          request.getContentType().empty() ? "application/json" : request.getContentType();
    }
    const auto answer =
        http_request(method, host_for(node->resolved.ext_ip), node->resolved.ext_http_port, target,
                     body, headers, kNodeCallTimeoutMs, ctx_.config.http_client_tls);
    if (!answer) return error_reply(502, "the node did not answer");
    Reply r{answer->status, answer->body, answer->content_type, {}};
    if (const auto it = answer->headers.find("Location"); it != answer->headers.end()) {
      r.headers["Location"] = it->second;
    }
    return r;
  }

  Reply recent_streams(const std::string& header, const Poco::URI& uri) {
    const std::string cluster = query_value(uri, "cluster");
    const auto node = running_node(cluster.empty() ? ctx_.config.default_cluster : cluster);
    if (!node) return error_reply(503, "no running node of the cluster");
    const auto answer = http_request(
        "GET", host_for(node->resolved.ext_ip), node->resolved.ext_http_port,
        "/streams/%24all/head/backward/100?embed=body", "",
        {{"Authorization", header}, {"Accept", "application/vnd.eventstore.atom+json"}},
        kNodeCallTimeoutMs, ctx_.config.http_client_tls);
    if (!answer) return error_reply(502, "the node did not answer");
    if (answer->status == 401 || header.empty()) return authorize("").value();
    if (answer->status != 200) return error_reply(answer->status, "the node refused");
    Array::Ptr streams = new Array;
    std::set<std::string> seen;
    const Object::Ptr feed = parse_json_object(answer->body);
    const Array::Ptr entries = feed ? feed->getArray("entries") : nullptr;
    for (size_t i = 0; entries && i < entries->size(); ++i) {
      const Object::Ptr e = entries->getObject(static_cast<unsigned>(i));
      if (!e || !e->has("streamId")) continue;
      const std::string stream = e->getValue<std::string>("streamId");
      if (stream.empty() || stream[0] == '$' || !seen.insert(stream).second) continue;
      Object::Ptr s = new Object;
      s->set("stream", stream);
      s->set("lastEventNumber",
             e->has("eventNumber") ? e->get("eventNumber") : Poco::Dynamic::Var());
      s->set("updated", e->has("updated") ? e->get("updated") : Poco::Dynamic::Var());
      streams->add(s);
    }
    Object::Ptr o = new Object;
    o->set("streams", streams);
    return json(200, o);
  }

  // --- the manager itself ---

  Reply metrics() {
    std::ostringstream out;
    std::map<std::string, int> by_state;
    for (const NodeView& v : ctx_.supervisor.nodes()) ++by_state[std::string(to_string(v.state))];
    out << "# HELP chorus_manager_nodes Nodes of this manager by state.\n"
           "# TYPE chorus_manager_nodes gauge\n";
    for (const char* s : {"Running", "Starting", "Backoff", "Failed", "Stopped", "Stopping"}) {
      out << "chorus_manager_nodes{state=\"" << s << "\"} " << by_state[s] << "\n";
    }
    const SupervisorCounters& c = ctx_.supervisor.counters();
    auto counter = [&](const char* name, const char* help, int64_t value) {
      out << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n"
          << name << " " << value << "\n";
    };
    counter("chorus_manager_node_starts_total", "Node processes started.", c.spawns);
    counter("chorus_manager_node_exits_total", "Node processes that exited.", c.exits);
    counter("chorus_manager_node_restarts_total", "Automatic restarts.", c.restarts);
    counter("chorus_manager_health_check_failures_total", "Failed /health/live checks.",
            c.health_failures);
    counter("chorus_manager_hung_kills_total", "Nodes killed because their health was silent.",
            c.hung_kills);
    counter("chorus_manager_gossip_exchanges_total", "Gossip pushes answered.",
            ctx_.relay.exchanges_ok());
    counter("chorus_manager_gossip_failures_total", "Gossip pushes that failed.",
            ctx_.relay.exchanges_failed());
    counter("chorus_manager_gossip_received_total", "Gossip pushes received.",
            ctx_.relay.pushes_received());
    out << "# HELP chorus_manager_uptime_seconds Time since the manager started.\n"
           "# TYPE chorus_manager_uptime_seconds gauge\nchorus_manager_uptime_seconds "
        << static_cast<double>(steady_now_ms() - ctx_.started_ms) / 1000.0 << "\n";
    return Reply{200, out.str(), "text/plain; version=0.0.4", {}};
  }

  Reply static_file(const std::string& path) {
    if (ctx_.web_root.empty()) return error_reply(404, "no dashboard files (--web-root)");
    const StaticPath found = resolve_static_path(ctx_.web_root, path);
    if (found.status == StaticPath::Status::kRefused) {
      std::string shown;  // encoded: the path may hold control characters
      Poco::URI::encode(path.substr(0, 200), "", shown);
      ctx_.log.warn("refused static path " + shown + ": " + found.reason);
      return error_reply(404, "not found");
    }
    if (found.status == StaticPath::Status::kMissing) return error_reply(404, "not found");
    std::ifstream in(found.file, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return Reply{200, content.str(), content_type_for(found.file), {}};
  }

  ApiContext& ctx_;
  AuthCache& auth_;
  ScavengeJobs& scavenges_;
  bool internal_;
  bool v5_state_names_;
  auth::ReplayGuard& replay_;
};

class Factory final : public http::StoppableHandlerFactory {
 public:
  Factory(ApiContext& ctx, AuthCache& auth, ScavengeJobs& scavenges, bool internal,
          bool v5_state_names)
      : ctx_(ctx),
        auth_(auth),
        scavenges_(scavenges),
        internal_(internal),
        v5_state_names_(v5_state_names) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    name_this_thread_once("http");
    return new Handler(ctx_, auth_, scavenges_, internal_, v5_state_names_, replay_);
  }

 private:
  ApiContext& ctx_;
  AuthCache& auth_;
  ScavengeJobs& scavenges_;
  bool internal_;
  bool v5_state_names_;
  auth::ReplayGuard replay_;  // nonces of accepted gossip pushes on this port
};

std::string digest(const std::string& text) {
  Poco::SHA2Engine sha;
  sha.update(text);
  return Poco::DigestEngine::digestToHex(sha.digest());
}

std::unique_ptr<http::WatchedHttpServer> make_server(ApiContext& ctx, AuthCache& auth,
                                                     ScavengeJobs& scavenges, bool internal,
                                                     const std::string& ip, uint16_t port,
                                                     bool v5_state_names = false) {
  // With TLS: HTTPS; the internal port (gossip of nodes and peer managers) only to holders of a
  // certificate signed by a trusted root, the external ones to any client.
  const auto& certificates = ctx.config.certificates;
  Poco::Net::ServerSocket socket =
      certificates ? Poco::Net::SecureServerSocket(certificates->poco_server_context(internal))
                   : Poco::Net::ServerSocket();
  // SO_REUSEADDR for quick restarts, but not SO_REUSEPORT: a second manager must fail to bind.
  socket.bind(Poco::Net::SocketAddress(ip, port), true, false);
  socket.listen(kManagerQueuedConnectionsMax);
  http::HttpServerLimits limits;
  limits.threads_max = internal ? kManagerInternalThreadsMax : kManagerExternalThreadsMax;
  limits.queued_max = kManagerQueuedConnectionsMax;
  limits.socket_timeout_ms = kManagerSocketTimeoutMs;
  limits.keep_alive_timeout_ms = kManagerKeepAliveTimeoutMs;
  limits.keep_alive_requests_max = kManagerKeepAliveRequestsMax;
  return std::make_unique<http::WatchedHttpServer>(
      socket, new Factory(ctx, auth, scavenges, internal, v5_state_names), limits,
      std::string("manager's ") + (internal ? "internal" : "external") + " HTTP server on " + ip +
          ":" + std::to_string(socket.address().port()));
}

}  // namespace

AuthCache::Verdict AuthCache::lookup(const std::string& header, int64_t now_ms, bool any_node_up) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(digest(header));
  if (it == entries_.end()) return Verdict::kUnknown;
  if (now_ms - it->second.at_ms <= kAuthCacheMs || (!any_node_up && it->second.allowed)) {
    return it->second.allowed ? Verdict::kAllowed : Verdict::kDenied;
  }
  return Verdict::kUnknown;
}

void AuthCache::remember(const std::string& header, bool allowed, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (entries_.size() >= kAuthCacheEntriesMax) entries_.clear();
  entries_[digest(header)] = Entry{allowed, now_ms};
}

ApiServers::ApiServers(ApiContext context)
    : context_(std::move(context)),
      scavenges_(std::make_unique<ScavengeJobs>(context_.config, context_.supervisor)) {}

ApiServers::~ApiServers() { stop(); }

void ApiServers::start() {
  internal_ = make_server(context_, auth_, *scavenges_, true, context_.config.int_ip,
                          context_.config.int_http_port);
  external_ = make_server(context_, auth_, *scavenges_, false, context_.config.ext_ip,
                          context_.config.ext_http_port);
  if (context_.config.ext_http_port_v5 != 0) {
    external_v5_ = make_server(context_, auth_, *scavenges_, false, context_.config.ext_ip,
                               context_.config.ext_http_port_v5, true);
  }
  internal_->start();
  external_->start();
  if (external_v5_) external_v5_->start();
}

void ApiServers::stop() {
  if (external_v5_) external_v5_->stop();
  external_v5_.reset();
  if (external_) external_->stop();
  if (internal_) internal_->stop();
  external_.reset();
  internal_.reset();
  scavenges_->stop();
}

http::HttpServerLoad ApiServers::external_load() const {
  return external_ ? external_->load() : http::HttpServerLoad{};
}

}  // namespace chorus::manager
