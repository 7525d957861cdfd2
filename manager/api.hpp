// ManagerApi: the manager's HTTP endpoints (docs/management-api.md) on Poco's HTTP server: gossip
// (GET on every port, POST on the internal one), health and metrics, the management API and the
// dashboard's files (external ports). ExtHttpPortV5, when set, is a second external port whose
// gossip uses EventStore 5's state names. Poco's request threads call it; every piece of state it
// touches is thread-safe (Supervisor, GossipRelay, Store) or guarded here.
#pragma once

#include "common/http_serving.hpp"
#include "common/log.hpp"
#include "manager/config.hpp"
#include "manager/gossip_relay.hpp"
#include "manager/machines.hpp"
#include "manager/metrics_history.hpp"
#include "manager/scavenges.hpp"
#include "manager/store.hpp"
#include "manager/supervisor.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace chorus::manager {

struct ApiContext {
  const ManagerConfig& config;
  Supervisor& supervisor;
  GossipRelay& relay;
  Store& store;
  Log& log;
  std::string web_root;
  std::string version;
  int64_t started_ms = 0;
  std::atomic<bool>* stopping = nullptr;
  const MetricsHistory* history = nullptr;  // the charts' samples (null: none kept)
  MachinesCache* machines = nullptr;        // the Machines document's last build
};

// Authorization decisions, cached: a header a node accepted is trusted for kAuthCacheMs, and
// while no node can check it, for the manager's lifetime (so an operator can start a cluster
// whose nodes are all down with credentials the nodes accepted before).
class AuthCache {
 public:
  enum class Verdict { kAllowed, kDenied, kUnknown };
  Verdict lookup(const std::string& header, int64_t now_ms, bool any_node_up);
  void remember(const std::string& header, bool allowed, int64_t now_ms);

 private:
  struct Entry {
    bool allowed;
    int64_t at_ms;
  };
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;  // by SHA-256 of the header; bounded
};

// The limits of the manager's HTTP ports (the worker's, common/http_serving.hpp, with fewer
// threads): each port serves at most this many requests at once, this many accepted connections
// wait for a thread (more are closed at once, and logged), a receive or send waits at most
// kManagerSocketTimeoutMs and each connection's I/O at a stretch at most kHttpIoDeadlineMs. Time
// a request waits on a node (a backup, a rolling restart) is not counted.
inline constexpr int kManagerInternalThreadsMax = 8;   // gossip of nodes and peer managers
inline constexpr int kManagerExternalThreadsMax = 16;  // clients' gossip, dashboard, API
inline constexpr int kManagerQueuedConnectionsMax = 64;
inline constexpr int kManagerSocketTimeoutMs = 10000;
inline constexpr int kManagerKeepAliveTimeoutMs = 15000;
inline constexpr int kManagerKeepAliveRequestsMax = 1000;

inline constexpr int64_t kAuthCacheMs = 5000;
inline constexpr size_t kAuthCacheEntriesMax = 1000;

// Starts the servers (internal, external, and the ExtHttpPortV5 one when set); throws (with the
// reason) if a port cannot be bound.
class ApiServers {
 public:
  explicit ApiServers(ApiContext context);
  ~ApiServers();
  void start();
  void stop();
  // What the external port holds and has refused (tests, operators).
  http::HttpServerLoad external_load() const;

 private:
  ApiContext context_;
  AuthCache auth_;
  std::unique_ptr<ScavengeJobs> scavenges_;  // before the servers: their handlers use it
  std::unique_ptr<http::WatchedHttpServer> internal_;
  std::unique_ptr<http::WatchedHttpServer> external_;
  std::unique_ptr<http::WatchedHttpServer> external_v5_;  // ExtHttpPortV5, when set
};

}  // namespace chorus::manager
