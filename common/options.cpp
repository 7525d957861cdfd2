// Worker options: one table drives the command-line parser (Boost.Program_options), the
// environment and YAML lookups, the value checks, --help and --what-if, so an option is declared
// once. Each source yields raw text; the winning text is checked and applied by the option's
// binding, which also renders the normalised value shown by --what-if.
#include "common/options.hpp"

#include "common/text.hpp"

#include <yaml-cpp/yaml.h>
#include <boost/program_options.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace chorus {
namespace {

namespace po = boost::program_options;

// Limits on values; each is generous but keeps a typo from asking for something absurd.
constexpr int kClusterSizeMax = 99;          // EventStore clusters are 3 or 5 nodes in practice
constexpr int kReaderThreadsMax = 64;        // far above the cores of any machine we target
constexpr int kProjectionThreadsMax = 64;    // the same bound, for projection threads
constexpr int kStatsPeriodSecMax = 86'400;   // a day: rarer statistics are of no use
constexpr int kMillisecondsMax = 3'600'000;  // one hour: longer timeouts are surely mistakes
constexpr int kExtTcpConnectionsCeiling = 100'000;  // their read buffers alone: 25 GiB
constexpr int kPortMin = 1;  // port 0 ("any free port") is refused on purpose
constexpr int kPortMax = 65535;
// Longest default password; the users API accepts no longer one either.
constexpr size_t kPasswordBytesMax = 1024;
// What --what-if, the log and /info/options show instead of a secret (EventStore's mask).
constexpr const char* kSecretMask = "****";

enum class ValueKind { kBool, kInt, kPort, kString, kHostPortList };

// Applies raw text to the options; returns "" on success or what was expected.
using ApplyFn = std::function<std::string(WorkerOptions&, std::string_view)>;
// Renders the applied value for --what-if.
using ShowFn = std::function<std::string(const WorkerOptions&)>;

struct Binding {
  ValueKind kind;
  ApplyFn apply;
  ShowFn show;
  bool secret = false;  // its text never appears in output or error messages
};

struct OptionSpec {
  std::string name;  // PascalCase; kebab, env and display names derive from it
  std::string default_text;
  std::string help;
  Binding binding;
  bool allowed_in_file = true;
  // Help and Version only make sense typed by hand; a stray CHORUS_VERSION variable must not
  // turn a service into a version printer.
  bool allowed_in_env = true;
};

struct RawValue {
  std::string text;
  OptionSource source = OptionSource::kDefault;
  std::string origin;  // names the option as the user wrote it, for error messages
};

using text::lower;
using text::trim;

std::optional<bool> parse_bool(std::string_view text) {
  const std::string value = lower(trim(text));
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  return std::nullopt;
}

std::optional<int> parse_int(std::string_view text, int min, int max) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < min || value > max) return std::nullopt;
  return value;
}

std::string range_text(int min, int max) {
  if (min == INT_MIN && max == INT_MAX) return "an integer";
  return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

std::optional<std::vector<HostPort>> parse_host_ports(std::string_view text) {
  std::vector<HostPort> out;
  text = trim(text);
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t colon = item.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    const std::optional<int> port = parse_int(item.substr(colon + 1), kPortMin, kPortMax);
    if (!port) return std::nullopt;
    out.push_back(HostPort{std::string(item.substr(0, colon)), static_cast<uint16_t>(*port)});
  }
  return out;
}

Binding bind_bool(bool WorkerOptions::*member) {
  return {ValueKind::kBool,
          [member](WorkerOptions& o, std::string_view text) -> std::string {
            const std::optional<bool> value = parse_bool(text);
            if (!value) return "expected true or false";
            o.*member = *value;
            return "";
          },
          [member](const WorkerOptions& o) { return std::string(o.*member ? "true" : "false"); }};
}

Binding bind_int(int WorkerOptions::*member, int min, int max) {
  return {ValueKind::kInt,
          [member, min, max](WorkerOptions& o, std::string_view text) -> std::string {
            const std::optional<int> value = parse_int(text, min, max);
            if (!value) return "expected " + range_text(min, max);
            o.*member = *value;
            return "";
          },
          [member](const WorkerOptions& o) { return std::to_string(o.*member); }};
}

// A count of bytes: 0 or more, up to what int64 holds.
Binding bind_bytes(int64_t WorkerOptions::*member) {
  return {
      ValueKind::kInt,
      [member](WorkerOptions& o, std::string_view text) -> std::string {
        text = trim(text);
        int64_t value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) {
          return "expected a number of bytes (0 or more)";
        }
        o.*member = value;
        return "";
      },
      [member](const WorkerOptions& o) { return std::to_string(o.*member); }};
}

Binding bind_port(uint16_t WorkerOptions::*member) {
  return {ValueKind::kPort,
          [member](WorkerOptions& o, std::string_view text) -> std::string {
            const std::optional<int> value = parse_int(text, kPortMin, kPortMax);
            if (!value) return "expected a port number from 1 to 65535";
            o.*member = static_cast<uint16_t>(*value);
            return "";
          },
          [member](const WorkerOptions& o) { return std::to_string(o.*member); }};
}

// A port that may be 0 for "off".
Binding bind_optional_port(uint16_t WorkerOptions::*member) {
  return {ValueKind::kPort,
          [member](WorkerOptions& o, std::string_view text) -> std::string {
            const std::optional<int> value = parse_int(text, 0, kPortMax);
            if (!value) return "expected 0 (off) or a port number from 1 to 65535";
            o.*member = static_cast<uint16_t>(*value);
            return "";
          },
          [member](const WorkerOptions& o) { return std::to_string(o.*member); }};
}

Binding bind_string(std::string WorkerOptions::*member, bool allow_empty) {
  return {ValueKind::kString,
          [member, allow_empty](WorkerOptions& o, std::string_view text) -> std::string {
            if (!allow_empty && trim(text).empty()) return "expected a non-empty value";
            o.*member = std::string(text);
            return "";
          },
          [member](const WorkerOptions& o) { return o.*member; }};
}

// A secret such as a password: applied like a string, never shown.
Binding bind_secret(std::string WorkerOptions::*member) {
  return {ValueKind::kString,
          [member](WorkerOptions& o, std::string_view text) -> std::string {
            if (text.empty()) return "expected a non-empty password";
            if (text.size() > kPasswordBytesMax) {
              return "expected at most " + std::to_string(kPasswordBytesMax) + " bytes";
            }
            o.*member = std::string(text);
            return "";
          },
          [](const WorkerOptions&) { return std::string(kSecretMask); }, true};
}

Binding bind_host_ports(std::vector<HostPort> WorkerOptions::*member) {
  return {ValueKind::kHostPortList,
          [member](WorkerOptions& o, std::string_view text) -> std::string {
            std::optional<std::vector<HostPort>> value = parse_host_ports(text);
            if (!value) return "expected a comma-separated list of host:port (port 1 to 65535)";
            o.*member = std::move(*value);
            return "";
          },
          [member](const WorkerOptions& o) {
            std::string out;
            for (const HostPort& hp : o.*member) {
              if (!out.empty()) out += ',';
              out += hp.host + ':' + std::to_string(hp.port);
            }
            return out;
          }};
}

// Serilog's levels, as EventStore's --log-level takes them.
Binding bind_log_level() {
  static const std::vector<std::string> kLevels = {"Verbose", "Debug", "Information",
                                                   "Warning", "Error", "Fatal"};
  return {ValueKind::kString,
          [](WorkerOptions& o, std::string_view text) -> std::string {
            for (const std::string& level : kLevels) {
              if (lower(level) == lower(trim(text))) {
                o.log_level = level;
                return "";
              }
            }
            return "expected one of Verbose, Debug, Information, Warning, Error, Fatal";
          },
          [](const WorkerOptions& o) { return o.log_level; }};
}

// EventStore's --run-projections: None, System (the standard projections) or All.
Binding bind_run_projections() {
  static const std::vector<std::string> kModes = {"None", "System", "All"};
  return {ValueKind::kString,
          [](WorkerOptions& o, std::string_view text) -> std::string {
            for (const std::string& mode : kModes) {
              if (lower(mode) == lower(trim(text))) {
                o.run_projections = mode;
                return "";
              }
            }
            return "expected one of None, System, All";
          },
          [](const WorkerOptions& o) { return o.run_projections; }};
}

std::vector<OptionSpec> make_option_table() {
  using W = WorkerOptions;
  const int ms_max = kMillisecondsMax;
  std::vector<OptionSpec> t = {
      {"Help", "false", "Show this help and exit.", bind_bool(&W::help), false, false},
      {"Version", "false", "Show the version and exit.", bind_bool(&W::version), false, false},
      {"WhatIf", "false", "Print the effective options with their sources and exit.",
       bind_bool(&W::what_if)},
      {"Config", "", "YAML config file with PascalCase keys (e.g. ExtTcpPort: 1113).",
       bind_string(&W::config_file, true), false},
      {"Db", "./data", "Folder of the database (created if missing).",
       bind_string(&W::db_folder, false)},
      {"HealthSocket", "",
       "Unix socket serving /health/live, /health/ready and /stats to the manager alone.",
       bind_string(&W::health_socket, true)},
      {"MemDb", "false", "Keep the database in memory only; nothing survives a restart.",
       bind_bool(&W::mem_db)},
      {"Log", "./logs", "Folder of the log file chorus-worker.log (created if missing).",
       bind_string(&W::log_folder, false)},
      {"LogLevel", "Information", "Verbose, Debug, Information, Warning, Error or Fatal.",
       bind_log_level()},
      {"IntIp", "127.0.0.1", "Address for internal traffic (replication, gossip).",
       bind_string(&W::int_ip, false)},
      {"ExtIp", "127.0.0.1", "Address for client traffic.", bind_string(&W::ext_ip, false)},
      {"IntTcpPort", "1112", "Internal TCP port (replication).", bind_port(&W::int_tcp_port)},
      {"ExtTcpPort", "1113", "External TCP port (native client protocol).",
       bind_port(&W::ext_tcp_port)},
      {"IntHttpPort", "2112", "Internal HTTP port (gossip between nodes).",
       bind_port(&W::int_http_port)},
      {"ExtHttpPort", "2113", "External HTTP port (HTTP API, /gossip).",
       bind_port(&W::ext_http_port)},
      {"ExtHttpPortV5", "0",
       "Second external HTTP port, for EventStore 5-era clients: the same API, /gossip in v5 "
       "state names (Master, Slave); 0 = off.",
       bind_optional_port(&W::ext_http_port_v5)},
      {"ClusterSize", "1", "Number of nodes in the cluster; a majority must hold a write.",
       bind_int(&W::cluster_size, 1, kClusterSizeMax)},
      {"NodePriority", "0", "Election tie-breaker between equally up-to-date nodes.",
       bind_int(&W::node_priority, INT_MIN, INT_MAX)},
      {"DiscoverViaDns", "true", "Find gossip seeds by resolving --cluster-dns.",
       bind_bool(&W::discover_via_dns)},
      {"ClusterDns", "fake.dns", "DNS name whose addresses are the gossip seeds.",
       bind_string(&W::cluster_dns, false)},
      {"ClusterGossipPort", "2112", "Gossip port of the nodes that --cluster-dns resolves to.",
       bind_port(&W::cluster_gossip_port)},
      {"GossipSeed", "", "Gossip seeds as host:port, comma-separated or repeated.",
       bind_host_ports(&W::gossip_seeds)},
      {"ClusterMember", "",
       "The voting members' internal TCP endpoints as ip:port, this node included (none: the "
       "first --cluster-size nodes seen take the seats).",
       bind_host_ports(&W::cluster_members)},
      {"ClusterName", "default",
       "Name of the cluster; gossip from a cluster of another name is refused.",
       bind_string(&W::cluster_name, false)},
      {"LeaderElectionTimeoutMs", "300",
       "Milliseconds without a leader before an election (randomized up to twice this).",
       bind_int(&W::leader_election_timeout_ms, 20, ms_max)},
      {"GossipIntervalMs", "1000", "Milliseconds between gossip rounds.",
       bind_int(&W::gossip_interval_ms, 1, ms_max)},
      {"GossipTimeoutMs", "500", "Milliseconds to wait for a gossip answer.",
       bind_int(&W::gossip_timeout_ms, 1, ms_max)},
      {"ExtTcpHeartbeatInterval", "2000", "Milliseconds of client silence before a heartbeat.",
       bind_int(&W::ext_tcp_heartbeat_interval_ms, 1, ms_max)},
      {"ExtTcpHeartbeatTimeout", "1000", "Milliseconds to wait for a client's heartbeat answer.",
       bind_int(&W::ext_tcp_heartbeat_timeout_ms, 1, ms_max)},
      {"ExtTcpConnectionsMax", std::to_string(kExtTcpConnectionsMaxDefault),
       "Client TCP connections served at once; more are closed as soon as they are accepted.",
       bind_int(&W::ext_tcp_connections_max, 1, kExtTcpConnectionsCeiling)},
      {"IntTcpHeartbeatInterval", "700", "Milliseconds of peer silence before a heartbeat.",
       bind_int(&W::int_tcp_heartbeat_interval_ms, 1, ms_max)},
      {"IntTcpHeartbeatTimeout", "700", "Milliseconds to wait for a peer's heartbeat answer.",
       bind_int(&W::int_tcp_heartbeat_timeout_ms, 1, ms_max)},
      {"CommitTimeoutMs", "5000", "Milliseconds before an uncommitted write answers CommitTimeout.",
       bind_int(&W::commit_timeout_ms, 1, ms_max)},
      {"TransactionTimeoutMs", "300000",
       "Milliseconds an explicit transaction may stay idle before the leader abandons it.",
       bind_int(&W::transaction_timeout_ms, 1, ms_max)},
      {"PrepareTimeoutMs", "2000",
       "Milliseconds before an unprepared write answers PrepareTimeout.",
       bind_int(&W::prepare_timeout_ms, 1, ms_max)},
      {"ReaderThreadsCount", "4", "Threads (each with its own SQLite connection) serving reads.",
       bind_int(&W::reader_threads_count, 1, kReaderThreadsMax)},
      {"MinFreeDiskBytes", "67108864",
       "Below this many free bytes on the data volume the node refuses writes until space "
       "returns (0: never).",
       bind_bytes(&W::min_free_disk_bytes)},
      {"RunProjections", "None",
       "None, System (the standard projections) or All (also user projections).",
       bind_run_projections()},
      {"StartStandardProjections", "false",
       "Run $streams, $stream_by_category, $by_category, $by_event_type and $by_correlation_id "
       "(with --run-projections System or All).",
       bind_bool(&W::start_standard_projections)},
      {"ProjectionThreads", "3", "Threads that run user projections' JavaScript.",
       bind_int(&W::projection_threads, 1, kProjectionThreadsMax)},
      {"StatsPeriodSec", "30",
       "Seconds between this node's statistics events in $stats-<ext ip>:<ext http port> "
       "(0: none).",
       bind_int(&W::stats_period_sec, 0, kStatsPeriodSecMax)},
      {"DefaultAdminPassword", "changeit",
       "Password of the built-in admin user, set at first start only (prefer the environment "
       "variable: a command line is visible to every local user).",
       bind_secret(&W::default_admin_password)},
      {"DefaultOpsPassword", "changeit",
       "Password of the built-in ops user, set at first start only.",
       bind_secret(&W::default_ops_password)},
      {"ClusterSecretFile", "",
       "File (mode 600) with the secret that cluster members prove to each other on internal "
       "TCP and gossip (docs/security.md).",
       bind_string(&W::cluster_secret_file, true)},
      {"CertificateFile", "",
       "PEM certificate (then its chain) of this node; turns on TLS: HTTPS on both HTTP ports, "
       "TLS on internal TCP.",
       bind_string(&W::certificate_file, true)},
      {"CertificatePrivateKeyFile", "", "Unencrypted PEM private key of --certificate-file.",
       bind_string(&W::certificate_private_key_file, true)},
      {"TrustedRootCertificatesPath", "",
       "Folder of CA certificates (.pem, .crt, .cer) or one PEM file; peers must chain to one.",
       bind_string(&W::trusted_root_certificates_path, true)},
      {"ExtSecureTcpPort", "0", "External TCP port with TLS (native client protocol); 0: none.",
       bind_optional_port(&W::ext_secure_tcp_port)},
      {"DisableInsecureTcp", "false", "Do not open the plain external TCP port (--ext-tcp-port).",
       bind_bool(&W::disable_insecure_tcp)},
      {"Insecure", "false",
       "Run without TLS on every port (even when certificate options are given), and allow a "
       "non-loopback --int-ip without a cluster secret or certificates.",
       bind_bool(&W::insecure)},
  };
  return t;
}

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> kTable = make_option_table();
  return kTable;
}

const OptionSpec* find_by_kebab(std::string_view kebab) {
  for (const OptionSpec& spec : option_table()) {
    if (kebab_name(spec.name) == kebab) return &spec;
  }
  return nullptr;
}

std::string value_placeholder(ValueKind kind) {
  switch (kind) {
    case ValueKind::kBool:
      return "[=true|false]";
    case ValueKind::kInt:
      return " <int>";
    case ValueKind::kPort:
      return " <port>";
    case ValueKind::kString:
      return " <text>";
    case ValueKind::kHostPortList:
      return " <host:port,...>";
  }
  return "";
}

po::options_description make_description() {
  po::options_description desc("Options", 100, 50);
  for (const OptionSpec& spec : option_table()) {
    const std::string kebab = kebab_name(spec.name);
    if (spec.binding.kind == ValueKind::kBool) {
      desc.add_options()(kebab.c_str(), po::value<std::string>()->implicit_value("true"),
                         spec.help.c_str());
    } else if (spec.binding.kind == ValueKind::kHostPortList) {
      desc.add_options()(kebab.c_str(), po::value<std::vector<std::string>>()->composing(),
                         spec.help.c_str());
    } else {
      desc.add_options()(kebab.c_str(), po::value<std::string>(), spec.help.c_str());
    }
  }
  return desc;
}

// Collects command-line values by PascalCase name; returns an error message or "".
std::string read_command_line(int argc, const char* const* argv,
                              std::map<std::string, RawValue>& out) {
  const int style = po::command_line_style::default_style &
                    ~po::command_line_style::allow_guessing & ~po::command_line_style::allow_short;
  po::parsed_options parsed(nullptr);
  try {
    parsed = po::command_line_parser(argc, argv)
                 .options(make_description())
                 .style(style | po::command_line_style::long_case_insensitive)
                 .allow_unregistered()
                 .run();
  } catch (const po::error& e) {
    return e.what();
  }
  for (const po::option& opt : parsed.options) {
    if (opt.unregistered || opt.string_key.empty()) {
      const std::string token = opt.original_tokens.empty() ? "" : opt.original_tokens.front();
      if (opt.position_key >= 0 || opt.string_key.empty()) {
        return "unexpected argument '" + token + "'";
      }
      return "unknown option '" + token.substr(0, token.find('=')) + "'";
    }
    const OptionSpec* spec = find_by_kebab(opt.string_key);
    if (spec == nullptr) return "unknown option '--" + opt.string_key + "'";
    std::string text;
    for (const std::string& v : opt.value) text += (text.empty() ? "" : ",") + v;
    if (opt.value.empty() && spec->binding.kind == ValueKind::kBool) text = "true";
    auto [it, inserted] = out.try_emplace(
        spec->name, RawValue{text, OptionSource::kCommandLine, "--" + opt.string_key});
    if (!inserted) {
      if (spec->binding.kind != ValueKind::kHostPortList) {
        return "option '--" + opt.string_key + "' given more than once";
      }
      it->second.text += "," + text;
    }
  }
  return "";
}

void read_environment(const Environment& env, std::map<std::string, RawValue>& out) {
  for (const OptionSpec& spec : option_table()) {
    if (!spec.allowed_in_env) continue;
    const std::string var = env_var_name(spec.name);
    const auto it = env.find(var);
    if (it == env.end()) continue;
    out[spec.name] = RawValue{it->second, OptionSource::kEnvironment, var};
  }
}

const OptionSpec* find_by_name_case_insensitive(std::string_view name) {
  for (const OptionSpec& spec : option_table()) {
    if (lower(spec.name) == lower(name)) return &spec;
  }
  return nullptr;
}

std::string file_origin(const std::string& path, const std::string& key, const YAML::Node& node) {
  return key + " in config file '" + path + "' (line " + std::to_string(node.Mark().line + 1) + ")";
}

// Reads one YAML value: a scalar, or a sequence of scalars (joined with commas) for lists.
std::optional<std::string> yaml_value_text(const YAML::Node& node) {
  if (node.IsNull()) return std::string();
  if (node.IsScalar()) return node.Scalar();
  if (!node.IsSequence()) return std::nullopt;
  std::string text;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) return std::nullopt;
    text += (text.empty() ? "" : ",") + item.Scalar();
  }
  return text;
}

std::string read_config_file(const std::string& path, std::map<std::string, RawValue>& out) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return "cannot read config file '" + path + "'";
  } catch (const YAML::Exception& e) {
    return "config file '" + path + "' is not valid YAML: " + e.what();
  }
  if (root.IsNull()) return "";
  if (!root.IsMap()) return "config file '" + path + "' must be a map of Key: value";
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    const OptionSpec* spec = find_by_name_case_insensitive(key);
    if (spec == nullptr || !spec->allowed_in_file) {
      return "unknown key '" + key + "' in config file '" + path + "' (line " +
             std::to_string(entry.first.Mark().line + 1) + ")";
    }
    const std::optional<std::string> text = yaml_value_text(entry.second);
    const std::string origin = file_origin(path, key, entry.second);
    if (!text) return "invalid value for " + origin + ": expected a scalar or a list";
    out[spec->name] = RawValue{*text, OptionSource::kConfigFile, origin};
  }
  return "";
}

std::string describe_origin(const RawValue& raw) {
  switch (raw.source) {
    case OptionSource::kCommandLine:
      return raw.origin + " (command line)";
    case OptionSource::kEnvironment:
      return raw.origin + " (environment variable)";
    case OptionSource::kConfigFile:
    case OptionSource::kDefault:
      return raw.origin;
  }
  return raw.origin;
}

ParseResult fail(std::string message) {
  ParseResult result;
  result.exit_code = kUsageErrorExitCode;
  result.error = std::move(message);
  return result;
}

// Rules between the TLS options; "" or the problem, naming the options.
std::string check_tls_options(const WorkerOptions& o) {
  const bool certificate = !o.certificate_file.empty();
  if (certificate != !o.certificate_private_key_file.empty() ||
      certificate != !o.trusted_root_certificates_path.empty()) {
    return "--certificate-file, --certificate-private-key-file and "
           "--trusted-root-certificates-path go together: give all three or none";
  }
  if (o.ext_secure_tcp_port != 0 && !o.tls_enabled()) {
    return o.insecure ? "--ext-secure-tcp-port cannot be used with --insecure"
                      : "--ext-secure-tcp-port needs --certificate-file";
  }
  if (o.disable_insecure_tcp && o.ext_secure_tcp_port == 0) {
    return "--disable-insecure-tcp needs --ext-secure-tcp-port (clients would have no TCP port)";
  }
  return "";
}

}  // namespace

std::string_view to_string(OptionSource source) {
  switch (source) {
    case OptionSource::kDefault:
      return "<DEFAULT>";
    case OptionSource::kConfigFile:
      return "Config File";
    case OptionSource::kEnvironment:
      return "Environment Variable";
    case OptionSource::kCommandLine:
      return "Command Line";
  }
  return "?";
}

std::string kebab_name(std::string_view pascal_name) {
  std::string out;
  for (const char c : pascal_name) {
    if (std::isupper(static_cast<unsigned char>(c)) != 0) {
      if (!out.empty()) out += '-';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

std::string env_var_name(std::string_view pascal_name) {
  std::string out = "CHORUS_";
  for (const char c : kebab_name(pascal_name)) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string display_name(std::string_view pascal_name) {
  std::string out;
  for (const char c : kebab_name(pascal_name)) {
    out += c == '-' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

ParseResult parse_worker_options(int argc, const char* const* argv, const Environment& env) {
  std::map<std::string, RawValue> cli;
  std::map<std::string, RawValue> environment;
  std::map<std::string, RawValue> file;
  if (std::string error = read_command_line(argc, argv, cli); !error.empty()) {
    return fail(error);
  }
  read_environment(env, environment);
  std::string config_path;
  if (const auto it = cli.find("Config"); it != cli.end()) {
    config_path = it->second.text;
  } else if (const auto env_it = environment.find("Config"); env_it != environment.end()) {
    config_path = env_it->second.text;
  }
  if (!config_path.empty()) {
    if (std::string error = read_config_file(config_path, file); !error.empty()) {
      return fail(error);
    }
  }

  ParseResult result;
  for (const OptionSpec& spec : option_table()) {
    RawValue raw{spec.default_text, OptionSource::kDefault, spec.name};
    for (const auto* layer : {&file, &environment, &cli}) {
      if (const auto it = layer->find(spec.name); it != layer->end()) raw = it->second;
    }
    const std::string problem = spec.binding.apply(result.options, raw.text);
    if (!problem.empty()) {
      const std::string shown = spec.binding.secret ? std::string(kSecretMask) : raw.text;
      return fail("invalid value '" + shown + "' for " + describe_origin(raw) + ": " + problem);
    }
    result.effective.push_back(
        EffectiveOption{spec.name, spec.binding.show(result.options), raw.source});
  }
  if (std::string problem = check_tls_options(result.options); !problem.empty()) {
    return fail(problem);
  }
  return result;
}

std::string worker_options_help() {
  std::ostringstream out;
  out << "Usage: chorus-worker [options]\n\n"
      << "Every option can also be set by an environment variable (CHORUS_EXT_TCP_PORT) or a\n"
      << "key of the YAML file given by --config (ExtTcpPort). Precedence: command line >\n"
      << "environment > config file > default. Booleans: --mem-db, --mem-db=true|false.\n\n";
  for (const OptionSpec& spec : option_table()) {
    out << "  --" << kebab_name(spec.name) << value_placeholder(spec.binding.kind) << "\n"
        << "      " << spec.help << "\n"
        << "      default: " << (spec.default_text.empty() ? "(none)" : spec.default_text)
        << (spec.allowed_in_env ? "; env " + env_var_name(spec.name) : std::string());
    if (spec.allowed_in_file) out << "; YAML " << spec.name;
    out << "\n";
  }
  return out.str();
}

std::string format_effective_options(const std::vector<EffectiveOption>& effective) {
  std::string out;
  for (const EffectiveOption& option : effective) {
    out += display_name(option.name) + ": " + option.value_text + " (" +
           std::string(to_string(option.source)) + ")\n";
  }
  return out;
}

}  // namespace chorus
