// Goal: prove that the manager's configuration is read from its three sources with the right
// precedence, that the watchdog file is understood, and that invalid configurations are refused
// with exit code 2 and a message naming the file and the key.
#include "manager/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace chorus::manager {
namespace {

constexpr const char* kThreeNodes = R"(
IntIp: 127.0.0.1
ExtIp: 127.0.0.1
IntHttpPort: 30777
ExtHttpPort: 30778
DiscoverViaDns: false
GossipSeed: 127.0.0.2:30777,127.0.0.3:30777
Log: /tmp/logs
Db: /tmp/data
Nodes:
  - Name: n1
    Options: {ClusterSize: 3, IntTcpPort: 1112, ExtTcpPort: 1113, IntHttpPort: 2112, ExtHttpPort: 2113}
  - Name: n2
    Cluster: default
    Options: {ClusterSize: 3, IntTcpPort: 1212, ExtTcpPort: 1213, IntHttpPort: 2212, ExtHttpPort: 2213}
)";

ConfigResult parse(const std::map<std::string, std::string>& files,
                   const std::vector<std::string>& args, const Environment& env = {}) {
  std::vector<const char*> argv{"chorus-manager"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_manager_config(static_cast<int>(argv.size()), argv.data(), env,
                              [files](const std::string& path, std::string* text) {
                                auto it = files.find(path);
                                if (it == files.end()) return false;
                                *text = it->second;
                                return true;
                              });
}

ConfigResult parse_yaml(const std::string& yaml) {
  return parse({{"m.yaml", yaml}}, {"--config", "m.yaml"});
}

TEST(ManagerConfig, ReadsTheIssueExample) {
  const auto r = parse_yaml(kThreeNodes);
  ASSERT_TRUE(r.ok()) << r.error;
  const ManagerConfig& c = r.config;
  EXPECT_EQ(c.int_http_port, 30777);
  ASSERT_EQ(c.gossip_seeds.size(), 2u);
  EXPECT_EQ(c.gossip_seeds[1].host, "127.0.0.3");
  ASSERT_EQ(c.nodes.size(), 2u);
  EXPECT_EQ(c.nodes[1].resolved.ext_tcp_port, 1213);
  EXPECT_EQ(c.nodes[0].resolved.cluster_size, 3);
  EXPECT_EQ(c.nodes[0].db_folder, "/tmp/data/n1");
  EXPECT_EQ(c.default_cluster, "default");
  const auto args = worker_args(c, c.nodes[0]);
  auto has = [&](const std::string& a) {
    return std::find(args.begin(), args.end(), a) != args.end();
  };
  EXPECT_TRUE(has("--gossip-seed=127.0.0.1:30777"));
  EXPECT_TRUE(has("--discover-via-dns=false"));
  EXPECT_TRUE(has("--cluster-name=default"));
  EXPECT_TRUE(has("--db=/tmp/data/n1"));
  EXPECT_TRUE(has("--log=/tmp/logs/n1"));
  // Two of the cluster's three nodes run here: the manager cannot name the voters.
  EXPECT_FALSE(std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return a.rfind("--cluster-member", 0) == 0;
  }));
}

// The voter set (issue 10): a manager that runs every node of a cluster lists them as its
// members, so that no other node can take a seat; one whose node names its members keeps them.
TEST(ManagerConfig, PassesTheMembersOfAClusterItRunsWhole) {
  std::string yaml = kThreeNodes;
  yaml += R"(  - Name: n3
    Options: {ClusterSize: 3, IntTcpPort: 1312, ExtTcpPort: 1313, IntHttpPort: 2312, ExtHttpPort: 2313}
  - Name: solo
    Cluster: other
    Options: {ClusterSize: 1, IntTcpPort: 1412, ExtTcpPort: 1413, IntHttpPort: 2412, ExtHttpPort: 2413,
              ClusterMember: "127.0.0.1:1412"}
)";
  const auto r = parse_yaml(yaml);
  ASSERT_TRUE(r.ok()) << r.error;
  for (size_t i = 0; i < 3; ++i) {
    const auto args = worker_args(r.config, r.config.nodes[i]);
    EXPECT_NE(std::find(args.begin(), args.end(),
                        "--cluster-member=127.0.0.1:1112,127.0.0.1:1212,127.0.0.1:1312"),
              args.end())
        << r.config.nodes[i].name;
  }
  const auto solo = worker_args(r.config, r.config.nodes[3]);
  EXPECT_EQ(std::count_if(solo.begin(), solo.end(),
                          [](const std::string& a) { return a.find("cluster-member") != a.npos; }),
            1)
      << "its own list only";
}

TEST(ManagerConfig, CommandLineBeatsEnvironmentBeatsFile) {
  auto r = parse({{"m.yaml", kThreeNodes}}, {"--config", "m.yaml"},
                 {{"CHORUS_MANAGER_EXT_HTTP_PORT", "31000"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.ext_http_port, 31000);
  r = parse({{"m.yaml", kThreeNodes}}, {"--config", "m.yaml", "--ext-http-port", "32000"},
            {{"CHORUS_MANAGER_EXT_HTTP_PORT", "31000"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.ext_http_port, 32000);
  r = parse({{"m.yaml", kThreeNodes}}, {}, {{"CHORUS_MANAGER_CONFIG", "m.yaml"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.nodes.size(), 2u);
}

TEST(ManagerConfig, WhatIfListsEffectiveValuesAndNodeCommandLines) {
  const auto r = parse({{"m.yaml", kThreeNodes}}, {"--config=m.yaml", "--what-if"});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(r.config.what_if);
  std::string all;
  for (const auto& line : r.effective) all += line + "\n";
  EXPECT_NE(all.find("INT HTTP PORT: 30777 (Config File)"), std::string::npos) << all;
  EXPECT_NE(all.find("NODE n2 (cluster default): chorus-worker"), std::string::npos) << all;
  EXPECT_NE(all.find("RESTART INTENSITY: 5 (<DEFAULT>)"), std::string::npos) << all;
}

TEST(ManagerConfig, WatchdogFileAddsNodes) {
  const auto r = parse({{"m.yaml", "EnableWatchdog: true\nWatchdogConfig: wd.txt\n"},
                        {"wd.txt",
                         "# --int-tcp-port 1112 --ext-tcp-port 1113 --int-http-port 2112 "
                         "--ext-http-port 2113\n\n"
                         "# --int-tcp-port 1212 --ext-tcp-port 1213 --int-http-port 2212 "
                         "--ext-http-port 2213 --cluster-name other\n"}},
                       {"--config", "m.yaml"});
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.config.nodes.size(), 2u);
  EXPECT_EQ(r.config.nodes[0].name, "watchdog-1");
  EXPECT_EQ(r.config.nodes[1].cluster, "other");
  EXPECT_EQ(r.config.nodes[1].resolved.ext_http_port, 2213);
}

void expect_error(const ConfigResult& r, const std::vector<std::string>& parts) {
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.exit_code, kConfigErrorExitCode);
  for (const auto& p : parts) EXPECT_NE(r.error.find(p), std::string::npos) << r.error;
}

TEST(ManagerConfig, UnknownKeysAreNamed) {
  expect_error(parse_yaml("IntIpp: 1.2.3.4\n"), {"m.yaml", "IntIpp", "unknown key"});
  expect_error(parse_yaml("Nodes:\n  - Name: a\n    Colour: red\n"),
               {"m.yaml", "Nodes[0].Colour", "unknown key"});
  expect_error(parse_yaml("Nodes:\n  - Name: a\n    Options: {ExtTcpPrt: 5}\n"),
               {"m.yaml", "Nodes[0].Options", "ext-tcp-prt"});
  expect_error(parse({}, {"--bogus", "1"}), {"--bogus", "unknown option"});
}

TEST(ManagerConfig, BadValuesAreNamed) {
  expect_error(parse_yaml("IntHttpPort: 99999\n"), {"m.yaml", "IntHttpPort", "99999"});
  expect_error(parse_yaml("DiscoverViaDns: maybe\n"), {"DiscoverViaDns"});
  expect_error(parse_yaml("GossipSeed: nohost\n"), {"GossipSeed"});
  expect_error(parse({}, {"--config", "missing.yaml"}), {"missing.yaml", "cannot read"});
  expect_error(parse_yaml("Nodes:\n  - Name: a\n    Options: {GossipSeed: 1.2.3.4:5}\n"),
               {"Nodes[0].Options.GossipSeed", "set by the manager"});
}

TEST(ManagerConfig, PortClashesAreNamed) {
  expect_error(parse_yaml("Nodes:\n"
                          "  - Name: a\n    Options: {ExtTcpPort: 5000, IntTcpPort: 5001, "
                          "IntHttpPort: 5002, ExtHttpPort: 5003}\n"
                          "  - Name: b\n    Options: {ExtTcpPort: 6000, IntTcpPort: 6001, "
                          "IntHttpPort: 6002, ExtHttpPort: 5003}\n"),
               {"Nodes[1].Options.ExtHttpPort", "5003", "Nodes[0].Options.ExtHttpPort"});
  expect_error(parse_yaml("Nodes:\n  - Name: a\n    Options: {ExtHttpPort: 30778}\n"),
               {"Nodes[0].Options.ExtHttpPort", "30778", "ExtHttpPort"});
  // Two nodes with all defaults clash on every port.
  expect_error(parse_yaml("Nodes:\n  - Name: a\n  - Name: b\n"), {"Nodes[1]", "also used by"});
}

TEST(ManagerConfig, DisagreeingClusterSizesAreNamed) {
  expect_error(parse_yaml("Nodes:\n"
                          "  - Name: a\n    Options: {ClusterSize: 3, ExtTcpPort: 5000, "
                          "IntTcpPort: 5001, IntHttpPort: 5002, ExtHttpPort: 5003}\n"
                          "  - Name: b\n    Options: {ClusterSize: 5, ExtTcpPort: 6000, "
                          "IntTcpPort: 6001, IntHttpPort: 6002, ExtHttpPort: 6003}\n"),
               {"Nodes[1].Options.ClusterSize", "Nodes[0].Options.ClusterSize"});
  // Different clusters may differ.
  const auto r = parse_yaml(
      "Nodes:\n"
      "  - Name: a\n    Options: {ClusterSize: 3, ExtTcpPort: 5000, "
      "IntTcpPort: 5001, IntHttpPort: 5002, ExtHttpPort: 5003}\n"
      "  - Name: b\n    Cluster: other\n    Options: {ClusterSize: 5, ExtTcpPort: 6000, "
      "IntTcpPort: 6001, IntHttpPort: 6002, ExtHttpPort: 6003}\n");
  EXPECT_TRUE(r.ok()) << r.error;
}

TEST(ManagerConfig, DuplicateNodeNamesAreRefused) {
  expect_error(parse_yaml("Nodes:\n"
                          "  - Name: a\n    Options: {ExtTcpPort: 5000, IntTcpPort: 5001, "
                          "IntHttpPort: 5002, ExtHttpPort: 5003}\n"
                          "  - Name: a\n    Options: {ExtTcpPort: 6000, IntTcpPort: 6001, "
                          "IntHttpPort: 6002, ExtHttpPort: 6003}\n"),
               {"Nodes[1].Name", "two nodes"});
}

TEST(ManagerConfig, CertificateKeysAreGivenToEveryNode) {
  const std::string yaml = std::string(kThreeNodes) +
                           "CertificateFile: /etc/chorus/node.crt\n"
                           "CertificatePrivateKeyFile: /etc/chorus/node.key\n"
                           "TrustedRootCertificatesPath: /etc/chorus/ca\n";
  const auto r = parse_yaml(yaml);
  ASSERT_TRUE(r.ok()) << r.error;
  for (const NodeSpec& node : r.config.nodes) {
    EXPECT_EQ(node.resolved.certificate_file, "/etc/chorus/node.crt");
    EXPECT_EQ(node.resolved.certificate_private_key_file, "/etc/chorus/node.key");
    EXPECT_EQ(node.resolved.trusted_root_certificates_path, "/etc/chorus/ca");
    EXPECT_TRUE(node.resolved.tls_enabled());
  }
}

bool has_arg(const std::vector<std::string>& args, const std::string& prefix) {
  return std::any_of(args.begin(), args.end(),
                     [&](const std::string& a) { return a.rfind(prefix, 0) == 0; });
}

// Mutual TLS authenticates members: with certificates and no ClusterSecretFile the manager makes
// no secret of its own (one per machine would keep the machines' nodes apart). Insecure turns
// both off: no secret, and the nodes get --insecure instead of the certificate options.
TEST(ManagerConfig, CertificatesNeedNoSecretAndInsecureDropsBoth) {
  const std::string certificates =
      "CertificateFile: /etc/chorus/node.crt\n"
      "CertificatePrivateKeyFile: /etc/chorus/node.key\n"
      "TrustedRootCertificatesPath: /etc/chorus/ca\n";
  auto r = parse_yaml(std::string(kThreeNodes) + certificates);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(resolve_cluster_secret(r.config), "");
  EXPECT_TRUE(r.config.cluster_secret.empty());
  auto args = worker_args(r.config, r.config.nodes[0]);
  EXPECT_FALSE(has_arg(args, "--cluster-secret-file"));
  EXPECT_TRUE(has_arg(args, "--certificate-file=/etc/chorus/node.crt"));
  EXPECT_FALSE(has_arg(args, "--insecure"));

  r = parse_yaml(std::string(kThreeNodes) + certificates + "Insecure: true\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(resolve_cluster_secret(r.config), "");
  EXPECT_EQ(load_certificates(r.config), "");
  EXPECT_EQ(r.config.certificates, nullptr);
  args = worker_args(r.config, r.config.nodes[0]);
  EXPECT_FALSE(has_arg(args, "--certificate-file"));
  EXPECT_FALSE(has_arg(args, "--cluster-secret-file"));
  EXPECT_TRUE(has_arg(args, "--insecure"));
}

TEST(ManagerConfig, IncompleteOrNodeOwnCertificateKeysAreNamed) {
  auto r = parse_yaml(std::string(kThreeNodes) + "CertificateFile: /etc/chorus/node.crt\n");
  EXPECT_EQ(r.exit_code, kConfigErrorExitCode);
  EXPECT_NE(r.error.find("CertificatePrivateKeyFile: missing"), std::string::npos) << r.error;
  r = parse_yaml(R"(
Nodes:
  - Name: n1
    Options: {CertificateFile: /tmp/own.crt}
)");
  EXPECT_EQ(r.exit_code, kConfigErrorExitCode);
  EXPECT_NE(r.error.find("Nodes[0].Options.CertificateFile: set by the manager"), std::string::npos)
      << r.error;
}

TEST(ManagerConfig, UnreadableCertificateIsNamedByItsKey) {
  auto r = parse_yaml(std::string(kThreeNodes) +
                      "CertificateFile: /nonexistent/node.crt\n"
                      "CertificatePrivateKeyFile: /nonexistent/node.key\n"
                      "TrustedRootCertificatesPath: /nonexistent/ca\n");
  ASSERT_TRUE(r.ok()) << r.error;
  const std::string error = load_certificates(r.config);
  EXPECT_EQ(error,
            "m.yaml: CertificateFile: cannot read certificate file '/nonexistent/node.crt': "
            "no such file");
  EXPECT_EQ(r.config.certificates, nullptr);
  ConfigResult plain = parse_yaml(kThreeNodes);
  EXPECT_EQ(load_certificates(plain.config), "");
  EXPECT_TRUE(plain.config.http_client_tls.isNull());
}

TEST(ManagerConfig, UnwritableFolderIsNamed) {
  auto r = parse_yaml("Db: /proc/chorus-cannot-be-here\n");
  ASSERT_TRUE(r.ok()) << r.error;
  const std::string problem = validate_folders(r.config);
  EXPECT_NE(problem.find("Db"), std::string::npos) << problem;
  EXPECT_NE(problem.find("m.yaml"), std::string::npos) << problem;
}

// The issue 15 scenario: a machine's IntIp/ExtIp reach every node that names no address.
constexpr const char* kPortsOnly = R"(
IntIp: 127.0.0.2
ExtIp: 127.0.0.3
Nodes:
  - Name: a
    Options: {IntTcpPort: 5001, ExtTcpPort: 5002, IntHttpPort: 5003, ExtHttpPort: 5004}
  - Name: b
    Options: {IntIp: 127.0.0.9, IntTcpPort: 6001, ExtTcpPort: 6002, IntHttpPort: 6003,
              ExtHttpPort: 6004}
)";

int count_prefix(const std::vector<std::string>& args, const std::string& prefix) {
  return static_cast<int>(std::count_if(
      args.begin(), args.end(), [&](const std::string& a) { return a.rfind(prefix, 0) == 0; }));
}

TEST(ManagerConfig, NodesWithoutAddressesGetTheManagersAddresses) {
  const auto r = parse_yaml(kPortsOnly);
  ASSERT_TRUE(r.ok()) << r.error;
  const NodeSpec& a = r.config.nodes[0];
  EXPECT_EQ(a.resolved.int_ip, "127.0.0.2");
  EXPECT_EQ(a.resolved.ext_ip, "127.0.0.3");
  const auto args = worker_args(r.config, a);
  EXPECT_EQ(count_prefix(args, "--int-ip=127.0.0.2"), 1);
  EXPECT_EQ(count_prefix(args, "--ext-ip=127.0.0.3"), 1);
  // A node's own address wins and is not given twice (the worker refuses a repeated option).
  const NodeSpec& b = r.config.nodes[1];
  EXPECT_EQ(b.resolved.int_ip, "127.0.0.9");
  EXPECT_EQ(b.resolved.ext_ip, "127.0.0.3");
  const auto b_args = worker_args(r.config, b);
  EXPECT_EQ(count_prefix(b_args, "--int-ip"), 1);
  EXPECT_EQ(count_prefix(b_args, "--ext-ip=127.0.0.3"), 1);
}

TEST(ManagerConfig, WhatIfShowsTheNodesAddresses) {
  const auto r = parse({{"m.yaml", kPortsOnly}}, {"--config=m.yaml", "--what-if"});
  ASSERT_TRUE(r.ok()) << r.error;
  std::string node_a;
  for (const auto& line : r.effective) {
    if (line.rfind("NODE a ", 0) == 0) node_a = line;
  }
  EXPECT_NE(node_a.find(" --int-ip=127.0.0.2"), std::string::npos) << node_a;
  EXPECT_NE(node_a.find(" --ext-ip=127.0.0.3"), std::string::npos) << node_a;
  EXPECT_NE(node_a.find(" --int-tcp-port=5001"), std::string::npos) << node_a;
}

TEST(ManagerConfig, AnAddressInTheNodesConfigFileIsItsOwn) {
  const auto file = std::filesystem::temp_directory_path() /
                    ("chorus-node-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(file) << "IntIp: 127.0.0.7\n";
  const auto r = parse_yaml(
      "IntIp: 127.0.0.2\nNodes:\n  - Name: a\n    Options: {Config: " + file.string() + "}\n");
  std::filesystem::remove(file);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.nodes[0].resolved.int_ip, "127.0.0.7");
  EXPECT_EQ(r.config.nodes[0].resolved.ext_ip, "127.0.0.1");
  EXPECT_EQ(count_prefix(worker_args(r.config, r.config.nodes[0]), "--int-ip"), 0);
}

TEST(ManagerConfig, PortClashesUseTheFilledInAddresses) {
  // Both nodes take the manager's 127.0.0.2, so equal ports clash there (before, each defaulted
  // to 127.0.0.1 and crash-looped at run time instead).
  expect_error(parse_yaml("IntIp: 127.0.0.2\nExtIp: 127.0.0.2\nNodes:\n"
                          "  - Name: a\n    Options: {ExtTcpPort: 5000, IntTcpPort: 5001, "
                          "IntHttpPort: 5002, ExtHttpPort: 5003}\n"
                          "  - Name: b\n    Options: {ExtTcpPort: 5000, IntTcpPort: 6001, "
                          "IntHttpPort: 6002, ExtHttpPort: 6003}\n"),
               {"Nodes[1].Options.ExtTcpPort", "5000", "Nodes[0].Options.ExtTcpPort"});
}

}  // namespace
}  // namespace chorus::manager
