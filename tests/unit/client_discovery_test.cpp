// Goal: discovery picks nodes as EventStore's ClientAPI does: the alive leader first (v20 and v5
// state names), never a Manager, a dead or shutting-down member; followers first on request;
// gossip candidates list nodes before managers and skip the endpoint that just failed; seed
// endpoints parse or are refused with a reason.
#include "client/discovery.hpp"

#include <gtest/gtest.h>

namespace chorus::client {
namespace {

MemberInfo member(const std::string& state, int tcp_port, bool alive = true) {
  MemberInfo m;
  m.state = state;
  m.is_alive = alive;
  m.external_tcp_ip = "127.0.0.1";
  m.external_tcp_port = tcp_port;
  m.external_http_ip = "127.0.0.1";
  m.external_http_port = tcp_port + 1000;
  return m;
}

ClusterInfo gossip(std::vector<MemberInfo> members) {
  ClusterInfo info;
  info.members = std::move(members);
  return info;
}

TEST(ClientDiscovery, LeaderIsPreferredWhateverItsPlace) {
  std::mt19937 rng(1);
  for (int round = 0; round < 20; ++round) {
    const ClusterInfo g = gossip(
        {member("Follower", 1), member("Manager", 9), member("Leader", 2), member("Follower", 3)});
    EXPECT_EQ(select_best_node(g, NodePreference::Leader, rng), (Endpoint{"127.0.0.1", 2}));
  }
}

TEST(ClientDiscovery, V5NamesRankLikeV20Ones) {
  std::mt19937 rng(2);
  const ClusterInfo g = gossip({member("Slave", 1), member("Master", 2), member("Clone", 3)});
  EXPECT_EQ(select_best_node(g, NodePreference::Leader, rng), (Endpoint{"127.0.0.1", 2}));
}

TEST(ClientDiscovery, ManagersDeadAndStoppingMembersAreNeverTargets) {
  std::mt19937 rng(3);
  const ClusterInfo g = gossip({member("Manager", 9), member("Leader", 2, false),
                                member("ShuttingDown", 4), member("Shutdown", 5)});
  EXPECT_EQ(select_best_node(g, NodePreference::Leader, rng), std::nullopt);
  const ClusterInfo with_follower =
      gossip({member("Manager", 9), member("Leader", 2, false), member("Follower", 3)});
  EXPECT_EQ(select_best_node(with_follower, NodePreference::Leader, rng),
            (Endpoint{"127.0.0.1", 3}));
}

TEST(ClientDiscovery, FollowerPreference) {
  std::mt19937 rng(4);
  const ClusterInfo g = gossip({member("Leader", 2), member("Follower", 3)});
  EXPECT_EQ(select_best_node(g, NodePreference::Follower, rng), (Endpoint{"127.0.0.1", 3}));
}

TEST(ClientDiscovery, RanksFollowTheStateOrder) {
  EXPECT_GT(state_rank("Leader"), state_rank("PreLeader"));
  EXPECT_GT(state_rank("PreLeader"), state_rank("Follower"));
  EXPECT_GT(state_rank("Follower"), state_rank("CatchingUp"));
  EXPECT_GT(state_rank("Follower"), state_rank("ReadOnlyReplica"));
  EXPECT_LT(state_rank("Manager"), 0);
  EXPECT_LT(state_rank("NoSuchState"), 0);
}

TEST(ClientDiscovery, GossipCandidatesListNodesBeforeManagersWithoutTheFailedOne) {
  std::mt19937 rng(5);
  const ClusterInfo g = gossip(
      {member("Manager", 9), member("Leader", 2), member("Manager", 8), member("Follower", 3)});
  for (int round = 0; round < 10; ++round) {
    const auto c = candidates_from_gossip(g, Endpoint{"127.0.0.1", 2}, rng);
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0].endpoint.port, 1003) << "the follower's HTTP endpoint first";
    EXPECT_TRUE(c[1].endpoint.port == 1009 || c[1].endpoint.port == 1008);
    EXPECT_TRUE(c[2].endpoint.port == 1009 || c[2].endpoint.port == 1008);
  }
}

TEST(ClientDiscovery, SeedsAreAllKept) {
  std::mt19937 rng(6);
  const auto c = candidates_from_seeds({{"a", 1}, {"b", 2}, {"c", 3}}, rng);
  ASSERT_EQ(c.size(), 3u);
  for (const auto& candidate : c) EXPECT_EQ(candidate.host_header, candidate.endpoint.host);
}

TEST(ClientDiscovery, EndpointsParseOrExplain) {
  std::string error;
  EXPECT_EQ(parse_endpoint("127.0.0.2:30778", 2113, &error), (Endpoint{"127.0.0.2", 30778}));
  EXPECT_EQ(parse_endpoint("node-a", 2113, &error), (Endpoint{"node-a", 2113}));
  EXPECT_EQ(parse_endpoint("[::1]:1113", 2113, &error), (Endpoint{"::1", 1113}));
  EXPECT_EQ(parse_endpoint("host:0", 2113, &error), std::nullopt);
  EXPECT_NE(error.find("port"), std::string::npos);
  EXPECT_EQ(parse_endpoint("host:99999", 2113, &error), std::nullopt);
  EXPECT_EQ(parse_endpoint(":1113", 2113, &error), std::nullopt);
}

}  // namespace
}  // namespace chorus::client
