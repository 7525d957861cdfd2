// TransportFixture: a real internal Transport on 127.0.0.1, run on its own thread, with peers as
// raw sockets, for the transport tests (large frames, a leader's progress). It records what the
// transport hands on (messages, refusals, leader-progress reports) under one mutex, and waits for
// a condition on them with a deadline. The pinned leader (kLeader at kLeaderEndpoint, a port no
// one listens on) is always a voter; a test adds others with start().
#pragma once

#include "worker/cluster/message_codec.hpp"
#include "worker/cluster/transport.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace chorus::cluster::test_support {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inline const std::string kSelf = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f01";
inline const std::string kLeader = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f02";
inline const std::string kLeaderEndpoint = "127.0.0.1:1";  // pinned; the raw socket claims it
inline const std::string kStranger = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f03";  // not a voter

// A leader's sign of life reported while a large message arrives (on_leader_progress).
struct ProgressReport {
  std::string sender;
  int64_t epoch = 0;
};

inline uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

class TransportFixture : public ::testing::Test {
 protected:
  // Starts the transport on a free port; its voters are the pinned leader and `more`.
  void start(std::vector<Voter> more = {}) {
    port_ = free_port();
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
    h.on_leader_progress = [this](const std::string& sender, int64_t epoch) {
      std::lock_guard lock(mutex_);
      reports_.push_back({sender, epoch});
      changed_.notify_all();
    };
    transport_ = std::make_unique<Transport>(io_, self_endpoint_, "default", "127.0.0.1", port_,
                                             std::move(h));
    transport_->set_instance_id(kSelf);
    std::vector<Voter> voters{Voter{kLeaderEndpoint, kLeader}};
    voters.insert(voters.end(), more.begin(), more.end());
    transport_->set_voters(voters);
    transport_->start();
    work_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (!transport_) return;
    transport_->stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // A message from the pinned leader's endpoint (or `from` at `from_endpoint`) to this node, as
  // the wire carries it.
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
  // Waits (at most 10 s) until `done` holds; called and evaluated under mutex_.
  bool wait_until(const std::function<bool()>& done) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), done);
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
  std::vector<replication::Message> messages_;
  std::vector<std::string> refused_;
  std::vector<ProgressReport> reports_;
};

}  // namespace chorus::cluster::test_support
