// HealthPoller: the manager's health checks of its nodes from one thread ("health") with
// non-blocking I/O (Boost.Asio, Beast's HTTP/1.1): every interval, each node's /health/live on
// its health listener (a Unix socket), and its /stats when the last copy is older than the
// refresh time, pipelined behind it (one wake-up of the node for both), on a connection kept
// open while the node's process lives. Each node has its own
// timer, connection and deadline, so a hung node, whose probe waits out the deadline, delays no
// other node's probe (issue 16: this replaced one blocking thread per node, ~80 wake-ups a second
// for 12 nodes). `target` and `report` are called on the poller's thread; start()/stop() by the
// owner, once each.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace chorus::manager {

// How long after a probe slot the poller sleeps before reading the answers (see gather() in the
// .cpp): long enough for most nodes to have answered, short beside any deadline.
inline constexpr int kAnswerGatherMs = 10;

class HealthPoller {
 public:
  // What to probe now: the node's process and its health listener; nullopt while it has none.
  struct Target {
    int pid = 0;
    std::string socket;
  };
  // One probe's outcome. `answered`: /health/live answered (any status) within the deadline.
  struct Report {
    std::string name;
    int pid = 0;
    bool answered = false;
    int status = 0;
    std::string body;
    std::optional<std::string> stats;  // a 200 /stats body, when fetched
  };
  struct Settings {
    int interval_ms = 500;  // probes start at multiples of this (the same instants for all)
    int timeout_ms = 1000;  // one request, connecting included
    int64_t stats_refresh_ms = 750;
  };

  HealthPoller(std::vector<std::string> names, Settings settings,
               std::function<std::optional<Target>(const std::string&)> target,
               std::function<void(const Report&)> report);
  ~HealthPoller();
  HealthPoller(const HealthPoller&) = delete;
  HealthPoller& operator=(const HealthPoller&) = delete;

  void start();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace chorus::manager
