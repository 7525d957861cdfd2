// Goal: POST /admin/shutdown is answered before the node stops. Stopping closes every HTTP
// connection, so the shutdown must start only once the reply is on the wire (Reply::after_sent):
// here the node's shutdown hook itself waits, with a deadline, until the client has read the
// whole reply, and the server then closes the connection. When the hook ran before the reply was
// sent (as it did), or before it was flushed, the client got nothing until the hook gave up.
// Anonymous callers are refused and start nothing.
#include "tests/unit/raw_socket_client.hpp"
#include "worker/engine/engine.hpp"
#include "worker/http/http_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>

namespace chorus::http {
namespace {

using std::chrono::milliseconds;

constexpr auto kDeadline = milliseconds(5000);

std::string post_shutdown(const std::string& authorization) {
  return "POST /admin/shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n" +
         (authorization.empty() ? std::string() : "Authorization: " + authorization + "\r\n") +
         "\r\n";
}

bool whole_reply(const std::string& text) {
  const auto end = text.find("\r\n\r\n");
  return end != std::string::npos && text.size() >= end + 4 + 2;  // the body is "{}"
}

class HttpShutdownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineConfig engine_config;
    engine_config.in_memory = true;
    engine_ = Engine::open(engine_config);
    NodeConfig node_config;
    node_config.request_shutdown = [this] {
      calls_.fetch_add(1);
      // As the worker's own hook returns at once and stops the node on another thread; this
      // one waits to see whether the reply got out first.
      reply_read_in_time_ =
          reply_read_.get_future().wait_for(kDeadline) == std::future_status::ready;
    };
    node_ = std::make_shared<HttpNode>(node_config);
    HttpServerConfig config;
    config.port = 0;
    server_ = std::make_unique<HttpServer>(*engine_, node_, config);
    server_->start();
  }
  void TearDown() override { server_->stop(); }

  std::unique_ptr<Engine> engine_;
  std::shared_ptr<HttpNode> node_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> calls_{0};
  std::promise<void> reply_read_;
  std::atomic<bool> reply_read_in_time_{false};
};

TEST_F(HttpShutdownTest, TheReplyIsSentBeforeTheShutdownStartsAndAnonymousIsRefused) {
  {
    auto anonymous = test::RawSocketClient::loopback(server_->port());
    ASSERT_TRUE(anonymous.send(post_shutdown("")));
    bool closed = false;
    const std::string answer = anonymous.receive(kDeadline, &closed, whole_reply);
    EXPECT_EQ(answer.rfind("HTTP/1.1 401", 0), 0U) << answer;
    EXPECT_EQ(calls_.load(), 0) << "an anonymous request started a shutdown";
  }
  auto admin = test::RawSocketClient::loopback(server_->port());
  ASSERT_TRUE(admin.send(post_shutdown("Basic YWRtaW46Y2hhbmdlaXQ=")));  // admin:changeit
  bool closed = false;
  const std::string answer = admin.receive(kDeadline, &closed, whole_reply);
  ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0U) << answer;
  reply_read_.set_value();
  admin.receive(kDeadline, &closed);  // until the server closes the connection
  EXPECT_TRUE(closed) << "the connection of a shutdown is closed after its reply";
  EXPECT_EQ(calls_.load(), 1);
  EXPECT_TRUE(reply_read_in_time_) << "the shutdown started before its reply reached the client";
}

}  // namespace
}  // namespace chorus::http
