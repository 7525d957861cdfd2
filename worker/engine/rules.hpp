// EventStore's write and read rules as pure functions: the expected-version check with
// idempotent retries (PROTOCOL.md C4, F4, F5) and the paging of stream reads (C5).
// No I/O; the caller supplies what it knows about the stream. Any thread.
#pragma once

#include "common/guid.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace chorus {

// What the writer knows about a stream when a write arrives (in-flight writes included).
struct StreamWriteState {
  int64_t last_event_number = -1;  // -1: no events
  bool tombstoned = false;         // hard-deleted
  bool soft_deleted = false;       // $tb == deleted
  bool has_metadata = false;       // a $$stream event exists
};

enum class WriteDecision {
  Append,      // write the events after last_event_number
  Idempotent,  // a retry: answer with the original event numbers
  WrongExpectedVersion,
  StreamDeleted,
};

struct WriteCheck {
  WriteDecision decision = WriteDecision::Append;
  int64_t first_existing = -1;  // for Idempotent: the original first event number
};

// Looks up the event number that the given id has in this stream, if known (recent ids).
using EventIdLookup = std::function<std::optional<int64_t>(const Guid& event_id)>;
// The id of the stream's event with this number, if there is one (storage).
using EventIdAt = std::function<std::optional<Guid>(int64_t number)>;

// With an explicit expected version, an id that number_of does not know is looked for in the
// stream itself through id_at (EventStore reads its index there): such retries are idempotent
// however old. ExpectedAny and StreamExists rely on number_of alone (EventStore: best effort).
WriteCheck check_write(const StreamWriteState& state, int64_t expected_version,
                       const std::vector<Guid>& event_ids, const EventIdLookup& number_of,
                       const EventIdAt& id_at = {});

// The event-number range a stream read should fetch, and how to fill the reply.
struct StreamBounds {
  int64_t last_event_number = -1;  // committed last event number
  int64_t min_event_number = 0;    // max(0, last - $maxCount + 1, $tb)
};

struct ForwardPlan {
  bool empty = false;           // nothing to read (range entirely below the minimum)
  int64_t first = 0, last = 0;  // inclusive range to fetch
  int64_t next_if_empty = 0;    // next_event_number when no event is returned
  bool is_end_of_stream = false;
};
ForwardPlan plan_forward(const StreamBounds& b, int64_t from, int32_t count);
// next_event_number for a forward read that returned events: last returned + 1.

struct BackwardPlan {
  bool empty = false;
  int64_t first = 0, last = 0;  // inclusive range to fetch, returned newest first
  int64_t next_event_number = -1;
  bool is_end_of_stream = false;
};
// from -1 means the last event.
BackwardPlan plan_backward(const StreamBounds& b, int64_t from, int32_t count);

}  // namespace chorus
