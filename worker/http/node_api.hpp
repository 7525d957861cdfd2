// NodeApi: the node endpoints of both HTTP servers: /gossip, /ping, /info, /info/options,
// /stats, /health/live, /health/ready, /metrics, /admin/shutdown, /admin/scavenge (its routes
// in scavenge_api.cpp). Reads
// engine.stats(), the process's /proc entries and the shared HttpNode; never touches streams.
// Request threads.
#pragma once

#include "common/gossip.hpp"
#include "worker/engine/engine.hpp"
#include "worker/http/http_server.hpp"
#include "worker/http/router.hpp"

#include <Poco/JSON/Object.h>

#include <cstdint>
#include <string_view>

namespace chorus::http {

// This node's own gossip entry (alive, state and positions from the engine) as the whole
// document, until cluster membership (issue 4) merges in the other members.
ClusterInfo single_node_cluster_info(const HttpNode& node, const NodeStatus& status,
                                     int64_t now_unix_micros);

// Why a node is not healthy, "" when it is: shutting down, failed storage, a core thread that
// has not ticked for kCoreTickStaleMs. With a `ready_state` (its NodeStatus state), also not
// ready unless Leader or Follower (caught up). /health/live passes "" as the state.
std::string health_problem(bool stopping, bool storage_failed, int64_t core_tick_age_ms,
                           const std::string& ready_state);

// This process's CPU time, resident memory and threads, from a line of /proc/<pid>/stat (all
// zero when the line cannot be read).
struct ProcessFacts {
  double cpu_seconds = 0;
  int64_t rss_bytes = 0;
  int64_t threads = 0;
};
ProcessFacts process_facts_from_stat(std::string_view line, int64_t clock_ticks_per_second,
                                     int64_t page_bytes);

// The Prometheus text of /metrics.
std::string metrics_text(HttpNode& node, const EngineStats& stats, const NodeStatus& status);

class NodeApi {
 public:
  // v5_state_names: /gossip answers in EventStore 5's names (with_v5_state_names).
  NodeApi(Engine& engine, HttpNode& node, bool internal, bool v5_state_names = false);
  void register_routes(Router& router);
  // Only /health/live, /health/ready and /stats (the manager's health listener).
  void register_health_routes(Router& router);
  // The document GET /stats answers (also written to $stats-<endpoint>, stats_stream.hpp).
  std::string stats_json();

 private:
  Reply gossip(Request& request);
  Reply unchanged_gossip(const std::string& body);
  Reply stats(Request& request);
  Reply admin_shutdown(Request& request);
  Reply admin_resign(Request& request);
  Reply replace_member(Request& request);
  void add_lag_in_events(Poco::JSON::Object::Ptr& follower, int64_t durable, int64_t writer);

  Engine& engine_;
  HttpNode& node_;
  const bool internal_;
  const bool v5_state_names_;
};

}  // namespace chorus::http
