// The standard (system) projections' rules: which link event each one writes for a committed
// record. Pure functions; any thread. The leader service that reads $all, writes the links and
// keeps checkpoints is worker/services/system_projections.
//
// Each link gets an event id derived from its projection's name and the source record's
// position, so writing it again after a restart or failover is an idempotent retry (the write
// path recognises the id) and never a second link.
#pragma once

#include "worker/engine/types.hpp"

#include <array>
#include <optional>
#include <string>

namespace chorus::projections {

enum class SystemProjection { Streams, StreamByCategory, ByCategory, ByEventType, ByCorrelationId };

inline constexpr std::array<SystemProjection, 5> kSystemProjections = {
    SystemProjection::Streams, SystemProjection::StreamByCategory, SystemProjection::ByCategory,
    SystemProjection::ByEventType, SystemProjection::ByCorrelationId};

// EventStore's names: $streams, $stream_by_category, $by_category, $by_event_type,
// $by_correlation_id.
const char* name_of(SystemProjection p);
// Where a projection keeps its checkpoint: $projections-<name>-checkpoint.
std::string checkpoint_stream_of(const std::string& projection_name);

// A stream's category as EventStore's default ("first" separator "-"): the part before the first
// '-', when there is a non-empty one.
std::optional<std::string> category_of(const std::string& stream);

struct Link {
  std::string stream;  // where the link goes
  NewEvent event;      // a `$>` event with data "<number>@<stream>"
};

// The link `p` writes for `record`, if any. Records of system streams ('$' prefix), links and
// deletion tombstones produce none.
std::optional<Link> link_for(SystemProjection p, const EventRecord& record);

// The deterministic id of the link `p` writes for the record at `source`.
Guid link_id(SystemProjection p, const Position& source);

}  // namespace chorus::projections
