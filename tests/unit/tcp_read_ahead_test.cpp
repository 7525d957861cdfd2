// Goal: a page read ahead is served only to the request it was read for (same command, stream or
// position, count and principal), only while the committed position is the one it was read at
// and before an event in it passes its $maxAge; it is read ahead only after two pages at the same
// committed position; a late or superseded read is not kept; the node-wide byte budget holds.
#include "worker/tcp/dispatch.hpp"

#include <gtest/gtest.h>

namespace chorus::tcp {
namespace {

using Key = ReadAhead::Key;

// take() for a page that is already read (or not expected): never waits.
std::optional<ReadAhead::Page> take_now(ReadAhead& ahead, const Key& key, int64_t committed,
                                        int64_t now_ms) {
  bool waiting = false;
  auto page = ahead.take(
      key, committed, now_ms, [](std::optional<ReadAhead::Page>) {}, &waiting);
  EXPECT_FALSE(waiting);
  return page;
}

Key page_key(int64_t from) {
  Key key;
  key.command = wire::Command::ReadStreamEventsForward;
  key.stream = "orders";
  key.from_number = from;
  key.count = 4096;
  key.login = "ann";
  key.roles = {"$ops"};
  return key;
}

ReadAhead::Page page(int64_t committed, std::string payload = "bytes",
                     int64_t expires_at_ms = std::numeric_limits<int64_t>::max()) {
  return ReadAhead::Page{std::move(payload), committed, expires_at_ms, std::nullopt};
}

// A slot that waits for page_key(100), read at committed position 7, filled.
void prime(ReadAhead& ahead, int64_t expires_at_ms = std::numeric_limits<int64_t>::max()) {
  ASSERT_FALSE(ahead.expect(page_key(0), 7));  // the first page: no history yet
  const auto ticket = ahead.expect(page_key(100), 7);
  ASSERT_TRUE(ticket);
  ahead.fill(*ticket, page(7, "page-100", expires_at_ms));
}

TEST(ReadAhead, ServesTheSamePageAtTheSameCommittedPositionOnce) {
  ReadAhead ahead;
  prime(ahead);
  const auto served = take_now(ahead, page_key(100), 7, 1000);
  ASSERT_TRUE(served);
  EXPECT_EQ(served->payload, "page-100");
  EXPECT_FALSE(take_now(ahead, page_key(100), 7, 1000));  // taken: gone
}

TEST(ReadAhead, AnotherRequestOrPrincipalIsNotServedAndEndsTheSequence) {
  for (int variant = 0; variant < 5; ++variant) {
    ReadAhead ahead;
    prime(ahead);
    Key other = page_key(100);
    if (variant == 0) other.from_number = 101;
    if (variant == 1) other.login = "bob";
    if (variant == 2) other.roles = {"$admins"};
    if (variant == 3) other.count = 10;
    if (variant == 4) other.stream = "invoices";
    EXPECT_FALSE(take_now(ahead, other, 7, 1000)) << variant;
    EXPECT_FALSE(take_now(ahead, page_key(100), 7, 1000)) << variant;  // the slot was emptied
  }
}

TEST(ReadAhead, ACommitSinceTheReadOrAnExpiredEventRefusesThePage) {
  ReadAhead moved;
  prime(moved);
  EXPECT_FALSE(take_now(moved, page_key(100), 8, 1000));  // a commit (an ACL, $tb, a write...)
  ReadAhead unknown;
  prime(unknown);
  EXPECT_FALSE(take_now(unknown, page_key(100), -1, 1000));  // an engine that cannot tell
  ReadAhead aging;
  prime(aging, 5000);
  EXPECT_FALSE(take_now(aging, page_key(100), 7, 5000));  // an event passes its $maxAge at 5000
  ReadAhead young;
  prime(young, 5000);
  EXPECT_TRUE(take_now(young, page_key(100), 7, 4999));
}

TEST(ReadAhead, OnlyAfterTwoPagesAtOneCommittedPosition) {
  ReadAhead ahead;
  EXPECT_FALSE(ahead.expect(page_key(0), 7));
  EXPECT_FALSE(ahead.expect(page_key(100), 8));  // writes in between: not read ahead
  EXPECT_TRUE(ahead.expect(page_key(200), 8));
  EXPECT_FALSE(ahead.expect(std::nullopt, 8));  // the end of the stream: nothing next
}

TEST(ReadAhead, ASupersededReadIsNotKept) {
  ReadAhead ahead;
  ASSERT_FALSE(ahead.expect(page_key(0), 7));
  const auto first = ahead.expect(page_key(100), 7);
  const auto second = ahead.expect(page_key(200), 7);
  ASSERT_TRUE(first && second);
  ahead.fill(*first, page(7, "stale"));
  EXPECT_FALSE(take_now(ahead, page_key(100), 7, 1000));
  const auto third = ahead.expect(page_key(300), 7);
  take_now(ahead, page_key(999), 7, 1000);  // a request in between ends the sequence
  ahead.fill(*third, page(7, "late"));
  EXPECT_FALSE(take_now(ahead, page_key(300), 7, 1000));
}

TEST(ReadAhead, ARequestThatComesWhileItsPageIsReadGetsItWhenTheReadEnds) {
  ReadAhead ahead;
  ASSERT_FALSE(ahead.expect(page_key(0), 7));
  const auto ticket = ahead.expect(page_key(100), 7);
  std::optional<std::optional<ReadAhead::Page>> handed;
  bool waiting = false;
  auto now = ahead.take(
      page_key(100), 7, 1000, [&](std::optional<ReadAhead::Page> p) { handed = std::move(p); },
      &waiting);
  EXPECT_TRUE(waiting);
  EXPECT_FALSE(now);
  EXPECT_FALSE(handed);
  ahead.fill(*ticket, page(7, "page-100"));
  ASSERT_TRUE(handed && *handed);
  EXPECT_EQ((*handed)->payload, "page-100");
  // A failed read hands over nothing: the waiter reads for itself.
  ASSERT_FALSE(ahead.expect(page_key(200), 9));
  const auto failing = ahead.expect(page_key(300), 9);
  handed.reset();
  ahead.take(
      page_key(300), 9, 1000, [&](std::optional<ReadAhead::Page> p) { handed = std::move(p); },
      &waiting);
  ASSERT_TRUE(waiting);
  ahead.fill(*failing, std::nullopt);
  ASSERT_TRUE(handed);
  EXPECT_FALSE(*handed);
  // Another request while one waits: the waiting one is not forgotten, it reads for itself.
  const auto pending = ahead.expect(page_key(400), 9);
  ASSERT_TRUE(pending);
  handed.reset();
  ahead.take(
      page_key(400), 9, 1000, [&](std::optional<ReadAhead::Page> p) { handed = std::move(p); },
      &waiting);
  ASSERT_TRUE(waiting);
  take_now(ahead, page_key(999), 9, 1000);
  ASSERT_TRUE(handed);
  EXPECT_FALSE(*handed);
  ahead.fill(*pending, page(9));  // late: kept by no one
  EXPECT_FALSE(take_now(ahead, page_key(400), 9, 1000));
}

TEST(ReadAhead, TheNodeWideBudgetBoundsWhatIsKept) {
  ReadAhead big;
  ASSERT_FALSE(big.expect(page_key(0), 7));
  const auto ticket = big.expect(page_key(100), 7);
  big.fill(*ticket, page(7, std::string(kReadAheadBytesMax, 'x')));  // all of it
  ReadAhead other;
  prime(other);                                           // no room left: not kept
  EXPECT_FALSE(take_now(other, page_key(100), 7, 1000));  //
  EXPECT_TRUE(take_now(big, page_key(100), 7, 1000));     // taking it frees the budget
  ReadAhead again;
  prime(again);
  EXPECT_TRUE(take_now(again, page_key(100), 7, 1000));
}

}  // namespace
}  // namespace chorus::tcp
