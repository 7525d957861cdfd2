// Goal: prove that the Machines document lists this manager first and a peer that does not
// answer as unreachable with the reason (real loopback sockets), refuses a peer answer that is
// not a nodes document, and is built at most once per kMachinesRefreshMs however often it is
// asked.
#include "manager/machines.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/ServerSocket.h>
#include <gtest/gtest.h>

#include <string>

namespace chorus::manager {
namespace {

Poco::JSON::Object::Ptr parse(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

// A loopback port where nothing listens (bound, then closed).
uint16_t closed_port() {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  const uint16_t port = socket.address().port();
  socket.close();
  return port;
}

TEST(Machines, ThisManagerFirstThenUnreachablePeersWithTheReason) {
  const std::string own = R"({"manager":{"name":"a"},"nodes":[{"name":"n1"}]})";
  const uint16_t port = closed_port();
  const auto doc = parse(machines_json("127.0.0.1:30777", own, {{"127.0.0.1", port}}, nullptr));
  const auto list = doc->getArray("machines");
  ASSERT_EQ(list->size(), 2u);
  const auto self = list->getObject(0);
  EXPECT_TRUE(self->getValue<bool>("self"));
  EXPECT_TRUE(self->getValue<bool>("reachable"));
  EXPECT_EQ(self->getObject("manager")->getValue<std::string>("name"), "a");
  const auto peer = list->getObject(1);
  EXPECT_FALSE(peer->getValue<bool>("self"));
  EXPECT_FALSE(peer->getValue<bool>("reachable"));
  EXPECT_EQ(peer->getValue<std::string>("address"), "127.0.0.1:" + std::to_string(port));
  EXPECT_FALSE(peer->getValue<std::string>("error").empty());
  EXPECT_FALSE(peer->has("nodes"));
}

TEST(Machines, AnAnswerThatIsNotANodesDocumentIsNotShown) {
  const auto doc = parse(machines_json("127.0.0.1:30777", R"({"nodes":"x"})", {}, nullptr));
  const auto self = doc->getArray("machines")->getObject(0);
  EXPECT_FALSE(self->getValue<bool>("reachable"));
  EXPECT_NE(self->getValue<std::string>("error").find("not a manager"), std::string::npos);
}

TEST(MachinesCache, BuildsAtMostOncePerRefreshInterval) {
  MachinesCache cache;
  int builds = 0;
  auto build = [&] { return "doc" + std::to_string(++builds); };
  EXPECT_EQ(cache.get(1000, build), "doc1");
  EXPECT_EQ(cache.get(1000 + kMachinesRefreshMs - 1, build), "doc1");
  EXPECT_EQ(cache.get(1000 + kMachinesRefreshMs, build), "doc2");
  EXPECT_EQ(builds, 2);
}

}  // namespace
}  // namespace chorus::manager
