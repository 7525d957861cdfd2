// Goal: the routing decision follows PROTOCOL.md B — a single node or the leader serves
// everything; a follower refuses require_master requests with NotHandled(NotMaster) carrying the
// leader's endpoints, forwards writes without require_master, serves reads without it, always
// refuses persistent-subscription commands, and answers NotReady while no leader is known.
#include "worker/tcp/routing.hpp"

#include "messages.pb.h"

#include <gtest/gtest.h>

namespace chorus::tcp {
namespace {

using wire::Command;
namespace pb = EventStore::Client::Messages;

class FakeCluster : public ClusterState {
 public:
  bool is_leader() const override { return leader_here; }
  bool caught_up() const override { return caught_up_here; }
  std::optional<LeaderInfo> leader() const override { return known_leader; }
  void forward(const Principal&, uint8_t, std::string,
               std::function<void(std::optional<std::pair<uint8_t, std::string>>)>) const override {
  }

  bool leader_here = false;
  bool caught_up_here = true;
  std::optional<LeaderInfo> known_leader;
};

TEST(Routing, SingleNodeServesEverything) {
  for (Command c : {Command::WriteEvents, Command::ReadEvent, Command::TransactionCommit,
                    Command::CreatePersistentSubscription, Command::SubscribeToStream}) {
    EXPECT_EQ(route_request(c, true, nullptr).kind, RouteKind::Serve);
  }
}

TEST(Routing, LeaderServesEverything) {
  FakeCluster cluster;
  cluster.leader_here = true;
  EXPECT_EQ(route_request(Command::WriteEvents, true, &cluster).kind, RouteKind::Serve);
  EXPECT_EQ(route_request(Command::ConnectToPersistentSubscription, false, &cluster).kind,
            RouteKind::Serve);
}

TEST(Routing, FollowerRefusesRequireMasterWithTheLeadersEndpoints) {
  FakeCluster cluster;
  cluster.known_leader = LeaderInfo{"10.0.0.1", 1113, 0, "10.0.0.1", 2113};
  const RouteDecision route = route_request(Command::WriteEvents, true, &cluster);
  ASSERT_EQ(route.kind, RouteKind::Refuse);
  EXPECT_EQ(route.refusal.reason, pb::NotHandled::NotMaster);
  ASSERT_TRUE(route.refusal.additional_info);
  pb::NotHandled::MasterInfo info;
  ASSERT_TRUE(info.ParseFromString(*route.refusal.additional_info));  // required fields present
  EXPECT_EQ(info.external_tcp_address(), "10.0.0.1");
  EXPECT_EQ(info.external_tcp_port(), 1113);
  EXPECT_EQ(info.external_http_port(), 2113);
  EXPECT_EQ(route_request(Command::ReadEvent, true, &cluster).kind, RouteKind::Refuse);
}

TEST(Routing, NotLeaderCarriesTheSecurePortWhenTheLeaderHasOne) {
  // Fields 5/6 are what a client with useSslConnection follows; without a secure port they stay
  // unset so that such a client does not try port 0.
  FakeCluster cluster;
  cluster.known_leader = LeaderInfo{"10.0.0.1", 1113, 1115, "10.0.0.1", 2113};
  RouteDecision route = route_request(Command::WriteEvents, true, &cluster);
  pb::NotHandled::MasterInfo info;
  ASSERT_TRUE(info.ParseFromString(*route.refusal.additional_info));
  EXPECT_EQ(info.external_secure_tcp_address(), "10.0.0.1");
  EXPECT_EQ(info.external_secure_tcp_port(), 1115);
  cluster.known_leader->secure_tcp_port = 0;
  route = route_request(Command::WriteEvents, true, &cluster);
  ASSERT_TRUE(info.ParseFromString(*route.refusal.additional_info));
  EXPECT_FALSE(info.has_external_secure_tcp_port());
  EXPECT_FALSE(info.has_external_secure_tcp_address());
}

TEST(Routing, FollowerForwardsWritesAndServesReadsWithoutRequireMaster) {
  FakeCluster cluster;
  cluster.known_leader = LeaderInfo{"10.0.0.1", 1113, 0, "10.0.0.1", 2113};
  EXPECT_EQ(route_request(Command::WriteEvents, false, &cluster).kind, RouteKind::Forward);
  EXPECT_EQ(route_request(Command::TransactionCommit, false, &cluster).kind, RouteKind::Forward);
  EXPECT_EQ(route_request(Command::ReadStreamEventsForward, false, &cluster).kind,
            RouteKind::Serve);
  EXPECT_EQ(route_request(Command::SubscribeToStream, false, &cluster).kind, RouteKind::Serve);
}

TEST(Routing, FollowerAlwaysRefusesPersistentSubscriptionCommands) {
  FakeCluster cluster;
  cluster.known_leader = LeaderInfo{"10.0.0.1", 1113, 0, "10.0.0.1", 2113};
  for (Command c :
       {Command::CreatePersistentSubscription, Command::UpdatePersistentSubscription,
        Command::DeletePersistentSubscription, Command::ConnectToPersistentSubscription}) {
    const RouteDecision route = route_request(c, false, &cluster);
    ASSERT_EQ(route.kind, RouteKind::Refuse);
    EXPECT_EQ(route.refusal.reason, pb::NotHandled::NotMaster);
  }
}

TEST(Routing, NoKnownLeaderMeansNotReady) {
  FakeCluster cluster;
  const RouteDecision route = route_request(Command::ReadEvent, false, &cluster);
  ASSERT_EQ(route.kind, RouteKind::Refuse);
  EXPECT_EQ(route.refusal.reason, pb::NotHandled::NotReady);
  EXPECT_FALSE(route.refusal.additional_info);
}

}  // namespace
}  // namespace chorus::tcp

namespace chorus::tcp {
namespace {

// Issue 11 defect 3: a restarted follower that has not caught up must not answer reads with an
// older state than the client has seen; it says NotReady (the client retries) and still
// forwards writes.
TEST(Routing, FollowerStillCatchingUpRefusesReadsWithNotReady) {
  FakeCluster cluster;
  cluster.known_leader = LeaderInfo{"10.0.0.1", 1113, 0, "10.0.0.1", 2113};
  cluster.caught_up_here = false;
  const RouteDecision read = route_request(Command::ReadStreamEventsForward, false, &cluster);
  ASSERT_EQ(read.kind, RouteKind::Refuse);
  EXPECT_EQ(read.refusal.reason, pb::NotHandled::NotReady);
  EXPECT_EQ(route_request(Command::WriteEvents, false, &cluster).kind, RouteKind::Forward);
  cluster.caught_up_here = true;
  EXPECT_EQ(route_request(Command::ReadStreamEventsForward, false, &cluster).kind,
            RouteKind::Serve);
}

}  // namespace
}  // namespace chorus::tcp
