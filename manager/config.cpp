// Manager configuration: the key table, the three sources, the node list and validation.
#include "manager/config.hpp"

#include <yaml-cpp/yaml.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace chorus::manager {
namespace {

enum class Kind { kString, kBool, kPort, kOptionalPort, kInt, kSeeds };

struct Key {
  const char* name;  // PascalCase YAML key
  Kind kind;
  const char* help;
  std::function<void(ManagerConfig&, const std::string&)> set;  // value already checked
};

std::optional<bool> to_bool(const std::string& v) {
  if (v == "true" || v == "True" || v == "1") return true;
  if (v == "false" || v == "False" || v == "0") return false;
  return std::nullopt;
}

std::optional<int64_t> to_int(const std::string& v) {
  if (v.empty()) return std::nullopt;
  size_t used = 0;
  try {
    const long long n = std::stoll(v, &used);
    if (used != v.size()) return std::nullopt;
    return n;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "host:port,host:port" -> endpoints; nullopt if one is malformed.
std::optional<std::vector<HostPort>> to_seeds(const std::string& v) {
  std::vector<HostPort> out;
  std::stringstream in(v);
  std::string item;
  while (std::getline(in, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    const auto colon = item.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    const auto port = to_int(item.substr(colon + 1));
    if (!port || *port < 1 || *port > 65535) return std::nullopt;
    out.push_back({item.substr(0, colon), static_cast<uint16_t>(*port)});
  }
  return out;
}

std::string check_value(Kind kind, const std::string& v) {
  switch (kind) {
    case Kind::kBool:
      return to_bool(v) ? "" : "'" + v + "' is not true or false";
    case Kind::kPort: {
      const auto n = to_int(v);
      return n && *n >= 1 && *n <= 65535 ? "" : "'" + v + "' is not a port (1-65535)";
    }
    case Kind::kOptionalPort: {
      const auto n = to_int(v);
      return n && *n >= 0 && *n <= 65535 ? "" : "'" + v + "' is not 0 (off) or a port (1-65535)";
    }
    case Kind::kInt: {
      const auto n = to_int(v);
      return n && *n >= 0 ? "" : "'" + v + "' is not a non-negative integer";
    }
    case Kind::kSeeds:
      return to_seeds(v) ? "" : "'" + v + "' is not a list of host:port";
    case Kind::kString:
      return "";
  }
  return "";
}

uint16_t port_of(const std::string& v) { return static_cast<uint16_t>(*to_int(v)); }
int64_t int_of(const std::string& v) { return *to_int(v); }

const std::vector<Key>& keys() {
  static const std::vector<Key> kTable = {
      {"Name", Kind::kString, "Name of this manager in the API (default: host name).",
       [](ManagerConfig& c, const std::string& v) { c.name = v; }},
      {"IntIp", Kind::kString, "Internal IP: gossip with nodes and peer managers.",
       [](ManagerConfig& c, const std::string& v) { c.int_ip = v; }},
      {"ExtIp", Kind::kString, "External IP: clients, dashboard, management API.",
       [](ManagerConfig& c, const std::string& v) { c.ext_ip = v; }},
      {"IntHttpPort", Kind::kPort, "Internal HTTP port (gossip).",
       [](ManagerConfig& c, const std::string& v) { c.int_http_port = port_of(v); }},
      {"ExtHttpPort", Kind::kPort, "External HTTP port (gossip for clients, API, dashboard).",
       [](ManagerConfig& c, const std::string& v) { c.ext_http_port = port_of(v); }},
      {"ExtHttpPortV5", Kind::kOptionalPort,
       "Second external HTTP port, gossip in EventStore 5's state names (Master); 0 = off.",
       [](ManagerConfig& c, const std::string& v) { c.ext_http_port_v5 = port_of(v); }},
      {"DiscoverViaDns", Kind::kBool, "Find peer managers by resolving ClusterDns.",
       [](ManagerConfig& c, const std::string& v) { c.discover_via_dns = *to_bool(v); }},
      {"GossipSeed", Kind::kSeeds, "Peer managers' internal HTTP endpoints, host:port,...",
       [](ManagerConfig& c, const std::string& v) { c.gossip_seeds = *to_seeds(v); }},
      {"ClusterDns", Kind::kString, "DNS name whose A records are the peer managers.",
       [](ManagerConfig& c, const std::string& v) { c.cluster_dns = v; }},
      {"ClusterGossipPort", Kind::kPort, "Peer managers' internal HTTP port with ClusterDns.",
       [](ManagerConfig& c, const std::string& v) { c.cluster_gossip_port = port_of(v); }},
      {"Log", Kind::kString, "Folder of the manager's and the nodes' logs.",
       [](ManagerConfig& c, const std::string& v) { c.log_folder = v; }},
      {"Db", Kind::kString, "Folder of the manager's state; nodes' data default to <Db>/<Name>.",
       [](ManagerConfig& c, const std::string& v) { c.db_folder = v; }},
      {"EnableWatchdog", Kind::kBool, "Also supervise the nodes listed in WatchdogConfig.",
       [](ManagerConfig& c, const std::string& v) { c.enable_watchdog = *to_bool(v); }},
      {"WatchdogConfig", Kind::kString, "EventStore's watchdog file: '# <node options>' lines.",
       [](ManagerConfig& c, const std::string& v) { c.watchdog_config = v; }},
      {"DefaultCluster", Kind::kString, "Cluster served on the main ports (default: first node's).",
       [](ManagerConfig& c, const std::string& v) { c.default_cluster = v; }},
      {"WorkerPath", Kind::kString, "chorus-worker binary (default: next to chorus-manager).",
       [](ManagerConfig& c, const std::string& v) { c.worker_path = v; }},
      {"WebRoot", Kind::kString, "Folder of the dashboard's files.",
       [](ManagerConfig& c, const std::string& v) { c.web_root = v; }},
      {"BackupRoot", Kind::kString,
       "Folder that node backups are written into and restored from; default <Db>/backups.",
       [](ManagerConfig& c, const std::string& v) { c.backup_root = v; }},
      {"ClusterSecretFile", Kind::kString,
       "Secret file (mode 600) for internal TCP and gossip; default <Db>/manager/cluster-secret.",
       [](ManagerConfig& c, const std::string& v) { c.cluster_secret_file = v; }},
      {"Insecure", Kind::kBool, "No cluster secret and no TLS; allowed on a non-loopback IntIp.",
       [](ManagerConfig& c, const std::string& v) { c.insecure = *to_bool(v); }},
      {"GossipIntervalMs", Kind::kInt, "Gossip round interval.",
       [](ManagerConfig& c, const std::string& v) { c.gossip_interval_ms = int_of(v); }},
      {"GossipTimeoutMs", Kind::kInt, "Timeout of one gossip exchange.",
       [](ManagerConfig& c, const std::string& v) { c.gossip_timeout_ms = int_of(v); }},
      {"HealthIntervalMs", Kind::kInt, "Interval of the nodes' /health/live checks.",
       [](ManagerConfig& c, const std::string& v) { c.health_interval_ms = int_of(v); }},
      {"NodeLogFileSize", Kind::kInt, "A node's output file is rotated beyond this many bytes.",
       [](ManagerConfig& c, const std::string& v) { c.node_log_bytes_max = int_of(v); }},
      {"NodeLogFileCount", Kind::kInt, "Rotated output files kept per node.",
       [](ManagerConfig& c, const std::string& v) { c.node_log_files_max = int_of(v); }},
      {"RestartBackoffInitialMs", Kind::kInt, "First delay before an automatic restart.",
       [](ManagerConfig& c, const std::string& v) { c.limits.backoff_initial_ms = int_of(v); }},
      {"RestartBackoffMaxMs", Kind::kInt, "Largest delay before an automatic restart.",
       [](ManagerConfig& c, const std::string& v) { c.limits.backoff_max_ms = int_of(v); }},
      {"RestartIntensity", Kind::kInt, "This many exits within RestartPeriodMs: Failed.",
       [](ManagerConfig& c, const std::string& v) {
         c.limits.intensity_exits_max = static_cast<int>(int_of(v));
       }},
      {"RestartPeriodMs", Kind::kInt, "The window of RestartIntensity.",
       [](ManagerConfig& c, const std::string& v) { c.limits.intensity_period_ms = int_of(v); }},
      {"StableAfterMs", Kind::kInt, "A run this long resets the backoff.",
       [](ManagerConfig& c, const std::string& v) { c.limits.stable_after_ms = int_of(v); }},
      {"StartGraceMs", Kind::kInt, "Time a starting node has to answer /health/live.",
       [](ManagerConfig& c, const std::string& v) { c.limits.start_grace_ms = int_of(v); }},
      {"HungAfterMs", Kind::kInt, "/health/live silent this long: the node is killed.",
       [](ManagerConfig& c, const std::string& v) { c.limits.hung_after_ms = int_of(v); }},
      {"StopGraceMs", Kind::kInt, "SIGTERM, then SIGKILL after this.",
       [](ManagerConfig& c, const std::string& v) { c.limits.stop_grace_ms = int_of(v); }},
      {"CertificateFile", Kind::kString,
       "PEM certificate (then chain) for HTTPS and the nodes' TLS; given to every node.",
       [](ManagerConfig& c, const std::string& v) { c.certificate_file = v; }},
      {"CertificatePrivateKeyFile", Kind::kString, "Unencrypted PEM key of CertificateFile.",
       [](ManagerConfig& c, const std::string& v) { c.certificate_private_key_file = v; }},
      {"TrustedRootCertificatesPath", Kind::kString,
       "Folder of CA certificates (or one PEM file) that sign the nodes' and managers' "
       "certificates.",
       [](ManagerConfig& c, const std::string& v) { c.trusted_root_certificates_path = v; }},
  };
  return kTable;
}

const Key* find_key(const std::string& name) {
  for (const Key& k : keys()) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

// One value of a YAML node as option text: scalars as written, sequences comma-joined.
std::optional<std::string> yaml_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsNull()) return std::string();
  if (!node.IsSequence()) return std::nullopt;
  std::string out;
  for (const auto& item : node) {
    if (!item.IsScalar()) return std::nullopt;
    out += (out.empty() ? "" : ",") + item.Scalar();
  }
  return out;
}

struct Value {
  std::string text;
  std::string source;  // "<DEFAULT>", "Config File", "Environment Variable", "Command Line"
  std::string where;   // for errors: "manager.yaml: IntHttpPort"
};

struct Parse {
  ConfigResult result;
  std::map<std::string, Value> values;  // by PascalCase key
  std::vector<std::string> node_errors;
  bool failed() const { return !result.error.empty(); }
  void fail(const std::string& message) {
    if (result.error.empty()) result.error = message;
  }
};

// Options that the manager sets on every node itself.
const std::set<std::string>& manager_owned_options() {
  static const std::set<std::string> kOwned = {"GossipSeed",
                                               "DiscoverViaDns",
                                               "ClusterDns",
                                               "ClusterGossipPort",
                                               "ClusterName",
                                               "Log",
                                               "ClusterSecretFile",
                                               "CertificateFile",
                                               "CertificatePrivateKeyFile",
                                               "TrustedRootCertificatesPath"};
  return kOwned;
}

void parse_node(Parse& p, const YAML::Node& item, size_t index, const std::string& file) {
  NodeSpec node;
  node.key = "Nodes[" + std::to_string(index) + "]";
  const std::string where = file + ": " + node.key;
  if (!item.IsMap()) return p.fail(where + ": expected a map with Name, Cluster, Options");
  for (const auto& kv : item) {
    const std::string key = kv.first.Scalar();
    if (key == "Name") {
      node.name = kv.second.Scalar();
    } else if (key == "Cluster") {
      node.cluster = kv.second.Scalar();
    } else if (key == "Options") {
      if (!kv.second.IsMap() && !kv.second.IsNull()) {
        return p.fail(where + ".Options: expected a map of worker options");
      }
      for (const auto& opt : kv.second) {
        const std::string name = opt.first.Scalar();
        const auto text = yaml_text(opt.second);
        if (!text) return p.fail(where + ".Options." + name + ": expected a value or a list");
        if (manager_owned_options().count(name)) {
          return p.fail(where + ".Options." + name +
                        ": set by the manager for every node (use the manager's keys or Cluster)");
        }
        node.args.push_back("--" + kebab_name(name) + "=" + *text);
        node.option_keys.emplace_back(name, "--" + kebab_name(name));
      }
    } else {
      return p.fail(where + "." + key + ": unknown key (expected Name, Cluster, Options)");
    }
  }
  if (node.name.empty()) return p.fail(where + ".Name: missing");
  p.result.config.nodes.push_back(std::move(node));
}

void read_yaml(Parse& p, const std::string& file, const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return p.fail(file + ": not valid YAML: " + e.what());
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) return p.fail(file + ": expected a map of keys");
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key == "Nodes") {
      if (!kv.second.IsSequence() && !kv.second.IsNull()) {
        return p.fail(file + ": Nodes: expected a list of nodes");
      }
      size_t index = 0;
      for (const auto& item : kv.second) {
        parse_node(p, item, index++, file);
        if (p.failed()) return;
      }
      continue;
    }
    if (!find_key(key)) return p.fail(file + ": " + key + ": unknown key");
    const auto value = yaml_text(kv.second);
    if (!value) return p.fail(file + ": " + key + ": expected a value");
    p.values[key] = Value{*value, "Config File", file + ": " + key};
  }
}

std::string env_name(const std::string& key) {
  return "CHORUS_MANAGER_" + env_var_name(key).substr(std::string("CHORUS_").size());
}

// Command line: --kebab value, --kebab=value, a bare --flag for booleans.
void read_command_line(Parse& p, int argc, const char* const* argv, std::string* config_file) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 && arg.rfind('-', 0) == 0) arg = "-" + arg;  // -Config form
    if (arg.rfind("--", 0) != 0) return p.fail("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    if (name == "help") {
      p.result.config.help = true;
      continue;
    }
    if (name == "daemon" || name == "pidfile" || name == "umask") {
      // Poco's ServerApplication options (run in the background), passed on to it.
      p.result.config.daemon_args.emplace_back(argv[i]);
      continue;
    }
    if (name == "what-if" || name == "whatif") {
      p.result.config.what_if = !value || to_bool(*value).value_or(true);
      continue;
    }
    const Key* key = nullptr;
    for (const Key& k : keys()) {
      if (kebab_name(k.name) == name) key = &k;
    }
    if (name != "config" && !key) return p.fail("--" + name + ": unknown option");
    const bool is_flag = key && key->kind == Kind::kBool;
    if (!value) {
      const bool next_is_value = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0;
      if (is_flag && !(next_is_value && to_bool(argv[i + 1]))) {
        value = "true";
      } else if (next_is_value) {
        value = argv[++i];
      } else {
        return p.fail("--" + name + ": missing value");
      }
    }
    if (name == "config") {
      *config_file = *value;
    } else {
      p.values[key->name] = Value{*value, "Command Line", "--" + name};
    }
  }
}

std::string split_words(const std::string& line, std::vector<std::string>* words) {
  std::string word;
  char quote = 0;
  bool any = false;
  for (char c : line) {
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
      any = true;
    } else if (c == ' ' || c == '\t') {
      if (!word.empty() || any) words->push_back(word);
      word.clear();
      any = false;
    } else {
      word += c;
    }
  }
  if (quote) return "unbalanced quote";
  if (!word.empty() || any) words->push_back(word);
  return "";
}

// A watchdog line's options without those the manager sets itself (it sets them for every
// node); --cluster-name becomes the node's cluster.
std::vector<std::string> without_manager_owned(const std::vector<std::string>& args,
                                               std::string* cluster) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const auto eq = a.find('=');
    const std::string flag = a.substr(0, eq);
    bool owned = false;
    for (const auto& name : manager_owned_options()) {
      if (flag == "--" + kebab_name(name)) owned = true;
    }
    if (!owned) {
      out.push_back(a);
      continue;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
      value = args[++i];
    }
    if (flag == "--cluster-name" && !value.empty()) *cluster = value;
  }
  return out;
}

// EventStore's watchdog file: each node line is "# <node command-line options>".
void read_watchdog(Parse& p, const std::string& file, const std::string& text) {
  std::stringstream in(text);
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    const std::string where = file + ":" + std::to_string(line_number);
    if (line[first] != '#') return p.fail(where + ": expected '# <node options>'");
    NodeSpec node;
    node.key = "WatchdogConfig:" + std::to_string(line_number);
    if (auto problem = split_words(line.substr(first + 1), &node.args); !problem.empty()) {
      return p.fail(where + ": " + problem);
    }
    node.name = "watchdog-" + std::to_string(line_number);
    node.args = without_manager_owned(node.args, &node.cluster);
    p.result.config.nodes.push_back(std::move(node));
  }
}

void apply_values(Parse& p) {
  ManagerConfig& c = p.result.config;
  for (const Key& k : keys()) {
    auto it = p.values.find(k.name);
    if (it == p.values.end()) continue;
    if (auto problem = check_value(k.kind, it->second.text); !problem.empty()) {
      return p.fail(it->second.where + ": " + problem);
    }
    k.set(c, it->second.text);
  }
  // Absolute paths: the nodes' command lines and the pid-file checks then do not depend on the
  // folder a node or a daemonized manager runs in.
  for (std::string* folder : {&c.db_folder, &c.log_folder, &c.worker_path, &c.web_root,
                              &c.cluster_secret_file, &c.backup_root}) {
    if (!folder->empty()) *folder = std::filesystem::absolute(*folder).lexically_normal();
  }
  for (std::string* folder : {&c.db_folder, &c.log_folder, &c.backup_root}) {
    if (folder->size() > 1 && folder->back() == '/') folder->pop_back();
  }
  for (std::string* path :
       {&c.certificate_file, &c.certificate_private_key_file, &c.trusted_root_certificates_path}) {
    if (!path->empty()) *path = std::filesystem::absolute(*path).lexically_normal();
  }
  const bool certificate = !c.certificate_file.empty();
  if (certificate != !c.certificate_private_key_file.empty() ||
      certificate != !c.trusted_root_certificates_path.empty()) {
    const char* missing = c.certificate_file.empty()               ? "CertificateFile"
                          : c.certificate_private_key_file.empty() ? "CertificatePrivateKeyFile"
                                                                   : "TrustedRootCertificatesPath";
    p.fail(std::string(missing) +
           ": missing (CertificateFile, CertificatePrivateKeyFile and "
           "TrustedRootCertificatesPath go together)");
  }
  if (c.backup_root.empty()) c.backup_root = c.db_folder + "/backups";
  if (c.limits.intensity_exits_max < 1) p.fail("RestartIntensity: must be at least 1");
  if (c.limits.backoff_max_ms < c.limits.backoff_initial_ms) {
    p.fail("RestartBackoffMaxMs: smaller than RestartBackoffInitialMs");
  }
}

// The value of a key in `c` as option text (for --what-if).
std::string value_text(const std::string& key, const ManagerConfig& c) {
  std::string seeds;
  for (const HostPort& h : c.gossip_seeds) {
    seeds += (seeds.empty() ? "" : ",") + h.host + ":" + std::to_string(h.port);
  }
  const RestartLimits& l = c.limits;
  const std::map<std::string, std::string> texts = {
      {"Name", c.name},
      {"IntIp", c.int_ip},
      {"ExtIp", c.ext_ip},
      {"IntHttpPort", std::to_string(c.int_http_port)},
      {"ExtHttpPort", std::to_string(c.ext_http_port)},
      {"ExtHttpPortV5", std::to_string(c.ext_http_port_v5)},
      {"DiscoverViaDns", c.discover_via_dns ? "true" : "false"},
      {"GossipSeed", seeds},
      {"ClusterDns", c.cluster_dns},
      {"ClusterGossipPort", std::to_string(c.cluster_gossip_port)},
      {"Log", c.log_folder},
      {"Db", c.db_folder},
      {"EnableWatchdog", c.enable_watchdog ? "true" : "false"},
      {"WatchdogConfig", c.watchdog_config},
      {"DefaultCluster", c.default_cluster},
      {"WorkerPath", c.worker_path},
      {"WebRoot", c.web_root},
      {"BackupRoot", c.backup_root},
      {"ClusterSecretFile", c.cluster_secret_file},
      {"Insecure", c.insecure ? "true" : "false"},
      {"GossipIntervalMs", std::to_string(c.gossip_interval_ms)},
      {"GossipTimeoutMs", std::to_string(c.gossip_timeout_ms)},
      {"HealthIntervalMs", std::to_string(c.health_interval_ms)},
      {"NodeLogFileSize", std::to_string(c.node_log_bytes_max)},
      {"NodeLogFileCount", std::to_string(c.node_log_files_max)},
      {"RestartBackoffInitialMs", std::to_string(l.backoff_initial_ms)},
      {"RestartBackoffMaxMs", std::to_string(l.backoff_max_ms)},
      {"RestartIntensity", std::to_string(l.intensity_exits_max)},
      {"RestartPeriodMs", std::to_string(l.intensity_period_ms)},
      {"StableAfterMs", std::to_string(l.stable_after_ms)},
      {"StartGraceMs", std::to_string(l.start_grace_ms)},
      {"HungAfterMs", std::to_string(l.hung_after_ms)},
      {"StopGraceMs", std::to_string(l.stop_grace_ms)},
      {"CertificateFile", c.certificate_file},
      {"CertificatePrivateKeyFile", c.certificate_private_key_file},
      {"TrustedRootCertificatesPath", c.trusted_root_certificates_path},
  };
  auto it = texts.find(key);
  return it == texts.end() ? "" : it->second;
}

std::string display_value(const std::string& key, const ManagerConfig& c,
                          const std::map<std::string, Value>& values) {
  auto it = values.find(key);
  const std::string source = it == values.end() ? "<DEFAULT>" : it->second.source;
  return value_text(key, c) + " (" + source + ")";
}

// Whether the node's own options (with its --config file, if any) set IntIp and ExtIp. A node
// whose own options do not parse is reported by resolve_nodes with the full command line.
void mark_own_addresses(NodeSpec& node) {
  std::vector<const char*> argv{"chorus-worker"};
  for (const auto& a : node.args) argv.push_back(a.c_str());
  const auto own = parse_worker_options(static_cast<int>(argv.size()), argv.data(), Environment{});
  for (const EffectiveOption& o : own.effective) {
    if (o.source == OptionSource::kDefault) continue;
    if (o.name == "IntIp") node.own_int_ip = true;
    if (o.name == "ExtIp") node.own_ext_ip = true;
  }
}

// Resolves each node's worker options; the worker's own parser checks names and values.
void resolve_nodes(Parse& p, const std::string& file) {
  ManagerConfig& c = p.result.config;
  std::set<std::string> names;
  for (NodeSpec& node : c.nodes) {
    const std::string where = file + ": " + node.key;
    if (!names.insert(node.name).second) {
      return p.fail(where + ".Name: '" + node.name + "' is used by two nodes");
    }
    if (node.name.find('/') != std::string::npos || node.name == "manager" || node.name[0] == '.') {
      return p.fail(where + ".Name: '" + node.name + "' cannot name a folder");
    }
    mark_own_addresses(node);
    const auto args = worker_args(c, node);
    std::vector<const char*> argv{"chorus-worker"};
    for (const auto& a : args) argv.push_back(a.c_str());
    const auto parsed =
        parse_worker_options(static_cast<int>(argv.size()), argv.data(), Environment{});
    if (!parsed.ok()) return p.fail(where + ".Options: " + parsed.error);
    node.resolved = parsed.options;
    node.db_folder = parsed.options.mem_db ? "" : parsed.options.db_folder;
    node.log_folder = parsed.options.log_folder;
  }
}

std::string option_key(const NodeSpec& node, const std::string& pascal) {
  for (const auto& [k, flag] : node.option_keys) {
    if (k == pascal) return node.key + ".Options." + k;
  }
  return node.key + " (" + pascal + " default)";
}

void check_ports(Parse& p, const std::string& file) {
  const ManagerConfig& c = p.result.config;
  struct Use {
    std::string ip;
    uint16_t port;
    std::string key;
  };
  std::vector<Use> uses = {{c.int_ip, c.int_http_port, "IntHttpPort"},
                           {c.ext_ip, c.ext_http_port, "ExtHttpPort"}};
  if (c.ext_http_port_v5 != 0) uses.push_back({c.ext_ip, c.ext_http_port_v5, "ExtHttpPortV5"});
  for (const NodeSpec& n : c.nodes) {
    const WorkerOptions& o = n.resolved;
    uses.push_back({o.int_ip, o.int_tcp_port, option_key(n, "IntTcpPort")});
    uses.push_back({o.ext_ip, o.ext_tcp_port, option_key(n, "ExtTcpPort")});
    uses.push_back({o.int_ip, o.int_http_port, option_key(n, "IntHttpPort")});
    uses.push_back({o.ext_ip, o.ext_http_port, option_key(n, "ExtHttpPort")});
    if (o.ext_http_port_v5 != 0) {
      uses.push_back({o.ext_ip, o.ext_http_port_v5, option_key(n, "ExtHttpPortV5")});
    }
  }
  for (size_t i = 0; i < uses.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const bool same_ip =
          uses[i].ip == uses[j].ip || uses[i].ip == "0.0.0.0" || uses[j].ip == "0.0.0.0";
      if (same_ip && uses[i].port == uses[j].port) {
        return p.fail(file + ": " + uses[i].key + ": port " + std::to_string(uses[i].port) +
                      " is also used by " + uses[j].key);
      }
    }
  }
}

void check_clusters(Parse& p, const std::string& file) {
  ManagerConfig& c = p.result.config;
  std::map<std::string, const NodeSpec*> first;
  for (const NodeSpec& n : c.nodes) {
    auto [it, fresh] = first.emplace(n.cluster, &n);
    if (fresh) continue;
    if (it->second->resolved.cluster_size != n.resolved.cluster_size) {
      return p.fail(file + ": " + option_key(n, "ClusterSize") + ": cluster '" + n.cluster +
                    "' has size " + std::to_string(n.resolved.cluster_size) + " here but " +
                    std::to_string(it->second->resolved.cluster_size) + " in " +
                    option_key(*it->second, "ClusterSize"));
    }
  }
  if (c.default_cluster.empty()) {
    c.default_cluster = c.nodes.empty() ? "default" : c.nodes.front().cluster;
  }
  // A manager that runs every member of a cluster knows its voters: it lists them, so that no
  // other node can take a seat (docs/cluster.md, "The voter set").
  std::map<std::string, std::vector<NodeSpec*>> by_cluster;
  for (NodeSpec& n : c.nodes) by_cluster[n.cluster].push_back(&n);
  for (auto& [name, nodes] : by_cluster) {
    const bool all_here = static_cast<int>(nodes.size()) == nodes.front()->resolved.cluster_size;
    const bool own = std::any_of(nodes.begin(), nodes.end(), [](const NodeSpec* n) {
      return !n->resolved.cluster_members.empty();
    });
    if (!all_here || own) continue;
    std::vector<std::string> members;
    for (const NodeSpec* n : nodes) {
      members.push_back(n->resolved.int_ip + ":" + std::to_string(n->resolved.int_tcp_port));
    }
    for (NodeSpec* n : nodes) n->members = members;
  }
}

void collect_effective(Parse& p) {
  for (const Key& k : keys()) {
    p.result.effective.push_back(display_name(k.name) + ": " +
                                 display_value(k.name, p.result.config, p.values));
  }
  for (const NodeSpec& n : p.result.config.nodes) {
    std::string line = "NODE " + n.name + " (cluster " + n.cluster + "): chorus-worker";
    for (const auto& a : worker_args(p.result.config, n)) line += " " + a;
    p.result.effective.push_back(line);
  }
}

}  // namespace

ConfigResult parse_manager_config(int argc, const char* const* argv, const Environment& env,
                                  const ReadFile& read_file) {
  Parse p;
  std::string config_file;
  if (auto it = env.find("CHORUS_MANAGER_CONFIG"); it != env.end()) config_file = it->second;
  read_command_line(p, argc, argv, &config_file);
  std::map<std::string, Value> overrides = std::move(p.values);
  p.values.clear();
  std::string file = config_file.empty() ? "(no config file)" : config_file;
  if (!p.failed() && !config_file.empty()) {
    std::string text;
    if (!read_file(config_file, &text)) {
      p.fail(config_file + ": cannot read the config file");
    } else {
      read_yaml(p, config_file, text);
    }
  }
  for (const Key& k : keys()) {
    if (auto it = env.find(env_name(k.name)); it != env.end()) {
      p.values[k.name] = Value{it->second, "Environment Variable", env_name(k.name)};
    }
  }
  for (auto& [k, v] : overrides) p.values[k] = v;
  p.result.config.config_file = config_file;
  if (!p.failed()) apply_values(p);
  if (!p.failed() && p.result.config.enable_watchdog) {
    const std::string& wd = p.result.config.watchdog_config;
    std::string text;
    if (wd.empty()) {
      p.fail(file + ": WatchdogConfig: missing (EnableWatchdog is true)");
    } else if (!read_file(wd, &text)) {
      p.fail(file + ": WatchdogConfig: cannot read '" + wd + "'");
    } else {
      read_watchdog(p, wd, text);
    }
  }
  if (!p.failed()) resolve_nodes(p, file);
  if (!p.failed()) check_ports(p, file);
  if (!p.failed()) check_clusters(p, file);
  if (p.failed()) {
    p.result.exit_code = kConfigErrorExitCode;
    return p.result;
  }
  collect_effective(p);
  return p.result;
}

namespace {

// Whether `args` has `flag` as "--flag value" or "--flag=value".
bool has_flag(const std::vector<std::string>& args, const std::string& flag) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) {
    return a == flag || a.rfind(flag + "=", 0) == 0;
  });
}

}  // namespace

std::vector<std::string> worker_args(const ManagerConfig& config, const NodeSpec& node) {
  std::vector<std::string> args = node.args;
  bool has_db = false;
  for (const auto& a : node.args) {
    if (a.rfind("--db", 0) == 0 || a.rfind("--mem-db", 0) == 0 || a.rfind("--config", 0) == 0) {
      has_db = true;
    }
  }
  const std::filesystem::path db = std::filesystem::path(config.db_folder) / node.name;
  const std::filesystem::path log = std::filesystem::path(config.log_folder) / node.name;
  // A node on this machine listens on this machine's addresses unless it names its own (three
  // managers on three addresses with port-only node options form one cluster).
  if (!node.own_int_ip && !has_flag(node.args, "--int-ip")) {
    args.push_back("--int-ip=" + config.int_ip);
  }
  if (!node.own_ext_ip && !has_flag(node.args, "--ext-ip")) {
    args.push_back("--ext-ip=" + config.ext_ip);
  }
  args.push_back("--gossip-seed=" + config.int_ip + ":" + std::to_string(config.int_http_port));
  args.emplace_back("--discover-via-dns=false");
  args.push_back("--cluster-name=" + node.cluster);
  if (!node.members.empty()) {
    std::string list;
    for (const auto& m : node.members) list += (list.empty() ? "" : ",") + m;
    args.push_back("--cluster-member=" + list);
  }
  if (!has_db) args.push_back("--db=" + db.string());
  args.push_back("--log=" + log.string());
  if (!config.cluster_secret.empty()) {
    args.push_back("--cluster-secret-file=" + config.cluster_secret_file);
  }
  // Insecure means no TLS either (the node's --insecure ignores certificates).
  if (!config.certificate_file.empty() && !config.insecure) {
    args.push_back("--certificate-file=" + config.certificate_file);
    args.push_back("--certificate-private-key-file=" + config.certificate_private_key_file);
    args.push_back("--trusted-root-certificates-path=" + config.trusted_root_certificates_path);
  }
  if (config.insecure) args.emplace_back("--insecure");
  return args;
}

std::string resolve_cluster_secret(ManagerConfig& config) {
  const std::string file = config.config_file.empty() ? "(no config file)" : config.config_file;
  if (config.cluster_secret_file.empty()) {
    // Certificates authenticate members by mutual TLS; a made-up secret per manager would only
    // keep the nodes of different machines apart.
    if (config.insecure || !config.certificate_file.empty()) return "";
    // Secure by default: one secret for this manager's nodes, made once and kept with its data.
    const auto path = std::filesystem::path(config.db_folder) / "manager" / "cluster-secret";
    config.cluster_secret_file = path.string();
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    std::string error;
    if (!std::filesystem::exists(path, ec) &&
        !auth::create_secret_file(config.cluster_secret_file, &error)) {
      return file + ": ClusterSecretFile: " + error;
    }
  }
  std::string error;
  const auto secret = auth::load_secret_file(config.cluster_secret_file, &error);
  if (!secret) return file + ": ClusterSecretFile: " + error;
  config.cluster_secret = *secret;
  return "";
}

std::string load_certificates(ManagerConfig& config) {
  if (config.certificate_file.empty() || config.insecure) return "";
  const std::string file = config.config_file.empty() ? "(no config file)" : config.config_file;
  std::string error;
  tls::PathField field = tls::PathField::kCertificate;
  config.certificates =
      tls::Certificates::load({config.certificate_file, config.certificate_private_key_file,
                               config.trusted_root_certificates_path},
                              &error, std::chrono::system_clock::now(), &field);
  if (!config.certificates) {
    const char* key = field == tls::PathField::kPrivateKey     ? "CertificatePrivateKeyFile"
                      : field == tls::PathField::kTrustedRoots ? "TrustedRootCertificatesPath"
                                                               : "CertificateFile";
    return file + ": " + key + ": " + error;
  }
  config.http_client_tls = config.certificates->poco_client_context();
  return "";
}

std::string validate_folders(const ManagerConfig& config) {
  const std::string file = config.config_file.empty() ? "(no config file)" : config.config_file;
  auto check = [&](const std::string& folder, const std::string& key) -> std::string {
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) return file + ": " + key + ": cannot create folder '" + folder + "': " + ec.message();
    if (!std::filesystem::is_directory(folder, ec)) {
      return file + ": " + key + ": '" + folder + "' is not a folder";
    }
    if (::access(folder.c_str(), W_OK) != 0) {
      return file + ": " + key + ": folder '" + folder + "' is not writable";
    }
    return "";
  };
  if (auto e = check(config.db_folder, "Db"); !e.empty()) return e;
  if (auto e = check(config.log_folder, "Log"); !e.empty()) return e;
  if (auto e = check(config.backup_root, "BackupRoot"); !e.empty()) return e;
  for (const NodeSpec& n : config.nodes) {
    // A backup written into a node's data folder, or a node's data inside the backups, would
    // be read as the other; the two never overlap.
    const auto inside = [](const std::string& a, const std::string& b) {
      const std::string rel = std::filesystem::path(a).lexically_relative(b).string();
      return !rel.empty() && rel.rfind("..", 0) != 0;
    };
    if (!n.db_folder.empty() &&
        (inside(n.db_folder, config.backup_root) || inside(config.backup_root, n.db_folder))) {
      return file + ": BackupRoot: '" + config.backup_root + "' overlaps the data folder of " +
             n.key + " ('" + n.db_folder + "')";
    }
    if (!n.db_folder.empty()) {
      if (auto e = check(n.db_folder, option_key(n, "Db")); !e.empty()) return e;
    }
    if (auto e = check(n.log_folder, n.key + " (Log/<Name>)"); !e.empty()) return e;
  }
  return "";
}

std::string manager_help() {
  std::string out =
      "Usage: chorus-manager --config <manager.yaml> [--what-if] [--<option> <value> ...]\n"
      "Options (YAML key, environment variable):\n"
      "  --config                      CHORUS_MANAGER_CONFIG\n"
      "  --what-if                     print the effective configuration and exit\n"
      "  --daemon [--pidfile=<file>]   run in the background (Poco ServerApplication)\n";
  for (const Key& k : keys()) {
    std::string flag = "  --" + kebab_name(k.name);
    flag.resize(std::max<size_t>(flag.size() + 1, 32), ' ');
    out += flag + k.name + ", " + env_name(k.name) + ": " + k.help + "\n";
  }
  out += "YAML only: Nodes: [{Name, Cluster, Options: {<worker YAML keys>}}]\n";
  return out;
}

}  // namespace chorus::manager
