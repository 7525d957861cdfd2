// encode_frame writes an Append's wire format by hand (from the shared payloads, without a
// protobuf message): its bytes are compared with protobuf's serialization of the same message
// for every shape of Append, and what a follower parses from them is the message sent.
#include "worker/cluster/message_codec.hpp"

#include "tests/unit/cluster_entries.hpp"

#include <google/protobuf/arena.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

namespace chorus::cluster {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
using test_support::kFrom;
using test_support::kTo;

replication::Entry entry(int64_t position, replication::Payload payload, bool epoch_record = false,
                         bool gap = false) {
  return test_support::entry_of_epoch(7, position, std::move(payload), epoch_record, gap);
}

// A payload written on demand, as a leader's own records are (worker/engine/log_codec.hpp).
class PatternSource final : public replication::Payload::Source {
 public:
  explicit PatternSource(size_t size) : bytes_(size, '\0') {
    for (size_t i = 0; i < size; ++i) bytes_[i] = static_cast<char>(i * 7 + 3);
  }
  void write_to(char* out) const override { std::copy(bytes_.begin(), bytes_.end(), out); }
  std::string_view bytes() const override { return bytes_; }

 private:
  std::string bytes_;
};

TEST(MessageCodec, AppendFramesAreProtobufsBytes) {
  // Payloads that are slices of one buffer, as the leader's proposals are.
  auto buffer = std::make_shared<const std::string>(std::string(70'000, 'd') + "abc");
  std::vector<replication::Append> cases;
  cases.push_back({});  // a heartbeat: no entries, zeros
  cases.push_back({5, 1000, true, {}, 2000, 0xFFFF'FFFF'FFFF'FFFFull, false});
  cases.push_back({kMax, -1, false, {}, -5, 3, true});    // negative numbers take ten bytes
  cases.push_back({6, 10, false, {}, 8, 4, true, true});  // to a relaxed follower
  replication::Append burst{9, 100, false, {}, 50, 42, false, true};
  burst.entries.push_back(entry(100, replication::Payload(buffer, 0, 70'000)));
  burst.entries.push_back(entry(burst.entries.back().end, replication::Payload(buffer, 70'000, 3)));
  burst.entries.push_back(entry(burst.entries.back().end, "epoch 3 10 x n0", true));
  burst.entries.push_back(entry(burst.entries.back().end, "", false, true));
  burst.entries.push_back(entry(burst.entries.back().end, std::string(200, '\0')));
  burst.entries.push_back(entry(burst.entries.back().end,
                                replication::Payload(std::make_shared<PatternSource>(300), 300)));
  cases.push_back(burst);
  for (size_t i = 0; i < cases.size(); ++i) {
    const replication::Message m{kFrom, kTo, cases[i]};
    const auto bytes = encode_frame(m, "default", "127.0.0.1:1112", "127.0.0.1:1212");
    EXPECT_EQ(bytes, frame(to_proto(m, "default", "127.0.0.1:1112", "127.0.0.1:1212"))) << i;

    internal::ReplicationMessage parsed;
    ASSERT_TRUE(parsed.ParseFromArray(bytes.data() + 4, static_cast<int>(bytes.size() - 4)));
    const auto back = from_proto(parsed);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->from, kFrom);
    EXPECT_EQ(back->to, kTo);
    const auto* a = std::get_if<replication::Append>(&back->body);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->epoch, cases[i].epoch);
    EXPECT_EQ(a->start, cases[i].start);
    EXPECT_EQ(a->sync, cases[i].sync);
    EXPECT_EQ(a->commit_end, cases[i].commit_end);
    EXPECT_EQ(a->session, cases[i].session);
    EXPECT_EQ(a->commit_only, cases[i].commit_only);
    EXPECT_EQ(a->relaxed, cases[i].relaxed);
    EXPECT_EQ(a->entries, cases[i].entries);
  }
}

// A follower parses on an arena: the message taken from it owns its strings and outlives it.
TEST(MessageCodec, AMessageTakenFromAnArenaOutlivesIt) {
  replication::Append a{4, 0, false, {}, 0, 9, false};
  a.entries.push_back(entry(0, std::string(500, 'p')));
  a.entries.push_back(entry(a.entries.back().end, std::string(20, 'q')));
  const replication::Message sent{kFrom, kTo, a};
  const auto bytes = encode_frame(sent, "default", "127.0.0.1:1112", "127.0.0.1:1212");
  std::optional<replication::Message> back;
  {
    google::protobuf::Arena arena;
    auto& m = *google::protobuf::Arena::CreateMessage<internal::ReplicationMessage>(&arena);
    ASSERT_TRUE(m.ParseFromArray(bytes.data() + 4, static_cast<int>(bytes.size() - 4)));
    back = take_from_proto(m);
  }
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->from, kFrom);
  EXPECT_EQ(back->to, kTo);
  EXPECT_EQ(std::get<replication::Append>(back->body).entries, a.entries);
}

std::string joined(const OutFrame& f) {
  if (f.parts.empty()) return f.bytes;
  std::string out;
  for (const auto& p : f.parts) out += f.part(p);
  return out;
}

replication::Append large_append() {
  // A large slice of a buffer, a large source (its bytes in one part by default), small ones.
  auto buffer = std::make_shared<const std::string>(std::string(3 << 20, 'd') + "abc");
  replication::Append a{9, 100, true, {}, 50, 42, false};
  a.entries.push_back(entry(100, replication::Payload(buffer, 0, 3 << 20)));
  a.entries.push_back(entry(a.entries.back().end, replication::Payload(buffer, 3 << 20, 3)));
  a.entries.push_back(entry(a.entries.back().end, "epoch 3 10 x n0", true));
  a.entries.push_back(entry(a.entries.back().end, "", false, true));
  a.entries.push_back(
      entry(a.entries.back().end,
            replication::Payload(std::make_shared<PatternSource>(200'000), 200'000)));
  a.entries.push_back(
      entry(a.entries.back().end, std::string(kFramePartByReferenceBytesMin - 1, 'c')));
  return a;
}

// The gather list a leader writes: byte for byte encode_frame's frame (which a follower of an
// older build parses), with each large payload referred to where it is.
TEST(MessageCodec, OutFramesAreEncodeFramesBytesWithLargePayloadsInPlace) {
  const replication::Append a = large_append();
  const replication::Message m{kFrom, kTo, a};
  const auto expected = encode_frame(m, "default", "127.0.0.1:1112", "127.0.0.1:1212");
  const OutFrame f = encode_out_frame(m, "default", "127.0.0.1:1112", "127.0.0.1:1212");
  EXPECT_EQ(f.size, expected.size());
  EXPECT_TRUE(joined(f) == expected);
  std::vector<const char*> referred;
  for (const auto& p : f.parts) {
    if (p.external != nullptr) referred.push_back(p.external);
  }
  ASSERT_EQ(referred.size(), 2u);
  EXPECT_EQ(referred[0], a.entries[0].payload.data());
  EXPECT_EQ(referred[1], a.entries[4].payload.data());
  EXPECT_LT(f.bytes.size(), 100u << 10) << "the frame's own bytes hold a large payload";

  // Without a large payload (and any other message): the frame's bytes alone, as before.
  replication::Append small = a;
  small.entries.erase(small.entries.begin());
  small.entries.erase(small.entries.begin() + 3);
  small.start = small.entries.front().position;
  const replication::Message sm{kFrom, kTo, small};
  const OutFrame sf = encode_out_frame(sm, "c", "127.0.0.1:1", "127.0.0.1:2");
  EXPECT_TRUE(sf.parts.empty());
  EXPECT_TRUE(sf.bytes == encode_frame(sm, "c", "127.0.0.1:1", "127.0.0.1:2"));
  const replication::Message ack{kFrom, kTo, replication::AppendAck{3, 400, 300, 9}};
  const OutFrame af = encode_out_frame(ack, "c", "127.0.0.1:1", "127.0.0.1:2");
  EXPECT_TRUE(af.parts.empty());
  EXPECT_EQ(af.bytes, encode_frame(ack, "c", "127.0.0.1:1", "127.0.0.1:2"));
}

TEST(MessageCodec, OtherMessagesAreFramedThroughProtobuf) {
  const replication::Message m{kFrom, kTo, replication::AppendAck{3, 400, 300, 9}};
  EXPECT_EQ(encode_frame(m, "c", "127.0.0.1:1", "127.0.0.1:2"),
            frame(to_proto(m, "c", "127.0.0.1:1", "127.0.0.1:2")));
}

}  // namespace
}  // namespace chorus::cluster
