// The expected-version and paging rules of EventStore (IndexWriter.CheckCommit, IndexReader).
#include "worker/engine/rules.hpp"

#include "worker/engine/types.hpp"

#include <algorithm>

namespace chorus {
namespace {

// Do the request's ids sit at first, first+1, ... in this stream? All: Idempotent; the first but
// not all: "corrupted idempotency" = WrongExpectedVersion; the first not there: nullopt.
std::optional<WriteCheck> match_ids_from(int64_t first, const std::vector<Guid>& ids,
                                         const EventIdLookup& number_of,
                                         const EventIdAt& id_at = {}) {
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t number = first + static_cast<int64_t>(i);
    const auto n = number_of(ids[i]);
    if (n && *n == number) continue;
    if (id_at && id_at(number) == ids[i]) continue;
    if (i == 0) return std::nullopt;
    return WriteCheck{WriteDecision::WrongExpectedVersion, -1};
  }
  return WriteCheck{WriteDecision::Idempotent, first};
}

}  // namespace

WriteCheck check_write(const StreamWriteState& state, int64_t expected_version,
                       const std::vector<Guid>& event_ids, const EventIdLookup& number_of,
                       const EventIdAt& id_at) {
  const WriteCheck append{WriteDecision::Append, -1};
  const WriteCheck wrong{WriteDecision::WrongExpectedVersion, -1};
  if (state.tombstoned) return {WriteDecision::StreamDeleted, -1};
  const int64_t current = state.last_event_number;

  if (expected_version == kExpectedStreamExists) {
    if (state.soft_deleted) return {WriteDecision::StreamDeleted, -1};
    if (current < 0 && !state.has_metadata) return wrong;
  }
  if (expected_version == kExpectedAny || expected_version == kExpectedStreamExists) {
    if (event_ids.empty()) return append;
    const auto first = number_of(event_ids.front());
    if (!first) return append;
    return *match_ids_from(*first, event_ids, number_of);
  }
  if (expected_version < kExpectedNoStream) return wrong;  // -3 or below: not a valid version
  if (state.soft_deleted && expected_version == kExpectedNoStream) return append;
  if (expected_version < current) {
    if (event_ids.empty()) return wrong;
    if (auto m = match_ids_from(expected_version + 1, event_ids, number_of, id_at)) return *m;
    return wrong;
  }
  if (expected_version > current) return wrong;
  return append;
}

ForwardPlan plan_forward(const StreamBounds& b, int64_t from, int32_t count) {
  ForwardPlan p;
  const int64_t span = std::max<int64_t>(count, 1) - 1;
  const int64_t end = from > kDeletedStreamNumber - span ? kDeletedStreamNumber - 1 : from + span;
  if (end < b.min_event_number) {
    p.empty = true;
    p.next_if_empty = b.min_event_number;
    p.is_end_of_stream = false;
    return p;
  }
  p.first = std::max(from, b.min_event_number);
  p.last = end;
  p.next_if_empty = std::min(end + 1, b.last_event_number + 1);
  p.is_end_of_stream = end >= b.last_event_number;
  if (count <= 0) p.empty = true;
  return p;
}

BackwardPlan plan_backward(const StreamBounds& b, int64_t from, int32_t count) {
  BackwardPlan p;
  const int64_t end = from < 0 ? b.last_event_number : from;
  int64_t start = std::max<int64_t>(0, end - std::max<int64_t>(count, 1) + 1);
  if (end < b.min_event_number) {
    p.empty = true;
    p.next_event_number = -1;
    p.is_end_of_stream = true;
    return p;
  }
  if (start <= b.min_event_number) {
    p.is_end_of_stream = true;
    start = b.min_event_number;
  }
  p.first = start;
  p.last = end;
  p.next_event_number = p.is_end_of_stream ? -1 : std::min(start - 1, b.last_event_number);
  if (count <= 0) p.empty = true;
  return p;
}

}  // namespace chorus
