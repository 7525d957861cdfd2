// Helpers shared by the stream subcommands: waiting for a client call, expected-version names,
// and events as JSON objects or table rows. One thread (the command's).
#pragma once

#include <chorus/client.hpp>

#include <Poco/JSON/Object.h>

#include <string>
#include <vector>

#include "cli/app.hpp"

namespace chorus::cli {

// Runs `start(handler)` and waits; throws Failure with the error's kind and message.
template <class T, class Start>
T call(Start&& start) {
  client::Result<T> result = client::wait<T>(std::forward<Start>(start));
  if (!result.ok()) {
    throw Failure(std::string(client::to_string(result.error().kind)) + ": " +
                  result.error().message);
  }
  return std::move(result.value());
}

// "any", "no-stream", "exists" or a number >= -4 (as EventStore: -2 any, -1 no stream,
// -4 stream exists). Throws UsageError.
int64_t parse_expected_version(const std::string& text);

// Throws UsageError naming `what` unless `text` is JSON (an object when `object_only`).
void require_json(const std::string& text, const std::string& what, bool object_only);

Poco::JSON::Object::Ptr event_json(const client::ResolvedEvent& event);
std::vector<std::string> event_row(const client::ResolvedEvent& event);
std::vector<std::string> event_headers();
// Milliseconds since the epoch as ISO-8601 UTC.
std::string iso_time(int64_t epoch_ms);

}  // namespace chorus::cli
