// Unit tests of the system projections' link rules (worker/projections/system_projections):
// which `$>` link each standard projection writes for a record, and that link ids depend only on
// the projection and the source position.
#include "worker/projections/system_projections.hpp"

#include <gtest/gtest.h>

using namespace chorus;
using namespace chorus::projections;

namespace {

EventRecord record(std::string stream, int64_t number, std::string type, int64_t prepare,
                   std::string metadata = "") {
  EventRecord r;
  r.stream = std::move(stream);
  r.number = number;
  r.event_type = std::move(type);
  r.metadata = std::move(metadata);
  r.position = Position{prepare + 10, prepare};
  return r;
}

}  // namespace

// A category is what precedes the first '-', when that is not empty.
TEST(SystemProjections, CategoryIsBeforeTheFirstDash) {
  EXPECT_EQ(category_of("account-1"), "account");
  EXPECT_EQ(category_of("account-1-2"), "account");
  EXPECT_EQ(category_of("account"), std::nullopt);
  EXPECT_EQ(category_of("-1"), std::nullopt);
}

// Each projection links the record where EventStore's does, with data "<number>@<stream>".
TEST(SystemProjections, EachProjectionLinksToItsStream) {
  const auto first = record("order-7", 0, "Placed", 100, R"({"$correlationId":"c-1"})");
  const auto later = record("order-7", 3, "Shipped", 200);
  auto ce = link_for(SystemProjection::ByCategory, later);
  ASSERT_TRUE(ce);
  EXPECT_EQ(ce->stream, "$ce-order");
  EXPECT_EQ(ce->event.event_type, "$>");
  EXPECT_EQ(ce->event.data, "3@order-7");
  EXPECT_EQ(ce->event.metadata, R"({"$c":210,"$o":"order-7","$p":200})");
  EXPECT_EQ(link_for(SystemProjection::ByEventType, later)->stream, "$et-Shipped");
  EXPECT_EQ(link_for(SystemProjection::Streams, first)->stream, "$streams");
  EXPECT_EQ(link_for(SystemProjection::Streams, first)->event.data, "0@order-7");
  EXPECT_FALSE(link_for(SystemProjection::Streams, later));
  EXPECT_EQ(link_for(SystemProjection::StreamByCategory, first)->stream, "$category-order");
  EXPECT_FALSE(link_for(SystemProjection::StreamByCategory, later));
  EXPECT_EQ(link_for(SystemProjection::ByCorrelationId, first)->stream, "$bc-c-1");
  EXPECT_FALSE(link_for(SystemProjection::ByCorrelationId, later));
}

// System streams, links, tombstones, streams without a category and metadata that is not JSON
// produce no link.
TEST(SystemProjections, WhatIsNotLinked) {
  EXPECT_FALSE(link_for(SystemProjection::ByEventType, record("$ce-order", 0, "$>", 1)));
  EXPECT_FALSE(link_for(SystemProjection::ByEventType, record("$$order-1", 0, "$metadata", 1)));
  EXPECT_FALSE(link_for(SystemProjection::ByEventType, record("order-1", 1, "$>", 1)));
  EXPECT_FALSE(
      link_for(SystemProjection::ByCategory, record("order-1", kDeletedStreamNumber, "X", 1)));
  EXPECT_FALSE(link_for(SystemProjection::ByCategory, record("order", 0, "X", 1)));
  EXPECT_FALSE(link_for(SystemProjection::ByCorrelationId,
                        record("order-1", 0, "X", 1, "$correlationId: not json")));
  EXPECT_FALSE(link_for(SystemProjection::ByCorrelationId,
                        record("order-1", 0, "X", 1, R"({"$correlationId":7})")));
}

// The same projection and source position always give the same link id; anything else differs.
TEST(SystemProjections, LinkIdsAreDeterministic) {
  const Position p{110, 100};
  EXPECT_EQ(link_id(SystemProjection::ByCategory, p), link_id(SystemProjection::ByCategory, p));
  EXPECT_NE(link_id(SystemProjection::ByCategory, p), link_id(SystemProjection::ByEventType, p));
  EXPECT_NE(link_id(SystemProjection::ByCategory, p),
            link_id(SystemProjection::ByCategory, Position{111, 101}));
  EXPECT_EQ(link_for(SystemProjection::ByCategory, record("a-1", 0, "X", 100))->event.event_id,
            link_id(SystemProjection::ByCategory, Position{110, 100}));
  EXPECT_EQ(checkpoint_stream_of("$by_category"), "$projections-$by_category-checkpoint");
}

// EventStore's query text of $by_category/$stream_by_category ("first|last\n<separator>", or a
// lone separator meaning last) and of $by_correlation_id ({"correlationIdProperty": ...}) sets
// how categories are cut and which metadata property is read; anything else is refused with a
// reason and leaves the rules as they were.
TEST(SystemProjections, QueriesConfigureCategoriesAndCorrelation) {
  std::string error;
  const auto last = parse_query(SystemProjection::ByCategory, "last\n-", {}, &error);
  ASSERT_TRUE(last) << error;
  EXPECT_EQ(category_of("shop-eu-1", *last), "shop-eu");
  EXPECT_EQ(query_of(SystemProjection::ByCategory, *last), "last\n-");
  const auto first = parse_query(SystemProjection::StreamByCategory, " First\r\n_ ", {}, &error);
  ASSERT_TRUE(first) << error;
  EXPECT_EQ(category_of("shop_eu_1", *first), "shop");
  const auto lone = parse_query(SystemProjection::ByCategory, ".", {}, &error);
  ASSERT_TRUE(lone) << error;
  EXPECT_EQ(category_of("a.b.c", *lone), "a.b");
  const auto link =
      link_for(SystemProjection::ByCategory, record("shop-eu-1", 0, "Sold", 5), *last);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->stream, "$ce-shop-eu");
  for (const char* bad : {"", "middle\n-", "first\n--", "first\n-\nx"}) {
    EXPECT_FALSE(parse_query(SystemProjection::ByCategory, bad, {}, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }

  const auto corr = parse_query(SystemProjection::ByCorrelationId,
                                R"({"correlationIdProperty":"$myCorrelationId"})", {}, &error);
  ASSERT_TRUE(corr) << error;
  EXPECT_EQ(query_of(SystemProjection::ByCorrelationId, *corr),
            R"({"correlationIdProperty":"$myCorrelationId"})");
  const auto tagged = record("order-1", 0, "Placed", 7, R"({"$myCorrelationId":"c9"})");
  ASSERT_TRUE(link_for(SystemProjection::ByCorrelationId, tagged, *corr));
  EXPECT_EQ(link_for(SystemProjection::ByCorrelationId, tagged, *corr)->stream, "$bc-c9");
  EXPECT_FALSE(link_for(SystemProjection::ByCorrelationId, tagged));  // default: $correlationId
  for (const char* bad :
       {"{}", "not json", R"({"correlationIdProperty":7})", R"({"correlationIdProperty":""})"}) {
    EXPECT_FALSE(parse_query(SystemProjection::ByCorrelationId, bad, {}, &error)) << bad;
  }
  EXPECT_FALSE(parse_query(SystemProjection::ByEventType, "first\n-", {}, &error));
  EXPECT_TRUE(parse_query(SystemProjection::Streams, "", {}, &error));
  EXPECT_EQ(system_projection_named("$by_category"), SystemProjection::ByCategory);
  EXPECT_FALSE(system_projection_named("by_category"));
}
