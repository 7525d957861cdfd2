// Internal TCP transport implementation.
#include "worker/cluster/transport.hpp"

#include "common/framing.hpp"
#include "common/tls_stream.hpp"
#include "worker/cluster/append_frame.hpp"
#include "worker/cluster/message_check.hpp"
#include "worker/cluster/message_codec.hpp"
#include "worker/cluster/secret_handshake.hpp"

#include <google/protobuf/arena.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>

#include <sys/socket.h>

namespace chorus::cluster {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// The address part of a NodeId "ip:port", which the peer's certificate must name.
std::string endpoint_host(const std::string& id) { return id.substr(0, id.rfind(':')); }

std::optional<tcp::endpoint> parse_endpoint(const std::string& id) {
  const auto colon = id.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(id.substr(0, colon), ec);
  if (ec) return std::nullopt;
  try {
    const int port = std::stoi(id.substr(colon + 1));
    if (port <= 0 || port > 65535) return std::nullopt;
    return tcp::endpoint(address, static_cast<uint16_t>(port));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

struct Transport::Impl : std::enable_shared_from_this<Transport::Impl> {
  struct Peer {
    std::unique_ptr<tls::Stream> socket;
    bool connecting = false;
    bool writing = false;
    std::deque<OutFrame> queue;
    size_t queued_bytes = 0;
    Clock::time_point last_attempt{};
  };
  struct Incoming {
    tls::Stream socket;
    wire::FrameParser parser;
    std::array<char, 64 * 1024> buffer{};
    std::string peer_id;       // the node id it proved (with a cluster secret)
    std::string certified_id;  // the sender its TLS certificate was found to name
    std::string sender;        // the instance id whose messages it carried (the last admitted)
    int64_t append_epoch = 0;  // the epoch of the last Append admitted from `sender`; 0: none
    Clock::time_point progress_reported{};
    Incoming(tcp::socket s, std::shared_ptr<asio::ssl::context> tls)
        : socket(std::move(s), std::move(tls)) {}
  };
  struct PendingForward {
    std::function<void(std::optional<internal::ForwardReply>)> done;
    std::unique_ptr<asio::steady_timer> timer;
    std::string to;
  };

  Impl(asio::io_context& io_, std::string self, std::string cluster_, std::string ip,
       uint16_t port_, TransportHandlers h, TransportTls t)
      : io(io_),
        strand(asio::make_strand(io_)),
        acceptor(strand),
        self_id(std::move(self)),
        cluster(std::move(cluster_)),
        listen_ip(std::move(ip)),
        port(port_),
        handlers(std::move(h)),
        tls(std::move(t)) {}

  asio::io_context& io;
  asio::strand<asio::io_context::executor_type> strand;
  tcp::acceptor acceptor;
  std::string self_id;
  std::string cluster;
  std::string listen_ip;
  uint16_t port;
  TransportHandlers handlers;
  TransportTls tls;
  std::map<std::string, Peer> peers;
  std::set<std::shared_ptr<Incoming>> incoming;
  std::map<uint64_t, PendingForward> forwards;
  uint64_t next_forward_id = 1;
  std::atomic<bool> stopped{false};
  auth::Secret secret;        // set before start(); empty: no handshake
  std::string self_instance;  // set before start()
  // The voters: instance id -> internal TCP endpoint (any thread, under the mutex).
  std::mutex voters_mutex;
  std::map<std::string, std::string, std::less<>> voters;
  // send_now(): the descriptor of each idle outgoing connection (plain TCP, connected and
  // proven, nothing queued or being written), which another thread may write to under the
  // mutex. The strand removes it (under the mutex) before it writes to or closes the socket, and
  // writes first what a direct write left unsent (`unsent`).
  std::mutex idle_mutex;
  std::map<std::string, int> idle_fds;
  std::map<std::string, std::string> unsent;
  Clock::time_point refusals_minute{};
  int refusals_logged = 0;

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](
                                                     boost::system::error_code ec, tcp::socket s) {
      if (self->stopped) return;
      if (!ec) {
        asio::post(self->strand, [self, s = std::move(s)]() mutable {
          if (static_cast<int>(self->incoming.size()) >= kIncomingConnectionsMax) return;
          auto in = std::make_shared<Incoming>(std::move(s), self->tls.server);
          self->incoming.insert(in);
          self->handshake(in);
        });
      }
      self->accept();
    });
  }

  // Logs why a connection or message was refused, at most kRefusalLogsPerMinute a minute.
  void refuse(const std::string& reason) {
    const auto now = Clock::now();
    if (now - refusals_minute > std::chrono::minutes(1)) {
      refusals_minute = now;
      refusals_logged = 0;
    }
    if (refusals_logged++ < kRefusalLogsPerMinute && handlers.on_refused) {
      handlers.on_refused(reason);
    }
  }

  void close_incoming(const std::shared_ptr<Incoming>& in) {
    in->socket.close();
    incoming.erase(in);
  }

  // The TLS handshake of an incoming connection (at once when plain), within its deadline; a
  // peer without a certificate of a trusted root is dropped here.
  void handshake(const std::shared_ptr<Incoming>& in) {
    auto timer = std::make_shared<asio::steady_timer>(strand);
    timer->expires_after(std::chrono::milliseconds(kTlsHandshakeTimeoutMs));
    timer->async_wait([in](boost::system::error_code ec) {
      if (!ec) in->socket.close();
    });
    in->socket.async_handshake(tls::Stream::Role::kServer,
                               asio::bind_executor(strand, [self = shared_from_this(), in,
                                                            timer](boost::system::error_code ec) {
                                 timer->cancel();
                                 if (self->stopped) return self->close_incoming(in);
                                 if (ec) {
                                   self->refuse("internal TLS connection from " +
                                                self->remote_of(*in) + " refused: " + ec.message());
                                   return self->close_incoming(in);
                                 }
                                 self->authenticate(in);
                               }));
  }

  std::string remote_of(Incoming& in) {
    boost::system::error_code ec;
    const auto remote = in.socket.socket().remote_endpoint(ec);
    return ec ? "?" : remote.address().to_string();
  }

  // The cluster-secret handshake of an incoming connection (none without a secret), within its
  // deadline; then the connection is read.
  void authenticate(const std::shared_ptr<Incoming>& in) {
    if (secret.empty()) return read(in);
    const std::string from = remote_of(*in);
    auto timer = std::make_shared<asio::steady_timer>(strand);
    timer->expires_after(std::chrono::milliseconds(kAuthHandshakeTimeoutMs));
    timer->async_wait([in](boost::system::error_code e) {
      if (!e) in->socket.close();
    });
    async_accept_cluster_handshake(
        in->socket, strand, secret, cluster,
        [self = shared_from_this(), in, timer, from](std::string error, std::string peer) {
          asio::post(self->strand, [self, in, timer, from, error, peer] {
            timer->cancel();
            if (self->stopped) return;
            if (!error.empty()) {
              self->refuse("internal TCP connection from " + from + " refused: " + error);
              return self->close_incoming(in);
            }
            in->peer_id = peer;
            self->read(in);
          });
        });
  }

  void read(const std::shared_ptr<Incoming>& in) {
    in->socket.async_read_some(
        asio::buffer(in->buffer),
        asio::bind_executor(
            strand, [self = shared_from_this(), in](boost::system::error_code ec, size_t n) {
              if (ec || self->stopped) {
                self->incoming.erase(in);
                // A peer that died closes its connections at once: say so now, well before
                // its silence would time out.
                if (!self->stopped && !in->sender.empty() && self->handlers.on_peer_lost) {
                  self->handlers.on_peer_lost(in->sender);
                }
                return;
              }
              in->parser.feed(std::string_view(in->buffer.data(), n));
              while (auto f = in->parser.next_frame()) {
                if (!self->on_frame(*in, std::move(*f))) return self->close_incoming(in);
              }
              if (in->parser.invalid()) return self->close_incoming(in);
              if (in->parser.buffered_bytes() > 0) self->report_progress(*in);
              self->read(in);
            }));
  }

  // Part of a message arrived (the rest is still on its way): if the connection's last message
  // was its sender's Append, the sender is alive and sending, though the heartbeats behind this
  // message wait for all of it. Nothing else is taken from the partial bytes.
  void report_progress(Incoming& in) {
    if (in.sender.empty() || in.append_epoch == 0 || !handlers.on_leader_progress) return;
    const auto now = Clock::now();
    if (now - in.progress_reported < std::chrono::milliseconds(kProgressReportIntervalMs)) return;
    in.progress_reported = now;
    handlers.on_leader_progress(in.sender, in.append_epoch);
  }

  // A message's addressing, from either form of it (protobuf's, or an Append read from its
  // frame); it points into the message.
  struct Envelope {
    std::string_view from;
    std::string_view to;
    std::string_view cluster;
    std::string_view from_instance;
    std::string_view to_instance;
  };

  // False when the connection must be closed (it does not speak for a member of this cluster).
  // `problem`: check_message_fields's finding.
  bool admit(Incoming& in, const Envelope& m, const std::string& problem) {
    if (m.cluster != cluster || m.to != self_id) {
      refuse("internal message for cluster '" + std::string(m.cluster) + "' node " +
             std::string(m.to) + " refused");
      return false;
    }
    if (!problem.empty()) {
      refuse("internal message from " + std::string(m.from) + " refused: " + problem);
      return false;
    }
    if (!secret.empty() && m.from != in.peer_id) {
      refuse("internal message claiming to be from " + std::string(m.from) +
             " on the connection of " + in.peer_id + " refused");
      return false;
    }
    // Under mutual TLS the sender's address must be one its certificate names (checked once per
    // connection and sender), so a member cannot speak for another.
    if (in.socket.secure() && m.from != in.certified_id) {
      const std::string from(m.from);
      if (!in.socket.peer_certificate_names(endpoint_host(from))) {
        refuse("internal message from " + from + " on a connection from " + remote_of(in) +
               " refused: the peer's certificate does not name " + endpoint_host(from));
        return false;
      }
      in.certified_id = from;
    }
    return true;
  }

  // False when an admitted message is dropped (the connection kept): its sender is not a voter
  // pinned to its endpoint, or it is meant for another instance of this node.
  bool addressed_here(Incoming& in, const Envelope& m) {
    if (!voter_at(m.from_instance, m.from)) {
      // Not a voter pinned to that endpoint (or one gossip has not told us of yet): dropped, and
      // the connection kept. It never reaches the core, so it never counts.
      refuse("internal message from node " + std::string(m.from_instance) + " at " +
             std::string(m.from) + ", not a voter of this cluster, refused");
      return false;
    }
    if (m.to_instance != self_instance) {
      refuse("internal message from " + std::string(m.from) + " for instance " +
             std::string(m.to_instance) + " refused: this node is instance " + self_instance);
      return false;
    }
    if (in.sender != m.from_instance) {
      in.sender = std::string(m.from_instance);
      in.append_epoch = 0;
    }
    return true;
  }

  std::optional<std::string> endpoint_of(const std::string& instance_id) {
    std::lock_guard lock(voters_mutex);
    const auto it = voters.find(instance_id);
    if (it == voters.end()) return std::nullopt;
    return it->second;
  }

  bool voter_at(std::string_view instance_id, std::string_view endpoint) {
    std::lock_guard lock(voters_mutex);
    const auto it = voters.find(instance_id);
    return it != voters.end() && it->second == endpoint;
  }

  bool on_frame(Incoming& in, std::string bytes) {
    // An Append, most of the traffic, is read straight from its frame: its entries' payloads
    // stay slices of it (no copy each, no protobuf message or arena).
    const auto frame = std::make_shared<const std::string>(std::move(bytes));
    if (auto append = read_append_frame(frame)) {
      const Envelope e{append->from, append->to, append->cluster, append->from_instance,
                       append->to_instance};
      if (!admit(in, e, check_message_fields(*append))) return false;
      if (!addressed_here(in, e)) return true;
      in.append_epoch = append->append.epoch;
      if (handlers.on_message) {
        handlers.on_message(replication::Message{
            std::string(e.from_instance), std::string(e.to_instance), std::move(append->append)});
      }
      return true;
    }
    // Other messages (and an Append in another shape) are parsed on an arena sized for the
    // frame's objects: the message's entries and string objects take no allocation each (the
    // strings' bytes are allocated apart and move out to the core). The payloads do not stay in
    // the arena: the core keeps 8 MiB of recent entries, and their arenas kept beside them cost a
    // follower ~4 MiB more resident memory under load.
    google::protobuf::ArenaOptions options;
    options.start_block_size = std::min(frame->size() / 2 + 512, kArenaBlockBytesMax);
    options.max_block_size = kArenaBlockBytesMax;
    google::protobuf::Arena arena(options);
    auto& m = *google::protobuf::Arena::CreateMessage<internal::ReplicationMessage>(&arena);
    if (!m.ParseFromString(*frame)) {
      refuse("unreadable internal message refused");
      return false;
    }
    const Envelope e{m.from(), m.to(), m.cluster(), m.from_instance(), m.to_instance()};
    if (!admit(in, e, check_message_fields(m))) return false;
    if (!addressed_here(in, e)) return true;
    // A forwarded write's reply may come between a leader's Appends; any other message means
    // the sender is not (or no longer) sending Appends here.
    if (m.has_append()) {
      in.append_epoch = m.append().epoch();
    } else if (!m.has_forward_reply()) {
      in.append_epoch = 0;
    }
    dispatch(m);
    return true;
  }

  void dispatch(internal::ReplicationMessage& m) {
    if (m.has_forward()) {
      if (!handlers.on_forward) return;
      const std::string from = m.from();
      const std::string from_instance = m.from_instance();
      handlers.on_forward(
          m.forward(), [self = shared_from_this(), from, from_instance](internal::ForwardReply r) {
            asio::post(self->strand, [self, from, from_instance, r = std::move(r)] {
              internal::ReplicationMessage out;
              out.set_from(self->self_id);
              out.set_to(from);
              out.set_cluster(self->cluster);
              out.set_from_instance(self->self_instance);
              out.set_to_instance(from_instance);
              *out.mutable_forward_reply() = r;
              self->enqueue(from, frame(out));
            });
          });
      return;
    }
    if (m.has_forward_reply()) {
      auto it = forwards.find(m.forward_reply().request_id());
      if (it == forwards.end() || it->second.to != m.from()) return;
      auto pending = std::move(it->second);
      forwards.erase(it);
      pending.timer->cancel();
      pending.done(m.forward_reply());
      return;
    }
    if (auto message = take_from_proto(m); message && handlers.on_message) {
      handlers.on_message(std::move(*message));
    }
  }

  void enqueue(const std::string& to, OutFrame bytes) {
    if (stopped) return;
    auto& peer = peers[to];
    if (peer.queued_bytes + bytes.size > kPeerQueueBytesMax) return;
    peer.queued_bytes += bytes.size;
    peer.queue.push_back(std::move(bytes));
    if (peer.socket && !peer.connecting) {
      flush(to);
    } else if (!peer.connecting) {
      connect(to);
    }
  }

  void connect(const std::string& to) {
    auto& peer = peers[to];
    const auto now = Clock::now();
    if (now - peer.last_attempt < std::chrono::milliseconds(kReconnectDelayMs)) {
      // Too soon after a failure: keep only what is queued until the next message retries.
      return;
    }
    const auto endpoint = parse_endpoint(to);
    if (!endpoint) {
      peer.queue.clear();
      peer.queued_bytes = 0;
      return;
    }
    peer.last_attempt = now;
    peer.connecting = true;
    peer.socket = std::make_unique<tls::Stream>(strand, tls.client);
    auto timer = std::make_shared<asio::steady_timer>(strand);
    timer->expires_after(std::chrono::milliseconds(kConnectTimeoutMs));
    auto* socket = peer.socket.get();
    timer->async_wait([socket, self = shared_from_this(), to](boost::system::error_code ec) {
      if (ec) return;
      auto it = self->peers.find(to);
      if (it != self->peers.end() && it->second.socket.get() == socket && it->second.connecting) {
        socket->close();
      }
    });
    // The timer bounds the connect and the TLS handshake together.
    socket->socket().async_connect(
        *endpoint, [self = shared_from_this(), to, socket, timer](boost::system::error_code ec) {
          auto it = self->peers.find(to);
          if (it == self->peers.end() || it->second.socket.get() != socket) return;
          if (ec || self->stopped) {
            timer->cancel();
            self->drop(to);
            return;
          }
          boost::system::error_code ignored;
          socket->socket().set_option(tcp::no_delay(true), ignored);
          if (!socket->expect_peer_name(endpoint_host(to))) {
            timer->cancel();
            self->drop(to);  // fail closed: a handshake that does not check the name is refused
            return;
          }
          socket->async_handshake(tls::Stream::Role::kClient,
                                  [self, to, socket, timer](boost::system::error_code error) {
                                    self->on_connected(to, socket, *timer, error);
                                  });
        });
  }

  void on_connected(const std::string& to, tls::Stream* socket, asio::steady_timer& timer,
                    boost::system::error_code ec) {
    timer.cancel();
    auto it = peers.find(to);
    if (it == peers.end() || it->second.socket.get() != socket) return;
    if (ec || stopped) {
      if (ec && socket->secure()) refuse("TLS handshake with " + to + " failed: " + ec.message());
      return drop(to);
    }
    prove(to, socket);
  }

  // The cluster-secret handshake of an outgoing connection (none without a secret); queued
  // messages are sent once it succeeds.
  void prove(const std::string& to, tls::Stream* socket) {
    if (secret.empty()) {
      peers[to].connecting = false;
      return flush(to);
    }
    auto timer = std::make_shared<asio::steady_timer>(strand);
    timer->expires_after(std::chrono::milliseconds(kAuthHandshakeTimeoutMs));
    timer->async_wait([socket, self = shared_from_this(), to](boost::system::error_code e) {
      if (e) return;
      auto it = self->peers.find(to);
      // Only while the handshake runs: a proven connection may be idle (send_now writes to it).
      if (it != self->peers.end() && it->second.socket.get() == socket && it->second.connecting) {
        socket->close();
      }
    });
    async_connect_cluster_handshake(
        *socket, strand, secret, cluster, self_id,
        [self = shared_from_this(), to, socket, timer](std::string error, std::string) {
          asio::post(self->strand, [self, to, socket, timer, error] {
            timer->cancel();
            auto it = self->peers.find(to);
            if (it == self->peers.end() || it->second.socket.get() != socket) return;
            if (!error.empty() || self->stopped) {
              if (!error.empty()) self->refuse("internal TCP connection to " + to + ": " + error);
              return self->drop(to);
            }
            it->second.connecting = false;
            self->flush(to);
          });
        });
  }

  void drop(const std::string& to) {
    // Requests passed to that node will not be answered: fail them now, so clients retry on the
    // next leader at once instead of after the forward timeout.
    for (auto it = forwards.begin(); it != forwards.end();) {
      if (it->second.to != to) {
        ++it;
        continue;
      }
      auto pending = std::move(it->second);
      it = forwards.erase(it);
      pending.timer->cancel();
      pending.done(std::nullopt);
    }
    auto& p = peers[to];
    {
      std::lock_guard lock(idle_mutex);
      idle_fds.erase(to);
      unsent.erase(to);
    }
    if (p.socket) p.socket->close();
    p.socket.reset();
    p.connecting = false;
    p.writing = false;
    p.queue.clear();
    p.queued_bytes = 0;
  }

  void flush(const std::string& to) {
    auto& p = peers[to];
    if (p.writing || p.connecting || !p.socket) return;
    {
      std::lock_guard lock(idle_mutex);
      idle_fds.erase(to);  // from here on only the strand writes to this socket
      if (auto it = unsent.find(to); it != unsent.end()) {
        p.queued_bytes += it->second.size();
        p.queue.push_front(OutFrame(std::move(it->second)));
        unsent.erase(it);
      }
    }
    if (p.queue.empty()) {
      if (!p.socket->secure() && !stopped) {
        std::lock_guard lock(idle_mutex);
        idle_fds[to] = p.socket->socket().native_handle();
      }
      return;
    }
    p.writing = true;
    auto* socket = p.socket.get();
    auto written = [self = shared_from_this(), to, socket](boost::system::error_code ec) {
      auto it = self->peers.find(to);
      if (it == self->peers.end() || it->second.socket.get() != socket) return;
      it->second.writing = false;
      if (ec) {
        self->drop(to);
        return;
      }
      self->flush(to);
    };
    if (p.queue.front().parts.empty()) {
      // Gather what is queued into one write (the first frame moves in, the others are
      // appended), up to a frame with parts, which goes in a write of its own.
      auto buffer = std::make_shared<std::string>(std::move(p.queue.front().bytes));
      p.queued_bytes -= buffer->size();
      p.queue.pop_front();
      while (!p.queue.empty() && p.queue.front().parts.empty() && buffer->size() < (1u << 20)) {
        *buffer += p.queue.front().bytes;
        p.queued_bytes -= p.queue.front().size;
        p.queue.pop_front();
      }
      asio::async_write(*socket, asio::buffer(*buffer),
                        [buffer, written = std::move(written)](boost::system::error_code ec,
                                                               size_t) { written(ec); });
      return;
    }
    // A large Append as a gather list: its owned parts and its payloads' large parts in place.
    auto frame = std::make_shared<OutFrame>(std::move(p.queue.front()));
    p.queued_bytes -= frame->size;
    p.queue.pop_front();
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(frame->parts.size());
    for (const auto& part : frame->parts) buffers.push_back(asio::buffer(frame->part(part)));
    asio::async_write(*socket, buffers,
                      [frame, written = std::move(written)](boost::system::error_code ec, size_t) {
                        written(ec);
                      });
  }

  void stop_all() {
    stopped = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    {
      std::lock_guard lock(idle_mutex);
      idle_fds.clear();
    }
    for (auto& [id, p] : peers) {
      if (p.socket) p.socket->close();
    }
    for (const auto& in : incoming) in->socket.close();
    incoming.clear();
    for (auto& [id, f] : forwards) {
      f.timer->cancel();
      f.done(std::nullopt);
    }
    forwards.clear();
  }
};

Transport::Transport(boost::asio::io_context& io, std::string self_id, std::string cluster,
                     std::string listen_ip, uint16_t port, TransportHandlers handlers,
                     TransportTls tls)
    : impl_(std::make_shared<Impl>(io, std::move(self_id), std::move(cluster), std::move(listen_ip),
                                   port, std::move(handlers), std::move(tls))) {}

Transport::~Transport() { stop(); }

void Transport::require_secret(auth::Secret secret) { impl_->secret = std::move(secret); }

void Transport::set_instance_id(std::string instance_id) {
  impl_->self_instance = std::move(instance_id);
}

void Transport::set_voters(const std::vector<Voter>& voters) {
  std::map<std::string, std::string, std::less<>> by_id;
  for (const Voter& v : voters) by_id[v.instance_id] = v.endpoint;
  std::lock_guard lock(impl_->voters_mutex);
  impl_->voters = std::move(by_id);
}

void Transport::start() {
  const auto address = asio::ip::make_address(impl_->listen_ip);
  const tcp::endpoint endpoint(address, impl_->port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  impl_->accept();
}

void Transport::stop() {
  if (impl_->stopped.exchange(true)) return;
  if (impl_->io.stopped()) {
    // Nothing runs the io_context any more (the engine stopped its core thread): stop here.
    impl_->stop_all();
    return;
  }
  std::promise<void> done;
  asio::post(impl_->strand, [impl = impl_, &done] {
    impl->stop_all();
    done.set_value();
  });
  // The io_context may already be stopped at shutdown; do not wait for ever.
  done.get_future().wait_for(std::chrono::seconds(2));
}

void Transport::send(replication::Message message) {
  // The core sends only to voters; one just removed from the set is no longer addressed.
  auto endpoint = impl_->endpoint_of(message.to);
  if (!endpoint) return;
  // A large Append refers to its entries' bytes in place: no copy per follower on this thread.
  auto bytes = encode_out_frame(std::move(message), impl_->cluster, impl_->self_id, *endpoint);
  // Inline when called from a message handler (the core answering what it just read).
  asio::dispatch(impl_->strand,
                 [impl = impl_, to = std::move(*endpoint), bytes = std::move(bytes)]() mutable {
                   impl->enqueue(to, std::move(bytes));
                 });
}

void Transport::send_now(replication::Message message) {
  auto endpoint = impl_->endpoint_of(message.to);
  if (!endpoint) return;
  bool idle = false;
  {
    std::lock_guard lock(impl_->idle_mutex);
    idle = impl_->idle_fds.contains(*endpoint);
  }
  // Busy, connecting, TLS or not connected: the strand sends it. Not under the mutex: called
  // on the thread that runs the strand, send() runs the strand's write inline, which takes it.
  if (!idle) return send(std::move(message));
  auto bytes = encode_frame(std::move(message), impl_->cluster, impl_->self_id, *endpoint);
  std::lock_guard lock(impl_->idle_mutex);
  const auto it = impl_->idle_fds.find(*endpoint);
  ssize_t n = -1;
  if (it != impl_->idle_fds.end()) {
    n = ::send(it->second, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(bytes.size())) return;
    impl_->idle_fds.erase(it);  // the strand takes over (and sees an error for itself)
  }
  // No longer idle, or the write went out in part or not at all: the rest goes first when the
  // strand next writes to this peer.
  const size_t sent = n > 0 ? static_cast<size_t>(n) : 0;
  impl_->unsent[*endpoint] += bytes.substr(sent);
  asio::post(impl_->strand, [impl = impl_, to = *endpoint] {
    if (!impl->stopped) impl->flush(to);
  });
}

void Transport::forward(const std::string& to_instance, internal::Forward request,
                        std::function<void(std::optional<internal::ForwardReply>)> done) {
  auto endpoint = impl_->endpoint_of(to_instance);
  if (!endpoint) return done(std::nullopt);  // the leader is not a voter here (yet)
  asio::post(impl_->strand, [impl = impl_, to = std::move(*endpoint), to_instance,
                             request = std::move(request), done = std::move(done)]() mutable {
    if (impl->stopped) return done(std::nullopt);
    const uint64_t id = impl->next_forward_id++;
    request.set_request_id(id);
    auto timer = std::make_unique<asio::steady_timer>(impl->strand);
    timer->expires_after(std::chrono::milliseconds(kForwardTimeoutMs));
    timer->async_wait([impl, id](boost::system::error_code ec) {
      if (ec) return;
      auto it = impl->forwards.find(id);
      if (it == impl->forwards.end()) return;
      auto pending = std::move(it->second);
      impl->forwards.erase(it);
      pending.done(std::nullopt);
    });
    impl->forwards.emplace(id, Impl::PendingForward{std::move(done), std::move(timer), to});
    internal::ReplicationMessage m;
    m.set_from(impl->self_id);
    m.set_to(to);
    m.set_cluster(impl->cluster);
    m.set_from_instance(impl->self_instance);
    m.set_to_instance(to_instance);
    *m.mutable_forward() = std::move(request);
    impl->enqueue(to, frame(m));
  });
}

}  // namespace chorus::cluster
