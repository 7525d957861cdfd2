// Membership: one node's view of the cluster from gossip (PROTOCOL.md D2-D3), as a pure class fed
// peers' views and contact results with the time as an input. Members are keyed by their internal
// HTTP endpoint. A peer's entry about itself wins; for others the entry with the higher epoch,
// then writer checkpoint, then time stamp wins; our own entry is always ours. A member's
// endpoints are what it says about itself: an entry from a third party that gives a known
// member's instance id or internal TCP endpoint at other endpoints is ignored (hole 4 of issue
// 10). Views from another cluster (by name) are refused. Seeds and managers are members in state
// Manager. The member count is bounded. Not thread-safe: one owner (GossipService locks).
#pragma once

#include "common/gossip.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace chorus::cluster {

// Members one view holds at most: a cluster has at most 99 nodes (--cluster-size), plus its
// managers and seeds; more is a flood, and new members beyond it are ignored.
inline constexpr size_t kMembersMax = 256;

struct MembershipTimes {
  int64_t dead_member_removal_ms = 30 * 60 * 1000;  // EventStore: 30 minutes
};

std::string member_key(const MemberInfo& m);      // "internal http ip:port"
std::string member_node_id(const MemberInfo& m);  // "internal tcp ip:port"
bool is_manager_or_seed(const MemberInfo& m);
// (internal TCP endpoint, instance id) of database nodes.
using NodeIdentities = std::vector<std::pair<std::string, std::string>>;

class Membership {
 public:
  Membership(std::string cluster_name, MembershipTimes times = {});

  void set_self(MemberInfo self);
  // A seed (an internal HTTP endpoint) appears as a Manager member until it answers.
  void add_seed(const std::string& ip, int port, int64_t now_ms);
  // Merges a view received from (or answered by) the member at `peer_key`. False (and nothing
  // merged) when the view belongs to another cluster.
  bool merge(const ClusterInfo& view, const std::string& peer_key, int64_t now_ms);
  // The member at `key` spoke itself with a view it says is unchanged (an unchanged push or
  // answer): it is alive, and its entry takes `time_stamp` when later. False (nothing changed)
  // when we hold no entry of it from itself, i.e. we need its whole view.
  bool heard_from(const std::string& key, const std::string& time_stamp, int64_t now_ms);
  // Contact with a member failed.
  void contact_failed(const std::string& key, int64_t now_ms);
  void expire(int64_t now_ms);

  // The view to serve: our own entry, then the others; the leader first (clients pick it).
  ClusterInfo view() const;
  // Keys of every other member to gossip with (seeds and managers included).
  std::vector<std::string> gossip_targets() const;
  // Replication peers: the internal TCP endpoints of the other database nodes.
  std::vector<std::string> replication_peers() const;
  // The live database nodes (not read-only replicas) that state an instance id, as (internal TCP
  // endpoint, instance id): the candidates for the voter set.
  NodeIdentities live_node_identities() const;
  std::optional<MemberInfo> by_node_id(const std::string& node_id) const;
  std::optional<MemberInfo> by_instance_id(const std::string& instance_id) const;
  const std::string& cluster_name() const { return cluster_name_; }

 private:
  struct Entry {
    MemberInfo info;
    int64_t last_changed_ms = 0;
    bool seed = false;
  };
  static bool newer(const MemberInfo& candidate, const MemberInfo& current);
  static bool reports_death(const MemberInfo& candidate, const MemberInfo& current);
  // Whether `m` (at `key`) names ourselves, or a live member known at other endpoints, by
  // instance id or internal TCP endpoint.
  bool claims_another(const MemberInfo& m, const std::string& key) const;
  void merge_first_hand(const MemberInfo& m, const std::string& key, int64_t now_ms);

  std::string cluster_name_;
  MembershipTimes times_;
  std::string self_key_;
  MemberInfo self_;
  std::map<std::string, Entry> members_;  // without self
};

}  // namespace chorus::cluster
