// Router implementation.
#include "worker/cluster/router.hpp"

#include "worker/cluster/gossip_service.hpp"
#include "worker/cluster/transport.hpp"

#include "common/framing.hpp"
#include "messages.pb.h"

namespace chorus::cluster {

Router::Router(Engine& engine, GossipService* gossip, Transport* transport)
    : engine_(engine), gossip_(gossip), transport_(transport) {}

bool Router::is_leader() const { return engine_.is_leader(); }

std::optional<LeaderEndpoints> Router::leader() const {
  const auto status = engine_.status();
  if (!status.leader_id || !gossip_) return std::nullopt;
  const auto member = gossip_->member_by_instance_id(*status.leader_id);
  // A leader with only a secure port (--disable-insecure-tcp) still has endpoints to name.
  if (!member || (member->external_tcp_port <= 0 && member->external_secure_tcp_port <= 0)) {
    return std::nullopt;
  }
  LeaderEndpoints e;
  e.node_id = *status.leader_id;
  e.external_tcp_ip = member->external_tcp_ip;
  e.external_tcp_port = member->external_tcp_port;
  e.external_secure_tcp_port = member->external_secure_tcp_port;
  e.external_http_ip = member->external_http_ip;
  e.external_http_port = member->external_http_port;
  e.internal_http_ip = member->internal_http_ip;
  e.internal_http_port = member->internal_http_port;
  return e;
}

bool Router::caught_up() const {
  const NodeStatus status = engine_.status();
  return status.is_leader || status.state == "Follower";
}

void Router::forward(const Principal& who, uint8_t command, std::string payload,
                     std::function<void(std::optional<ForwardedReply>)> done) {
  const auto status = engine_.status();
  if (!transport_ || !status.leader_id || status.is_leader) return done(std::nullopt);
  internal::Forward request;
  request.set_request_id(0);
  // The login only: the leader resolves the groups from its own user records (never a claim).
  request.set_login(who.login);
  request.set_command(command);
  request.set_payload(std::move(payload));
  transport_->forward(
      *status.leader_id, std::move(request),
      [done = std::move(done)](std::optional<internal::ForwardReply> reply) {
        if (!reply) return done(std::nullopt);
        done(ForwardedReply{static_cast<uint8_t>(reply->command()), reply->payload()});
      });
}

void Router::append_system_events(const Principal& who, std::string stream,
                                  std::vector<NewEvent> events, std::function<void(bool)> done) {
  if (is_leader()) {
    const Principal system{"$system", {"$admins"}};
    engine_.append(
        system, std::move(stream), kExpectedAny, std::move(events),
        [done = std::move(done)](const WriteResult& r) {
          done(r.not_handled == NotHandledReason::None && r.result == OperationResult::Success);
        });
    return;
  }
  EventStore::Client::Messages::WriteEvents request;
  request.set_event_stream_id(stream);
  request.set_expected_version(kExpectedAny);
  request.set_require_master(true);
  for (const auto& e : events) {
    auto* m = request.add_events();
    m->set_event_id(to_dotnet_bytes(e.event_id));
    m->set_event_type(e.event_type);
    m->set_data_content_type(e.data_is_json ? 1 : 0);
    m->set_metadata_content_type(e.metadata_is_json ? 1 : 0);
    m->set_data(e.data);
    m->set_metadata(e.metadata);
  }
  forward(who, static_cast<uint8_t>(wire::Command::WriteEvents), request.SerializeAsString(),
          [done = std::move(done)](std::optional<ForwardedReply> reply) {
            EventStore::Client::Messages::WriteEventsCompleted completed;
            done(reply &&
                 reply->command == static_cast<uint8_t>(wire::Command::WriteEventsCompleted) &&
                 completed.ParseFromString(reply->payload) &&
                 completed.result() == EventStore::Client::Messages::Success);
          });
}

}  // namespace chorus::cluster
