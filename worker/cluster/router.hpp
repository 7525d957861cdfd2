// Router: what the client-facing front ends (TCP, HTTP) need to know about the cluster: whether
// this node leads, where the leader is (its external endpoints, from gossip), and a way to pass a
// client request to the leader over the internal transport. Thread-safe; any thread.
#pragma once

#include "worker/engine/engine.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace chorus::cluster {

class GossipService;
class Transport;

struct LeaderEndpoints {
  std::string node_id;  // the leader's instance id
  std::string external_tcp_ip;
  int external_tcp_port = 0;
  int external_secure_tcp_port = 0;
  std::string external_http_ip;
  int external_http_port = 0;
  std::string internal_http_ip;
  int internal_http_port = 0;
};

// A forwarded request's answer: the client protocol's reply command and message.
struct ForwardedReply {
  uint8_t command = 0;
  std::string payload;
};

class Router {
 public:
  // gossip and transport may be null (a single node: it always leads or is not ready).
  Router(Engine& engine, GossipService* gossip, Transport* transport);

  bool is_leader() const;
  // Leading, or following with (nearly) all of the leader's committed log (state Follower).
  bool caught_up() const;
  // The leader's endpoints, when this node follows a leader known to gossip.
  std::optional<LeaderEndpoints> leader() const;
  // Sends a client request (command byte + request message) to the leader, to be executed
  // there as `who`. `done` gets the reply, or nullopt when there is no leader or it did not
  // answer in time (the caller answers NotReady / ForwardTimeout).
  void forward(const Principal& who, uint8_t command, std::string payload,
               std::function<void(std::optional<ForwardedReply>)> done);
  // Appends events to a system stream (a scavenge's $scavenges records): here as `$system` when
  // this node leads, otherwise through the leader as `who` (the leader checks that user's rights,
  // as for any forwarded write). done(ok) on an engine or transport thread.
  void append_system_events(const Principal& who, std::string stream, std::vector<NewEvent> events,
                            std::function<void(bool ok)> done);

 private:
  Engine& engine_;
  GossipService* gossip_;
  Transport* transport_;
};

}  // namespace chorus::cluster
