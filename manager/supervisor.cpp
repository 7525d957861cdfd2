// Supervisor runtime: processes, signals, exit codes, output files, health checks.
#include "manager/supervisor.hpp"

#include "common/gossip.hpp"
#include "common/thread_name.hpp"
#include "manager/http_client.hpp"
#include "manager/metrics_history.hpp"

#include <boost/process/args.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace chorus::manager {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;

// The supervisor's thread sleeps until a node's process exits (its pidfd), an operator or the
// health checks change a node's policy (wake()), or the policy's next deadline (a backoff, a stop's
// grace period, the hung limit): an idle manager does not wake ten times a second for nothing.
// Without pidfds (a kernel before 5.3) it looks for exits this often instead.
constexpr int kExitPollMs = 100;
constexpr int kRotateCheckMs = 5000;    // output files checked for their size this often
constexpr int kFdsToCloseMax = 4096;    // the child marks these close-on-exec
constexpr int kHealthTimeoutMs = 1000;  // one /health/live request
// The health thread fetches a node's /stats (a JSON document of its figures, which the node
// builds for each request) only this often, not with every probe: the sampler reads it once a
// second (kSampleIntervalMs), so with the default 500 ms probes every other probe fetches it.
constexpr int64_t kStatsRefreshMs = kSampleIntervalMs * 3 / 4;
// sizeof(sockaddr_un::sun_path) on Linux, with its terminating NUL.
constexpr size_t kUnixPathBytesMax = 108;
constexpr int kLeftoverTermWaitMs = 5000;  // an earlier instance's node: SIGTERM, then SIGKILL

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// True while `pid` runs; an exited process that nobody reaped yet (a zombie) counts as gone.
bool process_exists(int pid) {
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// A descriptor that becomes readable when `pid` exits; -1 without pidfd_open (Linux < 5.3).
int open_pidfd(int pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Supervisor::Supervisor(const ManagerConfig& config, Store& store, Log& log, std::string worker_path)
    : config_(config), store_(store), log_(log), worker_path_(std::move(worker_path)) {
  pid_folder_ = (fs::path(config.db_folder) / "manager" / "pids").string();
  health_folder_ = (fs::path(config.db_folder) / "manager" / "health").string();
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::random_device rd;
  for (const NodeSpec& spec : config.nodes) {
    auto node = std::make_unique<Node>(
        Node{&spec, RestartPolicy(config.limits, rd()), {}, nullptr, "", "", "", "", 0, -1});
    node->log_file = (fs::path(config.log_folder) / (spec.name + ".out.log")).string();
    node->pid_file = (fs::path(pid_folder_) / (spec.name + ".pid")).string();
    node->health_socket = (fs::path(health_folder_) / (spec.name + ".sock")).string();
    if (node->health_socket.size() >= kUnixPathBytesMax) {
      log_.warn("node " + spec.name + ": " + node->health_socket +
                " is too long for a Unix socket; its health is checked on its internal HTTP port");
      node->health_socket.clear();
    }
    if (auto record = store.node(spec.name)) node->record = *record;
    node->policy.set_restarts(node->record.restarts);
    nodes_.push_back(std::move(node));
  }
}

Supervisor::~Supervisor() {
  shutdown();
  for (auto& node : nodes_) {
    if (node->pidfd >= 0) ::close(node->pidfd);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Supervisor::wake() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0 && ::write(wake_fd_, &one, sizeof one) < 0) {
    // EAGAIN: the counter is full, i.e. a wake is pending anyway.
  }
}

void Supervisor::start() {
  std::error_code ec;
  fs::create_directories(pid_folder_, ec);
  fs::create_directories(health_folder_, ec);
  fs::permissions(health_folder_, fs::perms::owner_all, ec);  // the manager's user alone
  if (ec) log_.error("cannot make " + health_folder_ + " private: " + ec.message());
  {
    std::lock_guard lock(mutex_);
    const int64_t now = steady_now_ms();
    for (auto& node : nodes_) {
      reap_leftover(*node);
      if (node->record.operator_stopped) {
        store_.add_event(node->spec->name, "stopped",
                         "stopped by the operator earlier; not started");
        continue;
      }
      node->policy.start(now);
    }
  }
  thread_ = std::thread([this] {
    set_thread_name("supervisor");
    run();
  });
  // Probed one by one with blocking calls (or in rounds that wait for every probe), a hung node,
  // whose probe waits out its timeout, would delay the others' probes past hung_after_ms and get
  // healthy nodes killed too: the poller gives each node its own timer and deadline instead.
  std::vector<std::string> polled;
  for (auto& node : nodes_) {
    if (!node->health_socket.empty()) {
      polled.push_back(node->spec->name);
      continue;
    }
    health_threads_.emplace_back([this, name = node->spec->name] {
      set_thread_name("health");
      health_loop(name);
    });
  }
  HealthPoller::Settings settings;
  settings.interval_ms = config_.health_interval_ms;
  settings.timeout_ms = kHealthTimeoutMs;
  settings.stats_refresh_ms = kStatsRefreshMs;
  health_poller_ = std::make_unique<HealthPoller>(
      std::move(polled), settings, [this](const std::string& name) { return health_target(name); },
      [this](const HealthPoller::Report& r) {
        std::optional<HttpAnswer> health;
        if (r.answered) health = HttpAnswer{r.status, r.body, "", {}};
        record_health(r.name, r.pid, std::move(health), r.stats);
      });
  health_poller_->start();
}

std::optional<HealthPoller::Target> Supervisor::health_target(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const Node* node = find(name);
  if (!node || !node->child) return std::nullopt;
  return HealthPoller::Target{node->child->id(), node->health_socket};
}

// A pid file names a process an earlier manager started; if it is still that node's worker
// (its command line names the node's log folder), it is stopped before a new one starts. If it
// is gone, it ended while no manager watched it (e.g. with a manager killed by SIGKILL): that
// exit is recorded too, so the history shows every exit.
void Supervisor::reap_leftover(Node& node) {
  const std::string text = read_text(node.pid_file);
  if (text.empty()) return;
  const int pid = std::atoi(text.c_str());
  std::string cmdline = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : cmdline) {
    if (c == '\0') c = ' ';
  }
  const std::string marker = "--log=" + node.spec->log_folder;
  const bool ours = pid > 1 && process_exists(pid) &&
                    cmdline.find("chorus-worker") != std::string::npos &&
                    cmdline.find(marker) != std::string::npos;
  if (!ours) {
    const std::string reason =
        "pid " + std::to_string(pid) + " ended while no manager watched it (its manager was gone)";
    node.record.last_exit_code.reset();
    node.record.last_exit_signal.reset();
    node.record.last_exit_at = iso8601_utc(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    node.record.last_exit_reason = reason;
    store_.save_node(node.spec->name, node.record);
    store_.add_event(node.spec->name, "exited", reason);
  } else {
    log_.warn("node " + node.spec->name + ": stopping pid " + std::to_string(pid) +
              " left by an earlier manager");
    store_.add_event(node.spec->name, "stopped",
                     "pid " + std::to_string(pid) + " left by an earlier manager was stopped");
    ::kill(pid, SIGTERM);
    const int64_t deadline = steady_now_ms() + kLeftoverTermWaitMs;
    while (process_exists(pid) && steady_now_ms() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (process_exists(pid)) ::kill(pid, SIGKILL);
  }
  fs::remove(node.pid_file);
}

void Supervisor::shutdown() {
  if (!thread_.joinable()) return;
  {
    std::unique_lock lock(mutex_);
    const int64_t now = steady_now_ms();
    for (auto& node : nodes_) node->policy.stop(now);
    wake();
    changed_.wait_for(lock, std::chrono::milliseconds(config_.limits.stop_grace_ms + 2000), [&] {
      for (auto& node : nodes_) {
        if (node->policy.process_alive()) return false;
      }
      return true;
    });
  }
  {
    std::lock_guard lock(sleep_mutex_);
    stopping_ = true;
  }
  sleep_cv_.notify_all();
  wake();
  thread_.join();
  if (health_poller_) health_poller_->stop();
  for (auto& t : health_threads_) t.join();
}

void Supervisor::run() {
  int64_t next_rotate_ms = 0;
  while (!stopping_) {
    std::vector<pollfd> waits;
    int64_t due_ms = 0;
    int64_t now = 0;
    {
      std::lock_guard lock(mutex_);
      now = steady_now_ms();
      const bool rotate = now >= next_rotate_ms;
      if (rotate) next_rotate_ms = now + kRotateCheckMs;
      due_ms = next_rotate_ms;
      for (auto& node : nodes_) {
        step(*node, now);
        if (rotate) rotate_log(*node);
        if (const auto due = node->policy.next_due_ms(now)) due_ms = std::min(due_ms, *due);
        if (!node->child) continue;
        if (node->pidfd >= 0) {
          waits.push_back(pollfd{node->pidfd, POLLIN, 0});
        } else {
          due_ms = std::min(due_ms, now + kExitPollMs);
        }
      }
    }
    changed_.notify_all();
    waits.push_back(pollfd{wake_fd_, POLLIN, 0});
    // At least 1 ms: something due "now" was just acted on, so this never spins.
    const int64_t wait_ms = std::max<int64_t>(1, due_ms - now);
    ::poll(waits.data(), waits.size(), static_cast<int>(std::min<int64_t>(wait_ms, INT32_MAX)));
    uint64_t count = 0;
    if (waits.back().revents != 0 && ::read(wake_fd_, &count, sizeof count) < 0) {
      // EAGAIN: another thread's wake was already taken.
    }
  }
}

void Supervisor::sleep_unless_stopping(int ms) {
  std::unique_lock lock(sleep_mutex_);
  sleep_cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_.load(); });
}

void Supervisor::step(Node& node, int64_t now) {
  reap(node, now);
  switch (node.policy.tick(now)) {
    case Action::kSpawn:
      spawn(node, now);
      break;
    case Action::kTerminate:
      signal(node, SIGTERM);
      break;
    case Action::kKill:
      if (node.policy.hung_kill_pending()) {
        ++counters_.hung_kills;
        store_.add_event(node.spec->name, "hung", "health check silent; killing it");
        log_.warn("node " + node.spec->name + ": health check silent, killing it");
      }
      signal(node, SIGKILL);
      break;
    case Action::kNone:
      break;
  }
}

void Supervisor::reap(Node& node, int64_t now) {
  if (!node.child) return;
  std::error_code ec;
  if (node.child->running(ec)) return;
  const int raw = node.child->native_exit_code();
  ExitStatus status;
  if (WIFSIGNALED(raw)) {
    status.signal = WTERMSIG(raw);
  } else if (WIFEXITED(raw)) {
    status.code = WEXITSTATUS(raw);
  }
  node.child.reset();
  if (node.pidfd >= 0) ::close(node.pidfd);
  node.pidfd = -1;
  fs::remove(node.pid_file);
  ++counters_.exits;
  const ExitVerdict verdict = node.policy.exited(now, status);
  record_exit(node, status, verdict);
  if (on_exit_) on_exit_(*node.spec);
}

void Supervisor::record_exit(Node& node, const ExitStatus& status, const ExitVerdict& verdict) {
  node.record.last_exit_code = status.code;
  node.record.last_exit_signal = status.signal;
  node.record.last_exit_at = iso8601_utc(std::chrono::duration_cast<std::chrono::microseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  node.record.last_exit_reason =
      status.code || status.signal ? status.describe() : verdict.detail;  // could not start
  if (node.policy.restarts() > node.record.restarts) ++counters_.restarts;
  node.record.restarts = node.policy.restarts();
  store_.save_node(node.spec->name, node.record);
  const std::string& name = node.spec->name;
  log_.info("node " + name + ": " + verdict.detail);
  switch (verdict.next) {
    case NodeState::kFailed:
      store_.add_event(name, "exited", verdict.detail);
      store_.add_event(name, "failed", "restart limit reached; start it through the API");
      break;
    case NodeState::kBackoff:
      store_.add_event(name, "exited", verdict.detail);
      store_.add_event(name, "restarting", "in " + std::to_string(verdict.delay_ms) + " ms");
      break;
    case NodeState::kStopped:
      store_.add_event(name, "stopped", verdict.detail);
      break;
    default:
      store_.add_event(name, "exited", verdict.detail);
      break;
  }
}

void Supervisor::spawn(Node& node, int64_t now) {
  auto args = worker_args(config_, *node.spec);
  if (!node.health_socket.empty()) {
    args.push_back("--health-socket");
    args.push_back(node.health_socket);
  }
  const int log_fd = ::open(node.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const pid_t parent = ::getpid();
  // In the child, before exec: no signal stays blocked (the manager blocks SIGTERM for Poco's
  // sigwait), the node dies with the manager, output goes to its file, no manager socket leaks.
  auto setup = [log_fd, parent](auto&) {
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    ::setpgid(0, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    for (int fd = 3; fd < kFdsToCloseMax; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  };
  std::error_code ec;
  try {
    node.child =
        std::make_unique<bp::child>(bp::exe = worker_path_, bp::args = args, bp::std_in < bp::null,
                                    bp::extend::on_exec_setup = setup, ec);
  } catch (const std::exception& e) {
    ec = std::make_error_code(std::errc::invalid_argument);
    log_.error(std::string("spawn: ") + e.what());
  }
  if (log_fd >= 0) ::close(log_fd);
  if (ec || !node.child || !node.child->valid()) {
    node.child.reset();
    const ExitVerdict verdict = node.policy.spawn_failed(now, worker_path_ + ": " + ec.message());
    record_exit(node, ExitStatus{}, verdict);
    return;
  }
  ++counters_.spawns;
  node.pidfd = open_pidfd(node.child->id());
  node.policy.spawned(now);
  node.started_ms = now;
  node.stats_json.clear();
  const int pid = node.child->id();
  std::ofstream(node.pid_file) << pid << "\n";
  store_.add_event(node.spec->name, "started", "pid " + std::to_string(pid));
  log_.info("node " + node.spec->name + ": started, pid " + std::to_string(pid));
}

void Supervisor::signal(Node& node, int sig) {
  if (node.child) ::kill(node.child->id(), sig);
}

// Size rotation by copy and truncate: the node keeps writing to the same file (O_APPEND), so
// its output never depends on the manager reading a pipe. A few lines written during the copy
// may be lost; that is the price of a node that survives a slow manager.
void Supervisor::rotate_log(Node& node) {
  std::error_code ec;
  const auto size = fs::file_size(node.log_file, ec);
  if (ec || static_cast<int64_t>(size) <= config_.node_log_bytes_max) return;
  for (int i = config_.node_log_files_max - 1; i >= 1; --i) {
    fs::rename(node.log_file + "." + std::to_string(i), node.log_file + "." + std::to_string(i + 1),
               ec);
  }
  if (config_.node_log_files_max >= 1) {
    fs::copy_file(node.log_file, node.log_file + ".1", fs::copy_options::overwrite_existing, ec);
  }
  ::truncate(node.log_file.c_str(), 0);
}

// One probe: /health/live (an empty 204) on the kept connection, and the node's /stats when the
// copy the sampler reads is older than kStatsRefreshMs.
void Supervisor::probe_health(const HealthProbe& p, HttpConnection& connection,
                              int64_t* stats_fetched_ms) {
  auto get = [&](const std::string& target) {
    return connection.request("GET", target, "", {}, kHealthTimeoutMs);
  };
  const auto health = get("/health/live");
  const bool ok = health && health->status >= 200 && health->status < 300;
  std::optional<std::string> stats;
  if (ok && steady_now_ms() - *stats_fetched_ms >= kStatsRefreshMs) {
    const auto answer = get("/stats");
    if (answer && answer->status == 200) stats = answer->body;
    *stats_fetched_ms = steady_now_ms();
  }
  record_health(p.name, p.pid, health, std::move(stats));
}

void Supervisor::record_health(const std::string& name, int pid, std::optional<HttpAnswer> health,
                               std::optional<std::string> stats) {
  const bool ok = health && health->status >= 200 && health->status < 300;
  if (health && !ok) {
    log_.warn("node " + name + ": /health/live " + std::to_string(health->status) + " " +
              health->body);
  }
  std::lock_guard lock(mutex_);
  Node* node = find(name);
  if (!node || !node->child || node->child->id() != pid) return;
  if (ok) {
    const NodeState before = node->policy.state();
    node->policy.health_ok(steady_now_ms());
    // Running: the supervisor's next deadline is now the (earlier) hung limit, not the start grace.
    if (before != node->policy.state()) wake();
  } else {
    ++counters_.health_failures;
  }
  if (stats) node->stats_json = std::move(*stats);
}

// The connection is kept from one probe to the next while the node's process lives; a new
// process gets a new one.
void Supervisor::health_loop(const std::string& name) {
  std::unique_ptr<HttpConnection> connection;
  int connected_pid = 0;
  int64_t stats_fetched_ms = 0;
  while (!stopping_) {
    std::optional<HealthProbe> probe;
    {
      std::lock_guard lock(mutex_);
      const Node* node = find(name);
      if (node && node->child) {
        const WorkerOptions& o = node->spec->resolved;
        const std::string host = o.int_ip == "0.0.0.0" ? "127.0.0.1" : o.int_ip;
        probe = HealthProbe{name, node->child->id(), host, o.int_http_port, node->health_socket};
      }
    }
    if (!probe) {
      connection.reset();
    } else {
      if (!connection || connected_pid != probe->pid) {
        connection = probe->socket.empty() ? std::make_unique<HttpConnection>(
                                                 probe->host, probe->port, config_.http_client_tls)
                                           : std::make_unique<HttpConnection>(probe->socket);
        connected_pid = probe->pid;
        stats_fetched_ms = 0;
      }
      probe_health(*probe, *connection, &stats_fetched_ms);
    }
    sleep_unless_stopping(config_.health_interval_ms);
  }
}

bool Supervisor::node_ready(const std::string& name) const {
  std::string socket;
  std::string host;
  int port = 0;
  {
    std::lock_guard lock(mutex_);
    const Node* node = find(name);
    if (!node || !node->child) return false;
    socket = node->health_socket;
    const WorkerOptions& o = node->spec->resolved;
    host = o.int_ip == "0.0.0.0" ? "127.0.0.1" : o.int_ip;
    port = o.int_http_port;
  }
  const auto answer = socket.empty() ? http_request("GET", host, port, "/health/ready", "", {},
                                                    kHealthTimeoutMs, config_.http_client_tls)
                                     : http_request_unix(socket, "/health/ready", kHealthTimeoutMs);
  return answer && answer->status == 200;
}

NodeView Supervisor::view_of(const Node& node, int64_t now) const {
  NodeView v;
  v.spec = node.spec;
  v.state = node.policy.state();
  if (node.child) {
    v.pid = node.child->id();
    v.uptime_seconds = static_cast<double>(now - node.started_ms) / 1000.0;
  }
  v.next_start_in_ms = node.policy.next_start_in_ms(now);
  v.record = node.record;
  v.record.restarts = node.policy.restarts();
  v.stats_json = node.child ? node.stats_json : "";
  v.log_file = node.log_file;
  v.health_socket = node.health_socket;
  return v;
}

std::vector<NodeView> Supervisor::nodes() const {
  std::lock_guard lock(mutex_);
  std::vector<NodeView> out;
  const int64_t now = steady_now_ms();
  for (const auto& node : nodes_) out.push_back(view_of(*node, now));
  return out;
}

std::optional<NodeView> Supervisor::node(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const Node* n = find(name);
  if (!n) return std::nullopt;
  return view_of(*n, steady_now_ms());
}

bool Supervisor::has_node(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return find(name) != nullptr;
}

bool Supervisor::start_node(const std::string& name) {
  std::lock_guard lock(mutex_);
  Node* n = find(name);
  if (!n) return false;
  store_.add_event(name, "start-requested", "by the operator");
  n->policy.start(steady_now_ms());
  n->record.operator_stopped = false;
  store_.save_node(name, n->record);
  wake();
  return true;
}

bool Supervisor::stop_node(const std::string& name) {
  {
    std::lock_guard lock(mutex_);
    Node* n = find(name);
    if (!n) return false;
    store_.add_event(name, "stop-requested", "by the operator");
    n->policy.stop(steady_now_ms());
    n->record.operator_stopped = true;
    store_.save_node(name, n->record);
    wake();
  }
  return wait_for(
      name, [](const NodeView& v) { return !v.pid.has_value(); },
      config_.limits.stop_grace_ms + 2000);
}

bool Supervisor::wait_for(const std::string& name, const std::function<bool(const NodeView&)>& done,
                          int64_t timeout_ms) const {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    const Node* n = find(name);
    if (!n) return false;
    if (done(view_of(*n, steady_now_ms()))) return true;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return done(view_of(*n, steady_now_ms()));
    }
  }
}

Supervisor::Node* Supervisor::find(const std::string& name) {
  for (auto& node : nodes_) {
    if (node->spec->name == name) return node.get();
  }
  return nullptr;
}

const Supervisor::Node* Supervisor::find(const std::string& name) const {
  for (const auto& node : nodes_) {
    if (node->spec->name == name) return node.get();
  }
  return nullptr;
}

}  // namespace chorus::manager
