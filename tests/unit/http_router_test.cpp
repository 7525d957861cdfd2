// Goal: the HTTP router picks routes by method and pattern in registration order, captures
// decoded segments, answers 405 (with the allowed methods) for a known path with a wrong
// method, and 404 otherwise.
#include "worker/http/router.hpp"

#include <gtest/gtest.h>

namespace chorus::http {
namespace {

Handler named(std::string name) {
  return [name](Request&) {
    Reply reply;
    reply.body = name;
    return reply;
  };
}

std::string run(const RouteMatch& match) {
  Request request;
  return match.route->handler(request).body;
}

TEST(HttpRouter, MatchesInOrderAndCaptures) {
  Router router;
  router.add("GET", "/streams/{stream}/metadata", named("meta"));
  router.add("GET", "/streams/{stream}/{event}", named("event"));
  router.add("POST", "/streams/{stream}", named("post"));
  RouteMatch m = router.match("GET", "/streams/a%2Fb/metadata");
  ASSERT_EQ(m.kind, RouteMatch::Kind::Found);
  EXPECT_EQ(run(m), "meta");
  EXPECT_EQ(m.params.at("stream"), "a/b");
  m = router.match("GET", "/streams/%24all/12");
  ASSERT_EQ(m.kind, RouteMatch::Kind::Found);
  EXPECT_EQ(run(m), "event");
  EXPECT_EQ(m.params.at("stream"), "$all");
  EXPECT_EQ(m.params.at("event"), "12");
  m = router.match("POST", "/streams/s/");
  ASSERT_EQ(m.kind, RouteMatch::Kind::Found);
  EXPECT_EQ(run(m), "post");
}

TEST(HttpRouter, WrongMethodIs405WithAllowedMethods) {
  Router router;
  router.add("GET", "/streams/{stream}", named("get"));
  router.add("DELETE", "/streams/{stream}", named("delete"));
  const RouteMatch m = router.match("PUT", "/streams/s");
  EXPECT_EQ(m.kind, RouteMatch::Kind::MethodNotAllowed);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "DELETE"}));
  EXPECT_EQ(router.methods_for("/streams/x"), (std::vector<std::string>{"GET", "DELETE"}));
}

TEST(HttpRouter, UnknownPathsAndBadEscapesAre404) {
  Router router;
  router.add("GET", "/ping", named("ping"));
  EXPECT_EQ(router.match("GET", "/pong").kind, RouteMatch::Kind::NotFound);
  EXPECT_EQ(router.match("GET", "/ping/extra").kind, RouteMatch::Kind::NotFound);
  EXPECT_EQ(router.match("GET", "/p%zzing").kind, RouteMatch::Kind::NotFound);
  EXPECT_EQ(router.match("GET", "/p%2").kind, RouteMatch::Kind::NotFound);
  std::vector<std::string> segments;
  EXPECT_FALSE(split_path("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r", segments));
}

}  // namespace
}  // namespace chorus::http
