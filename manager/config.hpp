// Manager configuration: the YAML file (EventStore's manager keys plus a node list, issue 5),
// EventStore's watchdog file, CHORUS_MANAGER_* environment variables and command-line options,
// with precedence command line > environment > file > default. Parsing and validation are pure
// functions of their inputs, except the folder checks (validate_folders), which touch the disk.
// Any thread.
#pragma once

#include "common/cluster_auth.hpp"
#include "common/options.hpp"
#include "common/tls.hpp"
#include "manager/restart_policy.hpp"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace chorus::manager {

// Exit code for an invalid configuration (as the worker's usage error).
inline constexpr int kConfigErrorExitCode = 2;

struct NodeSpec {
  std::string name;
  std::string cluster = "default";
  std::string key;                // where it was defined, e.g. "Nodes[1]" or "WatchdogConfig:3"
  std::vector<std::string> args;  // the node's own worker options as command-line arguments
  std::vector<std::pair<std::string, std::string>> option_keys;  // PascalCase key -> "--kebab"
  WorkerOptions resolved;  // the worker's view of the full command line (ports, ips, size)
  std::string db_folder;   // "" with MemDb
  std::string log_folder;
  // The node sets its own address (in Options, a watchdog line or its --config file); if not,
  // the manager passes its IntIp/ExtIp.
  bool own_int_ip = false;
  bool own_ext_ip = false;
  // The --cluster-member list the manager passes (ip:port): its nodes of this cluster, when it
  // runs all --cluster-size of them and the node names no members itself; else empty.
  std::vector<std::string> members;
};

struct ManagerConfig {
  std::string config_file;
  std::string name;  // shown in the API; the host name unless set
  std::string int_ip = "127.0.0.1";
  std::string ext_ip = "127.0.0.1";
  uint16_t int_http_port = 30777;
  uint16_t ext_http_port = 30778;
  uint16_t ext_http_port_v5 = 0;  // 0 = off; as ExtHttpPort, gossip in v5 state names
  bool discover_via_dns = false;
  std::vector<HostPort> gossip_seeds;  // peer managers' internal HTTP endpoints
  std::string cluster_dns = "fake.dns";
  uint16_t cluster_gossip_port = 30777;
  std::string log_folder = "./logs";
  std::string db_folder = "./data";
  bool enable_watchdog = false;
  std::string watchdog_config;
  std::string default_cluster;  // served on the main ports; the first node's cluster unless set
  std::string worker_path;      // "" = chorus-worker next to the manager binary
  std::string web_root;         // "" = the default search (see main.cpp)
  // Backups go into folders below it (and are restored only from there); <Db>/backups unless set.
  std::string backup_root;
  // The secret members prove on internal TCP and gossip; "" = <Db>/manager/cluster-secret,
  // created if missing, unless certificates are configured (see resolve_cluster_secret). Handed
  // to every node.
  std::string cluster_secret_file;
  // No cluster secret and no TLS (certificate keys ignored), allowed on a non-loopback IntIp.
  bool insecure = false;
  auth::Secret cluster_secret;  // loaded by resolve_cluster_secret; empty with Insecure
  int gossip_interval_ms = 500;
  int gossip_timeout_ms = 500;
  int health_interval_ms = 500;
  int64_t node_log_bytes_max =
      int64_t{10} * 1024 * 1024;  // a node's log file is rotated beyond this
  int node_log_files_max = 3;     // rotated files kept per node
  RestartLimits limits;
  // TLS (EventStore's key names): given to every node; the manager's ports serve HTTPS and its
  // own HTTP clients use it. All three or none.
  std::string certificate_file;
  std::string certificate_private_key_file;
  std::string trusted_root_certificates_path;
  // Loaded by load_certificates() when certificate_file is set; null without TLS.
  std::shared_ptr<const tls::Certificates> certificates;
  Poco::Net::Context::Ptr http_client_tls;  // for the manager's HTTP calls; null: plain HTTP
  std::vector<NodeSpec> nodes;
  bool what_if = false;
  bool help = false;
  std::vector<std::string> daemon_args;  // --daemon, --pidfile=..., --umask=...: for Poco
};

struct ConfigResult {
  ManagerConfig config;
  std::vector<std::string> effective;  // "INT HTTP PORT: 30777 (<DEFAULT>)" lines, for --what-if
  int exit_code = 0;                   // 0 or kConfigErrorExitCode
  std::string error;                   // names the file and key
  bool ok() const { return exit_code == 0; }
};

// Reads a file's text; false if it cannot be read. Tests pass a map.
using ReadFile = std::function<bool(const std::string& path, std::string* text)>;

// Parses argv[1..argc), the CHORUS_MANAGER_* variables in `env`, the YAML file named by --config
// (or CHORUS_MANAGER_CONFIG) and the watchdog file, and validates the result (keys, values, port
// clashes, cluster sizes). Never exits and never prints.
ConfigResult parse_manager_config(int argc, const char* const* argv, const Environment& env,
                                  const ReadFile& read_file);

// Creates the Db and Log folders (and the nodes') if missing and checks that they are writable;
// "" or the error naming the key.
std::string validate_folders(const ManagerConfig& config);

// Loads and checks the certificate files (when CertificateFile is set and Insecure is not) into
// config.certificates and config.http_client_tls; "" or the error naming the file and key. Touches
// the disk.
std::string load_certificates(ManagerConfig& config);

// The full worker command line of a node: its options, then what the manager sets
// (--int-ip/--ext-ip from the manager's IntIp/ExtIp unless the node sets its own, --gossip-seed,
// --discover-via-dns=false, --cluster-name, --db unless given, --log).
std::vector<std::string> worker_args(const ManagerConfig& config, const NodeSpec& node);

// Loads ClusterSecretFile, or creates and loads <Db>/manager/cluster-secret when none is named;
// nothing with Insecure, or with certificates and no file. "" or the error naming the key.
std::string resolve_cluster_secret(ManagerConfig& config);

std::string manager_help();

}  // namespace chorus::manager
