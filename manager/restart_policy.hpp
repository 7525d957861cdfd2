// RestartPolicy: what the supervisor does with one node, as a pure class (STYLE.md 1-2). It is
// fed events (operator start/stop, spawned, exited, health answered) and ticks with the time in
// milliseconds as an input, and answers the action to take now (spawn, SIGTERM, SIGKILL).
// Rules (systemd / supervisord / Erlang, ANCHORS.md 1c): exponential backoff with jitter between
// automatic restarts; more than `intensity_exits_max` exits within `intensity_period_ms` make the
// node Failed until an operator starts it; an operator stop is never undone automatically; exit
// code 0 means the node shut down on purpose (it stays Stopped), exit code 75 means "restart me"
// (restarted at once); a node whose health check has not answered for `hung_after_ms` while its
// process lives is killed and restarted. Not thread-safe: one owner (the Supervisor's lock).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace chorus::manager {

// A node that exits with this code asks to be started again (EX_TEMPFAIL): e.g. after an
// offline truncation. Documented in docs/operations-manager.md.
inline constexpr int kRestartMeExitCode = 75;

enum class NodeState { kStopped, kStarting, kRunning, kBackoff, kFailed, kStopping };
std::string_view to_string(NodeState state);

struct RestartLimits {
  int64_t backoff_initial_ms = 100;
  int64_t backoff_max_ms = 10000;
  double jitter_fraction = 0.2;  // each delay grows by up to this fraction, at random
  int intensity_exits_max = 5;   // this many exits within the period make the node Failed
  int64_t intensity_period_ms = 60000;
  int64_t stable_after_ms = 30000;  // a run this long resets the backoff to its initial delay
  int64_t start_grace_ms = 30000;   // time from spawn to the first health answer
  int64_t hung_after_ms = 5000;     // health silent this long while running: hung
  int64_t stop_grace_ms = 10000;    // SIGTERM, then SIGKILL after this
};

struct ExitStatus {
  std::optional<int> code;    // exit code, when it exited
  std::optional<int> signal;  // signal number, when a signal ended it
  std::string describe() const;
};

enum class Action { kNone, kSpawn, kTerminate, kKill };

// What the policy decided about an exit, for the history.
struct ExitVerdict {
  NodeState next;
  int64_t delay_ms = 0;  // in Backoff: the delay before the next start
  std::string detail;    // "killed by signal 9; restart in 200 ms"
};

class RestartPolicy {
 public:
  RestartPolicy(RestartLimits limits, uint64_t seed);

  // The operator (or the manager's start) wants the node running; clears Failed.
  void start(int64_t now_ms);
  // The operator wants it stopped: SIGTERM now (if running), SIGKILL after the grace period.
  void stop(int64_t now_ms);
  void spawned(int64_t now_ms);
  // The process could not be started at all (counts as an exit).
  ExitVerdict spawn_failed(int64_t now_ms, const std::string& reason);
  ExitVerdict exited(int64_t now_ms, const ExitStatus& status);
  void health_ok(int64_t now_ms);
  // The action due at `now_ms`: call it after every event above and at next_due_ms().
  Action tick(int64_t now_ms);
  // When tick() may next act without a new event (a backoff ending, a stop's grace period
  // ending, a health check silent for too long; `now_ms` when something is due already);
  // nullopt while only an event (start, stop, an exit) can change anything.
  std::optional<int64_t> next_due_ms(int64_t now_ms) const;

  NodeState state() const { return state_; }
  bool process_alive() const { return alive_; }
  bool hung_kill_pending() const { return hung_; }
  int restarts() const { return restarts_; }
  void set_restarts(int restarts) { restarts_ = restarts; }
  std::optional<int64_t> next_start_in_ms(int64_t now_ms) const;
  std::optional<int64_t> started_at_ms() const;
  const RestartLimits& limits() const { return limits_; }

 private:
  ExitVerdict after_exit(int64_t now_ms, const std::string& what, bool restart_at_once);
  int64_t next_delay_ms();

  RestartLimits limits_;
  std::mt19937_64 rng_;
  NodeState state_ = NodeState::kStopped;
  bool alive_ = false;         // a process exists (spawned, not yet exited)
  bool want_running_ = false;  // operator intent
  bool hung_ = false;          // killed because its health check was silent
  bool term_sent_ = false;     // SIGTERM already sent for the current stop
  bool kill_sent_ = false;     // SIGKILL already sent for the current stop
  int64_t spawned_at_ms_ = 0;
  int64_t last_health_ms_ = 0;  // last health answer, or the spawn time + start grace
  int64_t stop_at_ms_ = 0;      // when SIGTERM was sent
  int64_t next_start_ms_ = 0;   // in Backoff
  int64_t backoff_ms_ = 0;      // the last delay before jitter; 0 = none yet
  int restarts_ = 0;
  std::deque<int64_t> recent_exits_ms_;  // at most intensity_exits_max entries
};

}  // namespace chorus::manager
