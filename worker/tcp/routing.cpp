// Request routing; see routing.hpp.
#include "worker/tcp/routing.hpp"

namespace chorus::tcp {

std::optional<NotHandledReply> route_request(wire::Command command, bool require_master) {
  // A single node is always the leader (issue 2), so everything is served here.
  static_cast<void>(command);
  static_cast<void>(require_master);
  return std::nullopt;
}

}  // namespace chorus::tcp
