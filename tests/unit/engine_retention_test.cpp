// Proves the retention rules a scavenge decides by, for each metadata combination: what a reader
// at the commit point cannot see may go (events of hard-deleted streams but the tombstone, beyond
// $maxCount, older than $maxAge, below $tb, all but the last of a soft-deleted stream); what it
// can see, and every stream's last record, stays. Each case also checks the read-time visibility
// that reads.cpp applies, so the two can never disagree.
#include "worker/engine/retention.hpp"

#include <gtest/gtest.h>

namespace chorus {
namespace {

constexpr int64_t kNowMs = 1'000'000'000;

StreamFacts live(int64_t last, StreamMetadata metadata = {}) {
  StreamFacts f;
  f.last_number = last;
  f.metadata = std::move(metadata);
  return f;
}

// The numbers 0..last that a scavenge may remove (created_ms = kNowMs - age_ms(number)).
std::vector<int64_t> removable(const StreamFacts& f, int64_t last,
                               const std::function<int64_t(int64_t)>& age_ms = nullptr) {
  const auto plan = scavenge_plan(f, kNowMs);
  std::vector<int64_t> out;
  for (int64_t n = 0; n <= last; ++n) {
    if (may_remove(plan, n, kNowMs - (age_ms ? age_ms(n) : 0))) out.push_back(n);
  }
  return out;
}

std::vector<int64_t> range(int64_t first, int64_t last) {
  std::vector<int64_t> out;
  for (int64_t n = first; n <= last; ++n) out.push_back(n);
  return out;
}

TEST(Retention, AStreamWithoutMetadataKeepsEverything) {
  const auto f = live(9);
  EXPECT_EQ(stream_visibility(f).state, StreamState::Live);
  EXPECT_EQ(stream_visibility(f).bounds.min_event_number, 0);
  EXPECT_TRUE(removable(f, 9).empty());
  EXPECT_FALSE(scavenge_plan(f, kNowMs).removes_anything());
}

TEST(Retention, NoStreamHasNothingToRemove) {
  StreamFacts f;
  EXPECT_EQ(stream_visibility(f).state, StreamState::NoStream);
  EXPECT_FALSE(scavenge_plan(f, kNowMs).removes_anything());
}

TEST(Retention, MaxCountRemovesWhatReadsSkip) {
  StreamMetadata m;
  m.max_count = 3;
  const auto f = live(9, m);
  EXPECT_EQ(stream_visibility(f).bounds.min_event_number, 7);
  EXPECT_EQ(removable(f, 9), range(0, 6));
}

TEST(Retention, MaxCountLargerThanTheStreamRemovesNothing) {
  StreamMetadata m;
  m.max_count = 50;
  EXPECT_TRUE(removable(live(9, m), 9).empty());
}

TEST(Retention, TruncateBeforeRemovesBelowIt) {
  StreamMetadata m;
  m.truncate_before = 4;
  const auto f = live(9, m);
  EXPECT_EQ(stream_visibility(f).bounds.min_event_number, 4);
  EXPECT_EQ(removable(f, 9), range(0, 3));
}

TEST(Retention, TruncateBeforePastTheLastKeepsTheLast) {
  StreamMetadata m;
  m.truncate_before = 10;  // every event hidden (the stream reads as empty)
  EXPECT_EQ(removable(live(9, m), 9), range(0, 8));
}

TEST(Retention, MaxCountAndTruncateBeforeTakeTheStricter) {
  StreamMetadata m;
  m.max_count = 5;  // keeps 5..9
  m.truncate_before = 7;
  EXPECT_EQ(removable(live(9, m), 9), range(0, 6));
  m.truncate_before = 2;
  EXPECT_EQ(removable(live(9, m), 9), range(0, 4));
}

TEST(Retention, MaxAgeRemovesExpiredEventsButTheLast) {
  StreamMetadata m;
  m.max_age_s = 60;
  const auto f = live(9, m);
  // Events 0..5 are two minutes old, 6..9 ten seconds old.
  auto age = [](int64_t n) { return n <= 5 ? 120'000 : 10'000; };
  EXPECT_EQ(removable(f, 9, age), range(0, 5));
  for (int64_t n = 0; n <= 9; ++n) {
    EXPECT_EQ(expired(kNowMs - age(n), m, kNowMs), n <= 5) << n;
  }
  // All expired: reads show none, the scavenge keeps the last.
  EXPECT_EQ(removable(f, 9, [](int64_t) { return 120'000; }), range(0, 8));
}

TEST(Retention, MaxAgeWithMaxCountRemovesEitherReason) {
  StreamMetadata m;
  m.max_age_s = 60;
  m.max_count = 8;  // hides 0, 1
  auto age = [](int64_t n) { return n == 4 ? 120'000 : 10'000; };
  EXPECT_EQ(removable(live(9, m), 9, age), (std::vector<int64_t>{0, 1, 4}));
}

TEST(Retention, AHardDeletedStreamKeepsOnlyItsTombstone) {
  StreamMetadata m;
  m.max_count = 100;
  const auto f = live(kDeletedStreamNumber, m);
  EXPECT_EQ(stream_visibility(f).state, StreamState::HardDeleted);
  const auto plan = scavenge_plan(f, kNowMs);
  for (int64_t n : {int64_t{0}, int64_t{5}, int64_t{1'000'000}}) {
    EXPECT_TRUE(may_remove(plan, n, kNowMs)) << n;
  }
  EXPECT_FALSE(may_remove(plan, kDeletedStreamNumber, kNowMs));
}

TEST(Retention, ASoftDeletedStreamKeepsOnlyItsLastEvent) {
  StreamMetadata m;
  m.truncate_before = kDeletedStreamNumber;
  const auto f = live(9, m);
  EXPECT_EQ(stream_visibility(f).state, StreamState::SoftDeleted);
  EXPECT_EQ(removable(f, 9), range(0, 8));
}

TEST(Retention, AMetastreamKeepsItsLastRecordOnly) {
  StreamFacts f = live(4);
  f.is_metastream = true;
  EXPECT_EQ(stream_visibility(f).bounds.min_event_number, 4);
  EXPECT_EQ(removable(f, 4), range(0, 3));
  // Its original's $maxAge does not apply to it.
  f.metadata.max_age_s = 1;
  EXPECT_EQ(removable(f, 4, [](int64_t) { return 120'000; }), range(0, 3));
}

TEST(Retention, TheMetastreamOfAHardDeletedStreamKeepsItsLastRecord) {
  StreamFacts f = live(4);
  f.is_metastream = true;
  f.original_tombstoned = true;
  EXPECT_EQ(stream_visibility(f).state, StreamState::HardDeleted);
  EXPECT_EQ(removable(f, 4), range(0, 3));
}

TEST(Retention, TheLastRecordIsNeverRemoved) {
  StreamMetadata m;
  m.max_count = 1;
  m.truncate_before = 100;
  m.max_age_s = 1;
  EXPECT_EQ(removable(live(0, m), 0, [](int64_t) { return 120'000; }), std::vector<int64_t>{});
}

}  // namespace
}  // namespace chorus
