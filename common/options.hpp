// Worker options: EventStore.ClusterNode's option names from the command line (--kebab-case),
// CHORUS_* environment variables and a YAML config file (PascalCase keys), with precedence
// command line > environment > file > default, and each effective value's source for --what-if.
// Parsing is a pure function of (argv, environment map, config file contents); any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

// Environment variables by name; the worker passes the real environment, tests pass a map.
using Environment = std::map<std::string, std::string, std::less<>>;

struct HostPort {
  std::string host;
  uint16_t port = 0;
  bool operator==(const HostPort&) const = default;
};

// Default of ExtTcpConnectionsMax (issue 10, hole 7; it was 10,000). Each client connection
// holds a 256 KiB read buffer, a file descriptor and up to 16 MiB of replies before its reading
// pauses: 1,000 keeps idle connections within 256 MiB while serving far more clients than a node
// sees (each client keeps one connection).
inline constexpr int kExtTcpConnectionsMaxDefault = 1000;

struct WorkerOptions {
  std::string config_file;  // "" = no config file
  std::string db_folder = "./data";
  bool mem_db = false;
  std::string health_socket;  // "" = no health listener (a manager passes one)
  std::string log_folder = "./logs";
  std::string int_ip = "127.0.0.1";
  std::string ext_ip = "127.0.0.1";
  uint16_t int_tcp_port = 1112;
  uint16_t ext_tcp_port = 1113;
  uint16_t int_http_port = 2112;
  uint16_t ext_http_port = 2113;
  uint16_t ext_http_port_v5 = 0;  // 0 = off; the HTTP API with gossip in v5 state names
  int cluster_size = 1;
  bool discover_via_dns = true;
  std::vector<HostPort> gossip_seeds;
  std::vector<HostPort> cluster_members;  // --cluster-member: the voters (docs/cluster.md)
  std::string cluster_dns = "fake.dns";
  uint16_t cluster_gossip_port = 2112;
  int node_priority = 0;
  int ext_tcp_heartbeat_interval_ms = 2000;
  int ext_tcp_heartbeat_timeout_ms = 1000;
  int ext_tcp_connections_max = kExtTcpConnectionsMaxDefault;  // more are closed at once
  int int_tcp_heartbeat_interval_ms = 700;
  int int_tcp_heartbeat_timeout_ms = 700;
  std::string cluster_name = "default";
  int leader_election_timeout_ms = 300;
  int gossip_interval_ms = 1000;
  int gossip_timeout_ms = 500;
  int commit_timeout_ms = 5000;
  int transaction_timeout_ms = 5 * 60 * 1000;
  int prepare_timeout_ms = 2000;
  int reader_threads_count = 4;
  // Below this many free bytes on the data volume the node refuses writes (0: never). Default:
  // twice a full group commit (32 MiB, kFlushBytesMax) with its index pages, so the writes in
  // flight when the threshold is crossed still fit.
  int64_t min_free_disk_bytes = int64_t{64} * 1024 * 1024;
  std::string run_projections = "None";  // None, System or All (docs/projections.md)
  bool start_standard_projections = false;
  int projection_threads = 3;
  int stats_period_sec = 30;  // $stats-<ip>:<port> every this many seconds; 0 = never
  // Passwords of the built-in admin and ops users, used only when the database has no users yet
  // (first start); changing them later goes through the users API.
  std::string default_admin_password = "changeit";
  std::string default_ops_password = "changeit";
  std::string log_level = "Information";
  // The shared secret that members prove on internal TCP and gossip ("" = none).
  std::string cluster_secret_file;
  // TLS (EventStore's names): PEM certificate and key, and the CAs that sign cluster members.
  std::string certificate_file;
  std::string certificate_private_key_file;
  std::string trusted_root_certificates_path;
  uint16_t ext_secure_tcp_port = 0;  // 0: no secure external TCP port
  // No TLS anywhere (even if certificates are named), and a non-loopback --int-ip may run without
  // a cluster secret or certificates.
  bool insecure = false;
  bool disable_insecure_tcp = false;  // no plain external TCP port
  bool what_if = false;
  bool help = false;
  bool version = false;

  // Certificates are configured and --insecure does not turn them off.
  bool tls_enabled() const { return !certificate_file.empty() && !insecure; }
};

// Where an effective value came from, in increasing precedence.
enum class OptionSource { kDefault, kConfigFile, kEnvironment, kCommandLine };

// EventStore's startup-log spelling: "<DEFAULT>", "Config File", "Environment Variable",
// "Command Line".
std::string_view to_string(OptionSource source);

struct EffectiveOption {
  std::string name;        // PascalCase, e.g. ExtTcpPort
  std::string value_text;  // normalised: bools true/false, lists comma-separated
  OptionSource source = OptionSource::kDefault;
};

// Exit code for a usage error (unknown option or key, invalid value, unreadable config file).
inline constexpr int kUsageErrorExitCode = 2;

struct ParseResult {
  WorkerOptions options;
  std::vector<EffectiveOption> effective;  // every option, in table order; empty on error
  int exit_code = 0;                       // 0, or kUsageErrorExitCode with `error` set
  std::string error;                       // one line naming the option (and file and key)
  bool ok() const { return exit_code == 0; }
};

// Parses argv[1..argc) plus `env` (only the CHORUS_* names of known options are read) plus the
// YAML file named by --config or CHORUS_CONFIG. Never exits and never prints.
ParseResult parse_worker_options(int argc, const char* const* argv, const Environment& env);

// Text for --help: usage line and every option with its YAML key, variable and default.
std::string worker_options_help();

// One line per option in EventStore's startup-log form: "EXT TCP PORT: 1113 (<DEFAULT>)".
std::string format_effective_options(const std::vector<EffectiveOption>& effective);

// Name forms derived from the PascalCase name: ExtTcpPort -> ext-tcp-port, CHORUS_EXT_TCP_PORT,
// "EXT TCP PORT".
std::string kebab_name(std::string_view pascal_name);
std::string env_var_name(std::string_view pascal_name);
std::string display_name(std::string_view pascal_name);

}  // namespace chorus
