// ConnectionWatch: the deadline of every HTTP connection's I/O, so that a slow or idle client
// cannot hold a request thread for ever. Poco's socket timeout only bounds each receive: a client
// that sends one header byte every few seconds (slow loris), or reads its answer as slowly, kept
// a thread indefinitely. Each connection is watched while it does I/O (TLS handshake, waiting
// for and reading a request, writing the answer) and not while the engine works on its request
// (bounded by kEngineWaitMs and the long-poll cap); one whose I/O phase passes the deadline has
// its socket shut down, which ends the blocked call and the connection.
// It also logs the connections the server refused at kConnectionsMax, with a count.
// Thread-safe: connection threads register and switch phases; one watcher thread cuts and logs.
#pragma once

#include <Poco/Net/StreamSocket.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace chorus::http {

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

  // The calling thread's connection (none: no effect) hands its request to the engine: not
  // watched until io_phase().
  static void engine_phase();
  // The calling thread's connection starts an I/O phase now (writing an answer, then waiting for
  // the next request).
  static void io_phase();

  int64_t cut() const;  // connections cut at the deadline so far
  // Logs, at most once per kRefusalLogIntervalMs, how many connections `refused` (the server's
  // running count of connections closed because `held` were held) grew by. The function must
  // stay callable until this object is destroyed.
  void watch_refusals(std::function<int()> refused, int held);

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
  int refused_logged_ = 0;                 // GUARDED_BY(mutex_)
  Clock::time_point refusal_logged_at_{};  // GUARDED_BY(mutex_)
  std::thread thread_;
};

}  // namespace chorus::http
