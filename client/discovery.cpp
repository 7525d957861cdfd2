// Discovery: rank tables, candidate order and the gossip fetch (Poco HTTP client).
#include "client/discovery.hpp"

#include <Poco/Net/DNS.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HostEntry.h>
#include <Poco/StreamCopier.h>
#include <Poco/Timespan.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>
#include <thread>

namespace chorus::client {
namespace {

// A gossip document larger than this is not a gossip document (a cluster of 100 members is
// about 100 KiB).
constexpr std::streamsize kGossipBytesMax = std::streamsize{4} * 1024 * 1024;
// How finely the pause between discovery rounds watches the cancel flag.
constexpr int kCancelPollMs = 50;

int follower_rank(std::string_view state) {
  // NodePreference::Follower: followers first, then the leader, then the rest by state rank.
  if (state == "Follower" || state == "Slave") return 100;
  if (state == "Leader" || state == "Master") return 99;
  return state_rank(state);
}

bool is_member_target(const MemberInfo& m) {
  return m.is_alive && state_rank(m.state) >= 0 && m.external_tcp_port > 0 &&
         !m.external_tcp_ip.empty();
}

}  // namespace

int state_rank(std::string_view state) {
  // EventStore's VNodeState order (23.10.1 client ranks), with v5 names mapped onto v20 ones.
  // ReadOnlyReplica states rank below Clone here: they cannot take writes.
  static const std::map<std::string_view, int> kRanks = {{"Initializing", 0},
                                                         {"DiscoverLeader", 1},
                                                         {"Unknown", 2},
                                                         {"PreReplica", 3},
                                                         {"CatchingUp", 4},
                                                         {"ReadOnlyLeaderless", 4},
                                                         {"PreReadOnlyReplica", 4},
                                                         {"ReadOnlyReplica", 4},
                                                         {"Clone", 5},
                                                         {"Follower", 6},
                                                         {"Slave", 6},
                                                         {"PreLeader", 7},
                                                         {"PreMaster", 7},
                                                         {"ResigningLeader", 7},
                                                         {"Leader", 8},
                                                         {"Master", 8}};
  auto it = kRanks.find(state);
  return it == kRanks.end() ? -1 : it->second;
}

std::optional<Endpoint> select_best_node(const ClusterInfo& gossip, NodePreference preference,
                                         std::mt19937& rng) {
  std::vector<const MemberInfo*> eligible;
  for (const MemberInfo& m : gossip.members) {
    if (is_member_target(m)) eligible.push_back(&m);
  }
  if (eligible.empty()) return std::nullopt;
  std::shuffle(eligible.begin(), eligible.end(), rng);
  if (preference != NodePreference::Random) {
    const auto rank = [&](const MemberInfo* m) {
      return preference == NodePreference::Leader ? state_rank(m->state) : follower_rank(m->state);
    };
    std::stable_sort(eligible.begin(), eligible.end(),
                     [&](const MemberInfo* a, const MemberInfo* b) { return rank(a) > rank(b); });
  }
  const MemberInfo& best = *eligible.front();
  return Endpoint{best.external_tcp_ip, static_cast<uint16_t>(best.external_tcp_port)};
}

std::vector<GossipCandidate> candidates_from_gossip(const ClusterInfo& gossip,
                                                    const std::optional<Endpoint>& failed_tcp,
                                                    std::mt19937& rng) {
  std::vector<GossipCandidate> nodes;
  std::vector<GossipCandidate> managers;
  for (const MemberInfo& m : gossip.members) {
    if (m.external_http_ip.empty() || m.external_http_port <= 0) continue;
    const Endpoint tcp{m.external_tcp_ip, static_cast<uint16_t>(m.external_tcp_port)};
    if (m.state != "Manager" && failed_tcp && tcp == *failed_tcp) continue;
    GossipCandidate c{Endpoint{m.external_http_ip, static_cast<uint16_t>(m.external_http_port)},
                      m.external_http_ip};
    (m.state == "Manager" ? managers : nodes).push_back(std::move(c));
  }
  std::shuffle(nodes.begin(), nodes.end(), rng);
  std::shuffle(managers.begin(), managers.end(), rng);
  nodes.insert(nodes.end(), managers.begin(), managers.end());
  return nodes;
}

std::vector<GossipCandidate> candidates_from_seeds(const std::vector<Endpoint>& seeds,
                                                   std::mt19937& rng) {
  std::vector<GossipCandidate> out;
  out.reserve(seeds.size());
  for (const Endpoint& seed : seeds) out.push_back(GossipCandidate{seed, seed.host});
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

std::optional<ClusterInfo> fetch_gossip(const GossipCandidate& candidate, int timeout_ms,
                                        std::string* error) {
  try {
    Poco::Net::HTTPClientSession session(candidate.endpoint.host, candidate.endpoint.port);
    session.setTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout_ms) * 1000));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/gossip?format=json",
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.setHost(candidate.host_header, candidate.endpoint.port);
    request.set("Accept", "application/json");
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
      *error = "HTTP " + std::to_string(static_cast<int>(response.getStatus()));
      return std::nullopt;
    }
    std::ostringstream text;
    Poco::StreamCopier::copyStream(body, text);
    if (static_cast<std::streamsize>(text.tellp()) > kGossipBytesMax) {
      *error = "gossip document too large";
      return std::nullopt;
    }
    return cluster_info_from_json(text.str(), error);
  } catch (const Poco::Exception& e) {
    *error = e.displayText();
  } catch (const std::exception& e) {
    *error = e.what();
  }
  return std::nullopt;
}

namespace {

std::vector<GossipCandidate> dns_candidates(const Settings& settings, std::string* error) {
  std::vector<GossipCandidate> out;
  try {
    const Poco::Net::HostEntry entry = Poco::Net::DNS::hostByName(settings.cluster_dns);
    for (const Poco::Net::IPAddress& address : entry.addresses()) {
      if (address.family() != Poco::Net::IPAddress::IPv4) continue;
      out.push_back(GossipCandidate{Endpoint{address.toString(), settings.gossip_port},
                                    settings.cluster_dns});
    }
    if (out.empty()) *error = "no IPv4 address for " + settings.cluster_dns;
  } catch (const Poco::Exception& e) {
    *error = "DNS lookup of " + settings.cluster_dns + ": " + e.displayText();
  }
  return out;
}

// Sleeps `ms`, waking early when `cancel` is set.
void pause(int ms, const std::atomic<bool>& cancel) {
  for (int waited = 0; waited < ms && !cancel.load(); waited += kCancelPollMs) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(kCancelPollMs, ms - waited)));
  }
}

}  // namespace

DiscoveryResult discover(const Settings& settings, const std::optional<ClusterInfo>& last_gossip,
                         const std::optional<Endpoint>& failed_tcp,
                         const std::atomic<bool>& cancel) {
  std::mt19937 rng(std::random_device{}());
  DiscoveryResult result;
  const int attempts = std::max(settings.max_discover_attempts, 1);
  for (int attempt = 0; attempt < attempts && !cancel.load(); ++attempt) {
    if (attempt > 0) pause(settings.discover_delay_ms, cancel);
    std::vector<GossipCandidate> candidates;
    if (last_gossip) candidates = candidates_from_gossip(*last_gossip, failed_tcp, rng);
    std::vector<GossipCandidate> seeds = settings.cluster_dns.empty()
                                             ? candidates_from_seeds(settings.gossip_seeds, rng)
                                             : dns_candidates(settings, &result.error);
    for (GossipCandidate& seed : seeds) {
      if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end()) {
        candidates.push_back(std::move(seed));
      }
    }
    for (const GossipCandidate& candidate : candidates) {
      if (cancel.load()) break;
      std::string error;
      std::optional<ClusterInfo> gossip =
          fetch_gossip(candidate, settings.gossip_timeout_ms, &error);
      if (!gossip) {
        result.error = to_string(candidate.endpoint) + ": " + error;
        continue;
      }
      std::optional<Endpoint> best = select_best_node(*gossip, settings.node_preference, rng);
      if (best) {
        result.node = best;
        result.gossip = std::move(gossip);
        result.error.clear();
        return result;
      }
      result.error = to_string(candidate.endpoint) + ": no alive node in its gossip";
    }
  }
  if (result.error.empty()) result.error = cancel.load() ? "cancelled" : "no gossip seeds";
  return result;
}

}  // namespace chorus::client
