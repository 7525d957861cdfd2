// A node's own writes that a follower passes to the leader as a forwarded WriteEvents (its
// $stats-<endpoint> statistics): building the request, reading the answer, and the leader's rule
// for the one request a follower may forward as `$system`. Pure functions; any thread.
#pragma once

#include "common/framing.hpp"
#include "worker/engine/types.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace chorus::tcp {

// The login a follower's own writes are forwarded under.
inline constexpr const char* kSystemLogin = "$system";

// A serialized WriteEvents request.
std::string write_events_request(const std::string& stream, int64_t expected_version,
                                 const std::vector<NewEvent>& events);

// The leader's answer to a forwarded WriteEvents as a WriteResult: a WriteEventsCompleted as it
// is, NotHandled as NotLeader, anything else as a failed write with the answer's name.
WriteResult forwarded_write_result(wire::Command command, const std::string& payload);

// Whether a request forwarded as `$system` may run as the system: only a WriteEvents to a
// statistics stream ($stats-...) or its metadata stream ($$$stats-...). The link is
// authenticated (cluster secret or mutual TLS), but a follower still gets no more than it needs.
bool system_forward_allowed(uint8_t command, const std::string& payload);

}  // namespace chorus::tcp
