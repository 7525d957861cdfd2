// Goal: EventStore's HTTP header conventions parse and format exactly: ES-ExpectedVersion,
// booleans, ES-LongPoll, Basic credentials, $all positions as %016X%016X, embed levels, Accept
// negotiation and ETags.
#include "worker/http/headers.hpp"

#include "worker/http/limits.hpp"

#include <gtest/gtest.h>

namespace chorus::http {
namespace {

TEST(HttpHeaders, ExpectedVersion) {
  EXPECT_EQ(parse_expected_version(std::nullopt), kExpectedAny);
  EXPECT_EQ(parse_expected_version("-1"), -1);
  EXPECT_EQ(parse_expected_version(" 42 "), 42);
  EXPECT_EQ(parse_expected_version("-4"), -4);
  EXPECT_EQ(parse_expected_version("-5"), std::nullopt);
  EXPECT_EQ(parse_expected_version("abc"), std::nullopt);
  EXPECT_EQ(parse_expected_version("1.5"), std::nullopt);
  EXPECT_EQ(header_error_text("ES-ExpectedVersion"), "ES-ExpectedVersion header in wrong format.");
}

TEST(HttpHeaders, BooleansAndLongPoll) {
  EXPECT_EQ(parse_bool_header("True", false), true);
  EXPECT_EQ(parse_bool_header("FALSE", true), false);
  EXPECT_EQ(parse_bool_header(std::nullopt, true), true);
  EXPECT_EQ(parse_bool_header("yes", true), std::nullopt);
  EXPECT_EQ(parse_long_poll(std::nullopt), 0);
  EXPECT_EQ(parse_long_poll("5"), 5);
  EXPECT_EQ(parse_long_poll("100000"), kLongPollSecondsMax);
  EXPECT_EQ(parse_long_poll("-1"), std::nullopt);
  EXPECT_EQ(parse_non_negative("12"), 12);
  EXPECT_EQ(parse_non_negative("-1"), std::nullopt);
  EXPECT_EQ(parse_non_negative("+1"), std::nullopt);
}

TEST(HttpHeaders, BasicCredentials) {
  const auto c = parse_basic_auth("Basic YWRtaW46Y2hhbmdlaXQ=");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->login, "admin");
  EXPECT_EQ(c->password, "changeit");
  const auto colon = parse_basic_auth("basic dTpwOnE=");  // "u:p:q"
  ASSERT_TRUE(colon);
  EXPECT_EQ(colon->password, "p:q");
  EXPECT_FALSE(parse_basic_auth("Bearer abc"));
  EXPECT_FALSE(parse_basic_auth("Basic bm9jb2xvbg=="));  // "nocolon"
}

TEST(HttpHeaders, Positions) {
  EXPECT_EQ(format_position({0x1A2B, 0x1A2A}), "0000000000001A2B0000000000001A2A");
  EXPECT_EQ(format_position(Position::end()), "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF");
  const auto p = parse_position("0000000000001A2B0000000000001a2a");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (Position{0x1A2B, 0x1A2A}));
  EXPECT_EQ(parse_position("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"), Position::end());
  EXPECT_FALSE(parse_position("123"));
  EXPECT_FALSE(parse_position("0000000000001A2B000000000000ZZZZ"));
}

TEST(HttpHeaders, EmbedAndAccept) {
  EXPECT_EQ(parse_embed("body"), Embed::Body);
  EXPECT_EQ(parse_embed("Rich"), Embed::Rich);
  EXPECT_EQ(parse_embed("nonsense"), Embed::None);
  EXPECT_EQ(parse_embed(std::nullopt), Embed::None);
  EXPECT_EQ(negotiate(std::nullopt, MediaType::Json), MediaType::Json);
  EXPECT_EQ(negotiate("application/vnd.eventstore.atom+json", MediaType::Json),
            MediaType::AtomJson);
  EXPECT_EQ(negotiate("text/html, application/json;q=0.9", MediaType::AtomJson), MediaType::Json);
  EXPECT_EQ(negotiate("*/*", MediaType::AtomJson), MediaType::AtomJson);
  EXPECT_EQ(negotiate("text/html", MediaType::Json), std::nullopt);
  EXPECT_EQ(negotiate("application/atom+xml", MediaType::Json), std::nullopt);
}

TEST(HttpHeaders, ETags) {
  const std::string etag = stream_etag(7, MediaType::Json);
  EXPECT_EQ(etag.substr(0, 2), "7;");
  EXPECT_EQ(etag, stream_etag(7, MediaType::Json));
  EXPECT_NE(etag, stream_etag(8, MediaType::Json));
  EXPECT_NE(etag, stream_etag(7, MediaType::AtomJson));
  EXPECT_TRUE(etag_matches("\"" + etag + "\"", etag));
  EXPECT_TRUE(etag_matches("\"x\", W/\"" + etag + "\"", etag));
  EXPECT_FALSE(etag_matches("\"x\"", etag));
  EXPECT_FALSE(etag_matches(std::nullopt, etag));
}

}  // namespace
}  // namespace chorus::http
