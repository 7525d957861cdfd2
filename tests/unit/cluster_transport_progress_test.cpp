// Goal: prove what the internal transport reports as a leader's sign of life while a large
// message is still arriving (TransportHandlers::on_leader_progress, Core::leader_progress): the
// partial bytes count only on a connection whose last admitted message was an Append, and are
// reported with that Append's sender and epoch; bytes on a connection that never carried an
// admitted message (anybody may connect to the port) or whose last message was not an Append
// report nothing. Real Transport on 127.0.0.1, peers as raw sockets.
#include "tests/unit/cluster_transport_fixture.hpp"

#include <boost/asio/write.hpp>

namespace chorus::cluster {
namespace {

using namespace test_support;

class TransportProgress : public TransportFixture {
 protected:
  void SetUp() override { start(); }

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
  // The last refusal's reason, for failure messages.
  std::string last_refusal() const { return refused_.empty() ? "" : refused_.back(); }
};

TEST_F(TransportProgress, PartialBytesAfterAnAppendReportItsSenderAndEpoch) {
  auto s = connect();
  asio::write(s, asio::buffer(frame_of(replication::Append{7, 0, false, {}, 0, 5}) +
                              partial_large_frame()));
  ASSERT_TRUE(wait_until([&] { return !reports_.empty(); }))
      << "no sign of life reported; messages " << messages_.size() << ", refusals "
      << refused_.size() << " (" << last_refusal() << ")";
  std::lock_guard lock(mutex_);
  EXPECT_EQ(messages_.size(), 1u);
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
  ASSERT_TRUE(wait_until([&] { return refused_.size() == 1; }));
  // The leader's connection whose last message was not an Append (a pre-vote request).
  auto voter = connect();
  asio::write(voter, asio::buffer(frame_of(replication::VoteRequest{8, 7, 0, 0, true}) +
                                  partial_large_frame()));
  ASSERT_TRUE(wait_until([&] { return messages_.size() == 1; }));
  // A control that does report. Its bytes are read after both handlers above (one strand,
  // and they ran before this connection was opened).
  auto control = connect();
  asio::write(control, asio::buffer(frame_of(replication::Append{7, 0, false, {}, 0, 5}) +
                                    partial_large_frame()));
  ASSERT_TRUE(wait_until([&] { return !reports_.empty(); }));
  std::lock_guard lock(mutex_);
  EXPECT_EQ(messages_.size(), 2u);
  EXPECT_EQ(reports_.size(), 1u) << "a connection that was not the leader's reported";
}

}  // namespace
}  // namespace chorus::cluster
