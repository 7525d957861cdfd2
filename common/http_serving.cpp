// ConnectionWatch and WatchedHttpServer; see http_serving.hpp. The watcher wakes at the earliest
// deadline (every kWatchTickMs while all request threads are busy), shuts down the sockets past
// their deadline (the kernel socket only: an SSL shutdown from this thread would race the
// connection thread's SSL calls), logs each cut and the refusals.
#include "common/http_serving.hpp"

#include "common/thread_name.hpp"

#include <Poco/Net/HTTPServerConnection.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Runnable.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace chorus::http {
namespace {

// The connection the calling (Poco connection) thread serves.
struct Current {
  ConnectionWatch* watch = nullptr;
  uint64_t id = 0;
};
thread_local Current current;

}  // namespace

ConnectionWatch::ConnectionWatch(int io_deadline_ms, std::string what)
    : io_deadline_(io_deadline_ms), what_(std::move(what)), thread_([this] { run(); }) {}

ConnectionWatch::~ConnectionWatch() {
  {
    std::lock_guard guard(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

ConnectionWatch::Scope::Scope(ConnectionWatch& watch, const Poco::Net::StreamSocket& socket)
    : watch_(watch), id_(watch.add(socket)) {
  current = {&watch_, id_};
}

ConnectionWatch::Scope::~Scope() {
  current = {};
  watch_.remove(id_);
}

void ConnectionWatch::engine_phase() {
  if (current.watch != nullptr) current.watch->set_deadline(current.id, false);
}

void ConnectionWatch::io_phase() {
  if (current.watch != nullptr) current.watch->set_deadline(current.id, true);
}

int64_t ConnectionWatch::cut() const {
  std::lock_guard guard(mutex_);
  return cut_;
}

uint64_t ConnectionWatch::add(const Poco::Net::StreamSocket& socket) {
  std::string peer = "an unknown peer";
  try {
    peer = socket.peerAddress().toString();
  } catch (const Poco::Exception&) {
    // Already reset by the peer: it is cut or ends on its first read anyway.
  }
  std::lock_guard guard(mutex_);
  const uint64_t id = next_id_++;
  entries_.emplace(id, Entry{socket, Clock::now() + io_deadline_, std::move(peer)});
  // A new deadline is never earlier than the one the watcher sleeps towards; only a server that
  // just became full (refusals possible) needs it awake.
  if (refusal_threads_ > 0 && entries_.size() == refusal_threads_) wake_.notify_all();
  return id;
}

void ConnectionWatch::remove(uint64_t id) {
  std::lock_guard guard(mutex_);
  entries_.erase(id);
}

void ConnectionWatch::set_deadline(uint64_t id, bool watched) {
  std::lock_guard guard(mutex_);
  const auto entry = entries_.find(id);
  if (entry == entries_.end()) return;
  entry->second.deadline =
      watched ? std::optional<Clock::time_point>(Clock::now() + io_deadline_) : std::nullopt;
}

void ConnectionWatch::watch_refusals(std::function<int()> refused, int held, int threads) {
  std::lock_guard guard(mutex_);
  refused_ = std::move(refused);
  refusal_held_ = held;
  refusal_threads_ = static_cast<size_t>(std::max(1, threads));
}

// Deadlines are always set to now + io_deadline_, so one set while the watcher sleeps is never
// earlier than the wake-up computed here: with no deadline at all it sleeps io_deadline_.
ConnectionWatch::Clock::time_point ConnectionWatch::next_wake(Clock::time_point now) {
  Clock::time_point at = now + io_deadline_;
  for (const auto& [id, entry] : entries_) {
    if (entry.deadline && *entry.deadline < at) at = *entry.deadline;
  }
  if (!refused_) return at;
  if (entries_.size() >= refusal_threads_) {
    at = std::min(at, now + std::chrono::milliseconds(kWatchTickMs));
  } else if (refused_() != refused_logged_) {
    // Refusals not logged yet (the last line was too recent): log them when the interval ends.
    at = std::min(at, refusal_logged_at_ + std::chrono::milliseconds(kRefusalLogIntervalMs));
  }
  return at;
}

void ConnectionWatch::log_refusals(Clock::time_point now) {
  if (!refused_) return;
  if (refusal_logged_at_ != Clock::time_point{} &&
      now - refusal_logged_at_ < std::chrono::milliseconds(kRefusalLogIntervalMs)) {
    return;
  }
  const int refused = refused_();
  if (refused == refused_logged_) return;
  std::fprintf(stderr,
               "http: refused %d connections to the %s since the last such line: %d were held "
               "(request threads plus the accept queue)\n",
               refused - refused_logged_, what_.c_str(), refusal_held_);
  refused_logged_ = refused;
  refusal_logged_at_ = now;
}

void ConnectionWatch::run() {
  set_thread_name("http-watch");
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_until(lock, next_wake(Clock::now()));
    const Clock::time_point now = Clock::now();
    for (auto& [id, entry] : entries_) {
      if (!entry.deadline || *entry.deadline > now) continue;
      entry.deadline.reset();  // cut once
      ::shutdown(entry.socket.impl()->sockfd(), SHUT_RDWR);
      ++cut_;
      std::fprintf(stderr,
                   "http: closing the connection from %s to the %s: its request or answer took "
                   "longer than %lld ms to transfer (kHttpIoDeadlineMs)\n",
                   entry.peer.c_str(), what_.c_str(), static_cast<long long>(io_deadline_.count()));
    }
    log_refusals(now);
  }
}

namespace {

// Poco's HTTP server connection, watched by the server's ConnectionWatch while it runs.
class WatchedConnection : public Poco::Net::HTTPServerConnection {
 public:
  WatchedConnection(const Poco::Net::StreamSocket& socket,
                    const Poco::Net::HTTPServerParams::Ptr& params,
                    const Poco::Net::HTTPRequestHandlerFactory::Ptr& factory,
                    ConnectionWatch& watch)
      : HTTPServerConnection(socket, params, factory), watch_(watch) {}
  void run() override {
    const ConnectionWatch::Scope watched(watch_, socket());
    HTTPServerConnection::run();
  }

 private:
  ConnectionWatch& watch_;
};

class ConnectionFactory : public Poco::Net::TCPServerConnectionFactory {
 public:
  ConnectionFactory(Poco::Net::HTTPServerParams::Ptr params,
                    Poco::Net::HTTPRequestHandlerFactory::Ptr factory, ConnectionWatch& watch)
      : params_(std::move(params)), factory_(std::move(factory)), watch_(watch) {}
  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    return new WatchedConnection(socket, params_, factory_, watch_);
  }

 private:
  Poco::Net::HTTPServerParams::Ptr params_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr factory_;
  ConnectionWatch& watch_;
};

Poco::Timespan milliseconds(int ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms) * 1000);
}

class NameRequestThread final : public Poco::Runnable {
 public:
  void run() override { name_this_thread_once("http"); }
};

}  // namespace

WatchedHttpServer::WatchedHttpServer(Poco::Net::ServerSocket socket,
                                     Poco::SharedPtr<StoppableHandlerFactory> handlers,
                                     const HttpServerLimits& limits, const std::string& what)
    : socket_(std::move(socket)),
      unix_socket_(socket_.address().family() == Poco::Net::SocketAddress::UNIX_LOCAL),
      pool_(1, limits.threads_max),
      watch_(std::make_unique<ConnectionWatch>(limits.io_deadline_ms, what)),
      handlers_(std::move(handlers)) {
  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(limits.threads_max);
  params->setMaxQueued(limits.queued_max);
  params->setTimeout(milliseconds(limits.socket_timeout_ms));
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(milliseconds(limits.keep_alive_timeout_ms));
  params->setMaxKeepAliveRequests(limits.keep_alive_requests_max);
  params->setServerName("Chorus");
  dispatcher_ = new Poco::Net::TCPServerDispatcher(
      new ConnectionFactory(params, handlers_, *watch_), pool_, params);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    dispatcher_->release();
    throw std::runtime_error("eventfd: " + std::string(std::strerror(errno)));
  }
  // Request threads name themselves on their first request; the pool's first thread is started
  // here, so on a port that has had none yet (the manager's external one, idle) it showed the
  // process name in `top -H`. A stateless task names it now.
  static NameRequestThread name_request_thread;
  pool_.start(name_request_thread);
  // stop() destroys the watch before the dispatcher, so the dispatcher outlives the watch's uses.
  watch_->watch_refusals([d = dispatcher_] { return d->refusedConnections(); },
                         limits.threads_max + limits.queued_max, limits.threads_max);
}

WatchedHttpServer::~WatchedHttpServer() {
  stop();
  if (dispatcher_) dispatcher_->release();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void WatchedHttpServer::start() {
  acceptor_ = std::thread([this] {
    set_thread_name("http-accept");
    accept_loop();
  });
}

// What Poco's TCPServer::run does (accept, no Nagle delay on TCP, hand to the dispatcher), but
// asleep in poll() until a connection or stop() arrives.
void WatchedHttpServer::accept_loop() {
  pollfd fds[2] = {{socket_.impl()->sockfd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    fds[0].revents = fds[1].revents = 0;
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("chorus: HTTP acceptor poll");
      std::this_thread::sleep_for(std::chrono::milliseconds(kAcceptRetryMs));
      continue;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    try {
      Poco::Net::StreamSocket connection = socket_.acceptConnection();
      if (!unix_socket_) connection.setNoDelay(true);
      dispatcher_->enqueue(connection);
    } catch (const Poco::Exception&) {
      // The client gave up before we took it, or descriptors ran out: try again shortly.
      std::this_thread::sleep_for(std::chrono::milliseconds(kAcceptRetryMs));
    }
  }
}

void WatchedHttpServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  // As Poco's HTTPServer::stopAll(true): stop accepting, then abort the open connections.
  if (acceptor_.joinable()) {
    const uint64_t one = 1;
    if (::write(wake_fd_, &one, sizeof one) != sizeof one)
      std::perror("chorus: HTTP acceptor wake");
    acceptor_.join();
  }
  socket_.close();
  dispatcher_->stop();
  handlers_->abort_connections();
  pool_.joinAll();
  watch_.reset();  // its thread asks the dispatcher for its refusals
}

HttpServerLoad WatchedHttpServer::load() const {
  HttpServerLoad load;
  if (!dispatcher_ || stopped_) return load;
  load.threads = dispatcher_->currentThreads();
  load.queued = dispatcher_->queuedConnections();
  load.refused = dispatcher_->refusedConnections();
  load.cut = watch_->cut();
  return load;
}

}  // namespace chorus::http
