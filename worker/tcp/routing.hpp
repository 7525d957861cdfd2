// Where a client request is served: here, or refused with NotHandled (PROTOCOL.md B) so that the
// client retries or reconnects to the leader. The single place the cluster issue extends with
// NotHandled(NotLeader/NotReady); today every node is a leader that serves everything.
// Pure function; any thread.
#pragma once

#include "common/framing.hpp"

#include <optional>
#include <string>

namespace chorus::tcp {

struct NotHandledReply {
  int reason = 0;                              // NotHandled.NotHandledReason
  std::optional<std::string> additional_info;  // serialized MasterInfo for NotLeader
};

// nullopt = serve the request on this node. `require_master` is the request's flag (false for
// commands without one).
std::optional<NotHandledReply> route_request(wire::Command command, bool require_master);

}  // namespace chorus::tcp
