// ClientLimits: what every external TCP connection of one node shares, whichever port (plain or
// secure) it came in on: the connection count (ExtTcpConnectionsMax), the budget of partially
// received frames (kPartialFrameBytesBudget) and the budget of bytes queued for sending
// (kQueuedSendBytesBudget). Without sharing, a node with both ports would allow twice each.
// Thread-safe (atomics); one per node, held by its TcpServers and sessions.
#pragma once

#include "common/options.hpp"
#include "worker/tcp/frame_budget.hpp"
#include "worker/tcp/limits.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>

namespace chorus::tcp {

class ClientLimits {
 public:
  explicit ClientLimits(int connections_max = kExtTcpConnectionsMaxDefault,
                        size_t partial_frame_bytes = kPartialFrameBytesBudget,
                        size_t queued_send_bytes = kQueuedSendBytesBudget)
      : connections_max_(connections_max),
        partial_frames_(partial_frame_bytes),
        queued_sends_(queued_send_bytes) {}
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
  FrameBudget& queued_sends() { return queued_sends_; }

  // Charges a connection's send queue, grown from `held` to `wanted` bytes, to the send budget.
  // Within the budget it is granted. Once the budget is spent, a connection within its fair share
  // (the budget divided by the open connections) is still granted, up to twice the budget in
  // all, so a reader that keeps up is not cut because of slow ones; a connection above its share
  // is refused (false, nothing changes) and must be closed. `held` is updated when granted.
  bool charge_send_queue(size_t& held, size_t wanted) {
    if (queued_sends_.resize(held, wanted)) return true;
    return wanted <= send_share() &&
           queued_sends_.resize(held, wanted, size_t{2} * queued_sends_.bytes_max());
  }
  size_t send_share() const {
    return queued_sends_.bytes_max() / static_cast<size_t>(std::max(1, connections()));
  }

 private:
  const int connections_max_;
  std::atomic<int> connections_{0};
  FrameBudget partial_frames_;
  FrameBudget queued_sends_;
};

}  // namespace chorus::tcp
