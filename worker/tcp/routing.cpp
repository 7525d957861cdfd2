// Request routing; see routing.hpp.
#include "worker/tcp/routing.hpp"

#include "messages.pb.h"

namespace chorus::tcp {
namespace {

using wire::Command;
namespace pb = EventStore::Client::Messages;

enum class Kind { Write, Read, Persistent, Other };

Kind kind_of(Command command) {
  switch (command) {
    case Command::WriteEvents:
    case Command::DeleteStream:
    case Command::TransactionStart:
    case Command::TransactionWrite:
    case Command::TransactionCommit:
      return Kind::Write;
    case Command::ReadEvent:
    case Command::ReadStreamEventsForward:
    case Command::ReadStreamEventsBackward:
    case Command::ReadAllEventsForward:
    case Command::ReadAllEventsBackward:
      return Kind::Read;
    case Command::CreatePersistentSubscription:
    case Command::UpdatePersistentSubscription:
    case Command::DeletePersistentSubscription:
    case Command::ConnectToPersistentSubscription:
      return Kind::Persistent;
    default:
      return Kind::Other;
  }
}

NotHandledReply not_leader(const LeaderInfo& leader) {
  pb::NotHandled::MasterInfo info;
  info.set_external_tcp_address(leader.tcp_ip);
  info.set_external_tcp_port(leader.tcp_port);
  info.set_external_http_address(leader.http_ip);
  info.set_external_http_port(leader.http_port);
  if (leader.secure_tcp_port > 0) {
    info.set_external_secure_tcp_address(leader.tcp_ip);
    info.set_external_secure_tcp_port(leader.secure_tcp_port);
  }
  return NotHandledReply{pb::NotHandled::NotMaster, info.SerializeAsString()};
}

NotHandledReply not_ready() { return NotHandledReply{pb::NotHandled::NotReady, std::nullopt}; }

RouteDecision refuse(NotHandledReply reply) { return RouteDecision{RouteKind::Refuse, reply}; }

}  // namespace

RouteDecision route_request(Command command, bool require_master, const ClusterState* cluster) {
  const Kind kind = kind_of(command);
  if (kind == Kind::Other || cluster == nullptr || cluster->is_leader()) return {};
  const auto leader = cluster->leader();
  if (!leader) return refuse(not_ready());  // no leader: nothing can be served correctly
  switch (kind) {
    case Kind::Persistent:
      return refuse(not_leader(*leader));  // they live on the leader only
    case Kind::Write:
      if (require_master) return refuse(not_leader(*leader));
      return RouteDecision{RouteKind::Forward, {}};
    case Kind::Read:
      if (require_master) return refuse(not_leader(*leader));
      // A follower still catching up says so, as EventStore does, and the client retries.
      if (!cluster->caught_up()) return refuse(not_ready());
      return {};  // served here from committed data
    case Kind::Other:
      break;
  }
  return {};
}

NotHandledReply refusal_for(NotHandledReason reason, const ClusterState* cluster) {
  if (reason == NotHandledReason::NotLeader && cluster != nullptr) {
    if (const auto leader = cluster->leader()) return not_leader(*leader);
  }
  if (reason == NotHandledReason::TooBusy) {
    return NotHandledReply{pb::NotHandled::TooBusy, std::nullopt};
  }
  return not_ready();
}

}  // namespace chorus::tcp
