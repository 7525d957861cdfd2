// Proves the credential checker's bounds (hole 7 of issue 10): right and wrong passwords are
// told apart and cached; a repeated wrong password costs one PBKDF2; identical checks share one;
// a flood of wrong passwords for one login cannot delay another login by more than one check and
// overflowing checks are refused at once; a user change makes every cached answer (and a check
// computing at that moment) count no more; stop() answers what is queued.
#include "worker/engine/credentials.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace chorus {
namespace {

using namespace std::chrono_literals;

// Records of a tiny user database that a test can change.
class Users {
 public:
  void set(const std::string& login, const std::string& password) {
    auto record = make_user(login, login + " name", {"dev"}, password);
    std::lock_guard lock(mutex_);
    records_[login] = std::move(record);
  }
  std::optional<UserRecord> get(const std::string& login) {
    std::lock_guard lock(mutex_);
    auto it = records_.find(login);
    if (it == records_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, UserRecord> records_;
};

std::optional<Principal> check_now(CredentialChecker& checker, const std::string& login,
                                   const std::string& password) {
  std::promise<std::optional<Principal>> promise;
  auto future = promise.get_future();
  checker.check(login, password, [&](std::optional<Principal> who) { promise.set_value(who); });
  EXPECT_EQ(future.wait_for(10s), std::future_status::ready);
  return future.get();
}

TEST(CredentialChecker, TellsRightFromWrongAndCachesBoth) {
  Users users;
  users.set("ann", "right");
  CredentialChecker checker([&](const std::string& l) { return users.get(l); });
  const auto who = check_now(checker, "ann", "right");
  ASSERT_TRUE(who);
  EXPECT_EQ(who->login, "ann");
  EXPECT_EQ(who->groups, std::vector<std::string>{"dev"});
  EXPECT_FALSE(check_now(checker, "ann", "wrong"));
  EXPECT_FALSE(check_now(checker, "nobody", "x"));
  EXPECT_EQ(checker.counters().computed, 3);
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(check_now(checker, "ann", "right"));
    EXPECT_FALSE(check_now(checker, "ann", "wrong"));
  }
  EXPECT_EQ(checker.counters().computed, 3) << "repeats are answered from the caches";
  EXPECT_EQ(checker.counters().cache_hits, 40);
}

TEST(CredentialChecker, FailedChecksAreForgottenAfterTheirShortTtl) {
  Users users;
  users.set("ann", "right");
  CredentialLimits limits;
  limits.failed_ttl_ms = 0;  // expired at once
  CredentialChecker checker([&](const std::string& l) { return users.get(l); }, limits);
  EXPECT_FALSE(check_now(checker, "ann", "wrong"));
  EXPECT_FALSE(check_now(checker, "ann", "wrong"));
  EXPECT_EQ(checker.counters().computed, 2);
}

TEST(CredentialChecker, AUserChangeTakesEffectAtOnce) {
  Users users;
  users.set("ann", "old");
  CredentialChecker checker([&](const std::string& l) { return users.get(l); });
  EXPECT_TRUE(check_now(checker, "ann", "old"));
  EXPECT_FALSE(check_now(checker, "ann", "new"));
  users.set("ann", "new");
  checker.forget_all();
  EXPECT_FALSE(check_now(checker, "ann", "old")) << "the cached success is gone";
  EXPECT_TRUE(check_now(checker, "ann", "new")) << "the cached failure is gone";
}

TEST(CredentialChecker, ACheckComputingDuringAChangeIsNotCached) {
  Users users;
  users.set("ann", "old");
  std::mutex mutex;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  CredentialChecker checker([&](const std::string& l) {
    auto record = users.get(l);  // read before the change...
    std::unique_lock lock(mutex);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return record;  // ...answered after it
  });
  std::promise<std::optional<Principal>> first;
  checker.check("ann", "old", [&](std::optional<Principal> who) { first.set_value(who); });
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return entered; }));
  }
  users.set("ann", "new");
  checker.forget_all();
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(first.get_future().get()) << "the racing check answers from what it read";
  EXPECT_FALSE(check_now(checker, "ann", "old")) << "but it was not cached";
}

TEST(CredentialChecker, IdenticalChecksInFlightShareOneComputation) {
  Users users;
  users.set("ann", "right");
  CredentialLimits limits;
  limits.threads = 1;
  CredentialChecker checker([&](const std::string& l) { return users.get(l); }, limits);
  std::atomic<int> answered{0};
  std::promise<void> all;
  for (int i = 0; i < 6; ++i) {
    checker.check("ann", "same-wrong", [&](std::optional<Principal> who) {
      EXPECT_FALSE(who);
      if (++answered == 6) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(checker.counters().computed, 1) << "the others shared it or hit its cached failure";
}

TEST(CredentialChecker, AFloodForOneLoginNeitherDelaysAnotherNorQueuesWithoutBound) {
  Users users;
  users.set("victim", "secret");
  users.set("alice", "alice-pw");
  CredentialLimits limits;
  limits.threads = 1;
  limits.queued_per_login_max = 4;
  // Declared before the checker: its destructor answers the checks still queued, whose
  // callbacks write these.
  std::mutex mutex;
  std::vector<std::string> order;  // completion order of computed checks
  std::atomic<int> refused_at_once{0};
  CredentialChecker checker([&](const std::string& l) { return users.get(l); }, limits);
  const int kFlood = 50;
  for (int i = 0; i < kFlood; ++i) {
    const auto caller = std::this_thread::get_id();
    checker.check("victim", "guess-" + std::to_string(i),
                  [&, caller, i](std::optional<Principal> who) {
                    EXPECT_FALSE(who);
                    if (std::this_thread::get_id() == caller) {
                      refused_at_once += 1;
                      return;
                    }
                    std::lock_guard lock(mutex);
                    order.push_back("victim-" + std::to_string(i));
                  });
  }
  const auto started = std::chrono::steady_clock::now();
  std::promise<std::optional<Principal>> alice;
  checker.check("alice", "alice-pw", [&](std::optional<Principal> who) {
    {
      std::lock_guard lock(mutex);
      order.push_back("alice");
    }
    alice.set_value(who);
  });
  auto future = alice.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(future.get());
  // One thread: at most the victim check already running, then alice's turn.
  std::lock_guard lock(mutex);
  size_t position = 0;
  while (position < order.size() && order[position] != "alice") ++position;
  EXPECT_LE(position, 1u) << "alice waited behind " << position << " flood checks";
  EXPECT_GE(refused_at_once.load(), kFlood - 5) << "beyond the per-login queue: refused at once";
  EXPECT_EQ(checker.counters().refused_busy, refused_at_once.load());
  EXPECT_LT(waited, 5s);
}

TEST(CredentialChecker, StopAnswersEveryQueuedCheck) {
  Users users;
  users.set("ann", "right");
  CredentialLimits limits;
  limits.threads = 1;
  auto checker = std::make_unique<CredentialChecker>(
      [&](const std::string& l) { return users.get(l); }, limits);
  std::atomic<int> answered{0};
  for (int i = 0; i < 5; ++i) {
    checker->check("ann", "w" + std::to_string(i), [&](std::optional<Principal>) { ++answered; });
  }
  checker->stop();
  EXPECT_EQ(answered.load(), 5);
  bool after_stop = false;
  checker->check("ann", "right", [&](std::optional<Principal> who) { after_stop = !who; });
  EXPECT_TRUE(after_stop);
}

}  // namespace
}  // namespace chorus
