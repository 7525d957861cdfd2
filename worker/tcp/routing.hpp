// Where a client request is served (PROTOCOL.md B): here, passed on to the leader, or refused
// with NotHandled so that the client retries (NotReady) or reconnects to the leader (NotLeader,
// with the leader's endpoints). ClusterState is what the TCP front end needs to know of the
// cluster; a single node passes none and serves everything. Pure decisions; any thread.
#pragma once

#include "common/framing.hpp"
#include "worker/engine/types.hpp"

#include <functional>
#include <optional>
#include <string>

namespace chorus::tcp {

struct LeaderInfo {
  std::string tcp_ip;
  int tcp_port = 0;
  int secure_tcp_port = 0;
  std::string http_ip;
  int http_port = 0;
};

class ClusterState {
 public:
  virtual ~ClusterState() = default;
  virtual bool is_leader() const = 0;
  // The leader's external endpoints, when this node follows a known leader.
  virtual std::optional<LeaderInfo> leader() const = 0;
  // A follower holding (nearly) everything the leader has committed. One that is still catching
  // up (after a restart) would answer reads with an older state than the client has seen.
  virtual bool caught_up() const { return true; }
  // Runs a request on the leader as `who`; `done` gets (reply command, reply message), or
  // nullopt when there is no leader or it did not answer in time.
  virtual void forward(
      const Principal& who, uint8_t command, std::string payload,
      std::function<void(std::optional<std::pair<uint8_t, std::string>>)> done) const = 0;
};

struct NotHandledReply {
  int reason = 0;                              // NotHandled.NotHandledReason
  std::optional<std::string> additional_info;  // serialized MasterInfo for NotLeader
};

enum class RouteKind { Serve, Forward, Refuse };
struct RouteDecision {
  RouteKind kind = RouteKind::Serve;
  NotHandledReply refusal;  // for Refuse
};

// `require_master` is the request's flag (false for commands without one).
RouteDecision route_request(wire::Command command, bool require_master,
                            const ClusterState* cluster);

// The NotHandled for an engine that refused a write it was handed (leadership moved meanwhile).
NotHandledReply refusal_for(NotHandledReason reason, const ClusterState* cluster);

}  // namespace chorus::tcp
