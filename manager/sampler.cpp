// Chart sampling: node figures, latency deltas, lag from the leader or gossip.
#include "manager/sampler.hpp"

#include "common/thread_name.hpp"
#include "manager/http_client.hpp"

#include <algorithm>
#include <chrono>

namespace chorus::manager {
namespace {

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string http_key(const std::string& ip, int port) { return ip + ":" + std::to_string(port); }

const MemberInfo* member_of(const ClusterInfo& view, const NodeSpec& spec) {
  const std::string key = http_key(spec.resolved.int_ip, spec.resolved.int_http_port);
  for (const MemberInfo& m : view.members) {
    if (m.state != "Manager" && http_key(m.internal_http_ip, m.internal_http_port) == key) {
      return &m;
    }
  }
  return nullptr;
}

const MemberInfo* leader_of(const ClusterInfo& view) {
  for (const MemberInfo& m : view.members) {
    if (m.state == "Leader" && m.is_alive) return &m;
  }
  return nullptr;
}

}  // namespace

MetricsSampler::MetricsSampler(Supervisor& supervisor, GossipRelay& relay, MetricsHistory& history)
    : supervisor_(supervisor), relay_(relay), history_(history) {}

MetricsSampler::~MetricsSampler() { stop(); }

void MetricsSampler::start() {
  thread_ = std::thread([this] {
    set_thread_name("sampler");
    int64_t next = steady_now_ms();
    while (!stopping_) {
      sample_once(unix_now_ms());
      next += kSampleIntervalMs;
      {
        std::unique_lock lock(sleep_mutex_);
        const int64_t wait_ms = std::max<int64_t>(0, next - steady_now_ms());
        sleep_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                           [&] { return stopping_.load(); });
      }
      if (steady_now_ms() > next + kSampleIntervalMs) next = steady_now_ms();  // fell behind
    }
  });
}

void MetricsSampler::stop() {
  {
    std::lock_guard lock(sleep_mutex_);
    stopping_ = true;
  }
  sleep_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// Each cluster's view and its leader's follower list are read once per sample, however many of
// its nodes run here: parsing a leader's /stats once per follower cost the manager a fifth of
// its idle CPU with 12 nodes (issue 16).
void MetricsSampler::sample_once(int64_t now_unix_ms) {
  const std::vector<NodeView> views = supervisor_.nodes();
  std::vector<NodeFigures> figures(views.size());
  std::map<std::string, ClusterSample> clusters;  // by cluster name
  for (size_t i = 0; i < views.size(); ++i) {
    const NodeView& v = views[i];
    if (!v.pid || v.stats_json.empty()) {
      last_writes_.erase(v.spec->name);  // a gap, and no latency across a restart
      continue;
    }
    HistogramSnapshot writes;
    if (!figures_from_stats(v.stats_json, &figures[i], &writes)) continue;
    auto last = last_writes_.find(v.spec->name);
    if (last != last_writes_.end()) {
      figures[i][Figure::kWriteP99Ms] = quantile_ms(last->second, writes, 0.99);
    }
    last_writes_[v.spec->name] = writes;
    auto cluster = clusters.find(v.spec->cluster);
    if (cluster == clusters.end()) {
      cluster =
          clusters
              .emplace(v.spec->cluster, ClusterSample{relay_.view(v.spec->cluster), std::nullopt})
              .first;
    }
    add_lag(v, views, cluster->second, figures[i]);
  }
  history_.add(now_unix_ms, std::move(figures));
}

// Gossip only claims where the leader is: it is asked only on a machine the operator named as a
// peer (GossipSeed or ClusterDns), never at an address a pushed view made up.
bool MetricsSampler::on_peer_machine(const std::string& host) {
  for (const HostPort& peer : relay_.peer_managers()) {
    if (peer.host == host) return true;
  }
  return false;
}

// The leader's /stats: its last copy when it runs here, else fetched from its machine.
std::string MetricsSampler::leader_stats(const NodeSpec& spec, const std::vector<NodeView>& views,
                                         const ClusterInfo& view, const MemberInfo& leader) {
  for (const NodeView& other : views) {
    if (other.spec->cluster == spec.cluster && other.pid &&
        member_of(view, *other.spec) == &leader) {
      return other.stats_json;  // the leader runs here
    }
  }
  if (!on_peer_machine(leader.internal_http_ip)) return "";
  const auto answer =
      http_request("GET", leader.internal_http_ip, leader.internal_http_port, "/stats", "", {},
                   kLeaderStatsTimeoutMs, relay_.http_client_tls());
  return answer && answer->status == 200 ? answer->body : "";
}

void MetricsSampler::add_lag(const NodeView& v, const std::vector<NodeView>& views,
                             ClusterSample& cluster, NodeFigures& figures) {
  const NodeSpec& spec = *v.spec;
  const auto& view = cluster.view;
  const MemberInfo* self = view ? member_of(*view, spec) : nullptr;
  const MemberInfo* leader = view ? leader_of(*view) : nullptr;
  if (!self || !self->is_alive || !leader) return;
  if (self == leader) {
    figures[Figure::kLagBytes] = 0;
    figures[Figure::kLagEvents] = 0;
    figures[Figure::kLagMs] = 0;
    return;
  }
  if (!cluster.lags) cluster.lags = follower_lags(leader_stats(spec, views, *view, *leader));
  const std::string node_id =
      spec.resolved.int_ip + ":" + std::to_string(spec.resolved.int_tcp_port);
  // Leaders name followers by instance id; one of an older version by internal TCP endpoint.
  if (lag_of(*cluster.lags, self->instance_id, &figures) ||
      lag_of(*cluster.lags, node_id, &figures)) {
    return;
  }
  figures[Figure::kLagBytes] = static_cast<double>(
      std::max<int64_t>(0, leader->writer_checkpoint - self->writer_checkpoint));
}

}  // namespace chorus::manager
