// Goal: the gossip document (common/gossip) round-trips through its JSON form with every v5 and
// v20 key, reads v20-only documents (httpEndPoint*) into the external HTTP pair, and refuses text
// that is not a ClusterInfoDto; v5 state names (Master, Slave, ...) replace every v20 one, keep
// the order and never leave a name a v5 client's enum lacks; the Prometheus writer emits cumulative
// histogram buckets.
#include "common/gossip.hpp"
#include "worker/http/metrics_text.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chorus {
namespace {

TEST(HttpGossip, RoundTrip) {
  MemberInfo m;
  m.instance_id = "6a1c2e0c-64a1-4b0c-9b0a-0123456789ab";
  m.time_stamp = iso8601_utc(1599054804234898);
  m.state = "Leader";
  m.external_tcp_ip = "10.0.0.1";
  m.external_tcp_port = 1113;
  m.internal_http_ip = "10.0.0.1";
  m.internal_http_port = 2112;
  m.external_http_ip = "10.0.0.1";
  m.external_http_port = 2113;
  m.writer_checkpoint = 1234567890123;
  m.epoch_number = 3;
  m.node_priority = 2;
  ClusterInfo info;
  info.members = {m};
  info.server_ip = "10.0.0.1";
  info.server_port = 2112;
  EXPECT_EQ(m.time_stamp, "2020-09-02T13:53:24.234898Z");
  const std::string text = to_json(info);
  for (const char* key : {"\"instanceId\"", "\"httpEndPointIp\"", "\"isReadOnlyReplica\"",
                          "\"externalSecureTcpPort\"", "\"epochId\"", "\"serverPort\""}) {
    EXPECT_NE(text.find(key), std::string::npos) << key;
  }
  std::string error;
  const auto back = cluster_info_from_json(text, &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(*back, info);
}

TEST(HttpGossip, V20DocumentAndErrors) {
  std::string error;
  const auto v20 = cluster_info_from_json(
      R"({"members":[{"state":"Follower","httpEndPointIp":"1.2.3.4","httpEndPointPort":2113}]})",
      &error);
  ASSERT_TRUE(v20) << error;
  EXPECT_EQ(v20->members[0].external_http_ip, "1.2.3.4");
  EXPECT_EQ(v20->members[0].external_http_port, 2113);
  EXPECT_FALSE(cluster_info_from_json("{", &error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(cluster_info_from_json(R"({"nomembers":1})", &error));
}

TEST(HttpGossip, V5StateNames) {
  EXPECT_EQ(v5_state_name("Leader"), "Master");
  EXPECT_EQ(v5_state_name("Follower"), "Slave");
  EXPECT_EQ(v5_state_name("PreLeader"), "PreMaster");
  EXPECT_EQ(v5_state_name("DiscoverLeader"), "Unknown");
  EXPECT_EQ(v5_state_name("ResigningLeader"), "Unknown");
  EXPECT_EQ(v5_state_name("ReadOnlyReplica"), "Clone");
  EXPECT_EQ(v5_state_name("PreReadOnlyReplica"), "PreReplica");
  EXPECT_EQ(v5_state_name("something new"), "Unknown");
  // EventStore 5's VNodeState, the enum v5 clients look names up in: each maps to itself.
  const std::vector<std::string> v5 = {"Initializing", "Unknown",      "PreReplica", "CatchingUp",
                                       "Clone",        "Slave",        "PreMaster",  "Master",
                                       "Manager",      "ShuttingDown", "Shutdown"};
  for (const std::string& name : v5) EXPECT_EQ(v5_state_name(name), name);
  ClusterInfo info;
  for (const char* state : {"Leader", "Manager", "Follower", "CatchingUp", "PreLeader"}) {
    MemberInfo m;
    m.state = state;
    info.members.push_back(m);
  }
  // A member with an --ext-http-port-v5 is advertised there, so v5 clients that ask members
  // for gossip later stay on v5 names; the others keep their external HTTP port.
  info.members[0].external_http_port = 2113;
  info.members[0].external_http_port_v5 = 2115;
  info.members[2].external_http_port = 2213;
  const ClusterInfo out = with_v5_state_names(info);
  ASSERT_EQ(out.members.size(), 5U);
  const std::vector<std::string> expected = {"Master", "Manager", "Slave", "CatchingUp",
                                             "PreMaster"};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(out.members[i].state, expected[i]);
  EXPECT_EQ(out.members[0].external_http_port, 2115);
  EXPECT_EQ(out.members[2].external_http_port, 2213);
  // The port travels in gossip (written only when set).
  const auto parsed = cluster_info_from_json(to_json(info), nullptr);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->members[0].external_http_port_v5, 2115);
  EXPECT_EQ(to_json(info).find("externalHttpPortV5"), to_json(info).rfind("externalHttpPortV5"));
}

TEST(HttpMetricsText, HistogramIsCumulative) {
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  http::PrometheusText out;
  out.histogram("x_seconds", "X.", h.snapshot());
  EXPECT_EQ(out.text(),
            "# HELP x_seconds X.\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.1\"} 1\nx_seconds_bucket{le=\"1\"} 2\n"
            "x_seconds_bucket{le=\"+Inf\"} 3\nx_seconds_sum 5.55\nx_seconds_count 3\n");
}

}  // namespace
}  // namespace chorus
