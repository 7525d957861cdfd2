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
// Where a partition's result goes (EventStore's default pattern):
// $projections-<name>-<partition>-result.
std::string partition_result_stream_of(const std::string& projection_name,
                                       const std::string& partition);

// A standard projection's settings, which EventStore keeps as its query text: $by_category and
// $stream_by_category "first\n-" (the category is what precedes the first separator) or
// "last\n-" (what precedes the last one; a lone separator character means last too);
// $by_correlation_id {"correlationIdProperty":"$correlationId"} (the metadata property read).
struct SystemRules {
  bool category_by_last = false;
  char separator = '-';
  std::string correlation_property = "$correlationId";
};
// The query text of `p` with `rules` (EventStore's form); "" for projections without settings.
std::string query_of(SystemProjection p, const SystemRules& rules);
// `rules` with `p`'s settings replaced by those of `query`, or nullopt with `error` set (the
// reason, in EventStore's words) when the query is not a valid one for `p`.
std::optional<SystemRules> parse_query(SystemProjection p, const std::string& query,
                                       SystemRules rules, std::string* error);
// The projection named `name` ($by_category, ...), if it is a standard one.
std::optional<SystemProjection> system_projection_named(const std::string& name);

// A stream's category: with EventStore's default rules ("first" separator "-") the part before
// the first '-', when there is a non-empty one.
std::optional<std::string> category_of(const std::string& stream, const SystemRules& rules = {});

struct Link {
  std::string stream;  // where the link goes
  NewEvent event;      // a `$>` event with data "<number>@<stream>"
};

// The link `p` writes for `record`, if any. Records of system streams ('$' prefix), links and
// deletion tombstones produce none.
std::optional<Link> link_for(SystemProjection p, const EventRecord& record,
                             const SystemRules& rules = {});

// The deterministic id of the link `p` writes for the record at `source`.
Guid link_id(SystemProjection p, const Position& source);

}  // namespace chorus::projections
