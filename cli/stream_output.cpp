// Event formatting for the stream subcommands (see stream_output.hpp).
#include "cli/stream_output.hpp"

#include <Poco/JSON/Parser.h>

#include <charconv>

#include "cli/table.hpp"
#include "common/gossip.hpp"
#include "common/guid.hpp"

namespace chorus::cli {
namespace {

// Data wider than this is cut in tables (--json prints all of it).
constexpr size_t kTableDataWidthMax = 80;

// JSON text as a parsed value, so --json output nests it; anything else as a string.
Poco::Dynamic::Var json_or_text(const std::string& text, bool is_json) {
  if (is_json && !text.empty()) {
    try {
      Poco::JSON::Parser parser;
      return parser.parse(text);
    } catch (const Poco::Exception&) {
      // Flagged as JSON but not JSON: shown as it is.
    }
  }
  return text;
}

}  // namespace

int64_t parse_expected_version(const std::string& text) {
  if (text == "any") return client::kExpectedVersionAny;
  if (text == "no-stream") return client::kExpectedVersionNoStream;
  if (text == "exists") return client::kExpectedVersionStreamExists;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() ||
      value < client::kExpectedVersionStreamExists || value == -3) {
    throw UsageError("--expected-version: '" + text +
                     "' is not any, no-stream, exists or an event number");
  }
  return value;
}

void require_json(const std::string& text, const std::string& what, bool object_only) {
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var parsed = parser.parse(text);
    if (object_only && parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
      throw UsageError(what + " must be a JSON object");
    }
  } catch (const Poco::Exception& e) {
    throw UsageError(what + " is not valid JSON (" + e.displayText() + ")");
  }
}

std::string iso_time(int64_t epoch_ms) { return iso8601_utc(epoch_ms * 1000); }

Poco::JSON::Object::Ptr event_json(const client::ResolvedEvent& resolved) {
  Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  const client::RecordedEvent* original = resolved.original();
  const client::RecordedEvent& e = resolved.event ? *resolved.event : *original;
  o->set("stream", e.stream);
  o->set("eventNumber", e.number);
  o->set("eventId", to_string(e.id));
  o->set("eventType", e.type);
  o->set("isJson", e.is_json);
  o->set("data", json_or_text(e.data, e.is_json));
  if (!e.metadata.empty()) o->set("metadata", json_or_text(e.metadata, true));
  o->set("created", iso_time(e.created_epoch_ms));
  if (resolved.link) {
    o->set("linkStream", resolved.link->stream);
    o->set("linkEventNumber", resolved.link->number);
  }
  if (resolved.position) {
    o->set("commitPosition", resolved.position->commit);
    o->set("preparePosition", resolved.position->prepare);
  }
  return o;
}

std::vector<std::string> event_headers() { return {"STREAM", "NUMBER", "TYPE", "CREATED", "DATA"}; }

std::vector<std::string> event_row(const client::ResolvedEvent& resolved) {
  const client::RecordedEvent& e = resolved.event ? *resolved.event : *resolved.original();
  return {e.stream, std::to_string(e.number), e.type, iso_time(e.created_epoch_ms),
          shorten(e.data, kTableDataWidthMax)};
}

}  // namespace chorus::cli
