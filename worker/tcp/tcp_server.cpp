// TcpServer: the acceptor, the registry of live sessions and the connection limit, counted in the
// ClientLimits the node's servers share (refusals are logged at most once per
// kRefusalLogIntervalMs, with a count).
// Each accepted socket gets its own strand (none with one_thread); the registry is shared with the
// sessions (they unregister themselves when they close, possibly after the server object is gone),
// so it lives in a shared_ptr and is guarded by a mutex.
#include "worker/tcp/tcp_server.hpp"

#include "worker/tcp/limits.hpp"
#include "worker/tcp/session.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <system_error>

namespace chorus::tcp {
namespace {

struct SessionRegistry {
  std::mutex mutex;
  uint64_t next_id = 1;
  std::map<uint64_t, std::weak_ptr<Session>> sessions;  // GUARDED_BY(mutex)
};

}  // namespace

struct TcpServer::Impl : std::enable_shared_from_this<TcpServer::Impl> {
  Impl(boost::asio::io_context& io_context, Engine& engine_ref, TcpServerConfig server_config)
      : io(io_context),
        engine(engine_ref),
        config(std::move(server_config)),
        limits(config.limits ? config.limits : std::make_shared<ClientLimits>()),
        metrics(config.metrics ? config.metrics : std::make_shared<TcpMetrics>()),
        acceptor(boost::asio::make_strand(io)),
        retry_timer(acceptor.get_executor()) {}

  void accept_next();
  void on_accept(const boost::system::error_code& error, boost::asio::ip::tcp::socket socket);
  void refuse(boost::asio::ip::tcp::socket& socket, size_t open);

  boost::asio::io_context& io;
  Engine& engine;
  TcpServerConfig config;
  std::shared_ptr<ClientLimits> limits;
  std::shared_ptr<TcpMetrics> metrics;
  boost::asio::ip::tcp::acceptor acceptor;  // on its own strand; stop() dispatches to it
  boost::asio::steady_timer retry_timer;    // pause after a failed accept
  std::shared_ptr<SessionRegistry> registry = std::make_shared<SessionRegistry>();
  uint16_t bound_port = 0;
  std::atomic<bool> stopped{false};
  // Refusals at connections_max not logged yet, and when the last line was (acceptor strand).
  uint64_t refusals_unlogged = 0;
  std::chrono::steady_clock::time_point refusal_logged_at{};
};

void TcpServer::Impl::accept_next() {
  const auto executor = config.one_thread
                            ? boost::asio::any_io_executor(io.get_executor())
                            : boost::asio::any_io_executor(boost::asio::make_strand(io));
  acceptor.async_accept(executor,
                        [self = shared_from_this()](const boost::system::error_code& error,
                                                    boost::asio::ip::tcp::socket socket) {
                          self->on_accept(error, std::move(socket));
                        });
}

void TcpServer::Impl::on_accept(const boost::system::error_code& error,
                                boost::asio::ip::tcp::socket socket) {
  if (error == boost::asio::error::operation_aborted || stopped) return;
  if (error) {
    // Running out of file descriptors and similar: transient; retry after a pause instead of
    // spinning on the failing accept.
    std::fprintf(stderr, "tcp: accept failed: %s\n", error.message().c_str());
    retry_timer.expires_after(std::chrono::milliseconds(kAcceptRetryDelayMs));
    retry_timer.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
      if (!e && !self->stopped) self->accept_next();
    });
    return;
  }
  if (!limits->try_open()) {
    refuse(socket, static_cast<size_t>(limits->connections()));
    accept_next();
    return;
  }
  std::shared_ptr<SessionRegistry> reg = registry;
  std::unique_lock lock(reg->mutex);
  const uint64_t id = reg->next_id++;
  SessionConfig session_config;
  session_config.heartbeat_interval_ms = config.heartbeat_interval_ms;
  session_config.heartbeat_timeout_ms = config.heartbeat_timeout_ms;
  session_config.cluster = config.cluster;
  session_config.metrics = metrics;
  session_config.limits = limits;
  session_config.write_timeout_ms = config.write_timeout_ms;
  session_config.tls = config.tls;
  session_config.decode_executor = config.decode_executor;
  auto session = std::make_shared<Session>(std::move(socket), engine, session_config,
                                           [reg, id, node_limits = limits] {
                                             {
                                               std::lock_guard guard(reg->mutex);
                                               reg->sessions.erase(id);
                                             }
                                             node_limits->release();
                                           });
  reg->sessions.emplace(id, session);
  lock.unlock();
  session->start();
  accept_next();
}

// Closes a connection accepted beyond the node's connection limit (both ports count). Logged with a
// count, at most once per kRefusalLogIntervalMs: refusing costs the peer nothing, so every refusal
// may be a flood.
void TcpServer::Impl::refuse(boost::asio::ip::tcp::socket& socket, size_t open) {
  boost::system::error_code peer_error;
  const auto peer = socket.remote_endpoint(peer_error);
  boost::system::error_code ignored;
  socket.close(ignored);
  ++refusals_unlogged;
  const auto now = std::chrono::steady_clock::now();
  if (refusal_logged_at != std::chrono::steady_clock::time_point{} &&
      now - refusal_logged_at < std::chrono::milliseconds(kRefusalLogIntervalMs)) {
    return;
  }
  std::fprintf(stderr,
               "tcp: refused a connection from %s: %zu connections are open on the node's "
               "external TCP ports, the limit (ExtTcpConnectionsMax); %llu refused since the "
               "last such line\n",
               peer_error ? "an unknown peer" : peer.address().to_string().c_str(), open,
               static_cast<unsigned long long>(refusals_unlogged));
  refusals_unlogged = 0;
  refusal_logged_at = now;
}

TcpServer::TcpServer(boost::asio::io_context& io, Engine& engine, TcpServerConfig config)
    : impl_(std::make_shared<Impl>(io, engine, std::move(config))) {}

TcpServer::~TcpServer() { stop(); }

void TcpServer::start() {
  using boost::asio::ip::tcp;
  boost::system::error_code error;
  const auto address = boost::asio::ip::make_address(impl_->config.ip, error);
  if (error) {
    throw std::system_error(error, "invalid external TCP address '" + impl_->config.ip + "'");
  }
  const tcp::endpoint endpoint(address, impl_->config.port);
  const std::string where = impl_->config.ip + ":" + std::to_string(impl_->config.port);
  const std::string what = impl_->config.tls ? "external secure TCP " : "external TCP ";
  impl_->acceptor.open(endpoint.protocol(), error);
  if (!error) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) impl_->acceptor.bind(endpoint, error);
  if (error) {
    throw std::system_error(error, "cannot listen on " + what + where);
  }
  impl_->acceptor.listen(boost::asio::socket_base::max_listen_connections, error);
  if (error) {
    throw std::system_error(error, "cannot listen on " + what + where);
  }
  impl_->bound_port = impl_->acceptor.local_endpoint().port();
  // The io_context may already run (the engine's core thread): accept on the acceptor's strand.
  boost::asio::dispatch(impl_->acceptor.get_executor(), [impl = impl_] { impl->accept_next(); });
}

void TcpServer::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  // The acceptor is not thread-safe: close it on its strand (at once when already there).
  boost::asio::dispatch(impl_->acceptor.get_executor(), [impl = impl_] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    impl->retry_timer.cancel();
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard guard(impl_->registry->mutex);
    for (auto& [id, weak] : impl_->registry->sessions) {
      if (std::shared_ptr<Session> session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (const std::shared_ptr<Session>& session : live) session->close();
}

uint16_t TcpServer::port() const { return impl_->bound_port; }

int64_t TcpServer::requests() const { return impl_->metrics->requests.load(); }

HistogramSnapshot TcpServer::request_durations() const {
  return impl_->metrics->request_duration_seconds.snapshot();
}

HistogramSnapshot TcpServer::write_durations() const {
  return impl_->metrics->write_duration_seconds.snapshot();
}

int TcpServer::connections() const {
  std::lock_guard guard(impl_->registry->mutex);
  return static_cast<int>(impl_->registry->sessions.size());
}

}  // namespace chorus::tcp
