// Goal: prove what the internal transport reports as a leader's sign of life while a large
// message is still arriving (TransportHandlers::on_leader_progress, Core::leader_progress): the
// partial bytes count only on a connection whose last admitted message was an Append, and are
// reported with that Append's sender and epoch; bytes on a connection that never carried an
// admitted message (anybody may connect to the port) or whose last message was not an Append
// report nothing. Real Transport on 127.0.0.1, peers as raw sockets.
#include "worker/cluster/transport.hpp"

#include "worker/cluster/message_codec.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
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

uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

struct Report {
  std::string sender;
  int64_t epoch = 0;
};

class TransportProgress : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    self_endpoint_ = "127.0.0.1:" + std::to_string(port_);
    TransportHandlers h;
    h.on_message = [this](replication::Message) {
      std::lock_guard lock(mutex_);
      ++messages_;
      changed_.notify_all();
    };
    h.on_refused = [this](const std::string& why) {
      std::lock_guard lock(mutex_);
      ++refusals_;
      refused_ = why;
      changed_.notify_all();
    };
    h.on_leader_progress = [this](const std::string& sender, int64_t epoch) {
      std::lock_guard lock(mutex_);
      reports_.push_back({sender, epoch});
      changed_.notify_all();
    };
    transport_ = std::make_unique<Transport>(io_, self_endpoint_, "default", "127.0.0.1", port_,
                                             std::move(h));
    transport_->set_instance_id(kSelf);
    transport_->set_voters({Voter{kLeaderEndpoint, kLeader}});
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

  // A message from the pinned leader's endpoint to this node, as the wire carries it.
  std::string frame_of(replication::Body body, const std::string& from = kLeader,
                       const std::string& from_endpoint = kLeaderEndpoint) {
    return encode_frame(replication::Message{from, kSelf, std::move(body)}, "default",
                        from_endpoint, self_endpoint_);
  }
  // The first `n` bytes of a 2 MiB frame (its length prefix says 2 MiB; the rest never comes).
  // Written in one piece with a message before it, both arrive in one read: once the message
  // is seen, whatever the partial bytes were to report is reported.
  static std::string partial_large_frame(size_t n = 16 << 10) {
    std::string bytes(n, 'x');
    const uint32_t length = 2u << 20;
    for (int i = 0; i < 4; ++i)
      bytes[static_cast<size_t>(i)] = static_cast<char>(length >> (8 * i));
    return bytes;
  }
  tcp::socket connect() {
    tcp::socket s(client_io_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    return s;
  }
  bool wait_until(const std::function<bool()>& done) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(5), done);
  }

  asio::io_context io_;
  asio::io_context client_io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::unique_ptr<Transport> transport_;
  uint16_t port_ = 0;
  std::string self_endpoint_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int messages_ = 0;
  int refusals_ = 0;
  std::string refused_;  // the last refusal's reason
  std::vector<Report> reports_;
};

TEST_F(TransportProgress, PartialBytesAfterAnAppendReportItsSenderAndEpoch) {
  auto s = connect();
  asio::write(s, asio::buffer(frame_of(replication::Append{7, 0, false, {}, 0, 5}) +
                              partial_large_frame()));
  ASSERT_TRUE(wait_until([&] { return !reports_.empty(); }))
      << "no sign of life reported; messages " << messages_ << ", refusals " << refusals_ << " ("
      << refused_ << ")";
  std::lock_guard lock(mutex_);
  EXPECT_EQ(messages_, 1);
  EXPECT_EQ(reports_.front().sender, kLeader);
  EXPECT_EQ(reports_.front().epoch, 7);
}

TEST_F(TransportProgress, BytesOfAnUnadmittedOrNonAppendConnectionReportNothing) {
  // An outsider's connection: an Append from a node that is not a voter (refused, the
  // connection kept), then partial bytes.
  auto outsider = connect();
  asio::write(outsider, asio::buffer(frame_of(replication::Append{7, 0, false, {}, 0, 5}, kStranger,
                                              "127.0.0.1:2") +
                                     partial_large_frame()));
  ASSERT_TRUE(wait_until([&] { return refusals_ == 1; }));
  // The leader's connection whose last message was not an Append (a pre-vote request).
  auto voter = connect();
  asio::write(voter, asio::buffer(frame_of(replication::VoteRequest{8, 7, 0, 0, true}) +
                                  partial_large_frame()));
  ASSERT_TRUE(wait_until([&] { return messages_ == 1; }));
  // A control that does report. Its bytes are read after both handlers above (one strand,
  // and they ran before this connection was opened).
  auto control = connect();
  asio::write(control, asio::buffer(frame_of(replication::Append{7, 0, false, {}, 0, 5}) +
                                    partial_large_frame()));
  ASSERT_TRUE(wait_until([&] { return !reports_.empty(); }));
  std::lock_guard lock(mutex_);
  EXPECT_EQ(messages_, 2);
  EXPECT_EQ(reports_.size(), 1u) << "a connection that was not the leader's reported";
}

}  // namespace
}  // namespace chorus::cluster
