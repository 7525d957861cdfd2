// The body of a POST /streams request as events (EventStore's events+json array, or one event
// with its type and id in headers), or the reply that refuses it. Pure: no Engine, no sockets,
// so the HTTP write fuzz target (tests/fuzz/http_write_fuzz.cpp) links only this and its helpers.
#pragma once

#include "worker/http/request.hpp"

#include <optional>
#include <string>
#include <vector>

namespace chorus::http {

// The events of a write request body, or the reply that refuses it.
struct ParsedWrite {
  std::vector<NewEvent> events;
  std::optional<Reply> refusal;  // 400 / 307 / 413
};

// Parses a POST /streams body by content type: an events+json array, or one event
// (application/json with ES-EventType and ES-EventId; without an id -> 307 to incoming/{guid}).
// `default_type` names the event type when the header is absent ("" = required).
ParsedWrite parse_write_body(const Request& request, const std::string& stream,
                             const std::string& default_type);

}  // namespace chorus::http
