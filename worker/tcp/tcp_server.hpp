// TcpServer: EventStore's external TCP client protocol on one listening endpoint (Boost.Asio).
// Accepts connections and runs one session per connection on the given io_context (the worker
// gives the engine's core io_context, so that a write is read, stepped and answered on one
// thread); sessions turn packages into Engine calls and replies. start() from the thread that
// owns the server, also while the io_context runs; stop() from any thread (also from a handler
// running on the io_context).
#pragma once

#include "common/histogram.hpp"
#include "common/options.hpp"
#include "worker/tcp/client_limits.hpp"
#include "worker/tcp/limits.hpp"
#include "worker/tcp/session.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace chorus {
class Engine;
}

namespace chorus::tcp {

class ClusterState;

struct TcpServerConfig {
  std::string ip = "127.0.0.1";
  uint16_t port = 1113;
  int heartbeat_interval_ms = 2000;       // EventStore's ExtTcpHeartbeatInterval
  int heartbeat_timeout_ms = 1000;        // EventStore's ExtTcpHeartbeatTimeout
  const ClusterState* cluster = nullptr;  // routing in a cluster; null for a single node
  // The connection limit (more are accepted and closed at once) and the partial-frame budget,
  // shared by a node's plain and secure servers. Null: the server makes its own with defaults.
  std::shared_ptr<ClientLimits> limits;
  int write_timeout_ms = kWriteTimeoutMs;          // a socket write must complete within this
  std::shared_ptr<boost::asio::ssl::context> tls;  // null: plain TCP; else the secure port
  // Shared by the plain and the secure server of one node so that /metrics counts both; null:
  // the server keeps its own.
  std::shared_ptr<TcpMetrics> metrics;
  // The io_context is run by exactly one thread (the worker's engine core thread): sessions use
  // its executor directly instead of a strand each. One thread already serializes their handlers,
  // and a strand behind Asio's type-erased socket executor cost a heap allocation per socket
  // operation (about 8 per client write on the leader's core thread).
  bool one_thread = false;
  // Where sessions decode large writes (SessionConfig::decode_executor); empty: on their own.
  boost::asio::any_io_executor decode_executor;
};

class TcpServer {
 public:
  TcpServer(boost::asio::io_context& io, Engine& engine, TcpServerConfig config);
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  // Binds and listens. Throws std::system_error with a clear message (e.g. address in use).
  void start();
  // Closes the acceptor and every session. Idempotent.
  void stop();
  uint16_t port() const;
  int connections() const;
  // Client requests dispatched (to the engine or the leader) and their durations until reply.
  int64_t requests() const;
  HistogramSnapshot request_durations() const;
  HistogramSnapshot write_durations() const;  // WriteEvents, dispatch to reply

 private:
  struct Impl;
  // Shared with pending accept handlers, which may complete after this object is gone.
  std::shared_ptr<Impl> impl_;
};

}  // namespace chorus::tcp
