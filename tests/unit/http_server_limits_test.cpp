// Goal: a real HttpServer on loopback (a real in-memory Engine) cannot be held by slow or many
// clients: a client that sends its request one byte at a time (slow loris) is cut at the I/O
// deadline although each byte arrives well within the socket timeout, while a long poll that
// waits on the engine longer than that deadline is still answered; and beyond kConnectionsMax
// (request threads + accept queue) a connection is closed at once, after which the server serves
// again.
#include "tests/unit/eventually.hpp"
#include "tests/unit/raw_socket_client.hpp"
#include "worker/engine/engine.hpp"
#include "worker/http/http_server.hpp"
#include "worker/http/limits.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace chorus::http {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string get(const std::string& path, const std::string& extra_headers = {}) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra_headers +
         "\r\n";
}

class HttpLimitsTest : public ::testing::Test {
 protected:
  void start(int io_deadline_ms) {
    EngineConfig engine_config;
    engine_config.in_memory = true;
    engine_ = Engine::open(engine_config);
    node_ = std::make_shared<HttpNode>(NodeConfig{});
    HttpServerConfig config;
    config.port = 0;
    config.io_deadline_ms = io_deadline_ms;
    server_ = std::make_unique<HttpServer>(*engine_, node_, config);
    server_->start();
  }
  void TearDown() override {
    if (server_) server_->stop();
  }
  // The server answers a request on a new connection with an HTTP status line.
  void expect_answer(const std::string& path) {
    auto client = test::RawSocketClient::loopback(server_->port());
    ASSERT_TRUE(client.send(get(path)));
    bool closed = false;
    const std::string answer = client.receive(milliseconds(5000), &closed);
    EXPECT_EQ(answer.rfind("HTTP/1.1 ", 0), 0U) << answer;
  }

  std::unique_ptr<Engine> engine_;
  std::shared_ptr<HttpNode> node_;
  std::unique_ptr<HttpServer> server_;
};

// Slow loris: one header byte every 100 ms (the socket timeout, 10 s, never fires) is cut at the
// 1 s I/O deadline; a long poll waiting 2 s on the engine is not.
TEST_F(HttpLimitsTest, ASlowLorisIsCutAtTheIoDeadlineButALongPollIsAnswered) {
  start(1000);
  auto slow = test::RawSocketClient::loopback(server_->port());
  const auto started = Clock::now();
  ASSERT_TRUE(slow.send("GET /info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
  bool closed = false;
  while (!closed && Clock::now() - started < std::chrono::seconds(8)) {
    if (!slow.send("a")) break;
    slow.receive(milliseconds(100), &closed);
  }
  const auto lasted = Clock::now() - started;
  EXPECT_TRUE(closed) << "the server never cut the slow client";
  EXPECT_GE(lasted, milliseconds(900));
  EXPECT_LT(lasted, milliseconds(3000));
  EXPECT_EQ(server_->load().cut, 1);

  auto poll = test::RawSocketClient::loopback(server_->port());
  const auto asked = Clock::now();
  ASSERT_TRUE(poll.send(get("/streams/quiet/0/forward/20", "ES-LongPoll: 2\r\n")));
  const std::string answer = poll.receive(milliseconds(8000), &closed);
  EXPECT_EQ(answer.rfind("HTTP/1.1 ", 0), 0U) << answer;
  EXPECT_GE(Clock::now() - asked, milliseconds(1900)) << "the long poll waited on the engine";
  EXPECT_EQ(server_->load().cut, 1);
  expect_answer("/info");
}

// kThreadsMax connections hold every request thread (each sent half a request) and
// kQueuedConnectionsMax wait for one: the next connection is closed at once, without an answer.
// Once the clients are gone, the server answers again.
TEST_F(HttpLimitsTest, ConnectionsBeyondThreadsAndQueueAreClosedAtOnce) {
  start(20000);
  std::vector<std::unique_ptr<test::RawSocketClient>> held;
  for (int i = 0; i < kThreadsMax; ++i) {
    held.push_back(
        std::make_unique<test::RawSocketClient>(test::RawSocketClient::loopback(server_->port())));
    ASSERT_TRUE(held.back()->send("GET /info HTTP/1.1\r\n"));
  }
  ASSERT_TRUE(test::eventually([&] {
    const HttpServerLoad load = server_->load();
    return load.threads == kThreadsMax && load.queued == 0;
  }));
  for (int i = 0; i < kQueuedConnectionsMax; ++i) {
    held.push_back(
        std::make_unique<test::RawSocketClient>(test::RawSocketClient::loopback(server_->port())));
  }
  ASSERT_TRUE(test::eventually([&] { return server_->load().queued == kQueuedConnectionsMax; }));
  EXPECT_EQ(server_->load().refused, 0);

  auto beyond = test::RawSocketClient::loopback(server_->port());
  beyond.send(get("/info"));
  bool closed = false;
  const std::string answer = beyond.receive(milliseconds(3000), &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(answer, "");
  EXPECT_EQ(server_->load().refused, 1);

  held.clear();
  // The request threads see the held clients' closes, then take the queued (closed) connections
  // one by one; until the first of them is taken the queue is still full and a new connection is
  // refused, which on a busy machine (two tests at a time) can be after the client's next connect.
  ASSERT_TRUE(test::eventually([&] { return server_->load().queued == 0; }));
  expect_answer("/info");
}

}  // namespace
}  // namespace chorus::http
