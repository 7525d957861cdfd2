// Proves the worker's option parsing: defaults, each source (command line, environment, YAML
// file), their precedence, boolean spellings, list values, and that unknown options, unknown
// keys and invalid values are refused with exit code 2 and a message naming the option.
#include "common/options.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace chorus {
namespace {

ParseResult parse(std::initializer_list<const char*> args, const Environment& env = {}) {
  std::vector<const char*> argv = {"chorus-worker"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_worker_options(static_cast<int>(argv.size()), argv.data(), env);
}

OptionSource source_of(const ParseResult& result, const std::string& name) {
  for (const EffectiveOption& option : result.effective) {
    if (option.name == name) return option.source;
  }
  ADD_FAILURE() << "no effective option " << name;
  return OptionSource::kDefault;
}

// A YAML file in the temp folder, removed when the test ends.
class TempYaml {
 public:
  explicit TempYaml(const std::string& text)
      : path_(std::filesystem::temp_directory_path() /
              ("chorus-options-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++) +
               ".yaml")) {
    std::ofstream(path_) << text;
  }
  ~TempYaml() { std::filesystem::remove(path_); }
  TempYaml(const TempYaml&) = delete;
  TempYaml& operator=(const TempYaml&) = delete;
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(OptionsNames, DerivedFromPascalCase) {
  EXPECT_EQ(kebab_name("ExtTcpPort"), "ext-tcp-port");
  EXPECT_EQ(env_var_name("ExtTcpPort"), "CHORUS_EXT_TCP_PORT");
  EXPECT_EQ(display_name("ExtTcpPort"), "EXT TCP PORT");
  EXPECT_EQ(kebab_name("MemDb"), "mem-db");
}

TEST(OptionsDefaults, MatchEventStoreDefaults) {
  const ParseResult r = parse({});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.db_folder, "./data");
  EXPECT_FALSE(r.options.mem_db);
  EXPECT_EQ(r.options.log_folder, "./logs");
  EXPECT_EQ(r.options.ext_ip, "127.0.0.1");
  EXPECT_EQ(r.options.int_tcp_port, 1112);
  EXPECT_EQ(r.options.ext_tcp_port, 1113);
  EXPECT_EQ(r.options.int_http_port, 2112);
  EXPECT_EQ(r.options.ext_http_port, 2113);
  EXPECT_EQ(r.options.cluster_size, 1);
  EXPECT_TRUE(r.options.discover_via_dns);
  EXPECT_EQ(r.options.cluster_dns, "fake.dns");
  EXPECT_EQ(r.options.cluster_gossip_port, 2112);
  EXPECT_EQ(r.options.ext_tcp_heartbeat_interval_ms, 2000);
  EXPECT_EQ(r.options.ext_tcp_heartbeat_timeout_ms, 1000);
  EXPECT_EQ(r.options.commit_timeout_ms, 5000);
  EXPECT_EQ(r.options.prepare_timeout_ms, 2000);
  EXPECT_EQ(r.options.reader_threads_count, 4);
  EXPECT_EQ(r.options.log_level, "Information");
  EXPECT_TRUE(r.options.gossip_seeds.empty());
  for (const EffectiveOption& option : r.effective) {
    EXPECT_EQ(option.source, OptionSource::kDefault) << option.name;
  }
}

TEST(OptionsCommandLine, AcceptsSeparateAndAdjacentValues) {
  const ParseResult r = parse({"--ext-tcp-port", "4113", "--db=/tmp/x", "--cluster-size=3"});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.ext_tcp_port, 4113);
  EXPECT_EQ(r.options.db_folder, "/tmp/x");
  EXPECT_EQ(r.options.cluster_size, 3);
  EXPECT_EQ(source_of(r, "ExtTcpPort"), OptionSource::kCommandLine);
  EXPECT_EQ(source_of(r, "IntTcpPort"), OptionSource::kDefault);
}

TEST(OptionsCommandLine, BooleanSpellings) {
  EXPECT_TRUE(parse({"--mem-db"}).options.mem_db);
  EXPECT_TRUE(parse({"--mem-db=true"}).options.mem_db);
  EXPECT_TRUE(parse({"--mem-db=True"}).options.mem_db);
  EXPECT_FALSE(parse({"--mem-db=false"}).options.mem_db);
  EXPECT_FALSE(parse({"--discover-via-dns=False"}).options.discover_via_dns);
  EXPECT_TRUE(parse({"--what-if"}).options.what_if);
  EXPECT_FALSE(parse({"--mem-db", "false"}).options.mem_db);
  EXPECT_TRUE(parse({"--mem-db", "--db", "x"}).options.mem_db);
  const ParseResult bad = parse({"--mem-db=maybe"});
  EXPECT_EQ(bad.exit_code, kUsageErrorExitCode);
  EXPECT_NE(bad.error.find("--mem-db"), std::string::npos) << bad.error;
}

TEST(OptionsCommandLine, GossipSeedsCommaSeparatedOrRepeated) {
  const ParseResult r =
      parse({"--gossip-seed=10.0.0.1:2112,10.0.0.2:2112", "--gossip-seed", "node3.local:2113"});
  ASSERT_TRUE(r.ok()) << r.error;
  const std::vector<HostPort> expected = {
      {"10.0.0.1", 2112}, {"10.0.0.2", 2112}, {"node3.local", 2113}};
  EXPECT_EQ(r.options.gossip_seeds, expected);
  EXPECT_NE(format_effective_options(r.effective)
                .find("GOSSIP SEED: 10.0.0.1:2112,10.0.0.2:2112,node3.local:2113 (Command Line)"),
            std::string::npos);
}

TEST(OptionsCommandLine, UnknownOptionIsRefused) {
  const ParseResult r = parse({"--ext-tcp-prot=1113"});
  EXPECT_EQ(r.exit_code, kUsageErrorExitCode);
  EXPECT_NE(r.error.find("'--ext-tcp-prot'"), std::string::npos) << r.error;
  EXPECT_TRUE(r.effective.empty());
}

TEST(OptionsCommandLine, PrefixIsNotGuessed) {
  EXPECT_EQ(parse({"--ext-tcp=1113"}).exit_code, kUsageErrorExitCode);
}

TEST(OptionsCommandLine, StrayArgumentIsRefused) {
  const ParseResult r = parse({"oops"});
  EXPECT_EQ(r.exit_code, kUsageErrorExitCode);
  EXPECT_NE(r.error.find("oops"), std::string::npos) << r.error;
}

TEST(OptionsCommandLine, MissingValueIsRefused) {
  const ParseResult r = parse({"--ext-tcp-port"});
  EXPECT_EQ(r.exit_code, kUsageErrorExitCode);
  EXPECT_NE(r.error.find("ext-tcp-port"), std::string::npos) << r.error;
}

TEST(OptionsCommandLine, RepeatedScalarIsRefused) {
  EXPECT_EQ(parse({"--db=a", "--db=b"}).exit_code, kUsageErrorExitCode);
}

TEST(OptionsValidation, InvalidValuesNameTheOption) {
  for (const char* arg :
       {"--ext-tcp-port=70000", "--ext-tcp-port=0", "--ext-tcp-port=abc", "--ext-tcp-port=12x",
        "--cluster-size=0", "--reader-threads-count=-1", "--gossip-seed=nohost",
        "--gossip-seed=h:99999", "--log-level=Loud", "--db="}) {
    const ParseResult r = parse({arg});
    EXPECT_EQ(r.exit_code, kUsageErrorExitCode) << arg;
    const std::string flag = std::string(arg).substr(0, std::string(arg).find('='));
    EXPECT_NE(r.error.find(flag), std::string::npos) << arg << " -> " << r.error;
  }
}

TEST(OptionsValidation, LogLevelIsCaseInsensitive) {
  EXPECT_EQ(parse({"--log-level=debug"}).options.log_level, "Debug");
}

TEST(OptionsEnvironment, ReadsChorusVariables) {
  const ParseResult r = parse({}, {{"CHORUS_EXT_TCP_PORT", "5113"},
                                   {"CHORUS_MEM_DB", "TRUE"},
                                   {"CHORUS_GOSSIP_SEED", "a:1,b:2"},
                                   {"CHORUS_WORKER", "/ignored/unknown/variable"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.ext_tcp_port, 5113);
  EXPECT_TRUE(r.options.mem_db);
  EXPECT_EQ(r.options.gossip_seeds.size(), 2u);
  EXPECT_EQ(source_of(r, "ExtTcpPort"), OptionSource::kEnvironment);
}

TEST(OptionsEnvironment, HelpAndVersionAreCommandLineOnly) {
  const ParseResult r = parse({}, {{"CHORUS_VERSION", "0.1.0"}, {"CHORUS_HELP", "true"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_FALSE(r.options.version);
  EXPECT_FALSE(r.options.help);
  const TempYaml yaml("Version: true\n");
  EXPECT_EQ(parse({"--config", yaml.path().c_str()}).exit_code, kUsageErrorExitCode);
}

TEST(OptionsEnvironment, InvalidValueNamesTheVariable) {
  const ParseResult r = parse({}, {{"CHORUS_CLUSTER_SIZE", "three"}});
  EXPECT_EQ(r.exit_code, kUsageErrorExitCode);
  EXPECT_NE(r.error.find("CHORUS_CLUSTER_SIZE"), std::string::npos) << r.error;
}

TEST(OptionsFile, ReadsPascalCaseKeysAndLists) {
  const TempYaml yaml(
      "ExtTcpPort: 6113\nClusterSize: 3\nMemDb: True\nGossipSeed:\n  - h1:2112\n  - h2:2112\n");
  const ParseResult r = parse({"--config", yaml.path().c_str()});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.ext_tcp_port, 6113);
  EXPECT_EQ(r.options.cluster_size, 3);
  EXPECT_TRUE(r.options.mem_db);
  EXPECT_EQ(r.options.gossip_seeds.size(), 2u);
  EXPECT_EQ(source_of(r, "ClusterSize"), OptionSource::kConfigFile);
  EXPECT_EQ(source_of(r, "Config"), OptionSource::kCommandLine);
}

TEST(OptionsFile, ConfigPathFromEnvironment) {
  const TempYaml yaml("ClusterSize: 5\n");
  const ParseResult r = parse({}, {{"CHORUS_CONFIG", yaml.path()}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.cluster_size, 5);
}

TEST(OptionsFile, EmptyFileIsAllDefaults) {
  const TempYaml yaml("");
  const ParseResult r = parse({"--config", yaml.path().c_str()});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.ext_tcp_port, 1113);
}

TEST(OptionsFile, UnknownKeyNamesFileKeyAndLine) {
  const TempYaml yaml("ClusterSize: 3\nExtTcpPorts: 1113\n");
  const ParseResult r = parse({"--config", yaml.path().c_str()});
  EXPECT_EQ(r.exit_code, kUsageErrorExitCode);
  EXPECT_NE(r.error.find("ExtTcpPorts"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find(yaml.path()), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("line 2"), std::string::npos) << r.error;
}

TEST(OptionsFile, InvalidValueNamesFileAndKey) {
  const TempYaml yaml("ExtTcpPort: 70000\n");
  const ParseResult r = parse({"--config", yaml.path().c_str()});
  EXPECT_EQ(r.exit_code, kUsageErrorExitCode);
  EXPECT_NE(r.error.find("ExtTcpPort"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find(yaml.path()), std::string::npos) << r.error;
}

TEST(OptionsFile, MissingOrMalformedFileIsRefused) {
  EXPECT_EQ(parse({"--config=/nonexistent/chorus.yaml"}).exit_code, kUsageErrorExitCode);
  const TempYaml not_a_map("- a\n- b\n");
  EXPECT_EQ(parse({"--config", not_a_map.path().c_str()}).exit_code, kUsageErrorExitCode);
  const TempYaml broken("ExtTcpPort: [1113\n");
  EXPECT_EQ(parse({"--config", broken.path().c_str()}).exit_code, kUsageErrorExitCode);
}

TEST(OptionsFile, ConfigKeyIsNotAllowedInsideTheFile) {
  const TempYaml yaml("Config: other.yaml\n");
  EXPECT_EQ(parse({"--config", yaml.path().c_str()}).exit_code, kUsageErrorExitCode);
}

TEST(OptionsPrecedence, CommandLineOverEnvironmentOverFileOverDefault) {
  const TempYaml yaml("ExtTcpPort: 1001\nIntTcpPort: 1002\nExtHttpPort: 1003\n");
  const Environment env = {{"CHORUS_EXT_TCP_PORT", "2001"}, {"CHORUS_INT_TCP_PORT", "2002"}};
  const ParseResult r = parse({"--config", yaml.path().c_str(), "--ext-tcp-port=3001"}, env);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.ext_tcp_port, 3001);
  EXPECT_EQ(source_of(r, "ExtTcpPort"), OptionSource::kCommandLine);
  EXPECT_EQ(r.options.int_tcp_port, 2002);
  EXPECT_EQ(source_of(r, "IntTcpPort"), OptionSource::kEnvironment);
  EXPECT_EQ(r.options.ext_http_port, 1003);
  EXPECT_EQ(source_of(r, "ExtHttpPort"), OptionSource::kConfigFile);
  EXPECT_EQ(r.options.int_http_port, 2112);
  EXPECT_EQ(source_of(r, "IntHttpPort"), OptionSource::kDefault);
}

TEST(OptionsPrecedence, CommandLineFalseOverridesEnvironmentTrue) {
  const ParseResult r = parse({"--mem-db=false"}, {{"CHORUS_MEM_DB", "true"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_FALSE(r.options.mem_db);
}

TEST(OptionsWhatIf, PrintsEveryOptionWithItsSource) {
  const ParseResult r = parse({"--ext-tcp-port=1114"}, {{"CHORUS_CLUSTER_SIZE", "3"}});
  ASSERT_TRUE(r.ok()) << r.error;
  const std::string text = format_effective_options(r.effective);
  EXPECT_NE(text.find("EXT TCP PORT: 1114 (Command Line)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("CLUSTER SIZE: 3 (Environment Variable)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("INT TCP PORT: 1112 (<DEFAULT>)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("MEM DB: false (<DEFAULT>)\n"), std::string::npos) << text;
}

// The default passwords come from EventStoreDB 21+'s option names and are never printed.
TEST(OptionsDefaultPasswords, AppliedFromEachSourceAndMasked) {
  const ParseResult defaults = parse({});
  ASSERT_TRUE(defaults.ok()) << defaults.error;
  EXPECT_EQ(defaults.options.default_admin_password, "changeit");
  EXPECT_EQ(defaults.options.default_ops_password, "changeit");

  const ParseResult r = parse({"--default-ops-password=0ps-s3cret"},
                              {{"CHORUS_DEFAULT_ADMIN_PASSWORD", "adm1n-s3cret"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.default_admin_password, "adm1n-s3cret");
  EXPECT_EQ(r.options.default_ops_password, "0ps-s3cret");
  const std::string text = format_effective_options(r.effective);
  EXPECT_NE(text.find("DEFAULT ADMIN PASSWORD: **** (Environment Variable)\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("DEFAULT OPS PASSWORD: **** (Command Line)\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("s3cret"), std::string::npos) << text;

  TempYaml yaml("DefaultAdminPassword: from-the-file\n");
  const ParseResult file = parse({"--config", yaml.path().c_str()});
  ASSERT_TRUE(file.ok()) << file.error;
  EXPECT_EQ(file.options.default_admin_password, "from-the-file");
}

TEST(OptionsDefaultPasswords, RefusedWhenEmptyOrTooLongWithoutEchoingThem) {
  const ParseResult empty = parse({"--default-admin-password="});
  EXPECT_EQ(empty.exit_code, kUsageErrorExitCode);
  EXPECT_NE(empty.error.find("--default-admin-password"), std::string::npos) << empty.error;

  const std::string long_password = "secret-" + std::string(2000, 'x');
  const ParseResult too_long = parse({}, {{"CHORUS_DEFAULT_OPS_PASSWORD", long_password}});
  EXPECT_EQ(too_long.exit_code, kUsageErrorExitCode);
  EXPECT_NE(too_long.error.find("CHORUS_DEFAULT_OPS_PASSWORD"), std::string::npos)
      << too_long.error;
  EXPECT_EQ(too_long.error.find("secret-"), std::string::npos) << too_long.error;
}

// Hole 7: the client connection limit defaults to a named constant far below the old 10,000,
// may be set from every source, and refuses values that would not bound anything.
TEST(OptionsTcpConnections, DefaultEachSourceAndRange) {
  EXPECT_EQ(parse({}).options.ext_tcp_connections_max, kExtTcpConnectionsMaxDefault);
  EXPECT_EQ(kExtTcpConnectionsMaxDefault, 1000);
  EXPECT_EQ(parse({"--ext-tcp-connections-max=50"}).options.ext_tcp_connections_max, 50);
  EXPECT_EQ(parse({}, {{"CHORUS_EXT_TCP_CONNECTIONS_MAX", "20"}}).options.ext_tcp_connections_max,
            20);
  const TempYaml file("ExtTcpConnectionsMax: 30\n");
  EXPECT_EQ(parse({"--config", file.path().c_str()}).options.ext_tcp_connections_max, 30);
  for (const char* arg : {"--ext-tcp-connections-max=0", "--ext-tcp-connections-max=-1",
                          "--ext-tcp-connections-max=100001", "--ext-tcp-connections-max=many"}) {
    const ParseResult r = parse({arg});
    EXPECT_EQ(r.exit_code, kUsageErrorExitCode) << arg;
    EXPECT_NE(r.error.find("--ext-tcp-connections-max"), std::string::npos) << r.error;
  }
}

TEST(OptionsTls, EventStoreNamesFromEverySource) {
  TempYaml yaml("TrustedRootCertificatesPath: /etc/chorus/ca\nDisableInsecureTCP: true\n");
  const ParseResult r = parse({"--certificate-file=/etc/chorus/node.crt", "--config",
                               yaml.path().c_str(), "--ext-secure-tcp-port", "1115"},
                              {{"CHORUS_CERTIFICATE_PRIVATE_KEY_FILE", "/etc/chorus/node.key"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.certificate_file, "/etc/chorus/node.crt");
  EXPECT_EQ(r.options.certificate_private_key_file, "/etc/chorus/node.key");
  EXPECT_EQ(r.options.trusted_root_certificates_path, "/etc/chorus/ca");
  EXPECT_EQ(r.options.ext_secure_tcp_port, 1115);
  EXPECT_TRUE(r.options.disable_insecure_tcp);
  EXPECT_TRUE(r.options.tls_enabled());
  const std::string text = format_effective_options(r.effective);
  EXPECT_NE(text.find("EXT SECURE TCP PORT: 1115 (Command Line)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("INSECURE: false (<DEFAULT>)\n"), std::string::npos) << text;
}

TEST(OptionsTls, DefaultsAreNoTlsAndNoSecurePort) {
  const ParseResult r = parse({});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_FALSE(r.options.tls_enabled());
  EXPECT_EQ(r.options.ext_secure_tcp_port, 0);
  EXPECT_FALSE(r.options.insecure);
  EXPECT_FALSE(r.options.disable_insecure_tcp);
}

TEST(OptionsTls, InconsistentCombinationsAreRefused) {
  const char* cert = "--certificate-file=c.pem";
  const char* key = "--certificate-private-key-file=k.pem";
  const char* roots = "--trusted-root-certificates-path=ca";
  ParseResult r = parse({cert, key});
  EXPECT_EQ(r.exit_code, kUsageErrorExitCode);
  EXPECT_NE(r.error.find("go together"), std::string::npos) << r.error;
  r = parse({"--ext-secure-tcp-port=1115"});
  EXPECT_EQ(r.error, "--ext-secure-tcp-port needs --certificate-file");
  r = parse({cert, key, roots, "--insecure", "--ext-secure-tcp-port=1115"});
  EXPECT_EQ(r.error, "--ext-secure-tcp-port cannot be used with --insecure");
  r = parse({cert, key, roots, "--disable-insecure-tcp"});
  EXPECT_NE(r.error.find("--disable-insecure-tcp needs --ext-secure-tcp-port"), std::string::npos);
  r = parse({cert, key, roots, "--ext-secure-tcp-port=70000"});
  EXPECT_NE(r.error.find("expected 0 (off) or a port number from 1 to 65535"), std::string::npos);
  // --insecure keeps the certificate options but turns TLS off.
  r = parse({cert, key, roots, "--insecure"});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_FALSE(r.options.tls_enabled());
}

TEST(OptionsHelp, ListsEveryFlagVariableAndKey) {
  const std::string help = worker_options_help();
  for (const char* text :
       {"--ext-tcp-port", "CHORUS_EXT_TCP_PORT", "ExtTcpPort", "--mem-db", "--gossip-seed",
        "--what-if", "--commit-timeout-ms", "--certificate-file", "--certificate-private-key-file",
        "--trusted-root-certificates-path", "--ext-secure-tcp-port", "CHORUS_EXT_SECURE_TCP_PORT",
        "--insecure", "--disable-insecure-tcp"}) {
    EXPECT_NE(help.find(text), std::string::npos) << text;
  }
}

// The projection options take EventStore's names and values (case-insensitive modes), default to
// None/false/3, come from the environment too, and refuse an unknown mode naming the option.
TEST(OptionsProjections, ModesDefaultsAndRefusals) {
  const ParseResult d = parse({});
  EXPECT_EQ(d.options.run_projections, "None");
  EXPECT_FALSE(d.options.start_standard_projections);
  EXPECT_EQ(d.options.projection_threads, 3);
  const ParseResult r = parse({"--run-projections=system", "--start-standard-projections=true"},
                              {{"CHORUS_PROJECTION_THREADS", "5"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.options.run_projections, "System");
  EXPECT_TRUE(r.options.start_standard_projections);
  EXPECT_EQ(r.options.projection_threads, 5);
  EXPECT_EQ(source_of(r, "ProjectionThreads"), OptionSource::kEnvironment);
  EXPECT_EQ(parse({"--run-projections=ALL"}).options.run_projections, "All");
  for (const char* arg : {"--run-projections=Some", "--projection-threads=0"}) {
    const ParseResult bad = parse({arg});
    EXPECT_EQ(bad.exit_code, kUsageErrorExitCode) << arg;
    const std::string flag = std::string(arg).substr(0, std::string(arg).find('='));
    EXPECT_NE(bad.error.find(flag), std::string::npos) << arg << " -> " << bad.error;
  }
}

// --stats-period-sec defaults to EventStore's 30 s, takes 0 (never) and refuses negative or
// absurd periods naming the option.
TEST(OptionsStats, PeriodDefaultZeroAndRefusals) {
  EXPECT_EQ(parse({}).options.stats_period_sec, 30);
  EXPECT_EQ(parse({"--stats-period-sec=0"}).options.stats_period_sec, 0);
  EXPECT_EQ(parse({}, {{"CHORUS_STATS_PERIOD_SEC", "5"}}).options.stats_period_sec, 5);
  for (const char* arg : {"--stats-period-sec=-1", "--stats-period-sec=86401"}) {
    const ParseResult bad = parse({arg});
    EXPECT_EQ(bad.exit_code, kUsageErrorExitCode) << arg;
    EXPECT_NE(bad.error.find("--stats-period-sec"), std::string::npos) << bad.error;
  }
}

}  // namespace
}  // namespace chorus
