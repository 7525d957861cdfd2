// Replication entries and node ids for the codec and frame-reader tests (message_codec,
// append_frame): an entry's end is what its payload makes it (position, the per-entry overhead
// and the payload's size), so Appends built of them pass the transport's field check.
#pragma once

#include "worker/replication/core.hpp"

#include <cstdint>
#include <string>
#include <utility>

namespace chorus::cluster::test_support {

inline const std::string kFrom = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f01";
inline const std::string kTo = "0b7e4a5c-1d2e-4f30-8a41-5b6c7d8e9f02";

inline replication::Entry entry_of_epoch(int64_t epoch, int64_t position,
                                         replication::Payload payload, bool epoch_record = false,
                                         bool gap = false) {
  replication::Entry e;
  e.position = position;
  e.end = position + replication::kEntryOverheadBytes + static_cast<int64_t>(payload.size());
  e.epoch = epoch;
  e.is_epoch_record = epoch_record;
  e.payload = std::move(payload);
  e.is_gap = gap;
  return e;
}

}  // namespace chorus::cluster::test_support
