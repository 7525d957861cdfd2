// Proves the expected-version/idempotency rules (PROTOCOL.md C4) and the paging rules (C5).
#include "worker/engine/rules.hpp"
#include "worker/engine/types.hpp"

#include <gtest/gtest.h>

#include <map>

namespace chorus {
namespace {

struct Ids {
  std::map<Guid, int64_t> numbers;
  EventIdLookup lookup() const {
    return [this](const Guid& id) -> std::optional<int64_t> {
      auto it = numbers.find(id);
      if (it == numbers.end()) return std::nullopt;
      return it->second;
    };
  }
};

StreamWriteState stream_with(int64_t last) {
  StreamWriteState s;
  s.last_event_number = last;
  return s;
}

TEST(CheckWrite, ExactVersionAppendsOnlyAtTheEnd) {
  Ids ids;
  const std::vector<Guid> one{random_guid()};
  EXPECT_EQ(check_write(stream_with(4), 4, one, ids.lookup()).decision, WriteDecision::Append);
  EXPECT_EQ(check_write(stream_with(4), 5, one, ids.lookup()).decision,
            WriteDecision::WrongExpectedVersion);
  EXPECT_EQ(check_write(stream_with(4), 3, one, ids.lookup()).decision,
            WriteDecision::WrongExpectedVersion);
  EXPECT_EQ(check_write(stream_with(-1), kExpectedNoStream, one, ids.lookup()).decision,
            WriteDecision::Append);
  EXPECT_EQ(check_write(stream_with(0), kExpectedNoStream, one, ids.lookup()).decision,
            WriteDecision::WrongExpectedVersion);
}

TEST(CheckWrite, AnyAndStreamExists) {
  Ids ids;
  const std::vector<Guid> one{random_guid()};
  EXPECT_EQ(check_write(stream_with(-1), kExpectedAny, one, ids.lookup()).decision,
            WriteDecision::Append);
  EXPECT_EQ(check_write(stream_with(-1), kExpectedStreamExists, one, ids.lookup()).decision,
            WriteDecision::WrongExpectedVersion);
  auto only_metadata = stream_with(-1);
  only_metadata.has_metadata = true;
  EXPECT_EQ(check_write(only_metadata, kExpectedStreamExists, one, ids.lookup()).decision,
            WriteDecision::Append);
  EXPECT_EQ(check_write(stream_with(3), kExpectedStreamExists, one, ids.lookup()).decision,
            WriteDecision::Append);
}

TEST(CheckWrite, DeletedStreams) {
  Ids ids;
  const std::vector<Guid> one{random_guid()};
  StreamWriteState hard = stream_with(kDeletedStreamNumber);
  hard.tombstoned = true;
  for (int64_t v : {kExpectedAny, kExpectedNoStream, kExpectedStreamExists, int64_t{3}}) {
    EXPECT_EQ(check_write(hard, v, one, ids.lookup()).decision, WriteDecision::StreamDeleted);
  }
  StreamWriteState soft = stream_with(5);
  soft.soft_deleted = true;
  EXPECT_EQ(check_write(soft, kExpectedStreamExists, one, ids.lookup()).decision,
            WriteDecision::StreamDeleted);
  EXPECT_EQ(check_write(soft, kExpectedNoStream, one, ids.lookup()).decision,
            WriteDecision::Append);
  EXPECT_EQ(check_write(soft, kExpectedAny, one, ids.lookup()).decision, WriteDecision::Append);
}

TEST(CheckWrite, IdempotentRetries) {
  Ids ids;
  const Guid a = random_guid(), b = random_guid(), c = random_guid();
  ids.numbers = {{a, 0}, {b, 1}};
  // Exact version retry: same ids after the expected version.
  auto exact = check_write(stream_with(1), kExpectedNoStream, {a, b}, ids.lookup());
  EXPECT_EQ(exact.decision, WriteDecision::Idempotent);
  EXPECT_EQ(exact.first_existing, 0);
  // Any retry: found by the first id.
  auto any = check_write(stream_with(1), kExpectedAny, {a, b}, ids.lookup());
  EXPECT_EQ(any.decision, WriteDecision::Idempotent);
  // Partial match is "corrupted idempotency".
  EXPECT_EQ(check_write(stream_with(1), kExpectedAny, {a, c}, ids.lookup()).decision,
            WriteDecision::WrongExpectedVersion);
  // Different ids at an old version: a real conflict.
  EXPECT_EQ(check_write(stream_with(1), kExpectedNoStream, {c}, ids.lookup()).decision,
            WriteDecision::WrongExpectedVersion);
}

TEST(Paging, ForwardFactsFromTheClientTests) {
  const StreamBounds b{99, 0};
  auto p = plan_forward(b, 0, 100);
  EXPECT_EQ(p.first, 0);
  EXPECT_EQ(p.last, 99);
  EXPECT_TRUE(p.is_end_of_stream);
  p = plan_forward(b, 50, 20);
  EXPECT_EQ(p.last, 69);
  EXPECT_FALSE(p.is_end_of_stream);
  p = plan_forward(b, 150, 10);  // past the end
  EXPECT_EQ(p.next_if_empty, 100);
  EXPECT_TRUE(p.is_end_of_stream);
  const StreamBounds truncated{99, 90};
  p = plan_forward(truncated, 0, 10);  // entirely below the minimum
  EXPECT_TRUE(p.empty);
  EXPECT_EQ(p.next_if_empty, 90);
  EXPECT_FALSE(p.is_end_of_stream);
}

TEST(Paging, BackwardFactsFromTheClientTests) {
  const StreamBounds b{99, 0};
  auto p = plan_backward(b, 99, 100);
  EXPECT_EQ(p.first, 0);
  EXPECT_EQ(p.last, 99);
  EXPECT_EQ(p.next_event_number, -1);
  EXPECT_TRUE(p.is_end_of_stream);
  p = plan_backward(b, -1, 10);
  EXPECT_EQ(p.first, 90);
  EXPECT_EQ(p.last, 99);
  EXPECT_EQ(p.next_event_number, 89);
  EXPECT_FALSE(p.is_end_of_stream);
  p = plan_backward(b, 200, 100);  // past the end: nothing there, not an error
  EXPECT_EQ(p.first, 101);
  EXPECT_FALSE(p.is_end_of_stream);
}

}  // namespace
}  // namespace chorus
