// WakeCoalescer: lets a process's periodic chores (a gossip round, a disk check) run on a wake-up
// that another of its threads takes anyway, instead of on a wake-up of their own (issue 16). On
// the development VM, switching into a sleeping process costs ~85 us of CPU before any work; a
// second thread woken by one that is already running costs ~15 us. A chore's thread tells the
// coalescer the window in which its next chore may run, [earliest, due], and sleeps until `due`;
// the carrier thread (the replication core, which wakes for every heartbeat) calls carry() on its
// wake-ups and wakes each chore whose window has opened. A chore whose window passes while the
// carrier sleeps wakes at `due` by itself, as it did before: chores run up to (due - earliest)
// early, never late.
// Threading: add()/remove() from any thread; open_window()/close_window() from the chore's own
// thread; carry() from the carrier thread. The wake functions run on the carrier thread, under
// the coalescer's lock, and must only notify (they must not block).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>

namespace chorus {

class WakeCoalescer {
 public:
  using Clock = std::chrono::steady_clock;
  // One per periodic thread: gossip, disk space (and room to spare).
  static constexpr int kChoresMax = 4;

  // A chore's wake function; its id for the calls below, or -1 when all kChoresMax are taken
  // (the chore then keeps waking by itself). Any thread.
  int add(std::function<void()> wake) {
    std::lock_guard lock(mutex_);
    const int id = chores_.load(std::memory_order_relaxed);
    if (id >= kChoresMax) return -1;
    wakes_[static_cast<size_t>(id)] = std::move(wake);
    earliest_ns_[static_cast<size_t>(id)].store(kNever, std::memory_order_relaxed);
    chores_.store(id + 1, std::memory_order_release);
    return id;
  }
  // The chore `id` is woken no more: once this returns, its wake function is not running and
  // will not run (call it before what the function touches is gone).
  void remove(int id) {
    if (id < 0) return;
    std::lock_guard lock(mutex_);
    earliest_ns_[static_cast<size_t>(id)].store(kNever, std::memory_order_relaxed);
    wakes_[static_cast<size_t>(id)] = nullptr;
  }

  // The chore `id` may run from `earliest` on (the carrier's next wake-up after it wakes it).
  void open_window(int id, Clock::time_point earliest) {
    if (id < 0) return;
    earliest_ns_[static_cast<size_t>(id)].store(ns_of(earliest), std::memory_order_relaxed);
  }
  // The chore ran (on its own or carried): no wake until its next window.
  void close_window(int id) {
    if (id < 0) return;
    earliest_ns_[static_cast<size_t>(id)].store(kNever, std::memory_order_relaxed);
  }

  // On each wake-up of the carrier thread: wakes (once) every chore whose window is open. One
  // clock read and a few relaxed loads when none is; the lock only to wake one.
  void carry() {
    const int count = chores_.load(std::memory_order_acquire);
    if (count == 0) return;
    const int64_t now = ns_of(Clock::now());
    for (size_t i = 0; i < static_cast<size_t>(count); ++i) {
      if (earliest_ns_[i].load(std::memory_order_relaxed) > now) continue;
      std::lock_guard lock(mutex_);
      int64_t earliest = earliest_ns_[i].load(std::memory_order_relaxed);
      if (earliest <= now && earliest_ns_[i].compare_exchange_strong(earliest, kNever) &&
          wakes_[i]) {
        wakes_[i]();
      }
    }
  }

 private:
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  static int64_t ns_of(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }

  std::mutex mutex_;  // add/remove, and each wake (so that remove() waits for one running)
  std::atomic<int> chores_{0};
  std::array<std::function<void()>, kChoresMax> wakes_;  // GUARDED_BY(mutex_)
  std::array<std::atomic<int64_t>, kChoresMax> earliest_ns_{};
};

}  // namespace chorus
