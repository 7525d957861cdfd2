// GossipService: runs gossip for one worker (PROTOCOL.md D3). Every interval (the first rounds
// faster) it refreshes its own entry, picks a random known member (seeds from --gossip-seed or
// from --cluster-dns, peers, managers) and POSTs its view to that member's internal HTTP
// /gossip, merging the answer. When the node's role or leader changes (announce()) it pushes
// its view to every member at once, so clients asking any member find the new leader without
// waiting for rounds. A round whose view did not change since the target last took it sends an
// unchanged push instead (common/gossip_unchanged.hpp), so that an idle cluster's rounds parse
// and write no JSON; announcements always send the whole view. The rounds keep their connection
// to each peer node (not to managers) open from one round to the next. Pushes from others arrive
// through handle_push() and handle_unchanged(). It tells the engine which replication peers exist.
// Own thread for the (blocking) Poco HTTP client; the other methods from any thread.
#pragma once

#include "common/cluster_auth.hpp"
#include "common/gossip_unchanged.hpp"
#include "common/membership.hpp"
#include "common/wake_coalescer.hpp"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace chorus::cluster {

struct GossipConfig {
  std::string cluster_name = "default";
  std::vector<std::pair<std::string, int>> seeds;  // internal HTTP endpoints
  bool discover_via_dns = false;
  std::string cluster_dns;
  int cluster_gossip_port = 2112;
  int interval_ms = 1000;
  int fast_interval_ms = 100;  // the first rounds, so that a new cluster forms quickly
  int fast_rounds = 20;
  int timeout_ms = 500;
  int dns_refresh_rounds = 30;  // resolve the cluster DNS name again every N rounds
  MembershipTimes times;
  // With a secret, pushes are signed and only answers signed for them are merged.
  auth::Secret secret;
  // With TLS: the client context for the members' HTTPS internal ports (null: plain HTTP).
  Poco::Net::Context::Ptr tls;
  // When set (it outlives the service), regular rounds may run a little early on a wake-up of
  // the thread that carries it (the core thread), not on a wake-up of their own.
  WakeCoalescer* coalescer = nullptr;
};

// What one exchange brought back.
struct GossipAnswer {
  enum class Kind { kFailed, kWholeView, kUnchanged, kWantsWhole };
  Kind kind = Kind::kFailed;
  ClusterInfo view;           // kWholeView
  UnchangedAnswer unchanged;  // kUnchanged
};

class GossipService {
 public:
  // self(): our current member entry. on_peers(nodes): the live database nodes changed (the
  // candidates for the voter set, which decides who replicates).
  GossipService(GossipConfig config, std::function<MemberInfo()> self,
                std::function<void(NodeIdentities)> on_peers);
  ~GossipService();

  void start();
  // Starts with the provider of our own entry given now (when it needs objects made later).
  void start_with_self(std::function<MemberInfo()> self);
  void stop();
  // Our role, leader or epoch changed, or the connection of a peer dropped: push our view to
  // every member now (and probe whether the dropped one is alive). Does not block.
  void announce();

  // A peer's POSTed view: merged, then our view is the answer. nullopt (with `error`) for a
  // malformed document or another cluster's.
  std::optional<ClusterInfo> handle_push(const ClusterInfo& view, std::string* error);
  // A peer's unchanged push: its word that it is alive, answered with "unchanged" or our view.
  UnchangedReply handle_unchanged(const UnchangedPush& push);
  ClusterInfo view();
  std::optional<MemberInfo> member_by_instance_id(const std::string& instance_id);

 private:
  void run();
  void round();
  int round_interval_ms() const;  // the wait before the next regular round
  void push_to_all();
  GossipAnswer exchange_kept(const std::string& target, const std::string& body, bool keep);
  void resolve_seeds(int64_t now);
  void notify_peers();
  // The answer of one exchange with `target`, merged (REQUIRES mutex_). `sent`: our view's digest.
  void settle(const std::string& target, const GossipAnswer& answer, uint64_t sent, int64_t now);

  GossipConfig config_;
  std::function<MemberInfo()> self_;
  std::function<void(NodeIdentities)> on_peers_;
  std::mutex mutex_;
  Membership membership_;
  DigestBook digests_;  // GUARDED_BY(mutex_)
  NodeIdentities last_peers_;
  std::mt19937_64 rng_;
  std::atomic<bool> stopping_{false};
  std::condition_variable wake_;
  std::mutex wake_mutex_;
  bool announce_ = false;  // guarded by wake_mutex_
  bool carried_ = false;   // guarded by wake_mutex_: the coalescer woke the thread
  std::thread thread_;
  int rounds_ = 0;
  // The rounds' connections by member endpoint (the gossip thread's alone; announcements, on
  // threads of their own, use new ones).
  std::map<std::string, std::unique_ptr<Poco::Net::HTTPClientSession>> sessions_;
};

}  // namespace chorus::cluster
