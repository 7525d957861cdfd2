// Retention: which records of one stream a reader at the commit point can see ($maxCount, $maxAge,
// $tb, soft and hard deletes, metastreams), and from that what a scavenge may remove. Reads
// (reads.cpp) and the scavenger (scavenger.cpp) both decide through these functions, so a
// scavenge can never remove a record that a read would still return.
// Pure functions and values; any thread.
#pragma once

#include "worker/engine/acl.hpp"
#include "worker/engine/rules.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace chorus {

// What storage says about a stream at the commit point.
struct StreamFacts {
  bool is_metastream = false;          // "$$x": governed by x's metadata, keeps its last record
  bool original_tombstoned = false;    // for "$$x": x's last record is a tombstone
  std::optional<int64_t> last_number;  // the number of its last record (a tombstone counts)
  StreamMetadata metadata;             // the committed metadata of the governing stream
};

enum class StreamState { Live, NoStream, SoftDeleted, HardDeleted };

struct StreamVisibility {
  StreamState state = StreamState::NoStream;
  StreamBounds bounds;  // for Live: the numbers a read may return (before $maxAge)
};

StreamVisibility stream_visibility(const StreamFacts& facts);

// $maxAge: a record created before now - $maxAge is hidden.
bool expired(int64_t created_ms, const StreamMetadata& metadata, int64_t now_ms);

// What a scavenge may remove of one stream: records numbered below `remove_below`, and records
// below the last one that expired. The last record always stays: it carries the stream's version
// (the next write's number and expected-version checks) and, for a hard-deleted stream, the
// tombstone itself.
struct ScavengePlan {
  int64_t remove_below = 0;
  std::optional<int64_t> expired_before_ms;  // created_ms below this (and number < last) go
  int64_t last_number = -1;
  bool removes_anything() const { return remove_below > 0 || expired_before_ms.has_value(); }
};

ScavengePlan scavenge_plan(const StreamFacts& facts, int64_t now_ms);
// May the scavenge remove the record numbered `number`, created at `created_ms`?
bool may_remove(const ScavengePlan& plan, int64_t number, int64_t created_ms);

}  // namespace chorus
