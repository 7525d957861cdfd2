// Supervisor: runs this machine's nodes as chorus-worker processes (Boost.Process) under one
// RestartPolicy each. One supervisor thread spawns, reaps, signals and rotates output files (it
// must be the thread that forks: PR_SET_PDEATHSIG follows the forking thread), asleep until a
// process exits (its pidfd), a policy changes, or a policy's next deadline; one health thread
// (HealthPoller, non-blocking) polls every node's /health/live and /stats on the node's health
// listener, a Unix socket in a folder only the manager's user can enter (client traffic cannot
// starve it), keeping each connection open between probes and fetching /stats about once a
// second only, pipelined behind a health check. A node whose socket path is too long is probed over
// its internal HTTP port by a blocking thread of its own. Public methods are thread-safe (one
// mutex) and are called from the HTTP threads.
#pragma once

#include "common/log.hpp"
#include "manager/config.hpp"
#include "manager/health_poller.hpp"
#include "manager/http_client.hpp"
#include "manager/restart_policy.hpp"
#include "manager/store.hpp"

#include <boost/process/child.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace chorus::manager {

// A node as the API shows it (a copy taken under the lock).
struct NodeView {
  const NodeSpec* spec = nullptr;
  NodeState state = NodeState::kStopped;
  std::optional<int> pid;
  std::optional<double> uptime_seconds;
  std::optional<int64_t> next_start_in_ms;
  NodeRecord record;          // restarts and the last exit
  std::string stats_json;     // the node's last /stats answer ("" if none)
  std::string log_file;       // its output file
  std::string health_socket;  // its health listener ("" when the path is too long)
};

struct SupervisorCounters {
  std::atomic<int64_t> spawns{0};
  std::atomic<int64_t> exits{0};
  std::atomic<int64_t> restarts{0};
  std::atomic<int64_t> health_failures{0};
  std::atomic<int64_t> hung_kills{0};
};

class Supervisor {
 public:
  Supervisor(const ManagerConfig& config, Store& store, Log& log, std::string worker_path);
  ~Supervisor();

  // Called (on the supervisor's thread) each time a node's process exited; set before start().
  void set_on_exit(std::function<void(const NodeSpec&)> on_exit) { on_exit_ = std::move(on_exit); }
  // Kills what an earlier manager left running, then starts every node the operator did not
  // stop, and the threads.
  void start();
  // Stops every node (SIGTERM, SIGKILL after the grace period) and the threads.
  void shutdown();

  std::vector<NodeView> nodes() const;
  std::optional<NodeView> node(const std::string& name) const;
  bool has_node(const std::string& name) const;
  // Operator actions. stop_node waits (up to the grace period and a bit) until it has stopped.
  bool start_node(const std::string& name);
  bool stop_node(const std::string& name);
  // Waits until `done(view)` holds or the deadline passes.
  bool wait_for(const std::string& name, const std::function<bool(const NodeView&)>& done,
                int64_t timeout_ms) const;
  const SupervisorCounters& counters() const { return counters_; }
  // The node's /health/ready (over its health listener): caught up, storage healthy, core
  // thread ticking. False when it does not answer 200.
  bool node_ready(const std::string& name) const;

 private:
  struct Node {
    const NodeSpec* spec;
    RestartPolicy policy;
    NodeRecord record;
    std::unique_ptr<boost::process::child> child;
    std::string log_file;
    std::string pid_file;
    std::string health_socket;  // "" when the path is too long for a Unix socket
    std::string stats_json;
    int64_t started_ms = 0;
    int pidfd = -1;  // readable once the process exited; -1 without one
  };

  std::function<void(const NodeSpec&)> on_exit_;

  void run();
  // Makes the supervisor's thread look at the nodes now (a policy changed outside it).
  void wake();
  void step(Node& node, int64_t now);
  void reap(Node& node, int64_t now);
  void spawn(Node& node, int64_t now);
  void signal(Node& node, int sig);
  void record_exit(Node& node, const ExitStatus& status, const ExitVerdict& verdict);
  void rotate_log(Node& node);
  void reap_leftover(Node& node);
  struct HealthProbe {
    std::string name;
    int pid;
    std::string host;
    int port;
    std::string socket;
  };
  void health_loop(const std::string& name);
  void probe_health(const HealthProbe& p, HttpConnection& connection, int64_t* stats_fetched_ms);
  // A probe's outcome, from either kind of prober: counted and given to the node's policy.
  void record_health(const std::string& name, int pid, std::optional<HttpAnswer> health,
                     std::optional<std::string> stats);
  std::optional<HealthPoller::Target> health_target(const std::string& name) const;
  NodeView view_of(const Node& node, int64_t now) const;
  Node* find(const std::string& name);
  const Node* find(const std::string& name) const;

  const ManagerConfig& config_;
  Store& store_;
  Log& log_;
  std::string worker_path_;
  std::string pid_folder_;
  std::string health_folder_;  // mode 0700: reaching a socket in it is the authorization
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<std::unique_ptr<Node>> nodes_;  // GUARDED_BY(mutex_)
  SupervisorCounters counters_;
  std::atomic<bool> stopping_{false};
  // The loops sleep on this, so that shutdown() wakes them at once instead of their polling.
  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;
  int wake_fd_ = -1;  // eventfd: wake()
  std::thread thread_;
  std::unique_ptr<HealthPoller> health_poller_;  // the nodes with a health listener
  std::vector<std::thread> health_threads_;      // one per node without (path too long)
  void sleep_unless_stopping(int ms);
};

int64_t steady_now_ms();

}  // namespace chorus::manager
