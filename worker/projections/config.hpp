// ProjectionConfig: EventStore's per-projection settings (GET/PUT /projection/{name}/config), kept
// in the projection's definition. Chorus applies emitEnabled, trackEmittedStreams and the
// checkpoint thresholds; the others are kept and shown as given. Pure; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace chorus::projections {

// The largest value any numeric setting may take (a typo, not a setting, beyond it).
inline constexpr int64_t kConfigValueMax = 1'000'000'000;

struct ProjectionConfig {
  bool emit_enabled = false;
  bool track_emitted_streams = false;
  int64_t checkpoint_after_ms = 0;               // no checkpoint sooner after the last
  int64_t checkpoint_handled_threshold = 4'000;  // events processed that make one due
  int64_t checkpoint_unhandled_bytes_threshold = 10'000'000;
  int64_t pending_events_threshold = 5'000;
  int64_t max_write_batch_length = 500;
  int64_t max_allowed_writes_in_flight = 0;
  int64_t projection_execution_timeout_ms = 250;
};

// EventStore's JSON of it (camelCase field names).
std::string config_json(const ProjectionConfig& config);
// `base` with the fields `json` names replaced; nullopt with `error` when the body is not a JSON
// object, a field has the wrong type, or a number is negative or above kConfigValueMax.
std::optional<ProjectionConfig> parse_config(const std::string& json, ProjectionConfig base,
                                             std::string* error);

}  // namespace chorus::projections
