// The cluster-wide "Machines" document (GET /api/machines): this manager's own nodes document,
// then each peer manager's, fetched from the peer's internal HTTP port (GET /api/nodes there)
// at the endpoints the operator configured (GossipSeed or ClusterDns), never at addresses that
// gossip merely claims. Peers are asked in parallel, each with a deadline. Any thread.
#pragma once

#include "common/options.hpp"

#include <Poco/Net/Context.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

namespace chorus::manager {

// A peer manager answers within this, or it is listed as unreachable.
inline constexpr int kPeerCallTimeoutMs = 2000;
// Peer managers asked at most (a cluster has a handful of machines; seeds beyond are skipped).
inline constexpr size_t kPeerManagersMax = 16;
// A peer's nodes document larger than this is refused (a manager's is a few KB).
inline constexpr size_t kPeerAnswerBytesMax = size_t{1024} * 1024;

// The document is built at most once in this long, however many ask: an anonymous client cannot
// make the manager call its peers faster than that.
inline constexpr int64_t kMachinesRefreshMs = 1000;

// The last document and when it was built. Concurrent callers wait for one build.
class MachinesCache {
 public:
  std::string get(int64_t now_ms, const std::function<std::string()>& build);

 private:
  std::mutex mutex_;
  std::string document_;                                        // GUARDED_BY(mutex_)
  int64_t built_ms_ = std::numeric_limits<int64_t>::min() / 2;  // GUARDED_BY(mutex_)
};

// {"machines": [{"address", "self", "reachable", "manager", "nodes"} | {"address", "self":
// false, "reachable": false, "error"}]}; `own_nodes_json` is this manager's /api/nodes answer.
// `tls`: the client context for the peers' HTTPS ports (null: plain HTTP).
std::string machines_json(const std::string& own_address, const std::string& own_nodes_json,
                          const std::vector<HostPort>& peers, const Poco::Net::Context::Ptr& tls);

}  // namespace chorus::manager
