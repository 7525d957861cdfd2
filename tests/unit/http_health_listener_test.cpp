// Goal: the manager's health listener (HealthResponder on a Unix socket, mode 0600) answers the
// manager's pipelined probe (/health/live with /stats behind it) in order on one kept
// connection, refuses what it does not serve with a clear status (404, 405 with Allow, 400 for a
// malformed request, 431 and 413 beyond kHealthHeadBytesMax and kHealthBodyBytesMax), cuts a
// connection that does not send its request within the I/O deadline, closes connections beyond
// kHealthConnectionsMax at once, and keeps answering probes while a long request (a backup)
// runs, refusing a second one meanwhile.
#include "tests/unit/eventually.hpp"
#include "tests/unit/raw_socket_client.hpp"
#include "worker/engine/engine.hpp"
#include "worker/http/health_responder.hpp"
#include "worker/http/http_server.hpp"
#include "worker/http/limits.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace chorus::http {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
}

// A request after which the listener closes the connection once it has answered.
std::string get_once(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
}

std::string temp_socket_path(const std::string& name) {
  const auto folder = std::filesystem::temp_directory_path() /
                      ("chorus-health-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::create_directories(folder);
  return (folder / "n.sock").string();
}

// The real health routes of a node (an in-memory engine), through HttpServer.
class HealthListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineConfig engine_config;
    engine_config.in_memory = true;
    engine_ = Engine::open(engine_config);
    node_ = std::make_shared<HttpNode>(NodeConfig{});
    HttpServerConfig config;
    config.unix_socket_path = path_;
    server_ = std::make_unique<HttpServer>(*engine_, node_, config);
    server_->start();
  }
  void TearDown() override {
    server_->stop();
    std::filesystem::remove_all(std::filesystem::path(path_).parent_path());
  }
  // One request on a new connection: the whole answer (the server closes after a refusal).
  // A request over a limit may be refused and closed before all of it is sent (`cut_short`):
  // then only the answer counts, not the send.
  std::string ask(const std::string& request, bool* closed, bool cut_short = false) {
    auto client = test::RawSocketClient::unix_socket(path_);
    const bool sent = client.send(request);
    if (!cut_short) {
      EXPECT_TRUE(sent);
    }
    return client.receive(milliseconds(5000), closed);
  }

  const std::string path_ = temp_socket_path("real");
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<HttpNode> node_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HealthListenerTest, ThePipelinedProbeIsAnsweredInOrderOnAKeptConnection) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  auto client = test::RawSocketClient::unix_socket(path_);
  bool closed = false;
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(client.send(get("/health/live") + get("/stats")));
    const std::string answer = client.receive(milliseconds(5000), &closed, [](const auto& text) {
      return text.find("\"cluster\"") != std::string::npos && text.back() == '}';
    });
    ASSERT_FALSE(closed) << answer;
    EXPECT_EQ(answer.rfind("HTTP/1.1 204 No Content\r\n", 0), 0U) << answer;
    const size_t stats = answer.find("HTTP/1.1 200 OK\r\n");
    ASSERT_NE(stats, std::string::npos) << answer;
    EXPECT_NE(answer.find("\"process\"", stats), std::string::npos) << answer;
  }
  ASSERT_TRUE(client.send(get("/health/ready")));
  const std::string ready = client.receive(milliseconds(5000), &closed, [](const auto& text) {
    return text.find("\"ready\"") != std::string::npos;
  });
  EXPECT_NE(ready.find(R"({"ready":true,"state":"Leader"})"), std::string::npos) << ready;
}

TEST_F(HealthListenerTest, WhatItDoesNotServeIsRefusedWithAClearStatus) {
  bool closed = false;
  std::string answer = ask(get_once("/streams/a"), &closed);
  EXPECT_EQ(answer.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0U) << answer;
  answer = ask("POST /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &closed);
  EXPECT_EQ(answer.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0U) << answer;
  EXPECT_NE(answer.find("Allow: GET\r\n"), std::string::npos) << answer;
  answer = ask(get_once("/health/live?liveCode=abc"), &closed);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0U) << answer;

  answer = ask("NOT AN HTTP REQUEST\r\n\r\n", &closed);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad request", 0), 0U) << answer;
  EXPECT_TRUE(closed);
  answer = ask(
      "GET /health/live HTTP/1.1\r\nX-Big: " + std::string(kHealthHeadBytesMax, 'a') + "\r\n\r\n",
      &closed, true);
  EXPECT_EQ(answer.rfind("HTTP/1.1 431 ", 0), 0U) << answer;
  EXPECT_TRUE(closed);
  answer = ask("POST /admin/backup HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                   std::to_string(kHealthBodyBytesMax + 1) + "\r\n\r\n" +
                   std::string(kHealthBodyBytesMax + 1, 'a'),
               &closed, true);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413 ", 0), 0U) << answer;
  EXPECT_TRUE(closed);
  // Still serving.
  answer = ask(get_once("/health/live"), &closed);
  EXPECT_EQ(answer.rfind("HTTP/1.1 204 ", 0), 0U) << answer;
}

// A HealthResponder on a router of test routes: a quick GET and a POST that waits until told.
class HealthResponderTest : public ::testing::Test {
 protected:
  void start(int io_deadline_ms) {
    router_.add("GET", "/health/live", [](Request&) {
      Reply reply;
      reply.status = 204;
      return reply;
    });
    router_.add("POST", "/admin/slow", [this](Request&) {
      release_.wait();
      return text_reply(200, "done");
    });
    responder_ = std::make_unique<HealthResponder>(router_, path_, io_deadline_ms);
    responder_->start();
  }
  void TearDown() override {
    release_promise_.set_value();
    if (responder_) responder_->stop();
    std::filesystem::remove_all(std::filesystem::path(path_).parent_path());
  }
  void expect_live() {
    auto client = test::RawSocketClient::unix_socket(path_);
    ASSERT_TRUE(client.send(get("/health/live")));
    bool closed = false;
    const std::string answer = client.receive(milliseconds(5000), &closed, [](const auto& text) {
      return text.find("\r\n\r\n") != std::string::npos;
    });
    EXPECT_EQ(answer.rfind("HTTP/1.1 204 ", 0), 0U) << answer;
  }

  const std::string path_ = temp_socket_path("test");
  Router router_;
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
  std::unique_ptr<HealthResponder> responder_;
};

TEST_F(HealthResponderTest, ProbesAreAnsweredWhileALongRequestRunsAndASecondOneIsRefused) {
  start(20000);
  auto slow = test::RawSocketClient::unix_socket(path_);
  ASSERT_TRUE(slow.send("POST /admin/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
  ASSERT_TRUE(test::eventually([&] { return responder_->load().threads == 2; }));
  expect_live();
  bool closed = false;
  auto second = test::RawSocketClient::unix_socket(path_);
  ASSERT_TRUE(second.send("POST /admin/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  const std::string refused = second.receive(milliseconds(5000), &closed);
  EXPECT_EQ(refused.rfind("HTTP/1.1 503 Another long request", 0), 0U) << refused;

  release_promise_.set_value();
  release_promise_ = {};  // TearDown sets this one
  const std::string done = slow.receive(milliseconds(5000), &closed, [](const auto& text) {
    return text.find("done") != std::string::npos;
  });
  EXPECT_EQ(done.rfind("HTTP/1.1 200 ", 0), 0U) << done;
  EXPECT_TRUE(test::eventually([&] { return responder_->load().threads == 1; }));
}

// A client that sends half a request is cut at the 500 ms deadline; one that keeps probing well
// within it is not.
TEST_F(HealthResponderTest, AConnectionIsCutWhenItsRequestTakesLongerThanTheDeadline) {
  start(500);
  auto steady = test::RawSocketClient::unix_socket(path_);
  auto slow = test::RawSocketClient::unix_socket(path_);
  const auto started = Clock::now();
  ASSERT_TRUE(slow.send("GET /health/live HTTP/1.1\r\nHost: "));
  bool closed = false;
  while (Clock::now() - started < milliseconds(1500)) {
    ASSERT_TRUE(steady.send(get("/health/live")));
    const std::string answer = steady.receive(milliseconds(2000), &closed, [](const auto& text) {
      return text.find("\r\n\r\n") != std::string::npos;
    });
    ASSERT_EQ(answer.rfind("HTTP/1.1 204 ", 0), 0U) << answer;
    std::this_thread::sleep_for(milliseconds(100));  // the probe's pace, not a wait for a result
  }
  slow.receive(milliseconds(3000), &closed);
  EXPECT_TRUE(closed) << "the half-sent request was never cut";
  EXPECT_EQ(responder_->load().cut, 1);
}

TEST_F(HealthResponderTest, ConnectionsBeyondTheLimitAreClosedAtOnce) {
  start(20000);
  std::vector<std::unique_ptr<test::RawSocketClient>> held;
  for (size_t i = 0; i < kHealthConnectionsMax; ++i) {
    held.push_back(
        std::make_unique<test::RawSocketClient>(test::RawSocketClient::unix_socket(path_)));
  }
  bool closed = false;
  auto beyond = test::RawSocketClient::unix_socket(path_);
  beyond.send(get("/health/live"));
  EXPECT_EQ(beyond.receive(milliseconds(3000), &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_EQ(responder_->load().refused, 1);
  held.clear();
  // The listener sees the closes, then serves again.
  ASSERT_TRUE(test::eventually([&] {
    auto client = test::RawSocketClient::unix_socket(path_);
    client.send(get("/health/live"));
    return client
               .receive(milliseconds(1000), &closed,
                        [](const auto& text) { return text.find("\r\n\r\n") != std::string::npos; })
               .rfind("HTTP/1.1 204 ", 0) == 0;
  }));
}

}  // namespace
}  // namespace chorus::http
