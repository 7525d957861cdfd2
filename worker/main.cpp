// chorus-worker: one database node. Parses the options, opens the log and the engine, serves
// EventStore's external TCP protocol on the engine's core thread and the external and internal
// HTTP APIs (Poco), and shuts down cleanly on SIGINT/SIGTERM or POST /admin/shutdown. Exit codes: 0
// normal, 1 cannot start (database, folders, port), 2 usage error.
#include "common/backup.hpp"
#include "common/cluster_auth.hpp"
#include "common/guid.hpp"
#include "common/log.hpp"
#include "common/options.hpp"
#include "common/tls.hpp"
#include "worker/cluster/gossip_service.hpp"
#include "worker/cluster/replacement_watch.hpp"
#include "worker/cluster/router.hpp"
#include "worker/cluster/transport.hpp"
#include "worker/cluster/voter_set.hpp"
#include "worker/engine/engine.hpp"
#include "worker/engine/space_monitor.hpp"
#include "worker/engine/users.hpp"
#include "worker/http/http_server.hpp"
#include "worker/http/node_api.hpp"
#include "worker/http/stats_stream.hpp"
#include "worker/tcp/dispatch.hpp"
#include "worker/tcp/forwarded_write.hpp"
#include "worker/tcp/tcp_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/system/system_error.hpp>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#ifndef CHORUS_VERSION
#define CHORUS_VERSION "unknown"
#endif

extern char** environ;

namespace {

constexpr int kExitCannotStart = 1;
// Storage failed while running: exit with EX_TEMPFAIL, the manager's "restart me" code, so the
// node restarts from what is on disk instead of running on with writes stopped.
constexpr int kExitStorageFailed = 75;
constexpr const char* kProgram = "chorus-worker";
constexpr const char* kLogFileName = "chorus-worker.log";
constexpr const char* kInstanceIdFileName = chorus::backup::kInstanceIdFileName;

// The process environment, CHORUS_* variables only (the parser ignores the rest anyway).
chorus::Environment read_environment() {
  chorus::Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text(*entry);
    const size_t equals = text.find('=');
    if (equals == std::string::npos || text.rfind("CHORUS_", 0) != 0) continue;
    env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return env;
}

// Creates `folder` (and its parents) if missing; returns "" or the reason it cannot be used.
std::string ensure_folder(const std::string& folder) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) return ec.message();
  if (!std::filesystem::is_directory(folder, ec)) return "not a folder";
  return "";
}

int fail_to_start(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
  return kExitCannotStart;
}

// Opens the log file in the --log folder and writes the effective options to it.
std::string start_log(chorus::Log& log, const chorus::ParseResult& parsed) {
  const chorus::WorkerOptions& options = parsed.options;
  if (std::string problem = ensure_folder(options.log_folder); !problem.empty()) {
    return "cannot create log folder '" + options.log_folder + "': " + problem;
  }
  const std::string path = (std::filesystem::path(options.log_folder) / kLogFileName).string();
  if (!log.open_file(path)) return "cannot open log file '" + path + "'";
  log.info(std::string(kProgram) + " " + CHORUS_VERSION + " starting, pid " +
           std::to_string(::getpid()));
  std::string lines = chorus::format_effective_options(parsed.effective);
  size_t start = 0;
  while (start < lines.size()) {
    const size_t end = lines.find('\n', start);
    log.info(lines.substr(start, end - start));
    start = end == std::string::npos ? lines.size() : end + 1;
  }
  return "";
}

chorus::EngineConfig engine_config(const chorus::WorkerOptions& options) {
  chorus::EngineConfig config;
  config.db_folder = options.db_folder;
  config.in_memory = options.mem_db;
  config.reader_threads = options.reader_threads_count;
  config.commit_timeout_ms = options.commit_timeout_ms;
  config.transaction_timeout_ms = options.transaction_timeout_ms;
  config.run_system_projections = options.run_projections != "None";
  config.start_standard_projections = options.start_standard_projections;
  config.run_user_projections = options.run_projections == "All";
  config.projection_threads = options.projection_threads;
  config.default_admin_password = options.default_admin_password;
  config.default_ops_password = options.default_ops_password;
  config.cluster.node_id = options.int_ip + ":" + std::to_string(options.int_tcp_port);
  config.cluster.endpoint = config.cluster.node_id;
  config.cluster.cluster_size = options.cluster_size;
  config.cluster.node_priority = options.node_priority;
  config.cluster.election_timeout_ms_min = options.leader_election_timeout_ms;
  config.cluster.election_timeout_ms_max = options.leader_election_timeout_ms * 2;
  // Three heartbeats per shortest election timeout: a dead leader is noticed when its
  // connections close (Core::peer_lost), so heartbeats only need to outlast a lost one or a
  // partition, and an idle cluster sends half as many as with six.
  config.cluster.heartbeat_ms = std::max(10, options.leader_election_timeout_ms / 3);
  config.on_storage_failure = [](const std::string& reason) {
    // Nothing after the failure may be acknowledged; what is on disk is consistent (SQLite's
    // journal), so a restart picks up from there and catches up from the cluster.
    std::cerr << kProgram << ": storage failed (" << reason << "); exiting with code "
              << kExitStorageFailed << " to be restarted" << std::endl;
    std::_Exit(kExitStorageFailed);
  };
  return config;
}

chorus::cluster::GossipConfig gossip_config(const chorus::WorkerOptions& options,
                                            const chorus::tls::Certificates* certificates) {
  chorus::cluster::GossipConfig config;
  if (certificates != nullptr) config.tls = certificates->poco_client_context();
  config.cluster_name = options.cluster_name;
  for (const auto& seed : options.gossip_seeds) config.seeds.emplace_back(seed.host, seed.port);
  // A single node needs nobody; it does not look for peers in DNS.
  config.discover_via_dns = options.discover_via_dns && options.cluster_size > 1;
  config.cluster_dns = options.cluster_dns;
  config.cluster_gossip_port = options.cluster_gossip_port;
  config.interval_ms = options.gossip_interval_ms;
  config.timeout_ms = options.gossip_timeout_ms;
  return config;
}

// The user a forwarded request runs as. A Forward carries the login only, never groups: the
// follower checked the client's password, the link proved it a member (cluster secret or mutual
// TLS), and the leader takes the groups from its own copy of the user record, so a claimed
// "$admins" cannot travel. (Re-checking the password here would send it over the internal network
// and cost a PBKDF2 run per forwarded request.) nullopt: no such user, or disabled.
void forwarded_user(chorus::Engine& engine, const std::string& login,
                    std::function<void(std::optional<chorus::Principal>)> done) {
  if (login.empty()) return done(chorus::Principal::anon());
  // The engine's own reader: user records are readable by admins only.
  const chorus::Principal system{"$system", {"$admins"}};
  engine.read_event(
      system, chorus::user_stream(login), -1, false,
      [login, done = std::move(done)](chorus::ReadEventResult r) {
        if (r.status != chorus::ReadEventStatus::Success || !r.event || !r.event->event) {
          return done(std::nullopt);
        }
        const auto user = chorus::user_from_json(r.event->event->data);
        if (!user || user->disabled || user->login != login) return done(std::nullopt);
        done(chorus::Principal{user->login, user->groups});
      });
}

// The leader runs a request that a follower forwarded, as the client's user, with the same
// request handling as its own TCP clients.
void run_forward(chorus::Engine& engine, const chorus::Principal& who,
                 const chorus::internal::Forward& request,
                 std::function<void(chorus::internal::ForwardReply)> reply) {
  chorus::wire::Package package;
  package.command = static_cast<uint8_t>(request.command());
  package.payload = request.payload();
  const uint64_t id = request.request_id();
  const auto outcome = chorus::tcp::dispatch_request(
      engine, who, package,
      [&engine, reply, id](chorus::wire::Command command, std::string payload) {
        // The follower answers its client once it shows the write: the commit position goes
        // to the followers now, not with the next write's Append (Core::announce_commit).
        engine.announce_commit();
        chorus::internal::ForwardReply r;
        r.set_request_id(id);
        r.set_command(static_cast<uint32_t>(command));
        r.set_payload(std::move(payload));
        reply(std::move(r));
      });
  if (outcome != chorus::tcp::DispatchOutcome::Submitted) {
    chorus::internal::ForwardReply r;
    r.set_request_id(id);
    r.set_command(static_cast<uint32_t>(chorus::wire::Command::BadRequest));
    r.set_payload(chorus::tcp::unwrap_error_text(package.command));
    reply(std::move(r));
  }
}

void handle_forward(chorus::Engine& engine, const chorus::internal::Forward& request,
                    std::function<void(chorus::internal::ForwardReply)> reply) {
  // A follower's own statistics (StatsStream); "$system" is no user, so nothing else passes.
  if (request.login() == chorus::tcp::kSystemLogin) {
    const auto command = static_cast<uint8_t>(request.command());
    if (chorus::tcp::system_forward_allowed(command, request.payload())) {
      return run_forward(engine, chorus::Principal{"$system", {"$admins"}}, request, reply);
    }
    chorus::internal::ForwardReply r;
    r.set_request_id(request.request_id());
    r.set_command(static_cast<uint32_t>(chorus::wire::Command::NotAuthenticated));
    r.set_payload("Not authenticated: the system forwards statistics only");
    return reply(std::move(r));
  }
  forwarded_user(
      engine, request.login(),
      [&engine, request, reply = std::move(reply)](std::optional<chorus::Principal> who) {
        if (who) return run_forward(engine, *who, request, reply);
        chorus::internal::ForwardReply r;
        r.set_request_id(request.request_id());
        r.set_command(static_cast<uint32_t>(chorus::wire::Command::NotAuthenticated));
        r.set_payload("Not authenticated: unknown or disabled user");
        reply(std::move(r));
      });
}

// A --mem-db node's identity: it keeps nothing between runs, so every start of it is a new, empty
// node at the same seat of the voter set; a name-based id (cluster name and internal TCP
// endpoint) keeps that seat without a file. A node with a data folder never uses it.
std::string mem_db_instance_id(const chorus::WorkerOptions& options) {
  const std::string digest = chorus::auth::hmac_sha256(
      "chorus-mem-db-instance-id-1",
      options.cluster_name + "\n" + options.int_ip + ":" + std::to_string(options.int_tcp_port));
  std::string bytes = digest.substr(0, 16);
  bytes[6] = static_cast<char>((bytes[6] & 0x0F) | 0x50);  // RFC 4122 version 5 (name-based)
  bytes[8] = static_cast<char>((bytes[8] & 0x3F) | 0x80);  // and variant
  return chorus::to_string(*chorus::from_raw_bytes(bytes));
}

// The node's identity, kept with its data so that it survives restarts; "" with `error` when
// the file cannot be read or written.
std::string instance_id(const chorus::WorkerOptions& options, std::string* error) {
  if (options.mem_db) return mem_db_instance_id(options);
  const auto path = std::filesystem::path(options.db_folder) / kInstanceIdFileName;
  std::string text;
  if (std::ifstream in(path); in && std::getline(in, text) && chorus::parse_guid(text)) {
    return text;
  }
  if (std::filesystem::exists(path)) {
    *error = "instance id file '" + path.string() + "' is not a GUID";
    return "";
  }
  text = chorus::to_string(chorus::random_guid());
  std::ofstream out(path);
  out << text << "\n";
  out.flush();
  if (!out) *error = "cannot write instance id file '" + path.string() + "'";
  return out ? text : "";
}

// The voter set (docs/cluster.md): --cluster-member or free seats, and the pins kept in the data
// folder; null with `error` when the pins do not fit the configuration.
std::unique_ptr<chorus::cluster::VoterBook> voter_book(chorus::Log& log,
                                                       const chorus::WorkerOptions& options,
                                                       const std::string& self_instance,
                                                       std::string* error) {
  using chorus::cluster::Voter;
  const Voter self{options.int_ip + ":" + std::to_string(options.int_tcp_port), self_instance};
  std::vector<std::string> listed;
  for (const auto& m : options.cluster_members) {
    listed.push_back(m.host + ":" + std::to_string(m.port));
  }
  std::vector<Voter> pins;
  if (!options.mem_db) {
    auto loaded = chorus::cluster::load_voter_pins(options.db_folder, error);
    if (!loaded) return nullptr;
    pins = std::move(*loaded);
  }
  *error = chorus::cluster::VoterSet::check(self, options.cluster_size, listed, pins);
  if (!error->empty()) return nullptr;
  log.info("voters: this node " + self_instance + " at " + self.endpoint + ", " +
           std::to_string(pins.size()) + " other(s) pinned, " +
           std::to_string(options.cluster_size) + " seats" +
           (listed.empty() ? "" : " (--cluster-member)"));
  return std::make_unique<chorus::cluster::VoterBook>(
      chorus::cluster::VoterSet(self, options.cluster_size, listed, pins),
      options.mem_db ? "" : options.db_folder, [&log](const std::string& line, bool refused) {
        if (refused) {
          log.warn(line);
        } else {
          log.info(line);
        }
      });
}

bool is_loopback(const std::string& ip) {
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(ip, ec);
  return !ec && address.is_loopback();
}

// The cluster secret, if one is configured. Without one (and without certificates, whose mutual
// TLS authenticates members too), a node whose internal address is reachable from other machines
// must be told it may run unprotected (--insecure).
std::optional<chorus::auth::Secret> cluster_secret(const chorus::WorkerOptions& options,
                                                   std::string* error) {
  if (!options.cluster_secret_file.empty()) {
    return chorus::auth::load_secret_file(options.cluster_secret_file, error);
  }
  if (options.tls_enabled() || is_loopback(options.int_ip) || options.insecure) {
    return chorus::auth::Secret{};
  }
  *error = "the internal address " + options.int_ip +
           " is not loopback, and neither a cluster secret (--cluster-secret-file) nor "
           "certificates protect the internal ports: anyone who reaches them could join the "
           "cluster. Give --cluster-secret-file (see docs/security.md), or --insecure to run "
           "unprotected on a trusted network.";
  return std::nullopt;
}

chorus::tcp::TcpServerConfig tcp_config(const chorus::WorkerOptions& options,
                                        std::shared_ptr<chorus::tcp::ClientLimits> limits) {
  chorus::tcp::TcpServerConfig config;
  config.ip = options.ext_ip;
  config.port = options.ext_tcp_port;
  config.heartbeat_interval_ms = options.ext_tcp_heartbeat_interval_ms;
  config.heartbeat_timeout_ms = options.ext_tcp_heartbeat_timeout_ms;
  // One connection count and one partial-frame budget for the node: the plain and the secure
  // server get copies of this config, so they share them.
  config.limits = std::move(limits);
  return config;
}

// The external TCP servers: the plain port (unless --disable-insecure-tcp) and the secure port
// (with --ext-secure-tcp-port). They share one set of request metrics.
struct TcpServers {
  std::unique_ptr<chorus::tcp::TcpServer> plain;
  std::unique_ptr<chorus::tcp::TcpServer> secure;
  std::shared_ptr<chorus::tcp::TcpMetrics> metrics = std::make_shared<chorus::tcp::TcpMetrics>();
  std::shared_ptr<chorus::tcp::ClientLimits> limits;  // shared by both servers

  int connections() const {
    return (plain ? plain->connections() : 0) + (secure ? secure->connections() : 0);
  }
  void stop() {
    if (plain) plain->stop();
    if (secure) secure->stop();
  }
};

TcpServers make_tcp_servers(boost::asio::io_context& io, boost::asio::io_context& decode_io,
                            chorus::Engine& engine, const chorus::WorkerOptions& options,
                            const chorus::tls::Certificates* certificates,
                            const chorus::tcp::ClusterState* cluster,
                            std::shared_ptr<chorus::tcp::ClientLimits> limits) {
  TcpServers servers;
  auto config = tcp_config(options, std::move(limits));
  config.cluster = cluster;
  config.metrics = servers.metrics;
  config.one_thread = true;  // `io` is the engine's core io_context, run by its one thread
  // Large writes are decoded on the main thread (otherwise idle: signals and the shutdown), so the
  // core thread does not spend tens of milliseconds on a 64 MiB frame while others wait.
  config.decode_executor = decode_io.get_executor();
  servers.limits = config.limits;
  if (!options.disable_insecure_tcp) {
    servers.plain = std::make_unique<chorus::tcp::TcpServer>(io, engine, config);
  }
  if (options.ext_secure_tcp_port != 0 && certificates != nullptr) {
    config.port = options.ext_secure_tcp_port;
    // Clients of the native protocol authenticate with credentials, not certificates.
    config.tls = certificates->asio_server_context(/*require_peer_certificate=*/false);
    servers.secure = std::make_unique<chorus::tcp::TcpServer>(io, engine, config);
  }
  return servers;
}

// Starts one external TCP server; "" or the reason it cannot listen.
std::string start_tcp(chorus::Log& log, chorus::tcp::TcpServer& server, const std::string& ip,
                      uint16_t port, const char* what) {
  const std::string endpoint = ip + ":" + std::to_string(port);
  // The contract says std::system_error; an Asio call that escapes throws Boost's own type.
  std::string listen_error;
  try {
    server.start();
  } catch (const std::system_error& e) {
    listen_error = e.code().message();
  } catch (const boost::system::system_error& e) {
    listen_error = e.code().message();
  }
  if (!listen_error.empty()) {
    const std::string message =
        std::string("cannot listen on ") + endpoint + " for " + what + ": " + listen_error;
    log.error(message);
    return message;
  }
  std::cout << kProgram << " listening: " << what << " " << endpoint << std::endl;
  log.info(std::string("listening: ") + what + " " + endpoint);
  return "";
}

// What the HTTP node endpoints report; `shutdown` must only post the real work.
chorus::http::NodeConfig http_node_config(const chorus::ParseResult& parsed,
                                          const TcpServers& servers,
                                          std::function<void()> shutdown) {
  const chorus::WorkerOptions& options = parsed.options;
  chorus::http::NodeConfig config;
  config.version = CHORUS_VERSION;
  config.ext_ip = options.ext_ip;
  config.int_ip = options.int_ip;
  config.ext_tcp_port = options.disable_insecure_tcp ? 0 : options.ext_tcp_port;
  config.ext_secure_tcp_port = servers.secure ? options.ext_secure_tcp_port : 0;
  config.int_tcp_port = options.int_tcp_port;
  config.ext_http_port = options.ext_http_port;
  config.int_http_port = options.int_http_port;
  config.ext_http_port_v5 = options.ext_http_port_v5;
  config.node_priority = options.node_priority;
  config.db_folder = options.db_folder;
  config.in_memory = options.mem_db;
  for (const chorus::EffectiveOption& option : parsed.effective) {
    config.options.push_back(
        {option.name, option.value_text, std::string(chorus::to_string(option.source))});
  }
  config.tcp_connections = [&servers] { return servers.connections(); };
  config.tcp_partial_frame_bytes = [limits = servers.limits] {
    return static_cast<int64_t>(limits->partial_frames().used_bytes());
  };
  auto metrics = servers.metrics;
  config.tcp_requests = [metrics] { return metrics->requests.load(); };
  config.tcp_request_durations = [metrics] { return metrics->request_duration_seconds.snapshot(); };
  config.tcp_write_durations = [metrics] { return metrics->write_duration_seconds.snapshot(); };
  config.request_shutdown = std::move(shutdown);
  return config;
}

// Starts one HTTP server; "" or the reason it cannot listen.
// start_http's port for a listener on a Unix socket (the "ip" is then its path).
constexpr int kNoPort = -1;

std::string start_http(chorus::Log& log, chorus::http::HttpServer& server, const std::string& ip,
                       int port, const char* what) {
  const std::string endpoint = port == kNoPort ? ip : ip + ":" + std::to_string(port);
  try {
    server.start();
  } catch (const std::exception& e) {
    const std::string message =
        std::string("cannot listen on ") + endpoint + " for " + what + ": " + e.what();
    log.error(message);
    return message;
  }
  std::cout << kProgram << " listening: " << what << " " << endpoint << std::endl;
  log.info(std::string("listening: ") + what + " " + endpoint);
  return "";
}

// What the TCP front end asks about the cluster, answered by the cluster Router.
class RouterState final : public chorus::tcp::ClusterState {
 public:
  explicit RouterState(chorus::cluster::Router& router) : router_(router) {}
  bool is_leader() const override { return router_.is_leader(); }
  bool caught_up() const override { return router_.caught_up(); }
  std::optional<chorus::tcp::LeaderInfo> leader() const override {
    const auto l = router_.leader();
    if (!l) return std::nullopt;
    return chorus::tcp::LeaderInfo{l->external_tcp_ip, l->external_tcp_port,
                                   l->external_secure_tcp_port, l->external_http_ip,
                                   l->external_http_port};
  }
  void forward(
      const chorus::Principal& who, uint8_t command, std::string payload,
      std::function<void(std::optional<std::pair<uint8_t, std::string>>)> done) const override {
    router_.forward(who, command, std::move(payload),
                    [done = std::move(done)](std::optional<chorus::cluster::ForwardedReply> r) {
                      if (!r) return done(std::nullopt);
                      done(std::make_pair(r->command, std::move(r->payload)));
                    });
  }

 private:
  chorus::cluster::Router& router_;
};

// The node's cluster parts: the internal transport (replication), gossip and client routing.
struct ClusterParts {
  std::unique_ptr<chorus::cluster::Transport> transport;
  std::unique_ptr<chorus::cluster::GossipService> gossip;
  std::unique_ptr<chorus::cluster::Router> router;
  chorus::auth::Secret secret;  // empty: internal traffic is not signed
  std::string instance_id;
  std::unique_ptr<chorus::cluster::VoterBook> voters;
};

// Passes a write of this node's own to the leader (as "$system", which handle_forward lets
// through for statistics only); no leader or no answer in time is NotLeader.
void forward_system_write(chorus::cluster::Router& router, const std::string& request,
                          std::function<void(chorus::WriteResult)> done) {
  router.forward(chorus::Principal{chorus::tcp::kSystemLogin, {}},
                 static_cast<uint8_t>(chorus::wire::Command::WriteEvents), request,
                 [done = std::move(done)](std::optional<chorus::cluster::ForwardedReply> r) {
                   if (r) {
                     return done(chorus::tcp::forwarded_write_result(
                         static_cast<chorus::wire::Command>(r->command), r->payload));
                   }
                   chorus::WriteResult none;
                   none.not_handled = chorus::NotHandledReason::NotLeader;
                   done(none);
                 });
}

// Writes one of this node's own events as the system: on the leader through the engine, on a
// follower forwarded to the leader.
chorus::http::StatsStream::Write system_writer(chorus::Engine& engine,
                                               chorus::cluster::Router& router) {
  return [&engine, &router](const std::string& stream, int64_t expected, chorus::NewEvent event,
                            std::function<void(chorus::WriteResult)> done) {
    std::vector<chorus::NewEvent> events{std::move(event)};
    std::string request = chorus::tcp::write_events_request(stream, expected, events);
    engine.append(chorus::Principal{"$system", {"$admins"}}, stream, expected, std::move(events),
                  [&router, request = std::move(request), done](chorus::WriteResult w) {
                    if (w.not_handled != chorus::NotHandledReason::NotLeader) return done(w);
                    forward_system_write(router, request, done);
                  });
  };
}

// Serves until SIGINT, SIGTERM or POST /admin/shutdown, then stops the servers, shuts the engine
// down (fsync, close) and stops the io_context.
int serve(chorus::Log& log, const chorus::ParseResult& parsed, boost::asio::io_context& io,
          boost::asio::io_context& core_io, chorus::Engine& engine, ClusterParts& cluster,
          const chorus::tls::Certificates* certificates, chorus::SpaceMonitor& space,
          std::shared_ptr<chorus::tcp::ClientLimits> client_limits) {
  const chorus::WorkerOptions& options = parsed.options;
  RouterState router_state(*cluster.router);
  // The client connections live on the engine's core thread: a write is read, stepped through
  // the core and answered there, and only the storage writer is a second thread on its way.
  TcpServers servers = make_tcp_servers(core_io, io, engine, options, certificates, &router_state,
                                        std::move(client_limits));
  std::unique_ptr<chorus::http::HttpServer> ext_http;
  std::unique_ptr<chorus::http::HttpServer> int_http;
  std::unique_ptr<chorus::http::HttpServer> v5_http;      // --ext-http-port-v5, when set
  std::unique_ptr<chorus::http::HttpServer> health_http;  // the manager's, when it names one
  std::unique_ptr<chorus::http::NodeApi> stats_api;       // what the statistics stream writes
  std::unique_ptr<chorus::http::StatsStream> stats;       // --stats-period-sec, when not 0
  bool stopped = false;
  auto shutdown = [&] {
    if (stopped) return;
    stopped = true;
    stats.reset();
    if (ext_http) ext_http->stop();
    if (int_http) int_http->stop();
    if (v5_http) v5_http->stop();
    if (health_http) health_http->stop();
    servers.stop();
    cluster.gossip->stop();
    engine.shutdown();
    cluster.transport->stop();
    io.stop();
  };
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    log.info("signal " + std::to_string(signal_number) + " received, shutting down");
    shutdown();
  });
  auto node_config = http_node_config(parsed, servers, [&io, &log, &shutdown] {
    boost::asio::post(io, [&log, &shutdown] {
      log.info("shutdown requested over HTTP");
      shutdown();
    });
  });
  node_config.cluster_secret = cluster.secret;
  node_config.instance_id = cluster.instance_id;
  node_config.space = [&space] { return space.report(); };
  auto* gossip = cluster.gossip.get();
  node_config.gossip_view = [gossip] { return gossip->view(); };
  node_config.gossip_push = [gossip](const chorus::ClusterInfo& view, std::string* error) {
    return gossip->handle_push(view, error);
  };
  node_config.gossip_unchanged = [gossip](const chorus::UnchangedPush& push) {
    return gossip->handle_unchanged(push);
  };
  auto* router = cluster.router.get();
  const Poco::Net::Context::Ptr http_client_tls =
      certificates != nullptr ? certificates->poco_client_context() : nullptr;
  node_config.leader_http = [router, http_client_tls]() -> std::optional<chorus::http::LeaderHttp> {
    const auto leader = router->leader();
    if (!leader) return std::nullopt;
    return chorus::http::LeaderHttp{
        leader->external_http_ip + ":" + std::to_string(leader->external_http_port),
        leader->internal_http_ip + ":" + std::to_string(leader->internal_http_port),
        http_client_tls};
  };
  node_config.append_system_events = [router](const chorus::Principal& who, std::string stream,
                                              std::vector<chorus::NewEvent> events,
                                              std::function<void(bool)> done) {
    router->append_system_events(who, std::move(stream), std::move(events), std::move(done));
  };
  node_config.plan_member_replacement =
      [voters = cluster.voters.get()](
          const std::string& seat, const std::string& endpoint, const std::string& instance_id,
          std::string* error) -> std::optional<chorus::http::SystemEvent> {
    const auto replacement = voters->plan_replacement(seat, {endpoint, instance_id}, error);
    if (!replacement) return std::nullopt;
    chorus::NewEvent event;
    event.event_id = chorus::random_guid();
    event.event_type = chorus::cluster::kMemberReplacedEventType;
    event.data_is_json = true;
    event.data = chorus::cluster::replacement_to_json(*replacement);
    return chorus::http::SystemEvent{chorus::cluster::kVotersStream, std::move(event)};
  };
  auto node = std::make_shared<chorus::http::HttpNode>(std::move(node_config));
  // The gossip entry of this node: its endpoints from the HTTP node config, its state from the
  // engine.
  cluster.gossip->start_with_self([node, &engine]() -> chorus::MemberInfo {
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return chorus::http::single_node_cluster_info(*node, engine.status(), now).members.front();
  });
  // With TLS both HTTP ports serve HTTPS; the internal one only to holders of a certificate
  // signed by a trusted root (members and managers), the external one to any client.
  ext_http = std::make_unique<chorus::http::HttpServer>(
      engine, node,
      chorus::http::HttpServerConfig{
          options.ext_ip, options.ext_http_port, false, false,
          certificates != nullptr ? certificates->poco_server_context(false) : nullptr});
  int_http = std::make_unique<chorus::http::HttpServer>(
      engine, node,
      chorus::http::HttpServerConfig{
          options.int_ip, options.int_http_port, true, false,
          certificates != nullptr ? certificates->poco_server_context(true) : nullptr});
  if (options.ext_http_port_v5 != 0) {
    v5_http = std::make_unique<chorus::http::HttpServer>(
        engine, node,
        chorus::http::HttpServerConfig{
            options.ext_ip, options.ext_http_port_v5, false, true,
            certificates != nullptr ? certificates->poco_server_context(false) : nullptr});
  }
  if (!options.health_socket.empty()) {
    chorus::http::HttpServerConfig health_config;
    health_config.unix_socket_path = options.health_socket;
    health_http = std::make_unique<chorus::http::HttpServer>(engine, node, health_config);
  }
  std::string tcp_error;
  if (servers.plain) {
    tcp_error =
        start_tcp(log, *servers.plain, options.ext_ip, options.ext_tcp_port, "external TCP");
  }
  if (tcp_error.empty() && servers.secure) {
    tcp_error = start_tcp(log, *servers.secure, options.ext_ip, options.ext_secure_tcp_port,
                          "external secure TCP");
  }
  if (!tcp_error.empty()) {
    shutdown();
    return fail_to_start(tcp_error);
  }
  std::string http_error = start_http(log, *ext_http, options.ext_ip, options.ext_http_port,
                                      certificates != nullptr ? "external HTTPS" : "external HTTP");
  if (http_error.empty()) {
    http_error = start_http(log, *int_http, options.int_ip, options.int_http_port,
                            certificates != nullptr ? "internal HTTPS" : "internal HTTP");
  }
  if (http_error.empty() && v5_http) {
    http_error = start_http(log, *v5_http, options.ext_ip, options.ext_http_port_v5,
                            certificates != nullptr ? "external HTTPS (v5 gossip names)"
                                                    : "external HTTP (v5 gossip names)");
  }
  if (http_error.empty() && health_http) {
    http_error = start_http(log, *health_http, "unix:" + options.health_socket, kNoPort, "health");
  }
  if (!http_error.empty()) {
    shutdown();
    return fail_to_start(http_error);
  }
  if (options.stats_period_sec > 0) {
    stats_api = std::make_unique<chorus::http::NodeApi>(engine, *node, false);
    stats = std::make_unique<chorus::http::StatsStream>(
        options.ext_ip + ":" + std::to_string(options.ext_http_port),
        int64_t{options.stats_period_sec} * 1000,
        [api = stats_api.get()] { return api->stats_json(); },
        system_writer(engine, *cluster.router));
  }
  // The main thread runs `io`: signals, the shutdown and the replacement watch (the client
  // connections and replication live on the core thread).
  io.run();
  log.info("stopped");
  return EXIT_SUCCESS;
}

// Binds the internal TCP port for replication; "" or the reason it cannot.
std::string start_transport(chorus::Log& log, chorus::cluster::Transport& transport,
                            const chorus::WorkerOptions& options) {
  const std::string endpoint = options.int_ip + ":" + std::to_string(options.int_tcp_port);
  try {
    transport.start();
  } catch (const std::system_error& e) {
    return "cannot listen on " + endpoint + " for internal TCP: " + e.code().message();
  } catch (const boost::system::system_error& e) {
    return "cannot listen on " + endpoint + " for internal TCP: " + e.code().message();
  }
  std::cout << kProgram << " listening: internal TCP " << endpoint << std::endl;
  log.info("listening: internal TCP " + endpoint);
  return "";
}

// Loads the certificates when TLS is on; null when it is off. `error` says why it cannot start.
std::shared_ptr<const chorus::tls::Certificates> load_certificates(
    chorus::Log& log, const chorus::WorkerOptions& options, std::string& error) {
  if (!options.tls_enabled()) {
    if (!options.certificate_file.empty()) {
      log.warn("--insecure: the certificate options are ignored and every port is plain");
    }
    return nullptr;
  }
  auto certificates = chorus::tls::Certificates::load(
      {options.certificate_file, options.certificate_private_key_file,
       options.trusted_root_certificates_path},
      &error);
  if (!certificates) return nullptr;
  const auto summary = certificates->summary();
  log.info("TLS on: certificate " + summary.subject + ", valid until " + summary.not_after + ", " +
           std::to_string(summary.trusted_roots) + " trusted root(s)");
  return certificates;
}

int run(const chorus::ParseResult& parsed) {
  const chorus::WorkerOptions& options = parsed.options;
  chorus::Log log(
      chorus::parse_log_level(options.log_level).value_or(chorus::LogLevel::kInformation));
  if (std::string problem = start_log(log, parsed); !problem.empty()) {
    return fail_to_start(problem);
  }
  std::string tls_problem;
  const auto certificates = load_certificates(log, options, tls_problem);
  if (!tls_problem.empty()) {
    log.error(tls_problem);
    return fail_to_start(tls_problem);
  }
  if (!options.mem_db) {
    if (std::string problem = ensure_folder(options.db_folder); !problem.empty()) {
      return fail_to_start("cannot create database folder '" + options.db_folder + "': " + problem);
    }
  }
  // The core thread's wake-ups carry the gossip rounds (declared first: it outlives both).
  chorus::WakeCoalescer coalescer;
  // Declared before the cluster parts, so destroyed after them: the transport's destructor posts
  // its stop to a strand of this io_context (on an early return, e.g. a port in use, too).
  boost::asio::io_context io;
  // The engine's core thread runs this one, and the replication transport lives on it: a
  // replication message is read, stepped through the core and answered on that one thread.
  boost::asio::io_context core_io;
  ClusterParts cluster;
  std::string refusal;
  const auto secret = cluster_secret(options, &refusal);
  if (secret) cluster.instance_id = instance_id(options, &refusal);
  if (refusal.empty()) cluster.voters = voter_book(log, options, cluster.instance_id, &refusal);
  if (!refusal.empty()) {
    log.error(refusal);
    return fail_to_start(refusal);
  }
  cluster.secret = *secret;
  if (secret->empty() && certificates) {
    log.info("no cluster secret: members authenticate by mutual TLS on internal TCP and HTTPS");
  } else if (secret->empty()) {
    log.warn(
        "no cluster secret: internal TCP and gossip are not authenticated (loopback or "
        "--insecure)");
  }
  std::atomic<chorus::Engine*> engine_ptr{nullptr};
  // Set once gossip exists (it needs the engine): state changes and lost peers are announced.
  std::atomic<chorus::cluster::GossipService*> gossip_ptr{nullptr};
  chorus::cluster::TransportHandlers handlers;
  handlers.on_message = [&engine_ptr](chorus::replication::Message m) {
    if (auto* e = engine_ptr.load()) e->receive(std::move(m));
  };
  handlers.on_forward = [&engine_ptr](const chorus::internal::Forward& request,
                                      std::function<void(chorus::internal::ForwardReply)> reply) {
    if (auto* e = engine_ptr.load()) handle_forward(*e, request, std::move(reply));
  };
  handlers.on_refused = [&log](const std::string& reason) { log.warn(reason); };
  handlers.on_leader_progress = [&engine_ptr](const std::string& node_id, int64_t epoch) {
    if (auto* e = engine_ptr.load()) e->leader_progress(node_id, epoch);
  };
  handlers.on_peer_lost = [&engine_ptr, &gossip_ptr](const std::string& node_id) {
    if (auto* e = engine_ptr.load()) e->peer_lost(node_id);
    if (auto* g = gossip_ptr.load()) g->announce();  // also finds out whether it is alive
  };
  auto config = engine_config(options);
  // The TCP servers' connection count, made before the engine so that it can read it.
  auto client_limits = std::make_shared<chorus::tcp::ClientLimits>(options.ext_tcp_connections_max);
  config.client_connections = [client_limits] { return client_limits->connections(); };
  config.on_status_change = [&gossip_ptr] {
    if (auto* g = gossip_ptr.load()) g->announce();
  };
  chorus::SpaceMonitor space(options.db_folder, options.mem_db, options.min_free_disk_bytes);
  config.low_disk_refusal = [&space] { return space.refusal_message(); };
  config.cluster.node_id = cluster.instance_id;  // the replication core knows nodes by it
  chorus::cluster::TransportTls transport_tls;
  if (certificates) {
    // Mutual TLS: only holders of a certificate signed by a trusted root are peers.
    transport_tls.server = certificates->asio_server_context(/*require_peer_certificate=*/true);
    transport_tls.client = certificates->asio_client_context();
  }
  config.core_io = &core_io;
  config.coalescer = &coalescer;
  cluster.transport = std::make_unique<chorus::cluster::Transport>(
      core_io, options.int_ip + ":" + std::to_string(options.int_tcp_port), options.cluster_name,
      options.int_ip, options.int_tcp_port, std::move(handlers), std::move(transport_tls));
  cluster.transport->require_secret(cluster.secret);
  cluster.transport->set_instance_id(cluster.instance_id);
  cluster.transport->set_voters(cluster.voters->voters());
  if (std::string problem = start_transport(log, *cluster.transport, options); !problem.empty()) {
    log.error(problem);
    return fail_to_start(problem);
  }
  std::unique_ptr<chorus::Engine> engine;
  try {
    engine = chorus::Engine::open(config, cluster.transport.get());
  } catch (const std::exception& e) {
    log.error(std::string("cannot open the database: ") + e.what());
    cluster.transport->stop();
    return fail_to_start(std::string("cannot open the database: ") + e.what());
  }
  engine_ptr = engine.get();
  space.start();
  auto* raw_engine = engine.get();
  auto gossip = gossip_config(options, certificates.get());
  gossip.secret = cluster.secret;
  gossip.coalescer = &coalescer;
  auto* transport = cluster.transport.get();
  auto* voters = cluster.voters.get();
  // Only voters replicate: the transport hears and addresses no one else, the core counts no
  // one else. Pins from earlier runs hold at once; gossip offers the nodes it learns of.
  // Gossip and the replacement watch change the voters on different threads: each applies the
  // latest set under one lock, so an older snapshot never lands after a newer one.
  auto voters_mutex = std::make_shared<std::mutex>();
  const auto use_voters = [raw_engine, transport, voters,
                           voters_mutex](const std::vector<chorus::cluster::Voter>&) {
    std::lock_guard lock(*voters_mutex);
    const std::vector<chorus::cluster::Voter> v = voters->voters();
    transport->set_voters(v);
    std::vector<std::string> ids;
    for (const auto& voter : v) ids.push_back(voter.instance_id);
    raw_engine->set_peers(std::move(ids));
  };
  use_voters(voters->voters());
  cluster.gossip = std::make_unique<chorus::cluster::GossipService>(
      std::move(gossip), nullptr, [voters, use_voters](chorus::cluster::NodeIdentities nodes) {
        if (auto changed = voters->offer(nodes)) use_voters(*changed);
      });
  cluster.router = std::make_unique<chorus::cluster::Router>(*engine, cluster.gossip.get(),
                                                             cluster.transport.get());
  // Operators' replacements of members reach every member through the log.
  auto replacements =
      std::make_shared<chorus::cluster::ReplacementWatch>(io, *engine, *voters, use_voters);
  replacements->start();
  gossip_ptr = cluster.gossip.get();
  const int code =
      serve(log, parsed, io, core_io, *engine, cluster, certificates.get(), space, client_limits);
  gossip_ptr = nullptr;
  replacements->stop();  // io_context stopped: nothing else runs the watch now
  cluster.gossip->stop();
  engine_ptr = nullptr;
  engine->shutdown();
  space.stop();
  cluster.transport->stop();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  const chorus::ParseResult parsed = chorus::parse_worker_options(argc, argv, read_environment());
  if (!parsed.ok()) {
    std::cerr << kProgram << ": " << parsed.error << " (see " << kProgram << " --help)\n";
    return parsed.exit_code;
  }
  if (parsed.options.help) {
    std::cout << chorus::worker_options_help();
    return EXIT_SUCCESS;
  }
  if (parsed.options.version) {
    std::cout << kProgram << " " << CHORUS_VERSION << "\n";
    return EXIT_SUCCESS;
  }
  if (parsed.options.what_if) {
    std::cout << chorus::format_effective_options(parsed.effective);
    return EXIT_SUCCESS;
  }
  return run(parsed);
}
