// Settings of a Chorus client: where to find the cluster (a node's TCP endpoint, gossip seeds or a
// DNS name), credentials, and every limit of the retry and reconnection machinery. The defaults
// are those of EventStore's official clients (PROTOCOL.md A7), so a Chorus client behaves towards
// a cluster as they do. Plain data; any thread.
#pragma once

#include <chorus/types.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::client {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

// "host:port" (or "host" with `default_port`); nullopt with `error` set when it does not parse.
std::optional<Endpoint> parse_endpoint(std::string_view text, uint16_t default_port,
                                       std::string* error);
std::string to_string(const Endpoint& endpoint);

// Which node discovery picks (the official clients' NodePreference).
enum class NodePreference { Leader, Follower, Random };

struct Settings {
  // Where the cluster is, in this order of precedence: a node's external TCP endpoint (no
  // gossip), gossip seeds (managers' or nodes' HTTP endpoints), or a DNS name whose A records
  // are gossip seeds on `gossip_port`.
  std::optional<Endpoint> tcp_endpoint;
  std::vector<Endpoint> gossip_seeds;
  std::string cluster_dns;
  uint16_t gossip_port = 2113;
  NodePreference node_preference = NodePreference::Leader;

  // Sent with Authenticate when connecting; requests then run as this user.
  std::optional<Credentials> credentials;
  std::string connection_name = "chorus-client";
  // Copied into reads and writes: a follower then answers NotHandled(NotLeader) and the client
  // reconnects to the leader (writes with false are forwarded by the follower instead).
  bool require_leader = true;

  // Operations waiting or in flight; one more is refused with QueueFull.
  int max_queue_size = 5000;
  // Operations in flight on the connection at once; the rest wait in the queue.
  int max_concurrent_items = 5000;
  // Resends of one operation (timeouts, NotReady, TooBusy, lost connections); -1: no limit.
  int max_retries = 10;
  // Connection attempts in a row without reaching a node; then the client closes. -1: no limit.
  int max_reconnections = 10;
  int reconnection_delay_ms = 100;
  // An operation unanswered this long is resent (same body, new correlation id).
  int operation_timeout_ms = 7000;
  int operation_timeout_check_period_ms = 1000;
  // Nothing received for the interval: send a heartbeat; then nothing for the timeout: reconnect.
  int heartbeat_interval_ms = 750;
  int heartbeat_timeout_ms = 1500;
  // TCP connect plus Authenticate and IdentifyClient must finish within this.
  int connect_timeout_ms = 1000;
  // Discovery rounds over the seeds (each seed asked with gossip_timeout_ms), discover_delay_ms
  // apart, before a connection attempt counts as failed.
  int max_discover_attempts = 10;
  int discover_delay_ms = 500;
  int gossip_timeout_ms = 1000;

  // Diagnostics (connects, reconnects, discovery choices); called on the client's thread.
  std::function<void(const std::string&)> log;
};

}  // namespace chorus::client
