// Gossip relay runtime: memberships per cluster, the push thread, DNS seeds.
#include "manager/gossip_relay.hpp"

#include "common/thread_name.hpp"
#include "manager/http_client.hpp"
#include "manager/supervisor.hpp"

#include <Poco/Net/DNS.h>
#include <Poco/Net/IPAddress.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>

namespace chorus::manager {
namespace {

constexpr int kFastRounds = 20;  // the first rounds every 100 ms, so a cluster forms fast
constexpr int kFastIntervalMs = 100;
constexpr int kDnsRefreshRounds = 30;  // resolve ClusterDns again every N rounds
// Idle cost: a regular round skips one of our own nodes that holds our current view and spoke
// with us within this many rounds. The push would only say "alive, unchanged" both ways: news
// (a changed view) still goes every round, and a node's death comes from the supervisor at
// once (node_exited), a hang from the health checks; so an idle node gets a push every few
// rounds instead of every round.
constexpr int kLocalQuietRounds = 4;

std::string node_key(const NodeSpec& node) {
  const std::string host = node.resolved.int_ip == "0.0.0.0" ? "127.0.0.1" : node.resolved.int_ip;
  return host + ":" + std::to_string(node.resolved.int_http_port);
}

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The live leader a view lists first ("" when none), with its epoch: what a client would pick.
std::string leader_of(const ClusterInfo& view) {
  for (const MemberInfo& m : view.members) {
    if (m.state == "Leader" && m.is_alive) {
      return cluster::member_key(m) + "@" + std::to_string(m.epoch_number);
    }
  }
  return "";
}

}  // namespace

GossipRelay::GossipRelay(const ManagerConfig& config, Log& log, std::string instance_id)
    : config_(config), log_(log), instance_id_(std::move(instance_id)) {
  std::lock_guard lock(mutex_);
  const int64_t now = steady_now_ms();
  membership_for(config_.default_cluster, now);
  for (const NodeSpec& node : config_.nodes) {
    auto& m = membership_for(node.cluster, now);
    const std::string host = node.resolved.int_ip == "0.0.0.0" ? "127.0.0.1" : node.resolved.int_ip;
    m.add_seed(host, node.resolved.int_http_port, now);
    local_nodes_.insert(node_key(node));
  }
}

GossipRelay::~GossipRelay() { stop(); }

MemberInfo GossipRelay::self() const {
  MemberInfo m;
  m.instance_id = instance_id_;
  m.time_stamp = iso8601_utc(now_micros());
  m.state = "Manager";
  m.is_alive = true;
  m.internal_http_ip = config_.int_ip;
  m.internal_http_port = config_.int_http_port;
  m.external_http_ip = config_.ext_ip;
  m.external_http_port = config_.ext_http_port;
  m.external_http_port_v5 = config_.ext_http_port_v5;
  m.internal_tcp_ip = config_.int_ip;
  m.external_tcp_ip = config_.ext_ip;
  return m;
}

cluster::Membership& GossipRelay::membership_for(const std::string& cluster, int64_t now) {
  auto it = clusters_.find(cluster);
  if (it != clusters_.end()) return *it->second;
  auto m = std::make_unique<cluster::Membership>(cluster);
  m->set_self(self());
  for (const HostPort& seed : config_.gossip_seeds) m->add_seed(seed.host, seed.port, now);
  for (const auto& [host, port] : dns_seeds_) m->add_seed(host, port, now);
  return *clusters_.emplace(cluster, std::move(m)).first->second;
}

std::set<std::string> GossipRelay::allowed_targets() const {
  std::set<std::string> out;
  out.insert(local_nodes_.begin(), local_nodes_.end());
  for (const HostPort& seed : config_.gossip_seeds) {
    out.insert(seed.host + ":" + std::to_string(seed.port));
  }
  for (const auto& [host, port] : dns_seeds_) out.insert(host + ":" + std::to_string(port));
  return out;
}

std::optional<HttpAnswer> GossipRelay::exchange(const std::string& target,
                                                const std::string& body) {
  const auto colon = target.rfind(':');
  std::map<std::string, std::string> headers;
  const auth::Secret& secret = config_.cluster_secret;
  if (!secret.empty()) {
    headers[auth::kAuthHeader] =
        auth::sign_request(secret, "POST", "/gossip", body, auth::now_unix_ms());
  }
  if (is_unchanged_gossip(body)) headers["Content-Type"] = "text/plain";
  auto& connection = connections_[target];
  if (!connection) {
    connection = std::make_unique<HttpConnection>(
        target.substr(0, colon), std::stoi(target.substr(colon + 1)), config_.http_client_tls);
  }
  auto answer = connection->request("POST", "/gossip", body, headers, config_.gossip_timeout_ms);
  if (!answer) return std::nullopt;
  if (answer->status == kGossipWholeViewStatus) return answer;
  if (answer->status == 401) log_.warn("gossip to " + target + " refused: " + answer->body);
  if (answer->status != 200) return std::nullopt;
  if (!secret.empty()) {
    const auto it = answer->headers.find(auth::kAuthHeader);
    if (it == answer->headers.end() ||
        !auth::verify_answer(secret, headers[auth::kAuthHeader], 200, answer->body, it->second)) {
      log_.warn("gossip answer from " + target + " ignored: not signed with the cluster secret");
      return std::nullopt;
    }
  }
  return answer;
}

void GossipRelay::start() {
  thread_ = std::thread([this] {
    set_thread_name("gossip-relay");
    run();
  });
}

void GossipRelay::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<ClusterInfo> GossipRelay::handle_push(const ClusterInfo& pushed, std::string* error) {
  ++pushes_received_;
  ClusterInfo view = pushed;
  if (view.cluster_name.empty()) view.cluster_name = config_.default_cluster;
  std::lock_guard lock(mutex_);
  if (!clusters_.count(view.cluster_name) && clusters_.size() >= kClustersMax) {
    if (error) *error = "this manager relays " + std::to_string(kClustersMax) + " clusters at most";
    return std::nullopt;
  }
  const int64_t now = steady_now_ms();
  auto& m = membership_for(view.cluster_name, now);
  m.set_self(self());
  const std::string peer = view.server_ip + ":" + std::to_string(view.server_port);
  const std::string leader_before = leader_of(m.view());
  if (!m.merge(view, peer, now)) {
    if (error) *error = "gossip from cluster '" + view.cluster_name + "' refused";
    return std::nullopt;
  }
  digests_.took(view.cluster_name + "\n" + peer, gossip_digest(pushed));
  heard(view.cluster_name + "\n" + peer, now);
  auto answer = m.view();
  if (leader_of(answer) != leader_before) relay_now(view.cluster_name);
  return answer;
}

UnchangedReply GossipRelay::handle_unchanged(const UnchangedPush& push) {
  ++pushes_received_;
  UnchangedReply reply;  // kWantsWhole until shown otherwise
  const std::string cluster =
      push.cluster_name.empty() ? config_.default_cluster : push.cluster_name;
  std::lock_guard lock(mutex_);
  const auto it = clusters_.find(cluster);
  if (it == clusters_.end() || !digests_.holds(cluster + "\n" + push.sender, push.view_digest)) {
    return reply;
  }
  cluster::Membership& m = *it->second;
  const MemberInfo me = self();
  m.set_self(me);
  const std::string leader_before = leader_of(m.view());
  const int64_t now = steady_now_ms();
  if (!m.heard_from(push.sender, push.time_stamp, now)) return reply;
  heard(cluster + "\n" + push.sender, now);
  reply.view = m.view();
  // A leader we had marked dead that speaks again is news for the others.
  if (leader_of(reply.view) != leader_before) relay_now(cluster);
  const uint64_t digest = gossip_digest(reply.view);
  if (digest == push.known_digest) {
    reply.kind = UnchangedReply::Kind::kUnchanged;
    reply.unchanged = UnchangedAnswer{digest, me.time_stamp};
    reply.view = {};
  } else {
    reply.kind = UnchangedReply::Kind::kWholeView;
  }
  return reply;
}

void GossipRelay::heard(const std::string& book_key, int64_t now) { heard_ms_[book_key] = now; }

bool GossipRelay::quiet_local_target(const std::string& book_key, const std::string& target,
                                     int64_t now) const {
  if (local_nodes_.count(target) == 0) return false;
  const auto it = heard_ms_.find(book_key);
  return it != heard_ms_.end() &&
         now - it->second < int64_t{kLocalQuietRounds} * config_.gossip_interval_ms;
}

void GossipRelay::node_exited(const NodeSpec& node) {
  const std::string key = node_key(node);
  {
    std::lock_guard lock(mutex_);
    const auto it = clusters_.find(node.cluster);
    if (it == clusters_.end()) return;
    const std::string book_key = node.cluster + "\n" + key;
    heard_ms_.erase(book_key);
    digests_.forget(book_key);
    it->second->contact_failed(key, steady_now_ms());
  }
  relay_now(node.cluster);
}

void GossipRelay::relay_now(const std::string& cluster) {
  {
    std::lock_guard wake_lock(wake_mutex_);
    leader_changed_.insert(cluster);
  }
  wake_.notify_all();
}

std::optional<ClusterInfo> GossipRelay::view(const std::string& cluster) {
  std::lock_guard lock(mutex_);
  auto it = clusters_.find(cluster.empty() ? config_.default_cluster : cluster);
  if (it == clusters_.end()) return std::nullopt;
  it->second->set_self(self());
  return it->second->view();
}

std::vector<std::string> GossipRelay::clusters() {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, m] : clusters_) out.push_back(name);
  return out;
}

std::vector<HostPort> GossipRelay::peer_managers() {
  std::vector<HostPort> out;
  auto add = [&](const std::string& host, int port) {
    const HostPort p{host, static_cast<uint16_t>(port)};
    const bool self = port == config_.int_http_port && host == config_.int_ip;
    if (!self && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  for (const HostPort& seed : config_.gossip_seeds) add(seed.host, seed.port);
  std::lock_guard lock(mutex_);
  for (const auto& [host, port] : dns_seeds_) add(host, port);
  return out;
}

// Sleeps until the next round is due, a push changed a cluster's leader, or stop().
void GossipRelay::run() {
  auto next_round = std::chrono::steady_clock::now();
  for (int64_t round_number = 0; !stopping_;) {
    std::set<std::string> changed;
    {
      std::unique_lock lock(wake_mutex_);
      wake_.wait_until(lock, next_round,
                       [&] { return stopping_.load() || !leader_changed_.empty(); });
      if (stopping_) return;
      changed.swap(leader_changed_);
    }
    if (!changed.empty()) {
      round(round_number, &changed);  // the regular round stays on its schedule
      continue;
    }
    round(round_number);
    const int wait = round_number < kFastRounds ? kFastIntervalMs : config_.gossip_interval_ms;
    next_round = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait);
    ++round_number;
  }
}

void GossipRelay::resolve_dns(int64_t now) {
  try {
    const auto host = Poco::Net::DNS::hostByName(config_.cluster_dns);
    // The A records as they are now replace the previous ones: appending them again every
    // refresh grew the list (and the POSTs made from it each round) without bound.
    std::vector<std::pair<std::string, int>> fresh;
    for (const auto& address : host.addresses()) {
      if (address.family() != Poco::Net::IPAddress::IPv4) continue;
      std::pair<std::string, int> seed{address.toString(), config_.cluster_gossip_port};
      if (std::find(fresh.begin(), fresh.end(), seed) == fresh.end()) fresh.push_back(seed);
    }
    std::lock_guard lock(mutex_);
    dns_seeds_ = std::move(fresh);
    for (const auto& [address, port] : dns_seeds_) {
      for (auto& [name, m] : clusters_) m->add_seed(address, port, now);
    }
  } catch (const std::exception& e) {
    log_.warn("cannot resolve ClusterDns " + config_.cluster_dns + ": " + e.what());
  }
}

// Every member of every cluster gets our view; the answers are merged. The exchanges run
// without the lock (each has its deadline).
void GossipRelay::round(int64_t round_number, const std::set<std::string>* only) {
  if (!only && config_.discover_via_dns && round_number % kDnsRefreshRounds == 0) {
    resolve_dns(steady_now_ms());
  }
  struct Push {
    std::string cluster;
    std::string target;
    std::optional<std::string> unchanged;  // the unchanged push, when the target holds our view
    std::shared_ptr<const ClusterInfo> view;
    uint64_t digest = 0;
  };
  std::vector<Push> pushes;
  {
    std::lock_guard lock(mutex_);
    const int64_t now = steady_now_ms();
    const std::set<std::string> allowed = allowed_targets();
    const MemberInfo me = self();
    for (auto& [name, m] : clusters_) {
      if (only && only->count(name) == 0) continue;
      m->set_self(me);
      m->expire(now);
      const auto view = std::make_shared<const ClusterInfo>(m->view());
      const uint64_t digest = gossip_digest(*view);
      for (const auto& target : m->gossip_targets()) {
        // Only where the configuration points: an address named in a pushed view is never
        // contacted (the relay must not be a way to make this manager POST anywhere).
        if (allowed.count(target) == 0) continue;
        Push p{name, target, std::nullopt, view, digest};
        // A leader change goes out whole: it is news, and the relay waits for no answer first.
        const auto push =
            only ? std::nullopt
                 : digests_.unchanged_push(name + "\n" + target, view->cluster_name,
                                           cluster::member_key(me), digest, me.time_stamp);
        if (push) {
          if (quiet_local_target(name + "\n" + target, target, now)) continue;
          p.unchanged = to_text(*push);
        }
        pushes.push_back(std::move(p));
      }
    }
  }
  std::map<const ClusterInfo*, std::string> whole;  // each cluster's JSON, written once
  auto whole_of = [&](const Push& p) -> const std::string& {
    auto it = whole.find(p.view.get());
    if (it == whole.end()) it = whole.emplace(p.view.get(), to_json(*p.view)).first;
    return it->second;
  };
  for (const Push& p : pushes) {
    if (stopping_) return;
    auto answer = exchange(p.target, p.unchanged ? *p.unchanged : whole_of(p));
    if (answer && answer->status == kGossipWholeViewStatus && p.unchanged) {
      answer = exchange(p.target, whole_of(p));
    }
    settle(p.cluster, p.target, answer, p.digest);
  }
}

// One exchange's answer, merged into its cluster: a whole view, or "unchanged".
void GossipRelay::settle(const std::string& cluster, const std::string& target,
                         const std::optional<HttpAnswer>& answer, uint64_t sent) {
  const std::string book_key = cluster + "\n" + target;
  std::lock_guard lock(mutex_);
  auto& m = *clusters_.at(cluster);
  const int64_t now = steady_now_ms();
  if (answer && answer->status == 200 && is_unchanged_gossip(answer->body)) {
    const auto unchanged = unchanged_answer_from_text(answer->body, nullptr);
    if (unchanged && digests_.answered(book_key, unchanged->view_digest) &&
        m.heard_from(target, unchanged->time_stamp, now)) {
      heard(book_key, now);
      ++exchanges_ok_;
      return;
    }
    digests_.forget(book_key);  // it answered; the next push is whole
    ++exchanges_ok_;
    return;
  }
  std::optional<ClusterInfo> info;
  if (answer && answer->status == 200) info = cluster_info_from_json(answer->body, nullptr);
  if (info && m.merge(*info, target, now)) {
    digests_.exchanged(book_key, sent, gossip_digest(*info));
    heard(book_key, now);
    ++exchanges_ok_;
  } else {
    digests_.forget(book_key);
    heard_ms_.erase(book_key);
    ++exchanges_failed_;
    m.contact_failed(target, now);
  }
}

}  // namespace chorus::manager
