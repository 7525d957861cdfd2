// GossipRelay: the manager as a gossip member in state Manager (PROTOCOL.md D, ANCHORS.md 1a).
// One Membership per cluster name, so clusters never mix. Nodes and peer managers POST their
// views to the internal port (handle_push: merged, our view answered); a relay thread pushes
// each cluster's view to every member of that cluster (its nodes, peer managers, seeds) every
// interval (over a connection kept open per member) and merges the answers, so the view served on
// GET /gossip stays current while local nodes are down. A push that changes a cluster's leader is
// relayed to that cluster's members at once (failover must not wait for the next round). With a
// cluster secret every push is signed and only signed answers count; the relay pushes only to its
// own nodes and configured seeds. A member whose view did not change since the other side last
// took it exchanges an unchanged push or answer instead of the whole view
// (common/gossip_unchanged.hpp), so an idle cluster's relay parses and writes no JSON; a push
// that changes a leader always carries the whole view. Public methods are thread-safe.
#pragma once

#include "common/gossip_unchanged.hpp"
#include "common/log.hpp"
#include "common/membership.hpp"
#include "manager/config.hpp"
#include "manager/http_client.hpp"

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace chorus::manager {

// Clusters one manager relays at most (each from a node or a peer); more are refused.
inline constexpr size_t kClustersMax = 32;

class GossipRelay {
 public:
  GossipRelay(const ManagerConfig& config, Log& log, std::string instance_id);
  ~GossipRelay();

  void start();
  void stop();

  // A member's POSTed view: merged into its cluster's membership (an empty cluster name is the
  // default cluster); the answer is our view of that cluster. nullopt with `error` if refused.
  std::optional<ClusterInfo> handle_push(const ClusterInfo& view, std::string* error);
  // A member's unchanged push: its word that it is alive, answered "unchanged" or with our view.
  UnchangedReply handle_unchanged(const UnchangedPush& push);
  // One of this manager's nodes exited (the supervisor saw it): it is marked dead at once and
  // its cluster's members hear of it without waiting for a round.
  void node_exited(const NodeSpec& node);
  // The view of a cluster (empty name: the default cluster); nullopt if unknown.
  std::optional<ClusterInfo> view(const std::string& cluster);
  std::vector<std::string> clusters();
  // The peer managers' internal HTTP endpoints the operator named: GossipSeed, or what
  // ClusterDns resolved to (without this manager itself), each once.
  std::vector<HostPort> peer_managers();
  const std::string& default_cluster() const { return config_.default_cluster; }
  // The TLS context of the manager's HTTP calls (null: plain HTTP), for its other pollers.
  const Poco::Net::Context::Ptr& http_client_tls() const { return config_.http_client_tls; }

  int64_t exchanges_ok() const { return exchanges_ok_; }
  int64_t exchanges_failed() const { return exchanges_failed_; }
  int64_t pushes_received() const { return pushes_received_; }

 private:
  cluster::Membership& membership_for(const std::string& cluster, int64_t now);  // REQUIRES lock
  MemberInfo self() const;
  void run();
  // Pushes to the members of every cluster, or of `only` (a leader change) when given.
  void round(int64_t round_number, const std::set<std::string>* only = nullptr);
  void resolve_dns(int64_t now);
  std::set<std::string> allowed_targets() const;  // REQUIRES lock
  // POSTs a view (signed with the cluster secret); the answer's status and body if it is signed
  // for it (kGossipWholeViewStatus is taken unsigned: it asks only for our whole view).
  std::optional<HttpAnswer> exchange(const std::string& target, const std::string& body);
  void settle(const std::string& cluster, const std::string& target,
              const std::optional<HttpAnswer>& answer, uint64_t sent);
  // Whether the regular round may skip pushing to `target`: one of our own nodes, which holds
  // our current view and spoke with us lately. REQUIRES lock.
  bool quiet_local_target(const std::string& book_key, const std::string& target,
                          int64_t now) const;
  void heard(const std::string& book_key, int64_t now);  // REQUIRES lock
  // Wakes the relay thread to push `cluster` at once (its leader changed).
  void relay_now(const std::string& cluster);

  const ManagerConfig& config_;
  Log& log_;
  std::string instance_id_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<cluster::Membership>> clusters_;  // GUARDED_BY(mutex_)
  std::vector<std::pair<std::string, int>> dns_seeds_;                    // GUARDED_BY(mutex_)
  // Keyed by "<cluster>\n<member key>"; GUARDED_BY(mutex_).
  DigestBook digests_;
  // When each member last spoke with us (its push or its answer to ours), by the same keys;
  // GUARDED_BY(mutex_).
  std::map<std::string, int64_t> heard_ms_;
  std::set<std::string> local_nodes_;  // our own nodes' member keys (set once in the constructor)
  std::atomic<bool> stopping_{false};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::set<std::string> leader_changed_;  // clusters to relay now; GUARDED_BY(wake_mutex_)
  std::atomic<int64_t> exchanges_ok_{0};
  std::atomic<int64_t> exchanges_failed_{0};
  std::atomic<int64_t> pushes_received_{0};
  // One kept-alive connection per target (the configured nodes and seeds, so a bounded set);
  // relay thread only.
  std::map<std::string, std::unique_ptr<HttpConnection>> connections_;
  std::thread thread_;
};

}  // namespace chorus::manager
