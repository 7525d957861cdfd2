// Goal: the streams API maps request bodies and engine results as EventStore does: events+json
// arrays (objects stored as JSON, other strings raw), a single JSON event needs ES-EventType and
// gets a 307 to incoming/{guid} without ES-EventId, malformed JSON is a 400 with the reason,
// write results give 201 + Location / 400 + ES-CurrentVersion / 410 / 401 with the challenge,
// and NotHandled gives 503 or a 307 to the leader; a login the node cannot check yet gets 503
// "Server Is Not Ready" with Retry-After, a wrong one 401.
#include "worker/http/streams_api.hpp"

#include <gtest/gtest.h>

namespace chorus::http {
namespace {

Request body_request(const std::string& content_type, const std::string& body) {
  Request request;
  request.method = "POST";
  request.path = "/streams/s";
  request.base_url = "http://h:1";
  request.headers["content-type"] = content_type;
  request.body = body;
  return request;
}

TEST(HttpStreams, EventArray) {
  const Request request = body_request(
      "application/vnd.eventstore.events+json; charset=utf-8",
      R"([{"eventId":"11111111-2222-3333-4444-555555555555","eventType":"A","data":{"x":1},)"
      R"("metadata":"plain"},{"eventId":"11111111-2222-3333-4444-555555555556","eventType":"B",)"
      R"("data":"{\"y\":2}"}])");
  const ParsedWrite parsed = parse_write_body(request, "s", "");
  ASSERT_FALSE(parsed.refusal) << parsed.refusal->body;
  ASSERT_EQ(parsed.events.size(), 2u);
  EXPECT_EQ(parsed.events[0].event_type, "A");
  EXPECT_EQ(parsed.events[0].data, R"({"x":1})");
  EXPECT_TRUE(parsed.events[0].data_is_json);
  EXPECT_EQ(parsed.events[0].metadata, "plain");
  EXPECT_FALSE(parsed.events[0].metadata_is_json);
  EXPECT_EQ(parsed.events[1].data, R"({"y":2})");
  EXPECT_TRUE(parsed.events[1].data_is_json);
}

TEST(HttpStreams, BodyErrors) {
  const std::string type = "application/vnd.eventstore.events+json";
  ParsedWrite parsed = parse_write_body(body_request(type, "[{"), "s", "");
  ASSERT_TRUE(parsed.refusal);
  EXPECT_EQ(parsed.refusal->status, 400);
  EXPECT_NE(parsed.refusal->body.find("Malformed JSON"), std::string::npos);
  parsed = parse_write_body(body_request(type, R"([{"eventType":"A"}])"), "s", "");
  ASSERT_TRUE(parsed.refusal);
  EXPECT_EQ(parsed.refusal->status, 400);
  parsed = parse_write_body(body_request(type, R"({"not":"array"})"), "s", "");
  ASSERT_TRUE(parsed.refusal);
  EXPECT_EQ(parsed.refusal->status, 400);
}

TEST(HttpStreams, SingleJsonEvent) {
  Request request = body_request("application/json", R"({"a":1})");
  ParsedWrite parsed = parse_write_body(request, "s", "");
  ASSERT_TRUE(parsed.refusal);
  EXPECT_EQ(parsed.refusal->status, 400);  // no ES-EventType
  request.headers["ES-EventType"] = "T";
  parsed = parse_write_body(request, "s", "");
  ASSERT_TRUE(parsed.refusal);
  EXPECT_EQ(parsed.refusal->status, 307);
  EXPECT_EQ(parsed.refusal->headers.at("Location").rfind("http://h:1/streams/s/incoming/", 0), 0u);
  request.headers["ES-EventId"] = "not-a-guid";
  parsed = parse_write_body(request, "s", "");
  ASSERT_TRUE(parsed.refusal);
  EXPECT_EQ(parsed.refusal->body, "ES-EventId header in wrong format.");
  request.headers["ES-EventId"] = "11111111-2222-3333-4444-555555555555";
  parsed = parse_write_body(request, "s", "");
  ASSERT_FALSE(parsed.refusal);
  EXPECT_TRUE(parsed.events.at(0).data_is_json);
  EXPECT_EQ(parsed.events.at(0).data, R"({"a":1})");
}

TEST(HttpStreams, WriteResults) {
  WriteResult ok;
  ok.first_event_number = 3;
  Reply reply = write_reply(ok, "http://h:1/streams/s");
  EXPECT_EQ(reply.status, 201);
  EXPECT_EQ(reply.headers.at("Location"), "http://h:1/streams/s/3");
  WriteResult wrong;
  wrong.result = OperationResult::WrongExpectedVersion;
  wrong.current_version = 7;
  reply = write_reply(wrong, "");
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.reason, "Wrong expected EventNumber");
  EXPECT_EQ(reply.headers.at("ES-CurrentVersion"), "7");
  WriteResult deleted;
  deleted.result = OperationResult::StreamDeleted;
  EXPECT_EQ(write_reply(deleted, "").status, 410);
  WriteResult denied;
  denied.result = OperationResult::AccessDenied;
  reply = write_reply(denied, "");
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(reply.headers.at("WWW-Authenticate"), "BasicCustom realm=\"ES\"");
  WriteResult timeout;
  timeout.result = OperationResult::CommitTimeout;
  EXPECT_EQ(write_reply(timeout, "").reason, "Write timeout");
}

TEST(HttpStreams, NotHandled) {
  Request request = body_request("application/json", "{}");
  request.raw_query = "a=1";
  EXPECT_EQ(not_handled_reply(NotHandledReason::NotReady, request, nullptr).status, 503);
  EXPECT_EQ(not_handled_reply(NotHandledReason::NotLeader, request, nullptr).status, 503);
  // With ES-RequireMaster the client is sent to the leader; without, the write is passed on to
  // it (here the leader cannot be reached, so the client is told to retry).
  request.headers["ES-RequireMaster"] = "true";
  const Reply redirect = not_handled_reply(NotHandledReason::NotLeader, request, [] {
    return std::optional<LeaderHttp>(LeaderHttp{"l:2113", "l:2112", nullptr});
  });
  EXPECT_EQ(redirect.status, 307);
  EXPECT_EQ(redirect.headers.at("Location"), "http://l:2113/streams/s?a=1");
  // A cluster with TLS sends the client to the leader's HTTPS port.
  const Poco::Net::Context::Ptr tls =
      new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, Poco::Net::Context::Params());
  const Reply secure = not_handled_reply(NotHandledReason::NotLeader, request, [tls] {
    return std::optional<LeaderHttp>(LeaderHttp{"l:2113", "l:2112", tls});
  });
  EXPECT_EQ(secure.headers.at("Location"), "https://l:2113/streams/s?a=1");
  request.headers.erase("ES-RequireMaster");
  EXPECT_EQ(
      not_handled_reply(
          NotHandledReason::NotLeader, request,
          [] {
            return std::optional<LeaderHttp>(LeaderHttp{"127.0.0.1:1", "127.0.0.1:1", nullptr});
          })
          .status,
      503);
}

// A login this node cannot check yet (a held built-in login past its deadline) is told to come
// back, never that its password is wrong; the answer is the same whatever the password.
TEST(HttpStreams, LoginRefusals) {
  EXPECT_FALSE(login_refusal(AuthResult{Principal{"admin", {"$admins"}}}));
  const std::optional<Reply> wrong = login_refusal(AuthResult{});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(wrong->headers.at("WWW-Authenticate"), "BasicCustom realm=\"ES\"");
  const std::optional<Reply> not_ready = login_refusal(AuthResult::unavailable());
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->reason, "Server Is Not Ready");
  EXPECT_EQ(not_ready->headers.at("Retry-After"), "1");
  EXPECT_EQ(not_ready->headers.count("WWW-Authenticate"), 0u) << "a challenge asks for a password";
  EXPECT_NE(not_ready->body.find("retry"), std::string::npos) << not_ready->body;
}

}  // namespace
}  // namespace chorus::http
