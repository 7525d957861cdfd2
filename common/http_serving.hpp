// WatchedHttpServer: Poco's TCPServerDispatcher serving HTTP with the limits every Chorus HTTP port
// shares
// (the worker's and the manager's): a bounded pool of request threads and a bounded accept queue
// (a connection beyond both is closed at once and counted; the count is logged at most every
// kRefusalLogIntervalMs), and a deadline on each connection's I/O (ConnectionWatch), so that slow
// or many clients cannot take a port away from the others. Handlers mark the time they wait on
// other work (ConnectionWatch::engine_phase) so that it is not counted. Connections are accepted
// by a thread of our own ("http-accept") that sleeps in poll() until one arrives or stop() wakes
// it, instead of Poco's TCPServer, whose listener wakes every 250 ms (hard-coded) to look for
// its stop flag (issue 16: three servers per idle worker woke 12 times a second for nothing).
// start()/stop() from the thread that owns the server; the watch is thread-safe.
#pragma once

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServerDispatcher.h>
#include <Poco/SharedPtr.h>
#include <Poco/ThreadPool.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace chorus::http {

// The longest a connection's I/O may take at a stretch: TLS handshake, waiting for the request
// (keep-alive idle time included) and reading it, or writing the answer and waiting for the next
// one. The socket timeout bounds each receive only, so a client sending a byte every few seconds
// (slow loris) held a thread for ever; past this the connection is cut (ConnectionWatch). The
// time a handler waits on other work (the engine, a node) is not counted: it has its own bounds.
inline constexpr int kHttpIoDeadlineMs = 30000;
// How often the watcher looks at the refusal count while every request thread is busy (the only
// time the server refuses). Otherwise it sleeps until the earliest deadline (issue 16: an idle
// server's watcher does not wake four times a second).
inline constexpr int kWatchTickMs = 250;
// After a failed accept (e.g. out of file descriptors, when the listening socket stays readable)
// the acceptor waits this long before it tries again, instead of spinning.
inline constexpr int kAcceptRetryMs = 50;
// Connections refused at the server's limit are logged at most once per this interval, with a
// count: refusing costs a flood nothing, so the log must not pay for each one.
inline constexpr int kRefusalLogIntervalMs = 10000;

// The deadline of every connection's I/O, so that a slow or idle client cannot hold a request
// thread for ever. Each connection is watched while it does I/O (TLS handshake, waiting for and
// reading a request, writing the answer) and not while its handler waits on other work; one
// whose I/O phase passes the deadline has its socket shut down, which ends the blocked call and
// the connection. It also logs the connections the server refused, with a count.
// Thread-safe: connection threads register and switch phases; one watcher thread cuts and logs.
class ConnectionWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // `io_deadline_ms`: the longest one I/O phase may take. `what` names the server in log lines.
  ConnectionWatch(int io_deadline_ms, std::string what);
  ~ConnectionWatch();
  ConnectionWatch(const ConnectionWatch&) = delete;
  ConnectionWatch& operator=(const ConnectionWatch&) = delete;

  // Watches the calling thread's connection from construction (an I/O phase starts) to
  // destruction; the phase functions below act on it.
  class Scope {
   public:
    Scope(ConnectionWatch& watch, const Poco::Net::StreamSocket& socket);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ConnectionWatch& watch_;
    uint64_t id_;
  };

  // The calling thread's connection (none: no effect) waits on other work (the engine, a node):
  // not watched until io_phase().
  static void engine_phase();
  // The calling thread's connection starts an I/O phase now (writing an answer, then waiting for
  // the next request).
  static void io_phase();

  int64_t cut() const;  // connections cut at the deadline so far
  // Logs, at most once per kRefusalLogIntervalMs, how many connections `refused` (the server's
  // running count of connections closed because `held` were held) grew by; it is read while
  // `threads` connections (all request threads) are open. The function must stay callable
  // until this object is destroyed.
  void watch_refusals(std::function<int()> refused, int held, int threads);

 private:
  struct Entry {
    Poco::Net::StreamSocket socket;  // a copy: keeps the descriptor open while watched
    std::optional<Clock::time_point> deadline;
    std::string peer;
  };

  uint64_t add(const Poco::Net::StreamSocket& socket);
  void remove(uint64_t id);
  void set_deadline(uint64_t id, bool watched);
  void run();
  Clock::time_point next_wake(Clock::time_point now);  // REQUIRES(mutex_)
  void log_refusals(Clock::time_point now);

  const std::chrono::milliseconds io_deadline_;
  const std::string what_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;                  // GUARDED_BY(mutex_)
  uint64_t next_id_ = 1;                   // GUARDED_BY(mutex_)
  std::map<uint64_t, Entry> entries_;      // GUARDED_BY(mutex_)
  int64_t cut_ = 0;                        // GUARDED_BY(mutex_)
  std::function<int()> refused_;           // GUARDED_BY(mutex_)
  int refusal_held_ = 0;                   // GUARDED_BY(mutex_)
  size_t refusal_threads_ = 0;             // GUARDED_BY(mutex_); 0: refusals not watched
  int refused_logged_ = 0;                 // GUARDED_BY(mutex_)
  Clock::time_point refusal_logged_at_{};  // GUARDED_BY(mutex_)
  std::thread thread_;
};

// A request handler factory whose open connections stop() can abort, as Poco's
// HTTPServer::stopAll(true) does.
class StoppableHandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  void abort_connections() {
    const bool abort_current = true;
    serverStopped(this, abort_current);
  }
};

struct HttpServerLimits {
  int threads_max = 16;           // request threads
  int queued_max = 64;            // accepted connections waiting for a thread
  int socket_timeout_ms = 10000;  // one receive or send
  int keep_alive_timeout_ms = 15000;
  int keep_alive_requests_max = 1000;
  int io_deadline_ms = kHttpIoDeadlineMs;
};

// What a server holds and has refused (for tests and operators).
struct HttpServerLoad {
  int threads = 0;  // request threads started (each serves one connection at a time)
  int queued = 0;   // accepted connections waiting for a thread
  int refused = 0;  // connections closed at once because threads_max + queued_max were held
  int64_t cut = 0;  // connections cut at the I/O deadline
};

class WatchedHttpServer {
 public:
  // `socket` is bound and listening (a SecureServerSocket for HTTPS: the handshake runs on the
  // connection's thread, under the deadline). `what` names the server in log lines.
  WatchedHttpServer(Poco::Net::ServerSocket socket,
                    Poco::SharedPtr<StoppableHandlerFactory> handlers,
                    const HttpServerLimits& limits, const std::string& what);
  ~WatchedHttpServer();
  WatchedHttpServer(const WatchedHttpServer&) = delete;
  WatchedHttpServer& operator=(const WatchedHttpServer&) = delete;

  void start();
  // Stops accepting, aborts the open connections and joins the request threads. Idempotent.
  void stop();
  HttpServerLoad load() const;

 private:
  void accept_loop();

  Poco::Net::ServerSocket socket_;
  const bool unix_socket_;
  Poco::ThreadPool pool_;
  std::unique_ptr<ConnectionWatch> watch_;
  Poco::SharedPtr<StoppableHandlerFactory> handlers_;
  // Hands accepted connections to the request threads (reference-counted by Poco: released,
  // not deleted).
  Poco::Net::TCPServerDispatcher* dispatcher_ = nullptr;
  int wake_fd_ = -1;  // an eventfd that stop() writes to end the accept loop
  std::thread acceptor_;
  bool stopped_ = false;
};

}  // namespace chorus::http
