// Goal: prove that a large Append crosses the internal transport without a copy of its entries
// yet byte for byte as before: a leader's large Append goes out as encode_frame's bytes (written
// from the entries' payloads in place, a gather list), with the message queued behind it after
// it; a follower's transport receives one whole and still refuses what every message is refused
// for: a malformed entry (the connection closed) or a sender that is not a voter (dropped). Real
// Transport on 127.0.0.1, peers as raw sockets.
#include "worker/cluster/transport.hpp"

#include "worker/cluster/message_codec.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace chorus::cluster {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

const std::string kSelf = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f01";
const std::string kLeader = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f02";
const std::string kLeaderEndpoint = "127.0.0.1:1";  // pinned; the raw socket claims it
const std::string kStranger = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f03";  // not a voter
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

class TransportLargeFrames : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = listener_.local_endpoint().port();  // any free port for the transport
    listener_.close();
    peer_ = tcp::acceptor(client_io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer_endpoint_ = "127.0.0.1:" + std::to_string(peer_.local_endpoint().port());
    self_endpoint_ = "127.0.0.1:" + std::to_string(port_);
    TransportHandlers h;
    h.on_message = [this](replication::Message m) {
      std::lock_guard lock(mutex_);
      messages_.push_back(std::move(m));
      changed_.notify_all();
    };
    h.on_refused = [this](const std::string& why) {
      std::lock_guard lock(mutex_);
      refused_.push_back(why);
      changed_.notify_all();
    };
    transport_ = std::make_unique<Transport>(io_, self_endpoint_, "default", "127.0.0.1", port_,
                                             std::move(h));
    transport_->set_instance_id(kSelf);
    transport_->set_voters({Voter{kLeaderEndpoint, kLeader}, Voter{peer_endpoint_, kFollower}});
    transport_->start();
    work_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    transport_->stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  std::string frame_of(replication::Body body, const std::string& from = kLeader,
                       const std::string& from_endpoint = kLeaderEndpoint) {
    return encode_frame(replication::Message{from, kSelf, std::move(body)}, "default",
                        from_endpoint, self_endpoint_);
  }
  tcp::socket connect() {
    tcp::socket s(client_io_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    return s;
  }
  bool wait_until(const std::function<bool()>& done) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), done);
  }

  asio::io_context io_;
  asio::io_context client_io_;
  tcp::acceptor listener_{client_io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  tcp::acceptor peer_{client_io_};
  std::string peer_endpoint_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::unique_ptr<Transport> transport_;
  uint16_t port_ = 0;
  std::string self_endpoint_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<replication::Message> messages_;
  std::vector<std::string> refused_;
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
