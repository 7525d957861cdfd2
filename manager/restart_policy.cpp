// Restart policy rules; see the header.
#include "manager/restart_policy.hpp"

#include <algorithm>

namespace chorus::manager {

std::string_view to_string(NodeState state) {
  switch (state) {
    case NodeState::kStopped:
      return "Stopped";
    case NodeState::kStarting:
      return "Starting";
    case NodeState::kRunning:
      return "Running";
    case NodeState::kBackoff:
      return "Backoff";
    case NodeState::kFailed:
      return "Failed";
    case NodeState::kStopping:
      return "Stopping";
  }
  return "Unknown";
}

std::string ExitStatus::describe() const {
  if (signal) return "killed by signal " + std::to_string(*signal);
  if (code) return "exited with code " + std::to_string(*code);
  return "exited";
}

RestartPolicy::RestartPolicy(RestartLimits limits, uint64_t seed) : limits_(limits), rng_(seed) {}

void RestartPolicy::start(int64_t now_ms) {
  (void)now_ms;
  want_running_ = true;
  recent_exits_ms_.clear();
  backoff_ms_ = 0;
  if (alive_) return;  // running, starting or stopping: after a stop's exit it starts again
  state_ = NodeState::kStarting;
}

void RestartPolicy::stop(int64_t now_ms) {
  want_running_ = false;
  if (!alive_) {
    state_ = NodeState::kStopped;
    return;
  }
  if (state_ == NodeState::kStopping) return;
  state_ = NodeState::kStopping;
  stop_at_ms_ = now_ms;
  term_sent_ = false;
  kill_sent_ = false;
}

void RestartPolicy::spawned(int64_t now_ms) {
  alive_ = true;
  hung_ = false;
  spawned_at_ms_ = now_ms;
  last_health_ms_ = now_ms;
  if (state_ != NodeState::kStopping) state_ = NodeState::kStarting;
}

ExitVerdict RestartPolicy::spawn_failed(int64_t now_ms, const std::string& reason) {
  spawned_at_ms_ = now_ms;
  return after_exit(now_ms, "could not start: " + reason, false);
}

void RestartPolicy::health_ok(int64_t now_ms) {
  last_health_ms_ = now_ms;
  if (alive_ && state_ == NodeState::kStarting) state_ = NodeState::kRunning;
}

ExitVerdict RestartPolicy::exited(int64_t now_ms, const ExitStatus& status) {
  alive_ = false;
  const std::string what = status.describe();
  if (state_ == NodeState::kStopping || !want_running_) {
    state_ = want_running_ ? NodeState::kStarting : NodeState::kStopped;
    return ExitVerdict{state_, 0, what + (want_running_ ? "; starting again" : "; stopped")};
  }
  if (hung_) return after_exit(now_ms, what + " (health check silent, killed)", false);
  if (status.code == 0) {
    // A clean exit that nobody asked for is the node's own decision (e.g. /admin/shutdown).
    want_running_ = false;
    state_ = NodeState::kStopped;
    return ExitVerdict{state_, 0, what + "; stopped (clean exit)"};
  }
  const bool restart_me = status.code == kRestartMeExitCode;
  return after_exit(now_ms, restart_me ? what + " (restart requested)" : what, restart_me);
}

ExitVerdict RestartPolicy::after_exit(int64_t now_ms, const std::string& what,
                                      bool restart_at_once) {
  alive_ = false;
  hung_ = false;
  recent_exits_ms_.push_back(now_ms);
  while (!recent_exits_ms_.empty() &&
         now_ms - recent_exits_ms_.front() > limits_.intensity_period_ms) {
    recent_exits_ms_.pop_front();
  }
  if (static_cast<int>(recent_exits_ms_.size()) >= limits_.intensity_exits_max) {
    state_ = NodeState::kFailed;
    want_running_ = false;
    return ExitVerdict{state_, 0,
                       what + "; " + std::to_string(recent_exits_ms_.size()) + " exits within " +
                           std::to_string(limits_.intensity_period_ms / 1000) + " s: failed"};
  }
  if (now_ms - spawned_at_ms_ >= limits_.stable_after_ms) backoff_ms_ = 0;
  const int64_t delay = restart_at_once ? 0 : next_delay_ms();
  ++restarts_;
  state_ = NodeState::kBackoff;
  next_start_ms_ = now_ms + delay;
  return ExitVerdict{state_, delay, what + "; restart in " + std::to_string(delay) + " ms"};
}

int64_t RestartPolicy::next_delay_ms() {
  backoff_ms_ = backoff_ms_ == 0 ? limits_.backoff_initial_ms
                                 : std::min(backoff_ms_ * 2, limits_.backoff_max_ms);
  std::uniform_real_distribution<double> jitter(0.0, limits_.jitter_fraction);
  const double extra = limits_.jitter_fraction > 0 ? jitter(rng_) : 0.0;
  return backoff_ms_ + static_cast<int64_t>(static_cast<double>(backoff_ms_) * extra);
}

Action RestartPolicy::tick(int64_t now_ms) {
  switch (state_) {
    case NodeState::kStarting:
    case NodeState::kRunning:
      if (!alive_) return Action::kSpawn;
      if (!hung_) {
        const int64_t allowed =
            state_ == NodeState::kStarting ? limits_.start_grace_ms : limits_.hung_after_ms;
        if (now_ms - last_health_ms_ > allowed) {
          hung_ = true;
          return Action::kKill;
        }
      }
      return Action::kNone;
    case NodeState::kBackoff:
      if (now_ms < next_start_ms_) return Action::kNone;
      state_ = NodeState::kStarting;
      return Action::kSpawn;
    case NodeState::kStopping:
      if (!term_sent_) {
        term_sent_ = true;
        return Action::kTerminate;
      }
      if (!kill_sent_ && now_ms - stop_at_ms_ >= limits_.stop_grace_ms) {
        kill_sent_ = true;
        return Action::kKill;
      }
      return Action::kNone;
    case NodeState::kStopped:
    case NodeState::kFailed:
      return Action::kNone;
  }
  return Action::kNone;
}

// Mirrors tick(): the first moment at which each of its time conditions holds.
std::optional<int64_t> RestartPolicy::next_due_ms(int64_t now_ms) const {
  switch (state_) {
    case NodeState::kStarting:
    case NodeState::kRunning: {
      if (!alive_) return now_ms;
      if (hung_) return std::nullopt;  // killed: its exit is the next event
      const int64_t allowed =
          state_ == NodeState::kStarting ? limits_.start_grace_ms : limits_.hung_after_ms;
      return std::max(now_ms, last_health_ms_ + allowed + 1);
    }
    case NodeState::kBackoff:
      return std::max(now_ms, next_start_ms_);
    case NodeState::kStopping:
      if (!term_sent_) return now_ms;
      if (!kill_sent_) return std::max(now_ms, stop_at_ms_ + limits_.stop_grace_ms);
      return std::nullopt;
    case NodeState::kStopped:
    case NodeState::kFailed:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<int64_t> RestartPolicy::next_start_in_ms(int64_t now_ms) const {
  if (state_ != NodeState::kBackoff) return std::nullopt;
  return std::max<int64_t>(0, next_start_ms_ - now_ms);
}

std::optional<int64_t> RestartPolicy::started_at_ms() const {
  if (!alive_) return std::nullopt;
  return spawned_at_ms_;
}

}  // namespace chorus::manager
