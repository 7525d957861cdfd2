// CredentialChecker: answers "who is login/password?" with a bounded cost, so that a flood of
// wrong passwords cannot take a node's threads. Verified credentials are cached (and forgotten
// the moment a user record changes); a failed check is remembered briefly, so repeating the same
// wrong password costs nothing; identical checks in flight share one computation; the PBKDF2
// work runs on the checker's own few threads, taking queued checks login by login in turn, with
// bounded queues (a check beyond them is refused at once). Any thread may call check() and
// forget_all(); callbacks run on a checker thread, or inline in check() for cache hits and
// refusals, and must not block.
#pragma once

#include "worker/engine/types.hpp"
#include "worker/engine/users.hpp"

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace chorus {

// Limits of password checking (one place, with their reasons).
struct CredentialLimits {
  // A verified credential is trusted this long without another PBKDF2 (EventStore caches too).
  int64_t verified_ttl_ms = 60'000;
  size_t verified_max = 10'000;
  // A failed credential is refused without PBKDF2 this long: long enough to absorb a client
  // that retries the same wrong password in a loop, short enough that a user who just set that
  // password elsewhere waits at most this long.
  int64_t failed_ttl_ms = 2'000;
  size_t failed_max = 10'000;
  // Threads that compute PBKDF2: at most this many checks run at once, whatever arrives.
  int threads = 2;
  // Checks waiting for a thread, in all and per login; beyond them a check is refused at once
  // (answered as a failed login) instead of growing a backlog that a flood would fill.
  size_t queued_max = 256;
  size_t queued_per_login_max = 8;
};

class CredentialChecker {
 public:
  // The latest committed record of a login (nullopt: no such user, or deleted). Runs on a
  // checker thread; may block briefly (one SQLite read).
  using Lookup = std::function<std::optional<UserRecord>(const std::string& login)>;
  using Done = std::function<void(std::optional<Principal>)>;

  explicit CredentialChecker(Lookup lookup, CredentialLimits limits = {});
  ~CredentialChecker();
  CredentialChecker(const CredentialChecker&) = delete;
  CredentialChecker& operator=(const CredentialChecker&) = delete;

  void check(std::string login, std::string password, Done done);
  // A user record changed (written, committed, deleted or truncated away): nothing cached
  // before now may answer again, including checks still computing.
  void forget_all();
  // Answers every queued check with a failure and joins the threads. Idempotent.
  void stop();
  // How many times forget_all() ran: an answer given under an older value may be stale.
  uint64_t generation() const { return generation_.load(); }

  struct Counters {
    int64_t computed = 0;      // PBKDF2 verifications run
    int64_t cache_hits = 0;    // answered from either cache
    int64_t shared = 0;        // joined an identical check in flight
    int64_t refused_busy = 0;  // refused because the queues were full
  };
  Counters counters() const;

 private:
  struct Job {
    std::string key;  // credential_cache_key(login, password)
    std::string login;
    std::string password;
    std::vector<Done> waiters;
  };

  void run_thread();
  void finish(const std::shared_ptr<Job>& job, std::optional<Principal> result,
              uint64_t generation);
  std::shared_ptr<Job> next_job();  // REQUIRES: mutex_ held and a job queued

  const Lookup lookup_;
  const CredentialLimits limits_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<uint64_t> generation_{0};  // bumped by forget_all(); older results not cached
  std::unordered_map<std::string, std::pair<Principal, int64_t>> verified_;  // key -> expiry
  std::unordered_map<std::string, int64_t> failed_;                          // key -> expiry
  std::unordered_map<std::string, std::shared_ptr<Job>> in_flight_;          // queued or running
  std::map<std::string, std::deque<std::shared_ptr<Job>>> queues_;           // per login
  std::string last_login_;  // the login served last, for taking logins in turn
  size_t queued_ = 0;
  Counters counters_;
  std::vector<std::thread> threads_;
};

}  // namespace chorus
