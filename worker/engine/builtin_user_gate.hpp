// BuiltinUserGate: holds the password checks of a built-in login (admin, ops) on a node that
// cannot yet answer them from the cluster's committed users. A fresh cluster's leader creates
// these users with a write of its own after its first election (worker/services/
// user_bootstrap.cpp); until that write commits and reaches this node, a client that found the
// leader through gossip and sends admin's default credentials would be refused although nothing
// is wrong with them. So a check of a built-in login waits, at most kBuiltinUserWaitMs, until
// the engine opens the gate for that login: when this node has applied everything the cluster
// committed as far as it can know (a leader with its epoch committed, or a follower that agrees
// with its leader's log and has applied the commit position that leader announced) and the
// login's user stream has a committed trace here (a record, a tombstone or metadata). Only then
// does the check read the user's record, so a changed password, a disabled or a deleted user
// count exactly as on any other check: the gate never accepts anything by itself, and a node
// whose log is behind (restarted on an old log, catching up) does not answer from a record the
// cluster has since replaced. A check still held at its deadline is answered "not ready"
// (EventStore's answer when its auth backend is not ready: TCP NotHandled NotReady, which the
// clients retry, and HTTP 503), right password or not: never as a wrong password, and never in a
// way that tells whether the password was right. Once open for a login, the gate stays open
// until the process ends.
// Threading: open() on any thread; everything else on the engine's core thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace chorus {

// A first formation commits the bootstrap within a replication round (~0.5 s under load seen so
// far); this leaves room for a loaded machine yet answers before a client's own operation
// timeout (node-eventstore-client: 7 s), which would otherwise retry blindly.
inline constexpr int64_t kBuiltinUserWaitMs = 5'000;
// Checks held at once, all logins together; beyond this a check is refused at once (answered
// "not ready", as a check whose deadline passed), so that a flood sent before the bootstrap
// commits cannot grow memory.
inline constexpr size_t kBuiltinUserWaitersMax = 1'024;

class BuiltinUserGate {
 public:
  // Called once when the check may go on (true: to the password checker) or not (false: refuse).
  using Resume = std::function<void(bool proceed)>;

  static constexpr size_t kLogins = 2;
  // The index of a built-in login ("admin" 0, "ops" 1); nullopt for any other login.
  static std::optional<size_t> index_of(std::string_view login);
  static std::string_view login_at(size_t index);

  // Any thread: whether checks of `login` may go straight to the password checker (always for
  // a login that is not built in).
  bool open(std::string_view login) const;
  bool is_open(size_t index) const { return open_[index].load(std::memory_order_acquire); }

  // Holds a check of built-in login `index` until open_now() or its deadline. False (and
  // `resume` dropped) when kBuiltinUserWaitersMax checks wait already: refuse it.
  bool hold(size_t index, int64_t now_ms, Resume resume);
  // Opens the gate for `index` for good; returns the checks held for it (resume with true).
  std::vector<Resume> open_now(size_t index);
  // The checks whose deadline passed by `now_ms` (resume with false).
  std::vector<Resume> expire(int64_t now_ms);
  // Every held check (resume with false): the node shuts down.
  std::vector<Resume> take_all();

  bool waiting(size_t index) const { return !held_[index].empty(); }
  bool any_waiting() const { return held_count_ > 0; }
  // The earliest deadline of a held check.
  std::optional<int64_t> next_deadline_ms() const;

 private:
  struct Held {
    int64_t deadline_ms = 0;
    Resume resume;
  };
  std::array<std::atomic<bool>, kLogins> open_{};
  std::array<std::vector<Held>, kLogins> held_;  // by arrival, so deadlines ascend
  size_t held_count_ = 0;
};

}  // namespace chorus
