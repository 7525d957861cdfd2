// MetricsSampler: once a second, turns what the manager knows about its nodes into one chart
// sample (MetricsHistory): each node's last /stats (polled by the supervisor's health thread),
// its write latency since the previous sample, and its replication lag as the leader reports it
// (the leader's /stats; when it runs on another machine, fetched from its internal HTTP port if
// that machine is a configured peer), else the gossip's checkpoint difference. One thread of its
// own; start/stop from main.
#pragma once

#include "manager/gossip_relay.hpp"
#include "manager/metrics_history.hpp"
#include "manager/supervisor.hpp"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace chorus::manager {

// A leader on another machine answers its /stats within this, or the sample falls back to the
// gossip's lag in bytes.
inline constexpr int kLeaderStatsTimeoutMs = 500;

class MetricsSampler {
 public:
  MetricsSampler(Supervisor& supervisor, GossipRelay& relay, MetricsHistory& history);
  ~MetricsSampler();
  void start();
  void stop();
  // One sample now (the thread's step; tests call it directly).
  void sample_once(int64_t now_unix_ms);

 private:
  // One cluster's part of a sample: its gossip view, and its leader's follower list once read.
  struct ClusterSample {
    std::optional<ClusterInfo> view;
    std::optional<FollowerLags> lags;
  };
  void add_lag(const NodeView& v, const std::vector<NodeView>& views, ClusterSample& cluster,
               NodeFigures& figures);
  std::string leader_stats(const NodeSpec& spec, const std::vector<NodeView>& views,
                           const ClusterInfo& view, const MemberInfo& leader);
  bool on_peer_machine(const std::string& host);

  Supervisor& supervisor_;
  GossipRelay& relay_;
  MetricsHistory& history_;
  std::map<std::string, HistogramSnapshot> last_writes_;  // by node; sampler thread only
  std::atomic<bool> stopping_{false};
  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;  // stop() wakes the sampling thread at once
  std::thread thread_;
};

}  // namespace chorus::manager
