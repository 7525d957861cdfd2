// ProjectionConfig: see config.hpp.
#include "worker/projections/config.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <sstream>
#include <utility>
#include <vector>

namespace chorus::projections {
namespace {

std::vector<std::pair<const char*, int64_t ProjectionConfig::*>> numeric_fields() {
  return {{"checkpointAfterMs", &ProjectionConfig::checkpoint_after_ms},
          {"checkpointHandledThreshold", &ProjectionConfig::checkpoint_handled_threshold},
          {"checkpointUnhandledBytesThreshold",
           &ProjectionConfig::checkpoint_unhandled_bytes_threshold},
          {"pendingEventsThreshold", &ProjectionConfig::pending_events_threshold},
          {"maxWriteBatchLength", &ProjectionConfig::max_write_batch_length},
          {"maxAllowedWritesInFlight", &ProjectionConfig::max_allowed_writes_in_flight},
          {"projectionExecutionTimeout", &ProjectionConfig::projection_execution_timeout_ms}};
}

}  // namespace

std::string config_json(const ProjectionConfig& config) {
  Poco::JSON::Object o(Poco::JSON_PRESERVE_KEY_ORDER);
  o.set("emitEnabled", config.emit_enabled);
  o.set("trackEmittedStreams", config.track_emitted_streams);
  for (const auto& [name, field] : numeric_fields()) o.set(name, config.*field);
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

std::optional<ProjectionConfig> parse_config(const std::string& json, ProjectionConfig base,
                                             std::string* error) {
  Poco::JSON::Object::Ptr o;
  try {
    Poco::JSON::Parser parser;
    o = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
  } catch (const std::exception&) {
    o = nullptr;
  }
  if (!o) {
    *error = "Failed to parse the projection config (a JSON object is expected)";
    return std::nullopt;
  }
  try {
    if (o->has("emitEnabled")) base.emit_enabled = o->get("emitEnabled").convert<bool>();
    if (o->has("trackEmittedStreams")) {
      base.track_emitted_streams = o->get("trackEmittedStreams").convert<bool>();
    }
    for (const auto& [name, field] : numeric_fields()) {
      if (!o->has(name) || o->get(name).isEmpty()) continue;
      const auto& value = o->get(name);
      if (!value.isNumeric()) {
        *error = std::string(name) + " must be a number";
        return std::nullopt;
      }
      const auto number = value.convert<int64_t>();
      if (number < 0 || number > kConfigValueMax) {
        *error = std::string(name) + " must be between 0 and " + std::to_string(kConfigValueMax);
        return std::nullopt;
      }
      base.*field = number;
    }
  } catch (const std::exception& e) {
    *error = std::string("Failed to parse the projection config: ") + e.what();
    return std::nullopt;
  }
  return base;
}

}  // namespace chorus::projections
