// Goal: prove that the transport's range checks refuse every out-of-range field of an internal
// message before it reaches the replication core or the leader (hole 3 of issue 10): epochs at or
// near INT64_MAX, negative or huge positions, Appends whose entries are not contiguous or whose
// epoch record is forged, malformed scavenged gaps, AppendAcks beyond their log, Forwards that
// claim groups; and that the messages a real leader and follower send (gaps included) pass
// unchanged; a message without the sender's and recipient's instance ids (a node of an older
// version, or a forger) is refused.
#include "worker/cluster/message_check.hpp"

#include "worker/cluster/message_codec.hpp"
#include "worker/replication/core.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace chorus::cluster {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

const std::string kFrom = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f01";
const std::string kTo = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f02";

internal::ReplicationMessage wrap(replication::Body body) {
  return to_proto(replication::Message{kFrom, kTo, std::move(body)}, "default", "127.0.0.1:1112",
                  "127.0.0.1:1212");
}

internal::ReplicationMessage forward_message() {
  internal::ReplicationMessage m;
  m.set_from("127.0.0.1:1112");
  m.set_to("127.0.0.1:1212");
  m.set_cluster("default");
  m.set_from_instance(kFrom);
  m.set_to_instance(kTo);
  auto* f = m.mutable_forward();
  f->set_request_id(1);
  f->set_login("ouro");
  f->set_command(0x82);
  f->set_payload("x");
  return m;
}

replication::Entry entry(int64_t position, int64_t epoch, std::string payload) {
  const int64_t end =
      position + replication::kEntryOverheadBytes + static_cast<int64_t>(payload.size());
  return replication::Entry{position, end, epoch, false, std::move(payload)};
}

TEST(MessageCheck, RealMessagesPass) {
  using namespace replication;
  replication::EpochRecord record{3, 100, Guid{}};
  Entry epoch_entry{100, 0, 3, true, Core::epoch_payload(record, kFrom)};
  epoch_entry.end = 100 + kEntryOverheadBytes + static_cast<int64_t>(epoch_entry.payload.size());
  const Entry next = entry(epoch_entry.end, 3, "event");
  EXPECT_EQ(check_message_fields(wrap(VoteRequest{4, 3, 500, 0, true})), "");
  EXPECT_EQ(check_message_fields(wrap(VoteResponse{4, true, false})), "");
  EXPECT_EQ(check_message_fields(wrap(Subscribe{3, 500, {{1, 0, Guid{}}, {3, 100, Guid{}}}, 7})),
            "");
  EXPECT_EQ(check_message_fields(wrap(Append{3, 100, true, {epoch_entry, next}, 100, 7})), "");
  EXPECT_EQ(check_message_fields(wrap(Append{3, 500, false, {}, 400, 7})), "");  // heartbeat
  // A scavenged range between two records: any length, no payload.
  const Entry gap{next.end, next.end + 100000, 0, false, "", true};
  const Entry after = entry(gap.end, 3, "event");
  EXPECT_EQ(
      check_message_fields(wrap(Append{3, 100, true, {epoch_entry, next, gap, after}, 100, 7})),
      "");
  EXPECT_EQ(check_message_fields(wrap(AppendAck{3, 500, 400, 7})), "");
  EXPECT_EQ(check_message_fields(forward_message()), "");
  // The codec hands the core instance ids, never endpoints.
  const auto decoded = from_proto(wrap(AppendAck{3, 500, 400, 7}));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->from, kFrom);
  EXPECT_EQ(decoded->to, kTo);
}

TEST(MessageCheck, InstanceIdsAreRequired) {
  auto m = forward_message();
  m.clear_from_instance();
  EXPECT_NE(check_message_fields(m), "") << "no sender instance id (an older node)";
  m.set_from_instance("127.0.0.1:1112");
  EXPECT_NE(check_message_fields(m), "") << "an endpoint where the instance id belongs";
  m.set_from_instance(kFrom);
  m.clear_to_instance();
  EXPECT_NE(check_message_fields(m), "") << "no recipient instance id";
  m.set_to_instance(std::string(40, 'f'));
  EXPECT_NE(check_message_fields(m), "") << "a recipient instance id that is no GUID";
}

TEST(MessageCheck, OutOfRangeFieldsAreRefused) {
  using namespace replication;
  const std::vector<std::pair<const char*, Body>> hostile = {
      {"vote epoch INT64_MAX", VoteRequest{kMax, 0, 0, 0, false}},
      {"vote epoch kEpochMax + 1", VoteRequest{kEpochMax + 1, 0, 0, 0, false}},
      {"vote negative epoch", VoteRequest{-1, 0, 0, 0, false}},
      {"vote last epoch after epoch", VoteRequest{3, 4, 0, 0, false}},
      {"vote negative log end", VoteRequest{3, 1, -5, 0, false}},
      {"vote response epoch INT64_MAX", VoteResponse{kMax, true, false}},
      {"subscribe epoch INT64_MAX", Subscribe{kMax, 0, {}, 1}},
      {"subscribe log end INT64_MAX", Subscribe{1, kMax, {}, 1}},
      {"subscribe epochs descending", Subscribe{5, 500, {{3, 100, Guid{}}, {1, 0, Guid{}}}, 1}},
      {"subscribe epoch beyond log", Subscribe{5, 50, {{1, 100, Guid{}}}, 1}},
      {"append epoch INT64_MAX", Append{kMax, 0, false, {}, 0, 1}},
      {"append negative start", Append{1, -64, true, {}, 0, 1}},
      {"append start INT64_MAX", Append{1, kMax, true, {}, 0, 1}},
      {"append commit INT64_MAX", Append{1, 0, false, {}, kMax, 1}},
      {"append entry not at start", Append{1, 0, false, {entry(10, 1, "a")}, 0, 1}},
      {"append entry end wrong", Append{1, 0, false, {Entry{0, kMax, 1, false, "a"}}, 0, 1}},
      {"append entries with a gap",
       Append{1, 0, false, {entry(0, 1, "a"), entry(1000, 1, "b")}, 0, 1}},
      {"append entry from a later epoch", Append{1, 0, false, {entry(0, 2, "a")}, 0, 1}},
      {"append forged epoch record",
       Append{1, 0, false, {Entry{0, 64 + 5, 1, true, "hello"}}, 0, 1}},
      {"gap with a payload", Append{1, 0, false, {Entry{0, 500, 1, false, "a", true}}, 0, 1}},
      {"gap of no length", Append{1, 0, false, {Entry{0, 0, 1, false, "", true}}, 0, 1}},
      {"gap past the position range",
       Append{1, 0, false, {Entry{0, kMax, 1, false, "", true}}, 0, 1}},
      {"gap that is an epoch record",
       Append{1, 0, false, {Entry{0, 500, 1, true, "", true}}, 0, 1}},
      {"ack durable beyond log", AppendAck{1, 10, 20, 1}},
      {"ack log end INT64_MAX", AppendAck{1, kMax, 0, 1}},
      {"ack epoch INT64_MAX", AppendAck{kMax, 0, 0, 1}},
  };
  for (const auto& [what, body] : hostile) {
    EXPECT_NE(check_message_fields(wrap(body)), "") << what;
  }
}

TEST(MessageCheck, ForwardsAndIdsAreChecked) {
  internal::ReplicationMessage m = forward_message();
  auto* f = m.mutable_forward();
  f->add_groups("$admins");
  EXPECT_NE(check_message_fields(m), "") << "a claimed group list";
  f->clear_groups();
  f->set_command(0x1FF);
  EXPECT_NE(check_message_fields(m), "") << "command beyond a byte";
  f->set_command(0x82);
  f->set_login(std::string(kLoginBytesMax + 1, 'a'));
  EXPECT_NE(check_message_fields(m), "") << "login too long";
  f->set_login("ouro");
  m.set_from("");
  EXPECT_NE(check_message_fields(m), "") << "no sender";
  m.set_from(std::string(300, 'a'));
  EXPECT_NE(check_message_fields(m), "") << "sender id too long";
  m.set_from("127.0.0.1:1112");
  m.clear_forward();
  EXPECT_NE(check_message_fields(m), "") << "no body";
}

}  // namespace
}  // namespace chorus::cluster
