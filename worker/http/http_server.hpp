// HttpServer: EventStore's HTTP API on one endpoint, with Poco::Net's HTTP server connections (a
// bounded pool of request threads, a bounded accept queue and a deadline on each connection's
// I/O, see limits.hpp). The external server serves the
// streams API and the node endpoints; the internal one serves gossip (GET/POST) and the node
// endpoints. Request threads call the Engine and wait for its callback with a deadline.
// start()/stop() from the thread that owns the server; HttpNode is shared by both servers.
#pragma once

#include "common/cluster_auth.hpp"
#include "common/gossip.hpp"
#include "common/gossip_unchanged.hpp"
#include "worker/engine/space_monitor.hpp"
#include "worker/http/limits.hpp"
#include "worker/http/request.hpp"

#include "common/histogram.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chorus {
class Engine;
}

namespace chorus::http {

struct OptionRow {
  std::string name;    // PascalCase option name
  std::string value;   // effective value as text
  std::string source;  // "<DEFAULT>", "Command Line", ...
};

// An event this node writes to a system stream through the leader.
struct SystemEvent {
  std::string stream;
  NewEvent event;
};

// What the node endpoints report about this worker. Filled once by main before start().
struct NodeConfig {
  std::string version;
  std::string ext_ip = "127.0.0.1";
  std::string int_ip = "127.0.0.1";
  uint16_t ext_tcp_port = 0;         // 0 when the plain port is disabled
  uint16_t ext_secure_tcp_port = 0;  // 0 when there is no secure port
  uint16_t int_tcp_port = 0;
  uint16_t ext_http_port = 0;
  uint16_t int_http_port = 0;
  uint16_t ext_http_port_v5 = 0;  // 0 = none
  int node_priority = 0;
  std::string db_folder;  // for the database size in /stats
  bool in_memory = false;
  std::vector<OptionRow> options;                    // for /info/options
  std::function<int()> tcp_connections;              // current external TCP connections
  std::function<int64_t()> tcp_requests;             // external TCP requests dispatched
  std::function<int64_t()> tcp_partial_frame_bytes;  // of frames still arriving, all connections
  std::function<HistogramSnapshot()> tcp_request_durations;
  std::function<HistogramSnapshot()> tcp_write_durations;  // WriteEvents over TCP
  std::function<void()> request_shutdown;  // must return at once (post the real work)
  // The leader's external HTTP "host:port" when this node follows one (from gossip); unset or
  // nullopt while unknown. Used for EventStore's 307 to the leader.
  std::function<std::optional<LeaderHttp>()> leader_http;
  // Cluster gossip (worker/cluster): this node's view for GET /gossip, and a peer's POSTed view
  // merged into ours (the answer is our view; nullopt + reason for another cluster's). When
  // unset, the node answers as a single node.
  std::function<ClusterInfo()> gossip_view;
  std::function<std::optional<ClusterInfo>(const ClusterInfo&, std::string*)> gossip_push;
  // A peer's unchanged push (common/gossip_unchanged.hpp); unset: answered with "push your whole
  // view" (kGossipWholeViewStatus).
  std::function<UnchangedReply(const UnchangedPush&)> gossip_unchanged;
  // With a cluster secret, a POSTed gossip must carry a valid signature (401 otherwise) and the
  // answer is signed; empty: gossip is unsigned (loopback or --insecure).
  auth::Secret cluster_secret;
  // This node's instance id, kept with its data ("" = a fresh one per process start).
  std::string instance_id;
  // Writes system events through the leader (cluster::Router::append_system_events); unset:
  // the engine's own append as $system (a node without a cluster).
  std::function<void(const Principal&, std::string, std::vector<NewEvent>,
                     std::function<void(bool)>)>
      append_system_events;
  // POST /admin/members/replace (docs/operations.md): checks the replacement of the seat named by
  // `seat` (an instance id or internal TCP endpoint) by the node `instance_id` at `endpoint`
  // ("": the seat's own) against this node's voter set, and returns the event that carries it
  // through the log; nullopt + `error` when refused. Unset: a single node (no seats).
  std::function<std::optional<SystemEvent>(const std::string& seat, const std::string& endpoint,
                                           const std::string& instance_id, std::string* error)>
      plan_member_replacement;
  // Disk use of the database and free space of its volume (worker/engine/space_monitor.hpp);
  // unset: /stats and /metrics report none.
  std::function<SpaceReport()> space;
};

// State shared by the two servers of one worker: identity, counters and histograms.
class HttpNode {
 public:
  explicit HttpNode(NodeConfig config);
  const NodeConfig& config() const { return config_; }
  const std::string& instance_id() const { return instance_id_; }
  int64_t started_unix_ms() const { return started_unix_ms_; }
  Histogram& request_duration_seconds() { return request_duration_seconds_; }
  // POSTs of events to /streams/{stream}: the HTTP half of the client write latency.
  Histogram& write_duration_seconds() { return write_duration_seconds_; }
  std::atomic<int64_t>& requests() { return requests_; }
  std::atomic<int64_t>& requests_failed() { return requests_failed_; }
  std::atomic<bool>& stopping() { return stopping_; }
  const std::atomic<bool>& stopping() const { return stopping_; }
  auth::ReplayGuard& gossip_replay_guard() { return gossip_replay_guard_; }

 private:
  NodeConfig config_;
  std::string instance_id_;
  auth::ReplayGuard gossip_replay_guard_;  // nonces of accepted gossip pushes
  int64_t started_unix_ms_;
  Histogram request_duration_seconds_;
  Histogram write_duration_seconds_;
  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> requests_failed_{0};  // answered 5xx
  std::atomic<bool> stopping_{false};
};

struct HttpServerConfig {
  std::string ip = "127.0.0.1";
  uint16_t port = 2113;
  bool internal = false;  // internal: gossip + node endpoints; external: streams + node
  // --ext-http-port-v5: GET /gossip answers in EventStore 5's state names. v5-era clients send
  // the same gossip request as v20 ones (docs/cluster.md), so the port tells them apart.
  bool v5_state_names = false;
  Poco::Net::Context::Ptr tls{};  // a server context: HTTPS; null: plain HTTP
  // Non-empty: the manager's health listener on this Unix socket instead of ip:port, serving
  // only /health/live, /health/ready, /stats and POST /admin/backup on a thread of its own
  // (HealthResponder, health_responder.hpp), so that no client
  // traffic can starve the manager's liveness probe. The socket is created mode 0600; the
  // manager puts it in a folder of its own with mode 0700.
  std::string unix_socket_path{};
  // Cut a connection whose I/O takes longer at a stretch (kHttpIoDeadlineMs; tests shorten it).
  int io_deadline_ms = kHttpIoDeadlineMs;
};

class HttpServer {
 public:
  HttpServer(Engine& engine, std::shared_ptr<HttpNode> node, HttpServerConfig config);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the request threads. Throws std::runtime_error with a clear
  // message (e.g. "address already in use").
  void start();
  // Stops accepting, wakes long polls, aborts open connections. Idempotent.
  void stop();
  uint16_t port() const;
  HttpServerLoad load() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::http
