// Retention rules (see retention.hpp): the visibility that reads apply, and the scavenge plan
// derived from it.
#include "worker/engine/retention.hpp"

#include <algorithm>

namespace chorus {

StreamVisibility stream_visibility(const StreamFacts& f) {
  StreamVisibility v;
  if (f.is_metastream && f.original_tombstoned) {
    v.state = StreamState::HardDeleted;
    return v;
  }
  if (!f.last_number) return v;  // NoStream
  if (*f.last_number == kDeletedStreamNumber) {
    v.state = StreamState::HardDeleted;
    return v;
  }
  if (!f.is_metastream && f.metadata.soft_deleted()) {
    v.state = StreamState::SoftDeleted;
    return v;
  }
  v.state = StreamState::Live;
  v.bounds.last_event_number = *f.last_number;
  int64_t min = 0;
  if (f.is_metastream) {
    min = *f.last_number;  // metastreams behave as $maxCount 1
  } else {
    if (f.metadata.max_count) min = std::max(min, *f.last_number - *f.metadata.max_count + 1);
    if (f.metadata.truncate_before) min = std::max(min, *f.metadata.truncate_before);
  }
  v.bounds.min_event_number = min;
  return v;
}

bool expired(int64_t created_ms, const StreamMetadata& metadata, int64_t now_ms) {
  return metadata.max_age_s && created_ms < now_ms - *metadata.max_age_s * 1000;
}

ScavengePlan scavenge_plan(const StreamFacts& facts, int64_t now_ms) {
  ScavengePlan plan;
  if (!facts.last_number) return plan;
  const int64_t last = *facts.last_number;
  plan.last_number = last;
  const auto v = stream_visibility(facts);
  switch (v.state) {
    case StreamState::NoStream:
      break;
    case StreamState::HardDeleted:
    case StreamState::SoftDeleted:
      plan.remove_below = last;  // nothing is readable; the last record stays
      break;
    case StreamState::Live:
      plan.remove_below = std::min(v.bounds.min_event_number, last);
      if (!facts.is_metastream && facts.metadata.max_age_s) {
        plan.expired_before_ms = now_ms - *facts.metadata.max_age_s * 1000;
      }
      break;
  }
  return plan;
}

bool may_remove(const ScavengePlan& plan, int64_t number, int64_t created_ms) {
  if (number >= plan.last_number) return false;
  if (number < plan.remove_below) return true;
  return plan.expired_before_ms && created_ms < *plan.expired_before_ms;
}

}  // namespace chorus
