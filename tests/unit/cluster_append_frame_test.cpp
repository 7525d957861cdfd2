// Goal: prove that an Append read straight from its frame (worker/cluster/append_frame.hpp, the
// follower's path without protobuf) is exactly what protobuf parses from the same bytes: for
// every shape a leader sends, and for every one of many randomly mutated frames that the reader
// accepts (protobuf then accepts it too, with the same fields, entries and check finding); that
// the entries' payloads are slices of the frame (no copy); and that what it does not read (other
// bodies, a field repeated or unknown) is left to protobuf.
#include "worker/cluster/append_frame.hpp"

#include "tests/unit/cluster_entries.hpp"
#include "worker/cluster/message_check.hpp"
#include "worker/cluster/message_codec.hpp"

#include <gtest/gtest.h>

#include <random>

namespace chorus::cluster {
namespace {

using test_support::kFrom;
using test_support::kTo;

replication::Entry entry(int64_t position, std::string payload, bool epoch_record = false,
                         bool gap = false) {
  return test_support::entry_of_epoch(3, position, std::move(payload), epoch_record, gap);
}

replication::Append burst() {
  replication::Append a{3, 100, false, {}, 90, 42, false};
  const replication::EpochRecord record{3, 100, Guid{}};
  a.entries.push_back(entry(100, replication::Core::epoch_payload(record, kFrom), true));
  a.entries.push_back(entry(a.entries.back().end, std::string(256, 'e')));
  replication::Entry gap = entry(a.entries.back().end, "", false, true);
  gap.end = gap.position + 4096;
  a.entries.push_back(gap);
  a.entries.push_back(entry(a.entries.back().end, "x"));
  return a;
}

// The frame's bytes without the length prefix, shared as the transport shares them.
std::shared_ptr<const std::string> frame_of(const replication::Append& a) {
  const auto bytes = encode_frame(replication::Message{kFrom, kTo, a}, "default", "127.0.0.1:1112",
                                  "127.0.0.1:1212");
  return std::make_shared<const std::string>(bytes.substr(4));
}

// protobuf's reading of the same bytes; false when protobuf refuses them.
bool same_as_protobuf(const std::shared_ptr<const std::string>& bytes, const AppendFrame& fast) {
  internal::ReplicationMessage m;
  if (!m.ParseFromString(*bytes) || !m.has_append()) return false;
  EXPECT_EQ(fast.from, m.from());
  EXPECT_EQ(fast.to, m.to());
  EXPECT_EQ(fast.cluster, m.cluster());
  EXPECT_EQ(fast.from_instance, m.from_instance());
  EXPECT_EQ(fast.to_instance, m.to_instance());
  EXPECT_EQ(check_message_fields(fast), check_message_fields(m));
  const auto message = take_from_proto(m);
  if (!message) return false;
  const auto& a = std::get<replication::Append>(message->body);
  EXPECT_EQ(fast.append.epoch, a.epoch);
  EXPECT_EQ(fast.append.start, a.start);
  EXPECT_EQ(fast.append.sync, a.sync);
  EXPECT_EQ(fast.append.commit_end, a.commit_end);
  EXPECT_EQ(fast.append.session, a.session);
  EXPECT_EQ(fast.append.commit_only, a.commit_only);
  EXPECT_EQ(fast.append.relaxed, a.relaxed);
  EXPECT_EQ(fast.append.entries, a.entries);
  return true;
}

TEST(AppendFrame, ReadsWhatALeaderSends) {
  std::vector<replication::Append> cases;
  cases.push_back({});  // a heartbeat: no entries, zeros
  cases.push_back({5, 1000, true, {}, 2000, 0xFFFF'FFFF'FFFF'FFFFull, false});
  cases.push_back({7, -1, false, {}, -5, 3, true});       // negative numbers take ten bytes
  cases.push_back({6, 10, false, {}, 8, 4, true, true});  // to a relaxed follower
  cases.push_back(burst());
  cases.back().relaxed = true;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto bytes = frame_of(cases[i]);
    const auto fast = read_append_frame(bytes);
    ASSERT_TRUE(fast.has_value()) << i;
    EXPECT_EQ(fast->from, "127.0.0.1:1112");
    EXPECT_EQ(fast->to, "127.0.0.1:1212");
    EXPECT_EQ(fast->cluster, "default");
    EXPECT_EQ(fast->from_instance, kFrom);
    EXPECT_EQ(fast->to_instance, kTo);
    EXPECT_EQ(fast->append.entries, cases[i].entries) << i;
    EXPECT_EQ(fast->append.relaxed, cases[i].relaxed) << i;
    EXPECT_TRUE(same_as_protobuf(bytes, *fast)) << i;
  }
  EXPECT_EQ(check_message_fields(*read_append_frame(frame_of(burst()))), "");
}

TEST(AppendFrame, PayloadsAreSlicesOfTheFrame) {
  const auto bytes = frame_of(burst());
  const auto fast = read_append_frame(bytes);
  ASSERT_TRUE(fast.has_value());
  for (const auto& e : fast->append.entries) {
    if (e.payload.size() == 0) continue;
    const std::string_view view = e.payload.view();
    EXPECT_GE(view.data(), bytes->data());
    EXPECT_LE(view.data() + view.size(), bytes->data() + bytes->size());
  }
}

TEST(AppendFrame, LeavesOtherShapesToProtobuf) {
  const auto ack =
      encode_frame(replication::Message{kFrom, kTo, replication::AppendAck{3, 400, 300, 9}},
                   "default", "127.0.0.1:1112", "127.0.0.1:1212");
  EXPECT_FALSE(read_append_frame(std::make_shared<const std::string>(ack.substr(4))));

  const std::string plain = *frame_of(burst());
  // The sender field again (protobuf: the last one wins), and an unknown field (protobuf keeps
  // it): both parse with protobuf, neither here.
  const std::string repeated = plain + std::string(
                                           "\x0a\x03"
                                           "1:1",
                                           5);
  const std::string unknown = plain + std::string("\xa0\x01\x01", 3);
  for (const auto& bytes : {repeated, unknown}) {
    internal::ReplicationMessage m;
    EXPECT_TRUE(m.ParseFromString(bytes));
    EXPECT_FALSE(read_append_frame(std::make_shared<const std::string>(bytes)));
  }
  // A message without the Append's required fields is protobuf's to refuse.
  EXPECT_FALSE(read_append_frame(std::make_shared<const std::string>(plain.substr(0, 20))));
}

// Random byte changes, insertions and cuts of a real frame: whatever the reader accepts,
// protobuf reads the same way. Enough of them stay readable that the comparison is exercised.
TEST(AppendFrame, MutatedFramesReadAsProtobufReadsThem) {
  const std::string plain = *frame_of(burst());
  std::mt19937 random(20261203);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes = plain;
    const int changes = 1 + static_cast<int>(random() % 3);
    for (int c = 0; c < changes; ++c) {
      const size_t at = random() % bytes.size();
      switch (random() % 4) {
        case 0:
        case 1:
          bytes[at] = static_cast<char>(random());
          break;
        case 2:
          bytes.insert(at, 1, static_cast<char>(random()));
          break;
        default:
          bytes.erase(at, 1 + random() % 4);
          break;
      }
      if (bytes.empty()) bytes = "x";
    }
    const auto shared = std::make_shared<const std::string>(bytes);
    const auto fast = read_append_frame(shared);
    if (!fast) continue;
    ++accepted;
    ASSERT_TRUE(same_as_protobuf(shared, *fast)) << "round " << round;
  }
  EXPECT_GT(accepted, 2000);
}

}  // namespace
}  // namespace chorus::cluster
