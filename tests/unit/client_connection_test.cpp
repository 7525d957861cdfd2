// Goal: the client library over real loopback sockets against scripted nodes (a test server that
// speaks the framing and answers as a node would): the handshake order (Authenticate with
// credentials, then IdentifyClient), heartbeat answers, NotHandled(NotLeader) reconnecting to the
// named leader and resending the same body with a new correlation id, NotReady retries, resends
// after a dropped connection, the retry and reconnection limits, refused credentials, and
// discovery through a gossip seed that picks the leader and never the manager.
#include <chorus/client.hpp>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "client/transport.hpp"
#include "common/framing.hpp"
#include "common/gossip.hpp"
#include "common/guid.hpp"
#include "messages.pb.h"

namespace chorus::client {
namespace {

namespace msg = EventStore::Client::Messages;
using wire::Command;
using wire::Package;

// How long a test waits for something the client must do.
constexpr auto kWait = std::chrono::seconds(10);

// A node that accepts connections on 127.0.0.1:0, answers the handshake (unless told otherwise)
// and hands every other package to `on_request`, which returns the reply frames to send (or
// closes the connection by returning {"close"}). Its io thread runs until destruction.
class ScriptedNode {
 public:
  using Reply = std::vector<std::string>;
  std::function<Reply(const Package&)> on_request;
  std::function<Reply(const Package&)> on_authenticate;

  ScriptedNode() : acceptor_(io_, Tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ScriptedNode() {
    asio::post(io_, [this] {
      acceptor_.close();
      for (auto& s : sockets_) s->close();
    });
    io_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  Endpoint endpoint() const { return Endpoint{"127.0.0.1", port()}; }

  // Every package received, in order (handshake included).
  std::vector<Package> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::vector<Package> received(Command command) {
    std::vector<Package> out;
    for (auto& p : received()) {
      if (p.command == static_cast<uint8_t>(command)) out.push_back(p);
    }
    return out;
  }
  int connections() {
    std::lock_guard lock(mutex_);
    return connections_;
  }
  // Sends a frame to the most recent connection.
  void push(std::string frame) {
    asio::post(io_, [this, frame = std::move(frame)] {
      if (!sockets_.empty()) asio::write(*sockets_.back(), asio::buffer(frame));
    });
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, Tcp::socket socket) {
      if (ec) return;
      {
        std::lock_guard lock(mutex_);
        ++connections_;
      }
      auto s = std::make_shared<Tcp::socket>(std::move(socket));
      sockets_.push_back(s);
      read(s, std::make_shared<wire::FrameParser>(), std::make_shared<std::vector<char>>(65536));
      accept();
    });
  }
  void read(std::shared_ptr<Tcp::socket> s, std::shared_ptr<wire::FrameParser> parser,
            std::shared_ptr<std::vector<char>> buffer) {
    s->async_read_some(asio::buffer(*buffer), [this, s, parser, buffer](const auto& ec, size_t n) {
      if (ec) return;
      parser->feed(std::string_view(buffer->data(), n));
      while (auto frame = parser->next_frame()) {
        auto parsed = wire::parse_package(*frame);
        if (!parsed.package) return s->close();
        if (!answer(*s, *parsed.package)) return s->close();
      }
      read(s, parser, buffer);
    });
  }
  // False when the connection must be closed.
  bool answer(Tcp::socket& s, const Package& p) {
    {
      std::lock_guard lock(mutex_);
      received_.push_back(p);
    }
    Reply reply;
    const auto command = static_cast<Command>(p.command);
    if (command == Command::Authenticate) {
      reply = on_authenticate
                  ? on_authenticate(p)
                  : Reply{wire::encode_package(Command::Authenticated, p.correlation_id, "")};
    } else if (command == Command::IdentifyClient) {
      reply = {wire::encode_package(Command::ClientIdentified, p.correlation_id, "")};
    } else if (command == Command::HeartbeatResponse) {
      return true;
    } else if (on_request) {
      reply = on_request(p);
    }
    for (const std::string& frame : reply) {
      if (frame == "close") return false;
      boost::system::error_code ignored;
      asio::write(s, asio::buffer(frame), ignored);
    }
    return true;
  }

  asio::io_context io_;
  Tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<Tcp::socket>> sockets_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Package> received_;
  int connections_ = 0;
};

std::string write_success(const Package& p, int64_t last = 0) {
  msg::WriteEventsCompleted c;
  c.set_result(msg::Success);
  c.set_first_event_number(last);
  c.set_last_event_number(last);
  c.set_prepare_position(10);
  c.set_commit_position(10);
  return wire::encode_package(Command::WriteEventsCompleted, p.correlation_id,
                              c.SerializeAsString());
}

std::string not_handled(const Package& p, msg::NotHandled::NotHandledReason reason,
                        const Endpoint* leader = nullptr) {
  msg::NotHandled nh;
  nh.set_reason(reason);
  if (leader) {
    msg::NotHandled::MasterInfo info;
    info.set_external_tcp_address(leader->host);
    info.set_external_tcp_port(leader->port);
    info.set_external_http_address(leader->host);
    info.set_external_http_port(1);
    nh.set_additional_info(info.SerializeAsString());
  }
  return wire::encode_package(Command::NotHandled, p.correlation_id, nh.SerializeAsString());
}

Settings fast_settings(const Endpoint& endpoint) {
  Settings s;
  s.tcp_endpoint = endpoint;
  s.operation_timeout_check_period_ms = 50;
  s.reconnection_delay_ms = 20;
  return s;
}

Result<WriteResult> append_one(Client& client, const std::string& stream = "s") {
  return wait<WriteResult>([&](auto done) {
    client.append(stream, kExpectedVersionAny, {EventData{new_event_id(), "t", true, "{}", ""}},
                  std::move(done));
  });
}

TEST(ClientConnection, AuthenticatesThenIdentifiesThenWrites) {
  ScriptedNode node;
  node.on_request = [](const Package& p) { return ScriptedNode::Reply{write_success(p, 3)}; };
  Settings s = fast_settings(node.endpoint());
  s.credentials = Credentials{"admin", "changeit"};
  Client client(s);
  Result<WriteResult> r = append_one(client);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().next_expected_version, 3);
  const std::vector<Package> got = node.received();
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(got[0].command, static_cast<uint8_t>(Command::Authenticate));
  ASSERT_TRUE(got[0].credentials);
  EXPECT_EQ(got[0].credentials->login, "admin");
  EXPECT_EQ(got[1].command, static_cast<uint8_t>(Command::IdentifyClient));
  msg::IdentifyClient identify;
  ASSERT_TRUE(identify.ParseFromString(got[1].payload));
  EXPECT_EQ(identify.version(), 1);
  EXPECT_EQ(got[2].command, static_cast<uint8_t>(Command::WriteEvents));
}

TEST(ClientConnection, RefusedCredentialsFailWithoutRetrying) {
  ScriptedNode node;
  node.on_authenticate = [](const Package& p) {
    return ScriptedNode::Reply{
        wire::encode_package(Command::NotAuthenticated, p.correlation_id, "Not Authenticated")};
  };
  Settings s = fast_settings(node.endpoint());
  s.credentials = Credentials{"admin", "wrong"};
  Client client(s);
  Result<WriteResult> r = append_one(client);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::NotAuthenticated);
  EXPECT_EQ(node.connections(), 1);
  EXPECT_TRUE(node.received(Command::WriteEvents).empty());
}

TEST(ClientConnection, AnswersHeartbeats) {
  ScriptedNode node;
  node.on_request = [](const Package& p) { return ScriptedNode::Reply{write_success(p)}; };
  Client client(fast_settings(node.endpoint()));
  ASSERT_TRUE(append_one(client).ok());
  const Guid id = random_guid();
  node.push(wire::encode_package(Command::HeartbeatRequest, id, ""));
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  bool answered = false;
  while (!answered && std::chrono::steady_clock::now() < deadline) {
    for (const Package& p : node.received()) {
      answered = answered || (p.command == static_cast<uint8_t>(Command::HeartbeatResponse) &&
                              p.correlation_id == id);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(answered);
}

TEST(ClientConnection, NotLeaderReconnectsToTheLeaderWithTheSameBody) {
  ScriptedNode leader;
  leader.on_request = [](const Package& p) { return ScriptedNode::Reply{write_success(p, 7)}; };
  ScriptedNode follower;
  const Endpoint leader_endpoint = leader.endpoint();
  follower.on_request = [&](const Package& p) {
    return ScriptedNode::Reply{not_handled(p, msg::NotHandled::NotMaster, &leader_endpoint)};
  };
  Client client(fast_settings(follower.endpoint()));
  Result<WriteResult> r = append_one(client);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().next_expected_version, 7);
  const auto at_follower = follower.received(Command::WriteEvents);
  const auto at_leader = leader.received(Command::WriteEvents);
  ASSERT_EQ(at_follower.size(), 1u);
  ASSERT_EQ(at_leader.size(), 1u);
  EXPECT_EQ(at_leader[0].payload, at_follower[0].payload) << "same event ids and version";
  EXPECT_NE(at_leader[0].correlation_id, at_follower[0].correlation_id);
}

TEST(ClientConnection, NotReadyIsRetriedThenSucceeds) {
  ScriptedNode node;
  int calls = 0;
  node.on_request = [&](const Package& p) {
    return ++calls < 3 ? ScriptedNode::Reply{not_handled(p, msg::NotHandled::NotReady)}
                       : ScriptedNode::Reply{write_success(p)};
  };
  Client client(fast_settings(node.endpoint()));
  ASSERT_TRUE(append_one(client).ok());
  const auto writes = node.received(Command::WriteEvents);
  ASSERT_EQ(writes.size(), 3u);
  EXPECT_EQ(writes[0].payload, writes[2].payload);
}

TEST(ClientConnection, RetryLimitEndsTheOperation) {
  ScriptedNode node;
  node.on_request = [](const Package& p) {
    return ScriptedNode::Reply{not_handled(p, msg::NotHandled::TooBusy)};
  };
  Settings s = fast_settings(node.endpoint());
  s.max_retries = 2;
  Client client(s);
  Result<WriteResult> r = append_one(client);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::RetryLimitReached);
  EXPECT_EQ(node.received(Command::WriteEvents).size(), 3u) << "the first send and 2 retries";
}

TEST(ClientConnection, ADroppedConnectionResendsOnTheNextOne) {
  ScriptedNode node;
  int calls = 0;
  node.on_request = [&](const Package& p) {
    return ++calls == 1 ? ScriptedNode::Reply{"close"} : ScriptedNode::Reply{write_success(p)};
  };
  Client client(fast_settings(node.endpoint()));
  ASSERT_TRUE(append_one(client).ok());
  EXPECT_EQ(node.connections(), 2);
  const auto writes = node.received(Command::WriteEvents);
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].payload, writes[1].payload);
}

TEST(ClientConnection, ReconnectionLimitClosesTheClient) {
  uint16_t closed_port = 0;
  {
    ScriptedNode gone;
    closed_port = gone.port();
  }
  Settings s = fast_settings(Endpoint{"127.0.0.1", closed_port});
  s.max_reconnections = 2;
  Client client(s);
  Result<WriteResult> r = append_one(client);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::ConnectionClosed);
  EXPECT_NE(r.error().message.find("Reconnection limit"), std::string::npos) << r.error().message;
  // Later operations fail at once: the client is closed.
  EXPECT_EQ(append_one(client).error().kind, ErrorKind::ConnectionClosed);
}

// Serves one fixed gossip document.
class GossipSeed {
 public:
  explicit GossipSeed(std::string document)
      : socket_(Poco::Net::SocketAddress("127.0.0.1", 0)),
        server_(new Factory(std::move(document)), socket_, new Poco::Net::HTTPServerParams) {
    server_.start();
  }
  ~GossipSeed() { server_.stopAll(true); }
  Endpoint endpoint() const { return Endpoint{"127.0.0.1", socket_.address().port()}; }

 private:
  struct Handler : Poco::Net::HTTPRequestHandler {
    explicit Handler(const std::string& d) : document(d) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override {
      if (request.getURI().rfind("/gossip", 0) != 0) {
        response.setStatus(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
        response.send();
        return;
      }
      response.setContentType("application/json");
      response.send() << document;
    }
    std::string document;
  };
  struct Factory : Poco::Net::HTTPRequestHandlerFactory {
    explicit Factory(std::string d) : document(std::move(d)) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(document);
    }
    std::string document;
  };
  Poco::Net::ServerSocket socket_;
  Poco::Net::HTTPServer server_;
};

MemberInfo member(const std::string& state, const Endpoint& tcp) {
  MemberInfo m;
  m.state = state;
  m.external_tcp_ip = tcp.host;
  m.external_tcp_port = tcp.port;
  m.external_http_ip = "127.0.0.1";
  m.external_http_port = 1;
  return m;
}

TEST(ClientConnection, DiscoveryThroughASeedPicksTheLeader) {
  ScriptedNode leader;
  ScriptedNode follower;
  leader.on_request = [](const Package& p) { return ScriptedNode::Reply{write_success(p)}; };
  follower.on_request = leader.on_request;
  ClusterInfo info;
  info.members = {member("Manager", follower.endpoint()), member("Follower", follower.endpoint()),
                  member("Leader", leader.endpoint())};
  GossipSeed seed(to_json(info));
  Settings s;
  s.gossip_seeds = {seed.endpoint()};
  Client client(s);
  Result<Endpoint> connected = wait<Endpoint>([&](auto done) { client.connect(std::move(done)); });
  ASSERT_TRUE(connected.ok()) << connected.error().message;
  EXPECT_EQ(connected.value(), leader.endpoint());
  ASSERT_TRUE(append_one(client).ok());
  EXPECT_EQ(follower.connections(), 0);
}

TEST(ClientConnection, DiscoveryWithoutAnAliveNodeFails) {
  ClusterInfo info;
  MemberInfo dead = member("Leader", Endpoint{"127.0.0.1", 1});
  dead.is_alive = false;
  info.members = {dead, member("Manager", Endpoint{"127.0.0.1", 2})};
  GossipSeed seed(to_json(info));
  Settings s;
  s.gossip_seeds = {seed.endpoint()};
  s.max_discover_attempts = 2;
  s.discover_delay_ms = 10;
  Client client(s);
  Result<WriteResult> r = append_one(client);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::ConnectionClosed);
  EXPECT_NE(r.error().message.find("no alive node"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace chorus::client
