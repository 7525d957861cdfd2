// FrameBudget: a node-wide budget of bytes that TCP connections hold: in frames they are still
// receiving (a frame's bytes are buffered until its last byte arrives), or queued for sending.
// Sessions grow and shrink their share with resize(); a share the budget cannot grant is refused,
// never granted in part.
// Thread-safe (one atomic counter); shared by every session of the node's TCP servers.
#pragma once

#include <atomic>
#include <cstddef>

namespace chorus::tcp {

class FrameBudget {
 public:
  explicit FrameBudget(size_t bytes_max) : bytes_max_(bytes_max) {}
  FrameBudget(const FrameBudget&) = delete;
  FrameBudget& operator=(const FrameBudget&) = delete;

  // Changes a holder's share from `held` to `wanted` bytes. Shrinking always succeeds; growing
  // succeeds only if the total stays within bytes_max(), else nothing changes and it returns
  // false. `held` is updated on success.
  bool resize(size_t& held, size_t wanted) { return resize(held, wanted, bytes_max_); }
  // The same with another ceiling for the total (e.g. a grant beyond bytes_max() that a caller
  // bounds itself).
  bool resize(size_t& held, size_t wanted, size_t ceiling);
  size_t used_bytes() const { return used_bytes_.load(); }
  size_t bytes_max() const { return bytes_max_; }

 private:
  const size_t bytes_max_;
  std::atomic<size_t> used_bytes_{0};
};

}  // namespace chorus::tcp
