// Goal: prove that a large Append crosses the internal transport without a copy of its entries
// yet byte for byte as before: a leader's large Append goes out as encode_frame's bytes (written
// from the entries' payloads in place, a gather list), with the message queued behind it after
// it; a follower's transport receives one whole and still refuses what every message is refused
// for: a malformed entry (the connection closed) or a sender that is not a voter (dropped). Real
// Transport on 127.0.0.1, peers as raw sockets.
#include "tests/unit/cluster_transport_fixture.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace chorus::cluster {
namespace {

using namespace test_support;

const std::string kFollower = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f04";

// Far above kFramePartByReferenceBytesMin: sent by reference.
constexpr size_t kLargeBytes = 3u << 20;

replication::Append large_append(int64_t end_error = 0) {
  std::string payload(kLargeBytes, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31 + 7);
  replication::Append a{7, 0, false, {}, 0, 5, false};
  replication::Entry e;
  e.position = 0;
  e.end = static_cast<int64_t>(payload.size()) + replication::kEntryOverheadBytes + end_error;
  e.epoch = 7;
  e.payload = std::move(payload);
  a.entries.push_back(std::move(e));
  return a;
}

// A follower (kFollower) listens on peer_, a raw acceptor: what the transport sends it arrives
// there.
class TransportLargeFrames : public TransportFixture {
 protected:
  void SetUp() override {
    peer_endpoint_ = "127.0.0.1:" + std::to_string(peer_.local_endpoint().port());
    start({Voter{peer_endpoint_, kFollower}});
  }

  tcp::acceptor peer_{client_io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::string peer_endpoint_;
};

TEST_F(TransportLargeFrames, ALargeAppendArrivesWhole) {
  const auto sent = large_append();
  auto s = connect();
  asio::write(s,
              asio::buffer(frame_of(sent) + frame_of(replication::Append{
                                                7, sent.entries[0].end, false, {}, 0, 5, false})));
  ASSERT_TRUE(wait_until([&] { return messages_.size() == 2; })) << refused_.size();
  std::lock_guard lock(mutex_);
  EXPECT_EQ(messages_[0].from, kLeader);
  const auto& a = std::get<replication::Append>(messages_[0].body);
  EXPECT_EQ(a.epoch, 7);
  EXPECT_TRUE(a.entries == sent.entries);
  EXPECT_TRUE(refused_.empty());
}

TEST_F(TransportLargeFrames, ALargeAppendWithAMalformedEntryIsRefusedAndItsConnectionClosed) {
  auto s = connect();
  asio::write(s, asio::buffer(frame_of(large_append(1))));
  ASSERT_TRUE(wait_until([&] { return !refused_.empty(); }));
  {
    std::lock_guard lock(mutex_);
    EXPECT_NE(refused_[0].find("Append entry end wrong"), std::string::npos) << refused_[0];
    EXPECT_TRUE(messages_.empty());
  }
  char byte = 0;
  boost::system::error_code ec;
  asio::read(s, asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof) << "the connection stayed open";
}

TEST_F(TransportLargeFrames, ALargeAppendFromANonVoterIsDropped) {
  auto s = connect();
  asio::write(s, asio::buffer(frame_of(large_append(), kStranger, "127.0.0.1:2") +
                              frame_of(replication::Append{7, 0, false, {}, 0, 5, false})));
  ASSERT_TRUE(wait_until([&] { return !messages_.empty(); }));
  std::lock_guard lock(mutex_);
  ASSERT_EQ(refused_.size(), 1u);
  EXPECT_NE(refused_[0].find("not a voter"), std::string::npos) << refused_[0];
  EXPECT_TRUE(std::get<replication::Append>(messages_[0].body).entries.empty())
      << "the non-voter's Append reached the core";
}

TEST_F(TransportLargeFrames, ALargeAppendIsSentAsEncodeFramesBytes) {
  const replication::Message m{kSelf, kFollower, large_append()};
  const std::string expected = encode_frame(m, "default", self_endpoint_, peer_endpoint_);
  transport_->send(m);
  transport_->send(replication::Message{kSelf, kFollower, replication::AppendAck{7, 1, 1, 5}});
  tcp::socket s(client_io_);
  peer_.accept(s);
  std::string received(expected.size(), '\0');
  asio::read(s, asio::buffer(received));
  EXPECT_TRUE(received == expected) << "the large Append's bytes differ";
  const std::string ack =
      encode_frame(replication::Message{kSelf, kFollower, replication::AppendAck{7, 1, 1, 5}},
                   "default", self_endpoint_, peer_endpoint_);
  std::string next(ack.size(), '\0');
  asio::read(s, asio::buffer(next));
  EXPECT_EQ(next, ack) << "the message behind it";
}

}  // namespace
}  // namespace chorus::cluster
