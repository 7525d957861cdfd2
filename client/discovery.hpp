// Discovery: finds the node to connect to, as EventStore's ClientAPI does (PROTOCOL.md D1 and its
// ClusterDnsEndPointDiscoverer): ask gossip seeds (or the members of the last gossip, nodes before
// managers) for `GET /gossip?format=json`, then pick the best alive node by state rank, the leader
// first; a `Manager` member is never a TCP target. The ranking functions are pure; `discover`
// blocks (Poco HTTP with a timeout per seed) and runs on the client's discovery thread.
#pragma once

#include <chorus/settings.hpp>

#include <atomic>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/gossip.hpp"

namespace chorus::client {

// A gossip endpoint to ask and the Host header to send (the DNS name for DNS discovery).
struct GossipCandidate {
  Endpoint endpoint;
  std::string host_header;
  bool operator==(const GossipCandidate&) const = default;
};

// The official clients' rank of a member state (v20 names, and v5 Master/Slave as Leader/
// Follower); higher is better. -1 for a state that is never a target (Manager, ShuttingDown,
// Shutdown) or unknown.
int state_rank(std::string_view state);

// The best node's external TCP endpoint for `preference`, or nullopt when no alive node can
// take clients. Ties of equal rank are broken at random (the official clients shuffle).
std::optional<Endpoint> select_best_node(const ClusterInfo& gossip, NodePreference preference,
                                         std::mt19937& rng);

// Gossip endpoints from the last gossip: nodes first, then managers (each group shuffled), without
// the member whose TCP endpoint just failed.
std::vector<GossipCandidate> candidates_from_gossip(const ClusterInfo& gossip,
                                                    const std::optional<Endpoint>& failed_tcp,
                                                    std::mt19937& rng);
// The configured seeds, shuffled.
std::vector<GossipCandidate> candidates_from_seeds(const std::vector<Endpoint>& seeds,
                                                   std::mt19937& rng);

struct DiscoveryResult {
  std::optional<Endpoint> node;
  std::optional<ClusterInfo> gossip;  // the document the node was picked from
  std::string error;                  // why nothing was found
};

// Fetches one gossip document; nullopt with `error` on failure.
std::optional<ClusterInfo> fetch_gossip(const GossipCandidate& candidate, int timeout_ms,
                                        std::string* error);

// Up to max_discover_attempts rounds over the candidates (last gossip's, then the seeds or the
// DNS name's addresses); stops early when `cancel` becomes true.
DiscoveryResult discover(const Settings& settings, const std::optional<ClusterInfo>& last_gossip,
                         const std::optional<Endpoint>& failed_tcp,
                         const std::atomic<bool>& cancel);

}  // namespace chorus::client
