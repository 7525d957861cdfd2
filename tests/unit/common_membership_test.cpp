// Goal: prove the gossip merge rules that stop a poisoned view (hole 4 of issue 10): a member's
// endpoints are what it says itself, so a third party's entry with the leader's instance id or
// internal TCP endpoint at other endpoints is ignored (or dropped once the member speaks), nobody
// may speak as us, a node that came back on new endpoints is still learned, and the member count
// is bounded.
#include "common/membership.hpp"

#include <gtest/gtest.h>

#include <string>

namespace chorus::cluster {
namespace {

MemberInfo node(const std::string& id, const std::string& ip, int base_port,
                const std::string& state = "Follower") {
  MemberInfo m;
  m.instance_id = id;
  m.state = state;
  m.is_alive = true;
  m.time_stamp = "2026-12-02T00:00:00.000000Z";
  m.internal_tcp_ip = m.external_tcp_ip = m.internal_http_ip = m.external_http_ip = ip;
  m.internal_tcp_port = base_port;
  m.external_tcp_port = base_port + 1;
  m.internal_http_port = base_port + 2;
  m.external_http_port = base_port + 3;
  m.epoch_number = 1;
  return m;
}

ClusterInfo view_of(const MemberInfo& sender, std::vector<MemberInfo> others) {
  ClusterInfo v;
  v.cluster_name = "default";
  v.server_ip = sender.internal_http_ip;
  v.server_port = sender.internal_http_port;
  v.members.push_back(sender);
  for (auto& m : others) v.members.push_back(std::move(m));
  return v;
}

int count_id(const ClusterInfo& v, const std::string& id) {
  int n = 0;
  for (const auto& m : v.members) n += m.instance_id == id;
  return n;
}

const char* kA = "aaaaaaaa-0000-0000-0000-000000000001";
const char* kB = "bbbbbbbb-0000-0000-0000-000000000002";
const char* kC = "cccccccc-0000-0000-0000-000000000003";
const char* kX = "eeeeeeee-0000-0000-0000-000000000009";

class MembershipRules : public ::testing::Test {
 protected:
  MembershipRules() : m_("default") {
    m_.set_self(self_);
    // The leader B speaks for itself; C is another member.
    EXPECT_TRUE(m_.merge(view_of(leader_, {}), member_key(leader_), 1000));
    EXPECT_TRUE(m_.merge(view_of(c_, {}), member_key(c_), 1000));
  }
  MemberInfo self_ = node(kA, "127.0.0.1", 1000);
  MemberInfo leader_ = node(kB, "127.0.0.2", 1000, "Leader");
  MemberInfo c_ = node(kC, "127.0.0.3", 1000);
  Membership m_;
};

TEST_F(MembershipRules, ForgedLeaderEndpointsFromAThirdPartyAreIgnored) {
  MemberInfo forged = node(kB, "127.0.0.66", 6000, "Leader");  // the leader's id, our endpoints
  forged.epoch_number = 99;
  ASSERT_TRUE(m_.merge(view_of(c_, {forged}), member_key(c_), 2000));
  const ClusterInfo v = m_.view();
  EXPECT_EQ(count_id(v, kB), 1);
  EXPECT_EQ(v.members.front().internal_http_ip, "127.0.0.2") << "the real leader comes first";
  const auto found = m_.by_node_id(member_node_id(leader_));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->external_http_port, leader_.external_http_port);
}

TEST_F(MembershipRules, ForgedReplicationEndpointIsIgnored) {
  // Another instance id, but the leader's internal TCP endpoint (its replication identity).
  MemberInfo forged = node(kX, "127.0.0.66", 6000, "Leader");
  forged.internal_tcp_ip = leader_.internal_tcp_ip;
  forged.internal_tcp_port = leader_.internal_tcp_port;
  ASSERT_TRUE(m_.merge(view_of(c_, {forged}), member_key(c_), 2000));
  EXPECT_EQ(count_id(m_.view(), kX), 0);
}

TEST_F(MembershipRules, NobodySpeaksAsUs) {
  MemberInfo forged = node(kA, "127.0.0.66", 6000, "Leader");
  ASSERT_TRUE(m_.merge(view_of(c_, {forged}), member_key(c_), 2000));
  ASSERT_TRUE(m_.merge(view_of(forged, {}), member_key(forged), 2000));  // even "first hand"
  EXPECT_EQ(count_id(m_.view(), kA), 1);
  EXPECT_EQ(m_.view().members.front().internal_http_ip, "127.0.0.2");
}

TEST(MembershipForgery, AForgeryHeardFirstIsDroppedWhenTheMemberSpeaks) {
  Membership m("default");
  const MemberInfo self = node(kA, "127.0.0.1", 1000);
  const MemberInfo c = node(kC, "127.0.0.3", 1000);
  const MemberInfo leader = node(kB, "127.0.0.2", 1000, "Leader");
  m.set_self(self);
  ASSERT_TRUE(m.merge(view_of(c, {node(kB, "127.0.0.66", 6000, "Leader")}), member_key(c), 1000));
  ASSERT_TRUE(m.merge(view_of(leader, {}), member_key(leader), 2000));
  const ClusterInfo v = m.view();
  EXPECT_EQ(count_id(v, kB), 1);
  EXPECT_EQ(v.members.front().internal_http_ip, "127.0.0.2");
}

TEST_F(MembershipRules, AMemberBackOnNewEndpointsIsLearnedOnceTheOldOneIsDead) {
  m_.contact_failed(member_key(leader_), 3000);
  const MemberInfo moved = node(kB, "127.0.0.2", 2000, "Leader");
  ASSERT_TRUE(m_.merge(view_of(c_, {moved}), member_key(c_), 4000));
  const auto found = m_.by_node_id(member_node_id(moved));
  ASSERT_TRUE(found);
  EXPECT_TRUE(found->is_alive);
}

TEST_F(MembershipRules, AThirdPartyReportsADeathButNotAStaleOne) {
  MemberInfo dead = leader_;
  dead.is_alive = false;
  ASSERT_TRUE(m_.merge(view_of(c_, {dead}), member_key(c_), 2000));
  EXPECT_FALSE(m_.by_node_id(member_node_id(leader_))->is_alive);
  // The member speaks again (a newer entry): alive.
  MemberInfo back = leader_;
  back.time_stamp = "2026-12-02T00:00:05.000000Z";
  ASSERT_TRUE(m_.merge(view_of(back, {}), member_key(back), 3000));
  ASSERT_TRUE(m_.merge(view_of(c_, {dead}), member_key(c_), 4000));  // the old report again
  EXPECT_TRUE(m_.by_node_id(member_node_id(leader_))->is_alive);
}

TEST_F(MembershipRules, AnOldInstanceAtTheSameEndpointsDoesNotReplaceTheNewOne) {
  // C was restored into a wiped folder: a new instance id at the same endpoints, catching up.
  MemberInfo old_c = c_;
  old_c.writer_checkpoint = 5000;
  MemberInfo new_c = node(kX, "127.0.0.3", 1000);
  new_c.time_stamp = "2026-12-02T00:00:09.000000Z";
  new_c.writer_checkpoint = 100;
  ASSERT_TRUE(m_.merge(view_of(new_c, {}), member_key(new_c), 2000));
  // The leader's view still has the old instance, further ahead in the log.
  ASSERT_TRUE(m_.merge(view_of(leader_, {old_c}), member_key(leader_), 3000));
  auto found = m_.by_node_id(member_node_id(c_));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->instance_id, kX);
  EXPECT_EQ(found->writer_checkpoint, 100);
  // The new instance's own later entries still replace its earlier ones through third parties.
  MemberInfo later = new_c;
  later.time_stamp = "2026-12-02T00:00:10.000000Z";
  later.writer_checkpoint = 200;
  ASSERT_TRUE(m_.merge(view_of(leader_, {later}), member_key(leader_), 4000));
  EXPECT_EQ(m_.by_node_id(member_node_id(c_))->writer_checkpoint, 200);
}

TEST_F(MembershipRules, MemberCountIsBounded) {
  std::vector<MemberInfo> flood;
  for (int i = 0; i < 1000; ++i) {
    flood.push_back(
        node("", "127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250), 3000));
  }
  ASSERT_TRUE(m_.merge(view_of(c_, flood), member_key(c_), 2000));
  EXPECT_LE(m_.view().members.size(), kMembersMax + 1);
  EXPECT_EQ(count_id(m_.view(), kB), 1) << "known members stay";
}

}  // namespace
}  // namespace chorus::cluster
