// chorus-manager: the per-machine supervisor (issue 5). Parses and validates the configuration
// (exit 2 naming the file and key), then runs as a Poco ServerApplication: the gossip relay, the
// HTTP servers, the supervisor of the nodes; on SIGTERM/SIGINT it stops every node and exits.
// Exit codes: 0 normal, 1 cannot start (port, database), 2 configuration error.
#include "common/log.hpp"
#include "manager/api.hpp"
#include "manager/config.hpp"
#include "manager/gossip_relay.hpp"
#include "manager/metrics_history.hpp"
#include "manager/sampler.hpp"
#include "manager/store.hpp"
#include "manager/supervisor.hpp"

#include <Poco/Environment.h>
#include <Poco/UUIDGenerator.h>
#include <Poco/Util/ServerApplication.h>

#include <unistd.h>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#ifndef CHORUS_VERSION
#define CHORUS_VERSION "unknown"
#endif
#ifndef CHORUS_SOURCE_DIR
#define CHORUS_SOURCE_DIR ""
#endif

extern char** environ;

namespace {

namespace fs = std::filesystem;
using chorus::manager::ManagerConfig;

constexpr int kExitCannotStart = 1;

chorus::Environment read_environment() {
  chorus::Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text(*entry);
    const size_t equals = text.find('=');
    if (equals == std::string::npos || text.rfind("CHORUS_MANAGER_", 0) != 0) continue;
    env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return env;
}

bool read_file(const std::string& path, std::string* text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *text = s.str();
  return true;
}

fs::path exe_dir() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

// chorus-worker next to this binary (installed), or in the CMake build's worker/ folder.
std::string find_worker(const ManagerConfig& config) {
  if (!config.worker_path.empty()) return config.worker_path;
  for (const fs::path& candidate :
       {exe_dir() / "chorus-worker", exe_dir() / ".." / "worker" / "chorus-worker"}) {
    if (fs::exists(candidate)) return fs::weakly_canonical(candidate).string();
  }
  return (exe_dir() / "chorus-worker").string();
}

// The dashboard's files: --web-root, the installed share folder, the CMake build's web_ui
// output (<build>/web-ui/dist beside <build>/manager), or the source tree's build.
std::string find_web_root(const ManagerConfig& config) {
  if (!config.web_root.empty()) return config.web_root;
  const fs::path source(CHORUS_SOURCE_DIR);
  for (const fs::path& candidate :
       {exe_dir() / ".." / "share" / "chorus" / "web", exe_dir() / ".." / "web-ui" / "dist",
        source / "web-ui" / "dist"}) {
    if (fs::exists(candidate / "index.html")) return fs::weakly_canonical(candidate).string();
  }
  return "";
}

class ManagerApp final : public Poco::Util::ServerApplication {
 public:
  explicit ManagerApp(ManagerConfig config) : config_(std::move(config)) {}

 protected:
  int main(const std::vector<std::string>&) override {
    chorus::Log log(chorus::LogLevel::kInformation);
    const std::string log_path = (fs::path(config_.log_folder) / "chorus-manager.log").string();
    if (!log.open_file(log_path)) {
      std::cerr << "chorus-manager: cannot open log file " << log_path << "\n";
      return kExitCannotStart;
    }
    if (config_.name.empty()) config_.name = Poco::Environment::nodeName();
    std::unique_ptr<chorus::manager::Store> store;
    try {
      fs::create_directories(fs::path(config_.db_folder) / "manager");
      store = std::make_unique<chorus::manager::Store>(
          (fs::path(config_.db_folder) / "manager" / "manager.sqlite").string());
    } catch (const std::exception& e) {
      log.error(std::string("cannot open the manager's database: ") + e.what());
      return kExitCannotStart;
    }
    const std::string worker = find_worker(config_);
    const std::string web_root = find_web_root(config_);
    log.info(std::string("chorus-manager ") + CHORUS_VERSION + " starting, pid " +
             std::to_string(::getpid()) + ", worker " + worker + ", dashboard " +
             (web_root.empty() ? "(none)" : web_root));
    log.info(config_.cluster_secret.empty()
                 ? std::string("no cluster secret (Insecure): gossip is not authenticated")
                 : "cluster secret: " + config_.cluster_secret_file);
    const std::string instance = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
    chorus::manager::GossipRelay relay(config_, log, instance);
    chorus::manager::Supervisor supervisor(config_, *store, log, worker);
    supervisor.set_on_exit(
        [&relay](const chorus::manager::NodeSpec& node) { relay.node_exited(node); });
    std::atomic<bool> stopping{false};
    std::vector<std::string> node_names;
    for (const auto& node : config_.nodes) node_names.push_back(node.name);
    chorus::manager::MetricsHistory history(node_names);
    chorus::manager::MetricsSampler sampler(supervisor, relay, history);
    chorus::manager::MachinesCache machines;
    chorus::manager::ApiServers api(chorus::manager::ApiContext{
        config_, supervisor, relay, *store, log, web_root, CHORUS_VERSION,
        chorus::manager::steady_now_ms(), &stopping, &history, &machines});
    try {
      api.start();
    } catch (const std::exception& e) {
      const std::string message = std::string("cannot listen on ") + config_.int_ip + ":" +
                                  std::to_string(config_.int_http_port) + " / " + config_.ext_ip +
                                  ":" + std::to_string(config_.ext_http_port) + ": " + e.what();
      log.error(message);
      std::cerr << "chorus-manager: " << message << "\n";
      return kExitCannotStart;
    }
    const std::string http = config_.certificates ? "HTTPS " : "HTTP ";
    log.info("listening: internal " + http + config_.int_ip + ":" +
             std::to_string(config_.int_http_port) + ", external " + http + config_.ext_ip + ":" +
             std::to_string(config_.ext_http_port) +
             (config_.ext_http_port_v5 != 0
                  ? ", external " + http + "with v5 gossip names " + config_.ext_ip + ":" +
                        std::to_string(config_.ext_http_port_v5)
                  : std::string()));
    if (config_.certificates) {
      const auto summary = config_.certificates->summary();
      log.info("TLS on: certificate " + summary.subject + ", valid until " + summary.not_after +
               ", " + std::to_string(summary.trusted_roots) + " trusted root(s)");
    }
    store->add_event("", "manager-started", "pid " + std::to_string(::getpid()));
    relay.start();
    supervisor.start();
    sampler.start();
    waitForTerminationRequest();
    log.info("termination requested: stopping the nodes");
    stopping = true;
    sampler.stop();
    supervisor.shutdown();
    api.stop();
    relay.stop();
    store->add_event("", "manager-stopped", "pid " + std::to_string(::getpid()));
    log.info("stopped");
    return EXIT_OK;
  }

 private:
  ManagerConfig config_;
};

}  // namespace

int main(int argc, char** argv) {
  // Every thread inherits this mask, so SIGTERM/SIGINT reach only Poco's sigwait in
  // waitForTerminationRequest(); the nodes unblock them before exec.
  sigset_t termination;
  sigemptyset(&termination);
  sigaddset(&termination, SIGINT);
  sigaddset(&termination, SIGTERM);
  sigaddset(&termination, SIGQUIT);
  ::pthread_sigmask(SIG_BLOCK, &termination, nullptr);
  const auto parsed =
      chorus::manager::parse_manager_config(argc, argv, read_environment(), read_file);
  if (!parsed.ok()) {
    std::cerr << "chorus-manager: " << parsed.error << "\n";
    return parsed.exit_code;
  }
  if (parsed.config.help) {
    std::cout << chorus::manager::manager_help();
    return 0;
  }
  if (parsed.config.what_if) {
    for (const auto& line : parsed.effective) std::cout << line << "\n";
    return 0;
  }
  if (auto problem = chorus::manager::validate_folders(parsed.config); !problem.empty()) {
    std::cerr << "chorus-manager: " << problem << "\n";
    return chorus::manager::kConfigErrorExitCode;
  }
  chorus::manager::ManagerConfig config = parsed.config;
  if (auto problem = chorus::manager::resolve_cluster_secret(config); !problem.empty()) {
    std::cerr << "chorus-manager: " << problem << "\n";
    return chorus::manager::kConfigErrorExitCode;
  }
  const std::string worker = find_worker(config);
  if (::access(worker.c_str(), X_OK) != 0) {
    std::cerr << "chorus-manager: "
              << (parsed.config.config_file.empty() ? "(no config file)"
                                                    : parsed.config.config_file)
              << ": WorkerPath: '" << worker << "' is not an executable file\n";
    return chorus::manager::kConfigErrorExitCode;
  }
  if (auto problem = chorus::manager::load_certificates(config); !problem.empty()) {
    std::cerr << "chorus-manager: " << problem << "\n";
    return chorus::manager::kConfigErrorExitCode;
  }
  if (config.insecure && !config.certificate_file.empty()) {
    std::cerr
        << "chorus-manager: Insecure: the certificate keys are ignored, every port is plain\n";
  }
  ManagerApp app(std::move(config));
  std::vector<char*> app_argv{argv[0]};
  std::vector<std::string> daemon_args = parsed.config.daemon_args;
  for (std::string& a : daemon_args) app_argv.push_back(a.data());
  app_argv.push_back(nullptr);
  return app.run(static_cast<int>(app_argv.size()) - 1, app_argv.data());
}
