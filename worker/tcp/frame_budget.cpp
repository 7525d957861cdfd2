// FrameBudget; see frame_budget.hpp. A compare-and-swap loop, so that concurrent sessions never
// push the total past the maximum between their check and their update.
#include "worker/tcp/frame_budget.hpp"

namespace chorus::tcp {

bool FrameBudget::resize(size_t& held, size_t wanted, size_t ceiling) {
  if (wanted <= held) {
    used_bytes_.fetch_sub(held - wanted);
    held = wanted;
    return true;
  }
  const size_t grow = wanted - held;
  size_t used = used_bytes_.load();
  do {
    if (used > ceiling || grow > ceiling - used) return false;
  } while (!used_bytes_.compare_exchange_weak(used, used + grow));
  held = wanted;
  return true;
}

}  // namespace chorus::tcp
