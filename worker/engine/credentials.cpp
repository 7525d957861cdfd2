// CredentialChecker (see credentials.hpp).
#include "worker/engine/credentials.hpp"

#include "common/thread_name.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <iostream>
#include <utility>

namespace chorus {
namespace {

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

CredentialChecker::CredentialChecker(Lookup lookup, CredentialLimits limits)
    : lookup_(std::move(lookup)), limits_(limits) {
  for (int i = 0; i < std::max(1, limits_.threads); ++i) {
    threads_.emplace_back([this, i] {
      set_thread_name("password-" + std::to_string(i));
      run_thread();
    });
  }
}

CredentialChecker::~CredentialChecker() { stop(); }

void CredentialChecker::check(std::string login, std::string password, Done done) {
  const std::string key = credential_cache_key(login, password);
  const int64_t now = steady_now_ms();
  std::unique_lock lock(mutex_);
  if (stopping_) {
    lock.unlock();
    return done(std::nullopt);
  }
  if (auto it = verified_.find(key); it != verified_.end() && it->second.second > now) {
    counters_.cache_hits += 1;
    Principal who = it->second.first;
    lock.unlock();
    return done(std::move(who));
  }
  if (auto it = failed_.find(key); it != failed_.end() && it->second > now) {
    counters_.cache_hits += 1;
    lock.unlock();
    return done(std::nullopt);
  }
  if (auto it = in_flight_.find(key); it != in_flight_.end()) {
    counters_.shared += 1;
    it->second->waiters.push_back(std::move(done));
    return;
  }
  auto& queue = queues_[login];
  if (queued_ >= limits_.queued_max || queue.size() >= limits_.queued_per_login_max) {
    if (queue.empty()) queues_.erase(login);
    counters_.refused_busy += 1;
    lock.unlock();
    return done(std::nullopt);
  }
  auto job = std::make_shared<Job>(Job{key, login, std::move(password), {}});
  job->waiters.push_back(std::move(done));
  queue.push_back(job);
  in_flight_.emplace(key, job);
  queued_ += 1;
  wake_.notify_one();
}

std::shared_ptr<CredentialChecker::Job> CredentialChecker::next_job() {
  // The first login after the one served last, wrapping around: one login's flood waits its
  // turn behind every other login with a check queued.
  auto it = queues_.upper_bound(last_login_);
  if (it == queues_.end()) it = queues_.begin();
  std::shared_ptr<Job> job = std::move(it->second.front());
  it->second.pop_front();
  last_login_ = it->first;
  if (it->second.empty()) queues_.erase(it);
  queued_ -= 1;
  return job;
}

void CredentialChecker::run_thread() {
  for (;;) {
    std::shared_ptr<Job> job;
    uint64_t generation = 0;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || queued_ > 0; });
      if (stopping_) return;
      job = next_job();
      generation = generation_.load();
      counters_.computed += 1;
    }
    std::optional<Principal> result;
    try {
      const std::optional<UserRecord> user = lookup_(job->login);
      if (user && verify_password(*user, job->password)) {
        result = Principal{user->login, user->groups};
      }
    } catch (const std::exception& e) {
      std::cerr << "chorus-worker: authentication of " << job->login << " failed: " << e.what()
                << std::endl;
    }
    finish(job, std::move(result), generation);
  }
}

void CredentialChecker::finish(const std::shared_ptr<Job>& job, std::optional<Principal> result,
                               uint64_t generation) {
  std::vector<Done> waiters;
  {
    std::lock_guard lock(mutex_);
    in_flight_.erase(job->key);
    waiters = std::move(job->waiters);
    // A record changed while this check ran: answer it, but do not let it answer again.
    if (generation == generation_.load()) {
      const int64_t now = steady_now_ms();
      if (result) {
        if (verified_.size() >= limits_.verified_max) verified_.clear();
        verified_[job->key] = {*result, now + limits_.verified_ttl_ms};
      } else {
        if (failed_.size() >= limits_.failed_max) failed_.clear();
        failed_[job->key] = now + limits_.failed_ttl_ms;
      }
    }
  }
  for (Done& done : waiters) done(result);
}

void CredentialChecker::forget_all() {
  std::lock_guard lock(mutex_);
  generation_ += 1;
  verified_.clear();
  failed_.clear();
}

void CredentialChecker::stop() {
  std::vector<Done> waiters;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [login, queue] : queues_) {
      for (auto& job : queue) {
        for (Done& done : job->waiters) waiters.push_back(std::move(done));
        job->waiters.clear();
      }
    }
    queues_.clear();
    queued_ = 0;
  }
  wake_.notify_all();
  for (Done& done : waiters) done(std::nullopt);
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

CredentialChecker::Counters CredentialChecker::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

}  // namespace chorus
