// ClientLimits: what every external TCP connection of one node shares, whichever port (plain or
// secure) it came in on: the connection count (ExtTcpConnectionsMax) and the budget of partially
// received frames (kPartialFrameBytesBudget). Without sharing, a node with both ports would
// allow twice either. Thread-safe (atomics); one per node, held by its TcpServers and sessions.
#pragma once

#include "common/options.hpp"
#include "worker/tcp/frame_budget.hpp"
#include "worker/tcp/limits.hpp"

#include <atomic>
#include <cstddef>

namespace chorus::tcp {

class ClientLimits {
 public:
  explicit ClientLimits(int connections_max = kExtTcpConnectionsMaxDefault,
                        size_t partial_frame_bytes = kPartialFrameBytesBudget)
      : connections_max_(connections_max), partial_frames_(partial_frame_bytes) {}
  ClientLimits(const ClientLimits&) = delete;
  ClientLimits& operator=(const ClientLimits&) = delete;

  // Takes a connection slot; false (nothing taken) when connections_max() are open.
  bool try_open() {
    int open = connections_.load();
    do {
      if (open >= connections_max_) return false;
    } while (!connections_.compare_exchange_weak(open, open + 1));
    return true;
  }
  // Gives back a slot taken by try_open().
  void release() { connections_.fetch_sub(1); }
  int connections() const { return connections_.load(); }
  int connections_max() const { return connections_max_; }
  FrameBudget& partial_frames() { return partial_frames_; }

 private:
  const int connections_max_;
  std::atomic<int> connections_{0};
  FrameBudget partial_frames_;
};

}  // namespace chorus::tcp
