// Goal: prove the pieces of unchanged gossip pushes (issue 16): the digest ignores only the time
// stamps and survives the JSON round trip the receiver parses, the text forms are read back
// exactly and anything else is refused, DigestBook offers an unchanged push only for the digest a
// target took, and Membership::heard_from only refreshes a member it holds first-hand.
#include "common/gossip_unchanged.hpp"
#include "common/membership.hpp"

#include <gtest/gtest.h>

#include <string>

namespace chorus {
namespace {

MemberInfo member(int base_port, const std::string& state = "Follower") {
  MemberInfo m;
  m.instance_id = "id-" + std::to_string(base_port);
  m.state = state;
  m.time_stamp = "2026-12-02T00:00:00.000000Z";
  m.internal_tcp_ip = m.external_tcp_ip = m.internal_http_ip = m.external_http_ip = "127.0.0.1";
  m.internal_tcp_port = base_port;
  m.external_tcp_port = base_port + 1;
  m.internal_http_port = base_port + 2;
  m.external_http_port = base_port + 3;
  m.epoch_number = 3;
  m.writer_checkpoint = 1234;
  m.external_http_port_v5 = base_port + 4;
  return m;
}

ClusterInfo view() {
  ClusterInfo v;
  v.cluster_name = "default";
  v.server_ip = "127.0.0.1";
  v.server_port = 1002;
  v.members = {member(1000, "Leader"), member(2000), member(3000, "Manager")};
  return v;
}

TEST(GossipDigest, IgnoresTimeStampsOnly) {
  const ClusterInfo a = view();
  ClusterInfo b = a;
  b.members[1].time_stamp = "2026-12-02T00:00:09.000000Z";
  EXPECT_EQ(gossip_digest(a), gossip_digest(b));
  b.members[1].writer_checkpoint += 1;
  EXPECT_NE(gossip_digest(a), gossip_digest(b));
  b = a;
  b.members[2].is_alive = false;
  EXPECT_NE(gossip_digest(a), gossip_digest(b));
  b = a;
  b.members[0].state = "Follower";
  EXPECT_NE(gossip_digest(a), gossip_digest(b));
  b = a;
  b.cluster_name = "other";
  EXPECT_NE(gossip_digest(a), gossip_digest(b));
}

TEST(GossipDigest, SurvivesTheJsonRoundTrip) {
  const ClusterInfo a = view();
  const auto parsed = cluster_info_from_json(to_json(a), nullptr);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(gossip_digest(*parsed), gossip_digest(a));
}

TEST(UnchangedText, RoundTripsAndRefusesOtherText) {
  const UnchangedPush push{"my cluster", "127.0.0.1:1002", 0xabcdef0123456789ULL, 7,
                           "2026-12-02T00:00:01.000000Z"};
  const auto text = to_text(push);
  ASSERT_TRUE(text);
  EXPECT_TRUE(is_unchanged_gossip(*text));
  const auto back = unchanged_push_from_text(*text, nullptr);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->cluster_name, push.cluster_name);
  EXPECT_EQ(back->sender, push.sender);
  EXPECT_EQ(back->view_digest, push.view_digest);
  EXPECT_EQ(back->known_digest, push.known_digest);
  EXPECT_EQ(back->time_stamp, push.time_stamp);

  const UnchangedAnswer answer{42, "2026-12-02T00:00:02.000000Z"};
  const auto answer_back = unchanged_answer_from_text(to_text(answer), nullptr);
  ASSERT_TRUE(answer_back);
  EXPECT_EQ(answer_back->view_digest, 42u);
  EXPECT_EQ(answer_back->time_stamp, answer.time_stamp);

  std::string error;
  EXPECT_FALSE(unchanged_push_from_text(*text + "extra\n", &error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(unchanged_push_from_text(text->substr(0, text->size() - 1), nullptr));
  EXPECT_FALSE(unchanged_push_from_text(to_text(answer), nullptr));
  std::string bad_digest = *text;
  bad_digest.replace(bad_digest.find("abcdef"), 1, "x");
  EXPECT_FALSE(unchanged_push_from_text(bad_digest, nullptr));
  EXPECT_FALSE(unchanged_push_from_text(std::string(kUnchangedGossipBytesMax + 1, '\n'), nullptr));
  EXPECT_FALSE(is_unchanged_gossip(to_json(view())));
  // A cluster name with a line break cannot be written: the whole view goes instead.
  UnchangedPush broken = push;
  broken.cluster_name = "a\nb";
  EXPECT_FALSE(to_text(broken));
}

TEST(DigestBook, OffersAnUnchangedPushOnlyForTheDigestTheTargetTook) {
  DigestBook book;
  EXPECT_FALSE(book.unchanged_push("t", "c", "me", 5, "s"));  // never exchanged
  book.exchanged("t", 5, 9);
  const auto push = book.unchanged_push("t", "c", "me", 5, "s");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->view_digest, 5u);
  EXPECT_EQ(push->known_digest, 9u);
  EXPECT_TRUE(book.answered("t", 9));
  EXPECT_FALSE(book.answered("t", 8));
  EXPECT_FALSE(book.unchanged_push("t", "c", "me", 6, "s"));  // our view changed
  book.forget("t");
  EXPECT_FALSE(book.unchanged_push("t", "c", "me", 5, "s"));

  book.took("sender", 11);
  EXPECT_TRUE(book.holds("sender", 11));
  EXPECT_FALSE(book.holds("sender", 12));
  EXPECT_FALSE(book.holds("other", 11));
}

TEST(MembershipHeardFrom, RefreshesOnlyAMemberHeldFirstHand) {
  cluster::Membership m("default");
  MemberInfo self = member(1000, "Leader");
  m.set_self(self);
  m.add_seed("127.0.0.1", 3002, 0);
  const MemberInfo peer = member(2000);
  const std::string key = cluster::member_key(peer);
  EXPECT_FALSE(m.heard_from(key, "2026-12-02T00:00:05.000000Z", 1));               // never merged
  EXPECT_FALSE(m.heard_from("127.0.0.1:3002", "2026-12-02T00:00:05.000000Z", 1));  // a seed
  ClusterInfo v;
  v.cluster_name = "default";
  v.server_ip = peer.internal_http_ip;
  v.server_port = peer.internal_http_port;
  v.members = {peer};
  ASSERT_TRUE(m.merge(v, key, 1));
  m.contact_failed(key, 2);
  ASSERT_FALSE(m.by_instance_id(peer.instance_id)->is_alive);
  EXPECT_TRUE(m.heard_from(key, "2026-12-02T00:00:05.000000Z", 3));
  const auto after = m.by_instance_id(peer.instance_id);
  EXPECT_TRUE(after->is_alive);
  EXPECT_EQ(after->time_stamp, "2026-12-02T00:00:05.000000Z");
  EXPECT_TRUE(m.heard_from(key, "2026-12-01T00:00:00.000000Z", 4));  // an older stamp is not taken
  EXPECT_EQ(m.by_instance_id(peer.instance_id)->time_stamp, "2026-12-02T00:00:05.000000Z");
}

}  // namespace
}  // namespace chorus
