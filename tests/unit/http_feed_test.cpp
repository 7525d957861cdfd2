// Goal: feed JSON is EventStore's (PROTOCOL.md E1): entries newest-first in both directions,
// `data` a string of JSON text with embed=body and absent with embed=rich, headOfStream and the
// paging links of forward and backward pages, and $all links with %016X%016X positions.
#include "worker/http/feed.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

namespace chorus::http {
namespace {

using Poco::JSON::Object;

ResolvedEvent make_event(int64_t number, const std::string& data) {
  EventRecord r;
  r.stream = "s";
  r.number = number;
  r.event_id = random_guid();
  r.event_type = "T";
  r.data_is_json = true;
  r.data = data;
  r.created_ms = 1600000000123;
  r.position = {100 + number, 100 + number};
  return ResolvedEvent{r, std::nullopt};
}

Object::Ptr parse(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Object::Ptr>();
}

std::map<std::string, std::string> links(const Object::Ptr& feed) {
  std::map<std::string, std::string> out;
  auto array = feed->getArray("links");
  for (size_t i = 0; i < array->size(); ++i) {
    auto link = array->getObject(static_cast<unsigned>(i));
    out[link->getValue<std::string>("relation")] = link->getValue<std::string>("uri");
  }
  return out;
}

TEST(HttpFeed, ForwardPageIsNewestFirstWithBodyData) {
  ReadStreamResult result;
  result.events = {make_event(2, R"({"i":2})"), make_event(3, R"({"i":3})")};
  result.last_event_number = 9;
  result.next_event_number = 4;
  result.is_end_of_stream = false;
  const StreamFeedRequest request{"http://h:1", "s", 2, 2, true, Embed::Body};
  const Object::Ptr feed = parse(stream_feed_json(request, result));
  EXPECT_FALSE(feed->getValue<bool>("headOfStream"));
  auto entries = feed->getArray("entries");
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ(entries->getObject(0)->getValue<int64_t>("eventNumber"), 3);
  EXPECT_EQ(entries->getObject(0)->getValue<std::string>("data"), R"({"i":3})");
  EXPECT_EQ(entries->getObject(0)->getValue<std::string>("title"), "3@s");
  EXPECT_EQ(entries->getObject(0)->getValue<std::string>("updated"), "2020-09-13T12:26:40.123000Z");
  const auto l = links(feed);
  EXPECT_EQ(l.at("self"), "http://h:1/streams/s");
  EXPECT_EQ(l.at("first"), "http://h:1/streams/s/head/backward/2");
  EXPECT_EQ(l.at("last"), "http://h:1/streams/s/0/forward/2");
  EXPECT_EQ(l.at("next"), "http://h:1/streams/s/1/backward/2");
  EXPECT_EQ(l.at("previous"), "http://h:1/streams/s/4/forward/2");
  EXPECT_EQ(l.at("metadata"), "http://h:1/streams/s/metadata");
}

TEST(HttpFeed, BackwardFromHeadIsHeadOfStreamAndRichHasNoData) {
  ReadStreamResult result;
  result.events = {make_event(1, "{}"), make_event(0, "{}")};
  result.last_event_number = 1;
  result.is_end_of_stream = true;
  const StreamFeedRequest request{"http://h:1", "s", -1, 20, false, Embed::Rich};
  const Object::Ptr feed = parse(stream_feed_json(request, result));
  EXPECT_TRUE(feed->getValue<bool>("headOfStream"));
  auto first = feed->getArray("entries")->getObject(0);
  EXPECT_EQ(first->getValue<int64_t>("eventNumber"), 1);
  EXPECT_FALSE(first->has("data"));
  EXPECT_TRUE(first->getValue<bool>("isJson"));
  const auto l = links(feed);
  EXPECT_EQ(l.count("next"), 0u);
  EXPECT_EQ(l.at("previous"), "http://h:1/streams/s/2/forward/20");
}

TEST(HttpFeed, AllFeedLinksUsePositions) {
  ReadAllResult result;
  result.events = {make_event(5, "{}")};
  result.from = {0x200, 0x200};
  result.next = {0x105, 0x105};
  const AllFeedRequest request{"http://h:1", true, 1, false, Embed::None};
  const Object::Ptr feed = parse(all_feed_json(request, result));
  EXPECT_TRUE(feed->getValue<bool>("headOfStream"));
  const auto l = links(feed);
  EXPECT_EQ(l.at("next"), "http://h:1/streams/%24all/00000000000001050000000000000105/backward/1");
  EXPECT_EQ(l.at("previous"),
            "http://h:1/streams/%24all/00000000000002000000000000000200/forward/1");
}

TEST(HttpFeed, StreamPathEscapes) {
  EXPECT_EQ(stream_path("a b/c"), "/streams/a%20b%2Fc");
  // As .NET Uri.EscapeDataString, which EventStore uses: "$" is escaped too.
  EXPECT_EQ(stream_path("$$meta"), "/streams/%24%24meta");
}

}  // namespace
}  // namespace chorus::http
