// Transport: replication messages and forwarded client requests between nodes over the internal
// TCP port (Boost.Asio), over mutual TLS when certificates are configured (tls::Stream carries
// the bytes either way). One outgoing connection per peer (its internal TCP "ip:port"; the core
// names peers by instance id, mapped through the voter set), reconnected on demand; incoming
// connections only receive. Refused: messages of another cluster, from a sender that is not a
// voter pinned to its endpoint (or not the endpoint its connection proved: by the cluster
// secret, or by a certificate naming the sender's IP), for another instance of this node, or
// with a field out of range. Loss is tolerated by the replication core, so a full peer queue
// drops messages instead of growing. send()/forward() from any thread; handlers on the strand
// of the io_context given, which the worker also gives the engine's core thread (see
// EngineConfig::core_io): replication I/O then costs no hop between threads.
#pragma once

#include "common/cluster_auth.hpp"
#include "replication.pb.h"
#include "worker/cluster/voter_set.hpp"
#include "worker/engine/engine.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace chorus::cluster {

// Limits (one place, with their reasons).
// Bytes queued for one peer; beyond it new messages are dropped (the core resends). Far above
// the leader's in-flight window, so that a follower's resyncs cannot fill it with Appends.
inline constexpr size_t kPeerQueueBytesMax = 256u << 20;
// A peer that cannot be reached is tried again after this long.
inline constexpr int kReconnectDelayMs = 200;
inline constexpr int kConnectTimeoutMs = 1000;
// Incoming connections accepted at once (peers, and their reconnects).
inline constexpr int kIncomingConnectionsMax = 256;
// Refusals written to the log per minute: enough to see an attack, not enough to fill the disk.
inline constexpr int kRefusalLogsPerMinute = 20;
// A peer must finish the TLS handshake of an incoming connection in this time.
inline constexpr int kTlsHandshakeTimeoutMs = 2000;
// A forwarded client request not answered by the leader in this time fails (ForwardTimeout).
inline constexpr int kForwardTimeoutMs = 7000;
// The largest block of the arena an incoming message is parsed on.
inline constexpr size_t kArenaBlockBytesMax = 64u << 10;
// A large message being received is reported as a sign of life (on_leader_progress) at most this
// often per connection: the core counts time in ticks of 10 ms, so more often tells it nothing.
inline constexpr int kProgressReportIntervalMs = 10;

struct TransportHandlers {
  std::function<void(replication::Message)> on_message;
  // A client request forwarded by a follower; call reply once with the answer.
  std::function<void(const internal::Forward&, std::function<void(internal::ForwardReply)>)>
      on_forward;
  // A connection or message refused (failed handshake, unknown sender, field out of range):
  // the reason, for the log.
  std::function<void(const std::string&)> on_refused;
  // An incoming connection that carried a member's messages closed: the instance id it spoke
  // for (the replication core knows members by it).
  std::function<void(const std::string&)> on_peer_lost;
  // Bytes of a message not yet complete arrived on a connection whose last message was an
  // Append of `epoch` from instance `sender` (admitted as every message is: only a voter, over
  // the connection its handshake proved). Heartbeats behind a large Append cannot overtake it;
  // these bytes say that its sender is alive and sending (Core::leader_progress).
  std::function<void(const std::string& sender, int64_t epoch)> on_leader_progress;
};

// Mutual TLS on every internal connection (both null: plain TCP). The server context must
// require a client certificate; the client context verifies the peer's certificate, which must
// name the peer's internal IP.
struct TransportTls {
  std::shared_ptr<boost::asio::ssl::context> server;
  std::shared_ptr<boost::asio::ssl::context> client;
};

class Transport final : public ReplicationTransport {
 public:
  Transport(boost::asio::io_context& io, std::string self_id, std::string cluster,
            std::string listen_ip, uint16_t port, TransportHandlers handlers,
            TransportTls tls = {});
  ~Transport() override;

  // With a secret (call before start()), every connection in either direction opens with the
  // cluster-secret handshake, and an incoming connection carries messages only from the node id
  // it proved.
  void require_secret(auth::Secret secret);
  // This node's instance id (call before start()): messages for another one are refused.
  void set_instance_id(std::string instance_id);
  // The other voters (worker/cluster/voter_set.hpp): the only nodes sent to, and the only
  // senders heard, each from its pinned endpoint. Any thread.
  void set_voters(const std::vector<Voter>& voters);
  // Binds and listens. Throws std::system_error (e.g. address in use).
  void start();
  void stop();

  void send(replication::Message message) override;
  // Plain TCP only: when nothing is queued or being written to the peer, the calling thread
  // writes the frame itself (non-blocking; what does not fit goes through the strand, in order).
  void send_now(replication::Message message) override;
  // Sends a client request to the leader (by instance id); `done` gets its reply, or nullopt on
  // timeout/failure.
  void forward(const std::string& to_instance, internal::Forward request,
               std::function<void(std::optional<internal::ForwardReply>)> done);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace chorus::cluster
