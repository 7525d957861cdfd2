// Goal: a real TcpServer on loopback, driven by raw sockets against a fake Engine, answers each
// client package as PROTOCOL.md A–C say: pings, heartbeats both ways, identification, per-package
// and connection credentials, arrival order kept across asynchronous authentication, BadRequest
// for undecodable or unknown packages, disconnects for TrustedWrite and bad frame lengths, and
// volatile subscriptions; and the node-wide limits (connections, partial frames, queued sends) that
// the plain and the secure port share.
#include "common/framing.hpp"
#include "tests/unit/eventually.hpp"
#include "worker/engine/engine.hpp"
#include "worker/tcp/client_limits.hpp"
#include "worker/tcp/convert.hpp"
#include "worker/tcp/limits.hpp"
#include "worker/tcp/tcp_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace chorus::tcp {
namespace {

using std::chrono::milliseconds;
using wire::Command;

TransactionResult transaction(int64_t id) {
  TransactionResult result;
  result.transaction_id = id;
  return result;
}

// A PersistentApi that answers NotLeader to everything (like a follower's).
class RefusingPersistent : public PersistentApi {
 public:
  void create(Principal, std::string, std::string, PersistentSettings,
              std::function<void(PersistentResult)> done) override {
    done(not_leader());
  }
  void update(Principal, std::string, std::string, PersistentSettings,
              std::function<void(PersistentResult)> done) override {
    done(not_leader());
  }
  void remove(Principal, std::string, std::string,
              std::function<void(PersistentResult)> done) override {
    done(not_leader());
  }
  uint64_t connect(Principal, std::string, std::string, int32_t, std::string,
                   PersistentCallbacks callbacks) override {
    callbacks.not_handled(NotHandledReason::NotLeader);
    return 1;
  }
  void ack(uint64_t, std::vector<Guid>) override {}
  void nak(uint64_t, std::vector<Guid>, NakAction, std::string) override {}
  void disconnect(uint64_t, bool) override {}
  void pull(Principal, std::string, std::string, int32_t,
            std::function<void(PersistentPullResult)> done) override {
    PersistentPullResult r;
    r.not_handled = NotHandledReason::NotLeader;
    done(r);
  }
  void ack_ids(Principal, std::string, std::string, std::vector<Guid>, std::optional<NakAction>,
               std::function<void(PersistentResult)> done) override {
    done(not_leader());
  }
  void replay_parked(Principal, std::string, std::string,
                     std::function<void(PersistentResult)> done) override {
    done(not_leader());
  }
  void list(Principal, std::string, std::function<void(PersistentListResult)> done) override {
    PersistentListResult r;
    r.not_handled = NotHandledReason::NotLeader;
    done(r);
  }
  void info(Principal, std::string, std::string,
            std::function<void(PersistentInfoResult)> done) override {
    PersistentInfoResult r;
    r.not_handled = NotHandledReason::NotLeader;
    done(r);
  }

 private:
  static PersistentResult not_leader() {
    PersistentResult r;
    r.not_handled = NotHandledReason::NotLeader;
    return r;
  }
};

// An Engine whose callbacks run later on its own thread, as the real one's do. Authentication
// takes `auth_delay` so that requests with credentials complete out of order.
class FakeEngine : public Engine {
 public:
  FakeEngine() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  // The engine thread's io_context: the worker runs its TCP servers on the core's.
  boost::asio::io_context& io() { return io_; }
  bool on_engine_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  ~FakeEngine() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  std::vector<std::string> calls() {
    std::lock_guard guard(mutex_);
    return calls_;
  }
  // Pushes an event to every live subscription.
  void push(const ResolvedEvent& event) {
    boost::asio::post(io_, [this, event] {
      const SharedEvent shared{std::make_shared<const ResolvedEvent>(event), nullptr};
      for (auto& [id, callbacks] : subscriptions_) {
        if (callbacks.shared_event_appeared) {
          callbacks.shared_event_appeared(shared);
        } else {
          callbacks.event_appeared(event);
        }
      }
    });
  }

  void authenticate(std::string login, std::string password,
                    std::function<void(AuthResult)> done) override {
    ++authentications;
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, auth_delay);
    timer->async_wait([this, timer, login, password, done = std::move(done)](auto) {
      if (not_ready.load()) {
        done(AuthResult::unavailable());
      } else if (password == "changeit" && !disabled.load()) {
        done(AuthResult{Principal{login, {"$admins"}}});
      } else {
        done(AuthResult{});
      }
    });
  }
  void append(Principal who, std::string stream, int64_t, std::vector<NewEvent> events,
              std::function<void(WriteResult)> done) override {
    record("append:" + who.login + ":" + stream);
    if (on_engine_thread()) ++appends_on_engine_thread;
    for (const NewEvent& e : events) appended_data_bytes += e.data.size();
    WriteResult result;
    result.last_event_number = static_cast<int64_t>(events.size()) - 1;
    result.position = {100, 100};
    if (hold_appends) {
      std::lock_guard guard(mutex_);
      held_.push_back([done = std::move(done), result] { done(result); });
      return;
    }
    later([done = std::move(done), result] { done(result); });
  }
  // Answers every held append (on the engine thread).
  void release_appends() {
    std::lock_guard guard(mutex_);
    for (auto& answer : held_) later(std::move(answer));
    held_.clear();
  }
  void delete_stream(Principal, std::string stream, int64_t, bool,
                     std::function<void(DeleteResult)> done) override {
    record("delete:" + stream);
    later([done = std::move(done)] { done(DeleteResult{}); });
  }
  void transaction_start(Principal, std::string, int64_t,
                         std::function<void(TransactionResult)> done) override {
    record("transaction_start");
    later([done = std::move(done)] { done(transaction(7)); });
  }
  void transaction_write(Principal, int64_t, std::vector<NewEvent>,
                         std::function<void(TransactionResult)> done) override {
    record("transaction_write");
    later([done = std::move(done)] { done(transaction(7)); });
  }
  void transaction_commit(Principal who, int64_t,
                          std::function<void(TransactionResult)> done) override {
    record("transaction_commit:" + who.login);
    later([done = std::move(done)] { done(transaction(7)); });
  }
  void read_event(Principal, std::string, int64_t, bool,
                  std::function<void(ReadEventResult)> done) override {
    record("read_event");
    later([done = std::move(done)] { done(ReadEventResult{}); });
  }
  void read_stream(Principal, std::string, int64_t, int32_t, bool, bool,
                   std::function<void(ReadStreamResult)> done) override {
    record("read_stream");
    later([done = std::move(done)] { done(ReadStreamResult{}); });
  }
  void read_all(Principal, Position, int32_t, bool, bool,
                std::function<void(ReadAllResult)> done) override {
    record("read_all");
    later([done = std::move(done)] { done(ReadAllResult{}); });
  }
  uint64_t subscribe(Principal, std::string stream, bool, SubscriptionCallbacks cb) override {
    std::lock_guard guard(mutex_);
    const uint64_t id = next_subscription_++;
    calls_.push_back("subscribe:" + stream);
    boost::asio::post(io_, [this, id, stream, cb = std::move(cb)] {
      subscriptions_[id] = cb;
      cb.confirmed(10, stream.empty() ? std::nullopt : std::optional<int64_t>(-1));
    });
    return id;
  }
  void unsubscribe(uint64_t id) override {
    boost::asio::post(io_, [this, id] {
      auto it = subscriptions_.find(id);
      if (it == subscriptions_.end()) return;
      auto dropped = it->second.dropped;
      subscriptions_.erase(it);
      dropped(DropReason::Unsubscribed);
    });
  }
  void forget_subscription(uint64_t id) override {
    record("forget");
    boost::asio::post(io_, [this, id] { subscriptions_.erase(id); });
  }
  void when_visible(int64_t, std::function<void(bool)> done) override {
    boost::asio::post(io_, [done = std::move(done)] { done(true); });
  }
  uint64_t credentials_generation() const override { return generation.load(); }
  EngineStats stats() const override { return {}; }
  // These session tests do not use persistent subscriptions; the fake's API refuses them all.
  PersistentApi& persistent() override { return refusing_; }
  int64_t core_tick_age_ms() const override { return 0; }
  bool storage_failed() const override { return false; }
  void receive(replication::Message) override {}
  void set_peers(std::vector<std::string>) override {}
  void peer_lost(std::string) override {}
  void leader_progress(std::string, int64_t) override {}
  NodeStatus status() const override { return {}; }
  void resign() override {}
  void shutdown() override {}

  milliseconds auth_delay{0};
  std::atomic<int> authentications{0};
  std::atomic<int> appends_on_engine_thread{0};
  std::atomic<size_t> appended_data_bytes{0};
  std::atomic<bool> hold_appends{false};
  // A user change: every user is refused while `disabled`; bump `generation` with it, as the
  // engine does when a user record changes.
  std::atomic<bool> disabled{false};
  std::atomic<uint64_t> generation{0};
  // Every check is answered "cannot check yet" (a held built-in login past its deadline).
  std::atomic<bool> not_ready{false};

 private:
  void record(std::string call) {
    std::lock_guard guard(mutex_);
    calls_.push_back(std::move(call));
  }
  template <typename F>
  void later(F f) {
    boost::asio::post(io_, std::move(f));
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::mutex mutex_;
  RefusingPersistent refusing_;
  std::vector<std::string> calls_;
  std::vector<std::function<void()>> held_;
  uint64_t next_subscription_ = 1;
  std::map<uint64_t, SubscriptionCallbacks> subscriptions_;  // engine thread only
  std::thread thread_;
};

// A blocking loopback client with deadlines (poll), speaking raw frames.
class RawClient {
 public:
  explicit RawClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ~RawClient() { ::close(fd_); }

  void send_bytes(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  Guid send(Command command, const std::string& payload = {},
            std::optional<wire::Credentials> credentials = std::nullopt, uint8_t flags = 0) {
    wire::Package p;
    p.command = static_cast<uint8_t>(command);
    p.flags = flags;
    p.correlation_id = random_guid();
    p.credentials = std::move(credentials);
    p.payload = payload;
    send_bytes(wire::encode_package(p));
    return p.correlation_id;
  }
  // The next package, skipping server heartbeat requests unless asked; nullopt on timeout/close.
  std::optional<wire::Package> receive(milliseconds timeout = milliseconds(3000),
                                       bool keep_heartbeats = false) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      while (std::optional<std::string> frame = parser_.next_frame()) {
        wire::PackageParse parsed = wire::parse_package(*frame);
        if (!parsed.package) return std::nullopt;
        if (!keep_heartbeats && parsed.package->command == uint8_t(Command::HeartbeatRequest)) {
          continue;
        }
        return parsed.package;
      }
      if (!wait_readable(deadline)) return std::nullopt;
      char buffer[65536];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        closed_ = true;
        return std::nullopt;
      }
      parser_.feed(std::string_view(buffer, static_cast<size_t>(n)));
    }
  }
  // True when the server closes the connection before the deadline.
  bool closed_by_server(milliseconds timeout = milliseconds(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_) {
      if (!wait_readable(deadline)) return false;
      char buffer[65536];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) closed_ = true;
    }
    return true;
  }

 private:
  bool wait_readable(std::chrono::steady_clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    return ::poll(&pfd, 1, static_cast<int>(left.count())) > 0;
  }

  int fd_;
  wire::FrameParser parser_;
  bool closed_ = false;
};

class SessionTest : public ::testing::Test {
 protected:
  // With `secure_tls`, a second server on its own port (secure_) serves TLS with the same config.
  void start(TcpServerConfig config = {},
             std::shared_ptr<boost::asio::ssl::context> secure_tls = nullptr) {
    config.port = 0;
    boost::asio::io_context& io = on_engine_io_ ? engine_.io() : io_;
    server_ = std::make_unique<TcpServer>(io, engine_, config);
    server_->start();
    if (secure_tls) {
      config.tls = std::move(secure_tls);
      secure_ = std::make_unique<TcpServer>(io, engine_, config);
      secure_->start();
    }
    thread_ = std::thread([this] { io_.run(); });
  }
  void SetUp() override {
    TcpServerConfig config;
    config.heartbeat_interval_ms = 60000;
    start(config);
  }
  void TearDown() override {
    boost::asio::post(io_, [this] {
      server_->stop();
      if (secure_) secure_->stop();
    });
    work_.reset();
    thread_.join();
    server_.reset();
    secure_.reset();
  }
  uint16_t port() const { return server_->port(); }

  static std::string write_events(const std::string& stream, const std::string& event_id_dotnet) {
    pb::WriteEvents w;
    w.set_event_stream_id(stream);
    w.set_expected_version(-2);
    w.set_require_master(true);
    pb::NewEvent* e = w.add_events();
    e->set_event_id(event_id_dotnet);
    e->set_event_type("t");
    e->set_data_content_type(0);
    e->set_metadata_content_type(0);
    e->set_data("x");
    return w.SerializeAsString();
  }
  static std::string transaction_commit() {
    pb::TransactionCommit c;
    c.set_transaction_id(7);
    c.set_require_master(true);
    return c.SerializeAsString();
  }

  // Declared after io_ so that it is destroyed (its thread joined) before io_.
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  FakeEngine engine_;
  std::unique_ptr<TcpServer> server_;
  std::unique_ptr<TcpServer> secure_;
  std::thread thread_;
  // The servers run on the engine's own io_context and thread (as the worker's on the core's),
  // started while it already runs.
  bool on_engine_io_ = false;
};

TEST_F(SessionTest, PingHeartbeatAndIdentify) {
  RawClient client(port());
  Guid id = client.send(Command::Ping);
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::Pong));
  EXPECT_EQ(reply->correlation_id, id);

  id = client.send(Command::HeartbeatRequest);
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::HeartbeatResponse));
  EXPECT_EQ(reply->correlation_id, id);

  pb::IdentifyClient identify;
  identify.set_version(1);
  identify.set_connection_name("test");
  id = client.send(Command::IdentifyClient, identify.SerializeAsString());
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::ClientIdentified));
  EXPECT_EQ(reply->correlation_id, id);
}

TEST_F(SessionTest, ArrivalOrderKeptAcrossAsynchronousAuthentication) {
  engine_.auth_delay = milliseconds(100);
  RawClient client(port());
  const Guid write_id = client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')),
                                    wire::Credentials{"admin", "changeit"});
  const Guid commit_id = client.send(Command::TransactionCommit, transaction_commit());
  auto first = client.receive();
  auto second = client.receive();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->correlation_id, write_id);
  EXPECT_EQ(second->correlation_id, commit_id);
  const std::vector<std::string> expected{"append:admin:s", "transaction_commit:"};
  EXPECT_EQ(engine_.calls(), expected);
}

TEST_F(SessionTest, ProvenCredentialsAreNotCheckedAgain) {
  RawClient client(port());
  for (int i = 0; i < 3; ++i) {
    client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')),
                wire::Credentials{"admin", "changeit"});
    auto reply = client.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->command, uint8_t(Command::WriteEventsCompleted));
  }
  EXPECT_EQ(engine_.authentications.load(), 1);
  // Other credentials are checked on their own (and wrong ones are never remembered).
  for (int i = 0; i < 2; ++i) {
    client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')),
                wire::Credentials{"admin", "wrong"});
    auto reply = client.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->command, uint8_t(Command::NotAuthenticated));
  }
  EXPECT_EQ(engine_.authentications.load(), 3);
}

// A disabled user (or a changed password) counts at once on a connection that proved the
// credentials before: both the per-package ones it remembers and its Authenticate default.
TEST_F(SessionTest, AUserChangeMakesProvenAndDefaultCredentialsCheckedAgain) {
  RawClient client(port());
  auto expect_reply = [&](Command command, std::optional<wire::Credentials> credentials) {
    client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')), credentials);
    auto reply = client.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->command, uint8_t(command));
  };
  client.send(Command::Authenticate, {}, wire::Credentials{"admin", "changeit"});
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::Authenticated));
  const wire::Credentials own{"admin", "changeit"};
  expect_reply(Command::WriteEventsCompleted, std::nullopt);
  expect_reply(Command::WriteEventsCompleted, own);
  const int checks = engine_.authentications.load();
  expect_reply(Command::WriteEventsCompleted, std::nullopt);
  expect_reply(Command::WriteEventsCompleted, own);
  EXPECT_EQ(engine_.authentications.load(), checks) << "no user changed: nothing checked again";

  engine_.disabled = true;
  engine_.generation += 1;
  expect_reply(Command::NotAuthenticated, std::nullopt);
  expect_reply(Command::NotAuthenticated, own);
  expect_reply(Command::NotAuthenticated, std::nullopt);

  engine_.disabled = false;
  engine_.generation += 1;
  expect_reply(Command::WriteEventsCompleted, own);
  expect_reply(Command::WriteEventsCompleted, std::nullopt);  // re-enabling restores the default
}

TEST_F(SessionTest, WrongCredentialsGetNotAuthenticatedAndConnectionGoesOn) {
  RawClient client(port());
  const Guid id = client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')),
                              wire::Credentials{"admin", "wrong"});
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::NotAuthenticated));
  EXPECT_EQ(reply->correlation_id, id);
  EXPECT_EQ(reply->payload, "Not Authenticated");
  client.send(Command::Ping);
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::Pong));
  EXPECT_TRUE(engine_.calls().empty());
}

TEST_F(SessionTest, AuthenticateSetsTheConnectionDefault) {
  RawClient client(port());
  Guid id = client.send(Command::Authenticate, {}, wire::Credentials{"admin", "changeit"});
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::Authenticated));
  EXPECT_EQ(reply->correlation_id, id);
  client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')));
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::WriteEventsCompleted));
  EXPECT_EQ(engine_.calls(), std::vector<std::string>{"append:admin:s"});
}

TEST_F(SessionTest, BadDefaultCredentialsRefuseLaterRequests) {
  RawClient client(port());
  client.send(Command::Authenticate, {}, wire::Credentials{"admin", "nope"});
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::NotAuthenticated));
  const Guid id = client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')));
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::NotAuthenticated));
  EXPECT_EQ(reply->correlation_id, id);
}

// Credentials the engine cannot check yet (AuthResult::not_ready) are answered NotHandled
// NotReady, which clients retry, never NotAuthenticated; for right and wrong passwords alike.
// Authenticate's credentials stay the connection's default, checked again by the next request
// that uses them, so the same connection works once the engine can check them.
TEST_F(SessionTest, CredentialsTheEngineCannotCheckYetGetNotHandledNotReady) {
  RawClient client(port());
  auto expect_not_ready = [&](const Guid& id) {
    auto reply = client.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->command, uint8_t(Command::NotHandled));
    EXPECT_EQ(reply->correlation_id, id);
    pb::NotHandled not_handled;
    ASSERT_TRUE(not_handled.ParseFromString(reply->payload));
    EXPECT_EQ(not_handled.reason(), pb::NotHandled::NotReady);
    EXPECT_FALSE(not_handled.has_additional_info());
  };
  engine_.not_ready = true;
  expect_not_ready(client.send(Command::Authenticate, {}, wire::Credentials{"admin", "changeit"}));
  for (const char* password : {"changeit", "wrong"}) {
    expect_not_ready(client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')),
                                 wire::Credentials{"admin", password}));
  }
  const int checks = engine_.authentications.load();
  expect_not_ready(client.send(Command::WriteEvents, write_events("s", std::string(16, 'a'))));
  EXPECT_EQ(engine_.authentications.load(), checks + 1) << "the unchecked default is checked";
  EXPECT_TRUE(engine_.calls().empty()) << "a request ran with credentials nobody checked";

  engine_.not_ready = false;
  client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')));
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::WriteEventsCompleted));
  EXPECT_EQ(engine_.calls(), std::vector<std::string>{"append:admin:s"});
  // Once checked, the default is not checked again, and a wrong password is refused as ever.
  const int after = engine_.authentications.load();
  client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')));
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::WriteEventsCompleted));
  EXPECT_EQ(engine_.authentications.load(), after);
  client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')),
              wire::Credentials{"admin", "wrong"});
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::NotAuthenticated));
}

// An Authenticate without credentials fails, also when the connection's default credentials were
// due for a check (a user changed): that check ran, and its verdict is no credentials of its own.
TEST_F(SessionTest, AnAuthenticateWithoutCredentialsFailsAfterAUserChange) {
  RawClient client(port());
  client.send(Command::Authenticate, {}, wire::Credentials{"admin", "changeit"});
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::Authenticated));
  engine_.generation += 1;
  const Guid id = client.send(Command::Authenticate);
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::NotAuthenticated));
  EXPECT_EQ(reply->correlation_id, id);
  client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')));
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::NotAuthenticated)) << "the failed default is kept";
}

TEST_F(SessionTest, UnknownCommandAndInvalidProtobufGetBadRequest) {
  RawClient client(port());
  Guid id = client.send(static_cast<Command>(0x5A));
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::BadRequest));
  EXPECT_EQ(reply->correlation_id, id);

  id = client.send(Command::WriteEvents, std::string("\xff\xff\xff", 3));
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::BadRequest));
  EXPECT_EQ(reply->correlation_id, id);
  EXPECT_EQ(reply->payload, "Could not unwrap network package for command WriteEvents.");

  client.send(Command::Ping);
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::Pong));
}

TEST_F(SessionTest, TrustedWriteGetsBadRequestAndClose) {
  RawClient client(port());
  const Guid id = client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')),
                              std::nullopt, 0x02);
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::BadRequest));
  EXPECT_EQ(reply->correlation_id, id);
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(SessionTest, OversizedFrameClosesTheConnection) {
  RawClient client(port());
  client.send_bytes(std::string("\x00\x00\x00\x80", 4));  // 2 GiB
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::BadRequest));
  EXPECT_EQ(reply->correlation_id, nil_guid());
  EXPECT_TRUE(client.closed_by_server());
  RawClient other(port());
  other.send(Command::Ping);
  EXPECT_TRUE(other.receive());
}

TEST_F(SessionTest, VolatileSubscriptionFlow) {
  RawClient client(port());
  pb::SubscribeToStream subscribe;
  subscribe.set_event_stream_id("orders");
  subscribe.set_resolve_link_tos(false);
  const Guid id = client.send(Command::SubscribeToStream, subscribe.SerializeAsString());
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->command, uint8_t(Command::SubscriptionConfirmation));
  EXPECT_EQ(reply->correlation_id, id);
  pb::SubscriptionConfirmation confirmation;
  ASSERT_TRUE(confirmation.ParseFromString(reply->payload));
  EXPECT_EQ(confirmation.last_event_number(), -1);

  EventRecord record;
  record.stream = "orders";
  record.position = {200, 200};
  engine_.push(ResolvedEvent{record, std::nullopt});
  reply = client.receive();
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->command, uint8_t(Command::StreamEventAppeared));
  pb::StreamEventAppeared appeared;
  ASSERT_TRUE(appeared.ParseFromString(reply->payload));
  EXPECT_EQ(appeared.event().commit_position(), 200);

  wire::Package unsubscribe;
  unsubscribe.command = uint8_t(Command::UnsubscribeFromStream);
  unsubscribe.correlation_id = id;
  client.send_bytes(wire::encode_package(unsubscribe));
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::SubscriptionDropped));
  EXPECT_EQ(reply->correlation_id, id);
}

TEST_F(SessionTest, ReadingPausesAtTheInFlightLimitAndResumes) {
  // The limit is checked between socket reads, so it may be passed by one read's worth of small
  // requests; far more than that stay unread until replies drain.
  engine_.hold_appends = true;
  RawClient client(port());
  const size_t sent = kRequestsInFlightMax * 2;
  std::string burst;
  for (size_t i = 0; i < sent; ++i) {
    burst += wire::encode_package(Command::WriteEvents, random_guid(),
                                  write_events("s", std::string(16, 'a')));
  }
  // Sent from another thread: the send blocks once the server stops reading.
  std::thread sender([&client, &burst] { client.send_bytes(burst); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  size_t submitted = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(200));  // until the count stops growing
    const size_t now = engine_.calls().size();
    if (now >= kRequestsInFlightMax && now == submitted) break;
    submitted = now;
  }
  EXPECT_GE(submitted, kRequestsInFlightMax);
  EXPECT_LT(submitted, sent);
  engine_.hold_appends = false;
  engine_.release_appends();
  size_t answered = 0;
  while (answered < sent) {
    std::optional<wire::Package> reply = client.receive(std::chrono::seconds(10));
    if (!reply) break;
    EXPECT_EQ(reply->command, uint8_t(Command::WriteEventsCompleted));
    ++answered;
    if (answered == submitted) engine_.release_appends();  // the ones submitted meanwhile
  }
  sender.join();
  EXPECT_EQ(answered, sent);
  EXPECT_EQ(engine_.calls().size(), sent);
}

TEST_F(SessionTest, SubscriberThatDoesNotReadIsDisconnected) {
  RawClient client(port());
  pb::SubscribeToStream subscribe;
  subscribe.set_event_stream_id("");
  subscribe.set_resolve_link_tos(false);
  ASSERT_TRUE(client.send(Command::SubscribeToStream, subscribe.SerializeAsString()) != Guid{});
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->command, uint8_t(Command::SubscriptionConfirmation));
  // The client stops reading; 200 pushes of 1 MiB exceed the bounded outgoing queue.
  EventRecord record;
  record.data = std::string(size_t{1024} * 1024, 'x');
  for (int i = 0; i < 200; ++i) engine_.push(ResolvedEvent{record, std::nullopt});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (server_->connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));  // polling a condition, with a deadline
  }
  EXPECT_EQ(server_->connections(), 0);
  EXPECT_TRUE(client.closed_by_server(std::chrono::seconds(20)));
  EXPECT_EQ(engine_.calls().back(), "forget");
}

// The fake engine's persistent subscriptions answer NotLeader, as a follower's do.
TEST_F(SessionTest, PersistentSubscriptionRefusalsBecomeNotHandledAndScavengeIsRefused) {
  RawClient client(port());
  client.send(Command::CreatePersistentSubscription, {});
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::NotHandled));
  client.send(Command::ConnectToPersistentSubscription, {});
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::NotHandled));
  client.send(Command::ScavengeDatabase, {});
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::ScavengeDatabaseCompleted));
}

// Each test starts its server with the limits it checks.
class LimitsTest : public SessionTest {
 protected:
  void SetUp() override {}
  void TearDown() override {
    if (server_) SessionTest::TearDown();
  }
  static TcpServerConfig quiet_config() {
    TcpServerConfig config;
    config.heartbeat_interval_ms = 60000;
    return config;
  }
  // Subscribes `client` to $all and awaits the confirmation.
  static void subscribe_to_all(RawClient& client) {
    pb::SubscribeToStream subscribe;
    subscribe.set_event_stream_id("");
    subscribe.set_resolve_link_tos(false);
    client.send(Command::SubscribeToStream, subscribe.SerializeAsString());
    std::optional<wire::Package> reply = client.receive();
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->command, uint8_t(Command::SubscriptionConfirmation));
  }
  // Polls `condition` until it holds or `timeout` passes.
  static void expect_pong(RawClient& client) {
    const Guid id = client.send(Command::Ping);
    std::optional<wire::Package> reply = client.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->command, uint8_t(Command::Pong));
    EXPECT_EQ(reply->correlation_id, id);
  }
};

// Hole 7: partially received frames of all connections share one budget. The frame that would
// pass it closes its own connection with a BadRequest; the frame already held completes.
TEST_F(LimitsTest, AFrameBeyondTheNodeBudgetClosesItsConnectionAndOthersGoOn) {
  constexpr size_t kKiB = 1024;
  auto limits = std::make_shared<ClientLimits>(kExtTcpConnectionsMaxDefault, 1024 * kKiB);
  FrameBudget* budget = &limits->partial_frames();
  TcpServerConfig config = quiet_config();
  config.limits = limits;
  start(config);
  const Guid held_id = random_guid();
  const std::string held =
      wire::encode_package(Command::Ping, held_id, std::string(700 * kKiB, 'p'));
  RawClient first(port());
  first.send_bytes(held.substr(0, 600 * kKiB));
  ASSERT_TRUE(test::eventually([&] { return budget->used_bytes() == 600 * kKiB; }));

  const Guid refused_id = random_guid();
  const std::string refused =
      wire::encode_package(Command::Ping, refused_id, std::string(700 * kKiB, 'q'));
  RawClient second(port());
  second.send_bytes(refused.substr(0, 500 * kKiB));
  std::optional<wire::Package> reply = second.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::BadRequest));
  EXPECT_EQ(reply->correlation_id, refused_id);
  EXPECT_NE(reply->payload.find("too many large frames"), std::string::npos) << reply->payload;
  EXPECT_TRUE(second.closed_by_server());
  EXPECT_EQ(budget->used_bytes(), 600 * kKiB) << "the refused frame's share is released";

  first.send_bytes(held.substr(600 * kKiB));
  reply = first.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::Pong));
  EXPECT_EQ(reply->correlation_id, held_id);
  EXPECT_TRUE(test::eventually([&] { return budget->used_bytes() == 0; }));
  RawClient third(port());
  expect_pong(third);
  expect_pong(first);
}

// Hole 7: connections beyond connections_max are closed at once; those already open are served,
// and a slot freed by a closed connection serves a new one.
TEST_F(LimitsTest, ConnectionsBeyondTheLimitAreClosedAndTheOthersServed) {
  TcpServerConfig config = quiet_config();
  config.limits = std::make_shared<ClientLimits>(2);
  start(config);
  auto first = std::make_unique<RawClient>(port());
  RawClient second(port());
  expect_pong(*first);
  expect_pong(second);
  RawClient third(port());
  EXPECT_TRUE(third.closed_by_server());
  expect_pong(second);
  first.reset();
  ASSERT_TRUE(test::eventually([&] { return server_->connections() == 1; }));
  RawClient fourth(port());
  expect_pong(fourth);
  expect_pong(second);
}

// A TLS server context with a self-signed certificate made by `openssl` at test time (the key is
// deleted with its folder at once); the sharing tests need a real secure port, not a verified one.
std::shared_ptr<boost::asio::ssl::context> self_signed_server_context() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("chorus-tcp-tls-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string key = (dir / "node.key").string();
  const std::string crt = (dir / "node.crt").string();
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + key +
      " -out " + crt + " -days 1 -subj /CN=127.0.0.1 >/dev/null 2>&1";
  const int made = std::system(command.c_str());
  auto context = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  if (made == 0) {
    context->use_certificate_chain_file(crt);
    context->use_private_key_file(key, boost::asio::ssl::context::pem);
  }
  fs::remove_all(dir);
  EXPECT_EQ(made, 0) << command;
  return context;
}

// A blocking TLS client of the secure port (no certificate check: only the limits matter here).
// Socket timeouts bound every call, so a server that stops answering fails the test, not hangs it.
class TlsClient {
 public:
  explicit TlsClient(uint16_t port) : stream_(io_, context_) {
    const boost::asio::ip::tcp::endpoint server(boost::asio::ip::make_address("127.0.0.1"), port);
    stream_.next_layer().connect(server);
    const timeval timeout{5, 0};
    const int fd = stream_.next_layer().native_handle();
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    boost::system::error_code error;
    stream_.handshake(boost::asio::ssl::stream_base::client, error);
    EXPECT_FALSE(error) << error.message();
  }
  void send_bytes(const std::string& bytes) {
    boost::system::error_code error;
    boost::asio::write(stream_, boost::asio::buffer(bytes), error);
    EXPECT_FALSE(error) << error.message();
  }
  // The next package (the socket timeouts bound the wait); nullopt on error or close.
  std::optional<wire::Package> receive() {
    while (true) {
      if (std::optional<std::string> frame = parser_.next_frame()) {
        return wire::parse_package(*frame).package;
      }
      char buffer[65536];
      boost::system::error_code error;
      const size_t n = stream_.read_some(boost::asio::buffer(buffer), error);
      if (error) return std::nullopt;
      parser_.feed(std::string_view(buffer, n));
    }
  }

 private:
  wire::FrameParser parser_;
  boost::asio::io_context io_;
  boost::asio::ssl::context context_{boost::asio::ssl::context::tls_client};
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
};

// The plain and the secure port of one node share its connection limit (ExtTcpConnectionsMax)
// and its partial-frame budget: a connection on either takes a slot and a share from both.
TEST_F(LimitsTest, ThePlainAndTheSecurePortShareTheConnectionLimitAndTheFrameBudget) {
  constexpr size_t kKiB = 1024;
  auto limits = std::make_shared<ClientLimits>(2, 1024 * kKiB);
  TcpServerConfig config = quiet_config();
  config.limits = limits;
  start(config, self_signed_server_context());
  const uint16_t secure_port = secure_->port();

  // A frame arriving on the secure port holds 600 KiB of the budget ...
  auto secure_client = std::make_unique<TlsClient>(secure_port);
  const std::string held =
      wire::encode_package(Command::Ping, random_guid(), std::string(700 * kKiB, 'p'));
  secure_client->send_bytes(held.substr(0, 600 * kKiB));
  ASSERT_TRUE(
      test::eventually([&] { return limits->partial_frames().used_bytes() == 600 * kKiB; }));
  // ... so one of 500 KiB on the plain port passes it and is refused.
  const Guid refused_id = random_guid();
  RawClient refused(port());
  refused.send_bytes(wire::encode_package(Command::Ping, refused_id, std::string(700 * kKiB, 'q'))
                         .substr(0, 500 * kKiB));
  std::optional<wire::Package> reply = refused.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::BadRequest));
  EXPECT_EQ(reply->correlation_id, refused_id);
  EXPECT_TRUE(refused.closed_by_server());
  ASSERT_TRUE(test::eventually([&] { return limits->connections() == 1; }));

  // One connection on each port: a third is refused on either port.
  RawClient plain(port());
  expect_pong(plain);
  EXPECT_EQ(limits->connections(), 2);
  RawClient beyond_secure(secure_port);
  EXPECT_TRUE(beyond_secure.closed_by_server(milliseconds(2000)))
      << "a slot would keep it open for the TLS handshake deadline";
  RawClient beyond_plain(port());
  EXPECT_TRUE(beyond_plain.closed_by_server());
  EXPECT_EQ(server_->connections() + secure_->connections(), 2);

  // Closing the secure connection frees its slot and its share for the plain port.
  secure_client.reset();
  ASSERT_TRUE(test::eventually([&] { return limits->connections() == 1; }));
  EXPECT_EQ(limits->partial_frames().used_bytes(), 0U);
  RawClient again(port());
  expect_pong(again);
  expect_pong(plain);
}

// Hole 7: a subscriber that stops reading is disconnected when a write does not complete within
// write_timeout_ms, although its queue stays far below kOutgoingQueueBytesMax; its subscription
// is forgotten, and a subscriber that reads gets every event.
TEST_F(LimitsTest, AClientThatStopsReadingIsClosedAtTheWriteDeadline) {
  TcpServerConfig config = quiet_config();
  config.write_timeout_ms = 1000;
  start(config);
  RawClient stalled(port());
  RawClient reader(port());
  for (RawClient* client : {&stalled, &reader}) ASSERT_NO_FATAL_FAILURE(subscribe_to_all(*client));
  // 32 MiB fill both sockets' kernel buffers (a few MiB on loopback) and stall the write.
  constexpr int kPushes = 32;
  static_assert(size_t{kPushes} * 1024 * 1024 * 2 < kOutgoingQueueBytesMax);
  EventRecord record;
  record.data = std::string(size_t{1024} * 1024, 'x');
  for (int i = 0; i < kPushes; ++i) engine_.push(ResolvedEvent{record, std::nullopt});
  for (int i = 0; i < kPushes; ++i) {
    std::optional<wire::Package> pushed = reader.receive(std::chrono::seconds(10));
    ASSERT_TRUE(pushed) << "push " << i;
    EXPECT_EQ(pushed->command, uint8_t(Command::StreamEventAppeared));
  }
  ASSERT_TRUE(test::eventually([&] { return server_->connections() == 1; }));
  const std::vector<std::string> calls = engine_.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "forget"), 1);
  EXPECT_TRUE(stalled.closed_by_server(std::chrono::seconds(10)));
  expect_pong(reader);
}

// Hole 7: bytes queued for sending on all connections share one node budget. The subscriber that
// stopped reading passes it and its share alone and is disconnected long before its write
// deadline or its own queue limit; a subscriber that reads gets every event; every share is given
// back.
TEST_F(LimitsTest, ASlowSubscriberAboveItsShareOfTheSpentSendBudgetIsClosed) {
  constexpr size_t kMiB = 1024 * 1024;
  // A share of 3 MiB each: the reader may hold two 1 MiB pushes at once. A write's bytes are given
  // back when its completion handler runs on the session's strand, and on a loaded machine that
  // handler can be queued after the reader already has the bytes and the test's next push was
  // queued. With a share of exactly two pushes (a 4 MiB budget) the headers put that reader
  // above it, and it was cut beside the stalled one (2 failures in 27 runs at load 15).
  auto limits = std::make_shared<ClientLimits>(kExtTcpConnectionsMaxDefault,
                                               kPartialFrameBytesBudget, 6 * kMiB);
  TcpServerConfig config = quiet_config();
  config.limits = limits;
  config.write_timeout_ms = 60000;  // so only the budget can close the stalled subscriber
  start(config);
  RawClient stalled(port());
  RawClient reader(port());
  for (RawClient* client : {&stalled, &reader}) ASSERT_NO_FATAL_FAILURE(subscribe_to_all(*client));
  // 32 MiB: more than the kernel buffers of the stalled socket hold (a few MiB on loopback).
  constexpr int kPushes = 32;
  static_assert(size_t{kPushes} * kMiB < kOutgoingQueueBytesMax);
  EventRecord record;
  record.data = std::string(kMiB, 'x');
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kPushes; ++i) {
    engine_.push(ResolvedEvent{record, std::nullopt});
    std::optional<wire::Package> pushed = reader.receive(std::chrono::seconds(10));
    ASSERT_TRUE(pushed) << "push " << i;
    EXPECT_EQ(pushed->command, uint8_t(Command::StreamEventAppeared));
  }
  EXPECT_TRUE(stalled.closed_by_server(std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30))
      << "closed by the budget, not by the 60 s write deadline";
  ASSERT_TRUE(test::eventually([&] { return limits->connections() == 1; }));
  const std::vector<std::string> calls = engine_.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "forget"), 1);
  EXPECT_TRUE(test::eventually([&] { return limits->queued_sends().used_bytes() == 0; }));
  expect_pong(reader);
}

// The send budget's policy: within the budget every growth is granted; once it is spent, a
// connection within its fair share (budget / open connections) still is, up to twice the budget
// in all, and one above its share is refused, its share unchanged. Shrinking always succeeds.
TEST(ClientLimitsTest, ASpentSendBudgetRefusesOnlyConnectionsAboveTheirShare) {
  constexpr size_t kMiB = 1024 * 1024;
  ClientLimits limits(10, kPartialFrameBytesBudget, 4 * kMiB);
  ASSERT_TRUE(limits.try_open());
  ASSERT_TRUE(limits.try_open());
  EXPECT_EQ(limits.send_share(), 2 * kMiB);
  size_t slow = 0;
  size_t reader = 0;
  EXPECT_TRUE(limits.charge_send_queue(slow, 3 * kMiB + kMiB / 2));  // within the budget
  EXPECT_TRUE(limits.charge_send_queue(reader, kMiB));  // budget spent, but within its share
  EXPECT_EQ(limits.queued_sends().used_bytes(), 4 * kMiB + kMiB / 2);
  EXPECT_FALSE(limits.charge_send_queue(slow, 4 * kMiB));  // spent, and above its share
  EXPECT_EQ(slow, 3 * kMiB + kMiB / 2);
  EXPECT_FALSE(limits.charge_send_queue(reader, 2 * kMiB + 1));
  EXPECT_EQ(reader, kMiB);
  EXPECT_TRUE(limits.charge_send_queue(slow, 0));  // the slow one is closed: all given back
  EXPECT_TRUE(limits.charge_send_queue(reader, 3 * kMiB));  // within the budget again
  // With one connection left its share is the whole budget, and the total never passes twice it.
  limits.release();
  size_t other = 0;
  EXPECT_TRUE(limits.charge_send_queue(other, 4 * kMiB));
  EXPECT_TRUE(limits.charge_send_queue(reader, 4 * kMiB));
  EXPECT_EQ(limits.queued_sends().used_bytes(), 8 * kMiB);
  EXPECT_FALSE(limits.charge_send_queue(reader, 4 * kMiB + 1));
  EXPECT_TRUE(limits.charge_send_queue(other, 0));
  EXPECT_TRUE(limits.charge_send_queue(reader, 0));
  EXPECT_EQ(limits.queued_sends().used_bytes(), 0U);
}

class HeartbeatTest : public SessionTest {
 protected:
  void SetUp() override {
    TcpServerConfig config;
    config.heartbeat_interval_ms = 100;
    // Long enough that a test thread on a loaded machine answers in time (a 100 ms timeout
    // failed once at load 8); the silent client is still closed well within its 3 s wait.
    config.heartbeat_timeout_ms = 1000;
    start(config);
  }
};

TEST_F(HeartbeatTest, SilentClientGetsHeartbeatRequestThenIsClosed) {
  RawClient client(port());
  auto request = client.receive(milliseconds(3000), /*keep_heartbeats=*/true);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->command, uint8_t(Command::HeartbeatRequest));
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(HeartbeatTest, AnsweringClientStaysConnected) {
  RawClient client(port());
  for (int i = 0; i < 5; ++i) {
    auto request = client.receive(milliseconds(3000), /*keep_heartbeats=*/true);
    ASSERT_TRUE(request);
    ASSERT_EQ(request->command, uint8_t(Command::HeartbeatRequest));
    client.send_bytes(
        wire::encode_package(Command::HeartbeatResponse, request->correlation_id, ""));
  }
  client.send(Command::Ping);
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::Pong));
}

// The worker's configuration: sessions on the engine's (core) thread, where the engine's answers
// also arrive. Credentials checked asynchronously, writes, reads, a subscription's pushes, the
// secure port and heartbeats all work there; nothing waits for another thread.
class EngineThreadSessionTest : public SessionTest {
 protected:
  void SetUp() override {
    on_engine_io_ = true;
    TcpServerConfig config;
    config.one_thread = true;  // as the worker: the engine's io_context has one thread
    config.heartbeat_interval_ms = heartbeat_ms_;
    config.heartbeat_timeout_ms = heartbeat_ms_;
    start(config, self_signed_server_context());
  }
  int heartbeat_ms_ = 60000;
};

TEST_F(EngineThreadSessionTest, RequestsRepliesAndPushesRunOnTheEngineThread) {
  engine_.auth_delay = milliseconds(20);
  RawClient client(port());
  const Guid write_id = client.send(Command::WriteEvents, write_events("s", std::string(16, 'a')),
                                    wire::Credentials{"admin", "changeit"});
  const Guid commit_id = client.send(Command::TransactionCommit, transaction_commit());
  auto first = client.receive();
  auto second = client.receive();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->command, uint8_t(Command::WriteEventsCompleted));
  EXPECT_EQ(first->correlation_id, write_id);
  EXPECT_EQ(second->correlation_id, commit_id);
  EXPECT_EQ(engine_.appends_on_engine_thread.load(), 1);

  pb::ReadStreamEvents read;
  read.set_event_stream_id("s");
  read.set_from_event_number(0);
  read.set_max_count(10);
  read.set_resolve_link_tos(false);
  read.set_require_master(false);
  const Guid read_id = client.send(Command::ReadStreamEventsForward, read.SerializeAsString());
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::ReadStreamEventsForwardCompleted));
  EXPECT_EQ(reply->correlation_id, read_id);

  pb::SubscribeToStream subscribe;
  subscribe.set_event_stream_id("s");
  subscribe.set_resolve_link_tos(false);
  client.send(Command::SubscribeToStream, subscribe.SerializeAsString());
  reply = client.receive();
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->command, uint8_t(Command::SubscriptionConfirmation));
  EventRecord record;
  record.stream = "s";
  record.position = {300, 300};
  engine_.push(ResolvedEvent{record, std::nullopt});
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::StreamEventAppeared));
}

TEST_F(EngineThreadSessionTest, TheSecurePortServesThere) {
  TlsClient client(secure_->port());
  wire::Package write;
  write.command = uint8_t(Command::WriteEvents);
  write.flags = 0;
  write.correlation_id = random_guid();
  write.credentials = wire::Credentials{"admin", "changeit"};
  write.payload = write_events("t", std::string(16, 'b'));
  const Guid id = write.correlation_id;
  client.send_bytes(wire::encode_package(write));
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->command, uint8_t(Command::WriteEventsCompleted));
  EXPECT_EQ(reply->correlation_id, id);
  EXPECT_EQ(engine_.appends_on_engine_thread.load(), 1);
}

// Large writes are decoded on the decode executor, not on the session's (engine) thread: while
// that executor is held, the session's thread still answers other clients, the write waits in
// its place (a request behind it waits too) and stays charged to the partial-frame budget; once
// the executor runs, both are answered in order. An undecodable large write gets its BadRequest
// and the connection goes on.
class DecodeElsewhereTest : public SessionTest {
 protected:
  void SetUp() override {
    on_engine_io_ = true;
    TcpServerConfig config;
    config.one_thread = true;
    config.heartbeat_interval_ms = 60000;
    config.limits = limits_;
    config.decode_executor = decode_io_.get_executor();
    start(config);
  }
  void TearDown() override {
    SessionTest::TearDown();
    decode_work_.reset();
    decode_io_.stop();
    if (decode_thread_.joinable()) decode_thread_.join();
  }
  void run_decoder() {
    decode_thread_ = std::thread([this] { decode_io_.run(); });
  }
  static std::string large_write(const std::string& stream, size_t data_bytes) {
    pb::WriteEvents w;
    w.set_event_stream_id(stream);
    w.set_expected_version(-2);
    w.set_require_master(false);
    pb::NewEvent* e = w.add_events();
    e->set_event_id(std::string(16, 'c'));
    e->set_event_type("big");
    e->set_data_content_type(0);
    e->set_metadata_content_type(0);
    e->set_data(std::string(data_bytes, 'd'));
    return w.SerializeAsString();
  }

  std::shared_ptr<ClientLimits> limits_ = std::make_shared<ClientLimits>();
  boost::asio::io_context decode_io_;  // not run until run_decoder()
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> decode_work_{
      decode_io_.get_executor()};
  std::thread decode_thread_;
};

TEST_F(DecodeElsewhereTest, ALargeWriteIsDecodedElsewhereAndKeepsItsPlace) {
  const size_t data_bytes = 2 * kDecodeElsewhereFrameBytesMin;
  const std::string payload = large_write("big", data_bytes);
  RawClient writer(port());
  const Guid write_id = writer.send(Command::WriteEvents, payload);
  const Guid commit_id = writer.send(Command::TransactionCommit, transaction_commit());
  const size_t frame_bytes = wire::kPackageHeaderBytes + payload.size();
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(10000);
  while (limits_->partial_frames().used_bytes() != frame_bytes &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(limits_->partial_frames().used_bytes(), frame_bytes) << "held while decoding";

  RawClient other(port());
  const Guid ping_id = other.send(Command::Ping);
  std::optional<wire::Package> pong = other.receive();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->correlation_id, ping_id);
  EXPECT_TRUE(engine_.calls().empty()) << "nothing submitted before the write is decoded";

  run_decoder();
  std::optional<wire::Package> first = writer.receive();
  std::optional<wire::Package> second = writer.receive();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->command, uint8_t(Command::WriteEventsCompleted));
  EXPECT_EQ(first->correlation_id, write_id);
  EXPECT_EQ(second->command, uint8_t(Command::TransactionCommitCompleted));
  EXPECT_EQ(second->correlation_id, commit_id);
  EXPECT_EQ(engine_.calls(), (std::vector<std::string>{"append::big", "transaction_commit:"}));
  EXPECT_EQ(engine_.appended_data_bytes.load(), data_bytes);
  EXPECT_EQ(engine_.appends_on_engine_thread.load(), 1);
  EXPECT_EQ(limits_->partial_frames().used_bytes(), 0u);

  const Guid bad_id =
      writer.send(Command::WriteEvents, std::string(kDecodeElsewhereFrameBytesMin, '\xff'));
  std::optional<wire::Package> bad = writer.receive();
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->command, uint8_t(Command::BadRequest));
  EXPECT_EQ(bad->correlation_id, bad_id);
  EXPECT_EQ(bad->payload, "Could not unwrap network package for command WriteEvents.");
  const Guid after_id = writer.send(Command::Ping);
  std::optional<wire::Package> after = writer.receive();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->correlation_id, after_id);
  EXPECT_EQ(limits_->partial_frames().used_bytes(), 0u);
}

class EngineThreadHeartbeatTest : public EngineThreadSessionTest {
 protected:
  void SetUp() override {
    heartbeat_ms_ = 100;
    EngineThreadSessionTest::SetUp();
  }
};

TEST_F(EngineThreadHeartbeatTest, SilentClientGetsHeartbeatRequestThenIsClosed) {
  RawClient client(port());
  auto request = client.receive(milliseconds(3000), /*keep_heartbeats=*/true);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->command, uint8_t(Command::HeartbeatRequest));
  EXPECT_TRUE(client.closed_by_server());
}

}  // namespace
}  // namespace chorus::tcp
