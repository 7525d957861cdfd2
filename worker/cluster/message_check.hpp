// Range checks of every field of an internal TCP message, made by the transport before a message
// reaches the replication core or the leader's request handling (the core asserts its invariants;
// the adapter refuses bad input). What needs the core's state (e.g. an Append that starts beyond
// the local log, finding F1) the core itself ignores. Pure functions; any thread.
#pragma once

#include "replication.pb.h"
#include "worker/cluster/append_frame.hpp"

#include <cstdint>
#include <limits>
#include <string>

namespace chorus::cluster {

// Limits (one place, with their reasons).
// Epochs count elections; half of int64 is beyond any real count, and epoch + 1 never overflows.
inline constexpr int64_t kEpochMax = std::numeric_limits<int64_t>::max() / 2;
// Log positions are byte offsets; half of int64 (4 EiB) is beyond any disk, and sums of a
// position and an entry size never overflow.
inline constexpr int64_t kPositionMax = std::numeric_limits<int64_t>::max() / 2;
// Epoch records in one Subscribe: one per election ever seen, far below this in practice.
inline constexpr int kSubscribeEpochsMax = 100'000;
// A forwarded request's login: EventStore logins are short names.
inline constexpr size_t kLoginBytesMax = 256;

// "" when every field is in range, else the first problem found.
std::string check_message_fields(const internal::ReplicationMessage& m);
// The same checks of an Append read from its frame (append_frame.hpp).
std::string check_message_fields(const AppendFrame& f);

}  // namespace chorus::cluster
