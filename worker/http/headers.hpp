// Pure parsing and formatting of EventStore's HTTP conventions: ES-* headers, Basic credentials,
// $all positions (%016X%016X), embed levels, Accept negotiation, ETags. No I/O; any thread.
#pragma once

#include "worker/engine/types.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::http {

// A list header's values (Allow, Access-Control-Allow-Methods), comma-separated.
std::string join_header_values(const std::vector<std::string>& items);
// A reason phrase that cannot break the status line: CR and LF become spaces.
std::string safe_reason_phrase(std::string reason);

// "<header> header in wrong format." as EventStore words a header error.
std::string header_error_text(std::string_view header);

// ES-ExpectedVersion: absent -> Any (-2); an integer >= -4; nullopt = wrong format.
std::optional<int64_t> parse_expected_version(const std::optional<std::string>& value);
// Booleans ("true"/"false" in any case; absent -> fallback); nullopt = wrong format.
std::optional<bool> parse_bool_header(const std::optional<std::string>& value, bool fallback);
// ES-LongPoll: seconds, absent -> 0, capped at kLongPollSecondsMax; nullopt = wrong format.
std::optional<int> parse_long_poll(const std::optional<std::string>& value);
// A non-negative decimal integer (event numbers, counts); nullopt when not one.
std::optional<int64_t> parse_non_negative(std::string_view text);

// Basic credentials from an Authorization header; nullopt when not "Basic <base64 user:pass>".
struct Credentials {
  std::string login;
  std::string password;
};
std::optional<Credentials> parse_basic_auth(std::string_view header);

// $all positions in URLs: commit then prepare, each as 16 upper-case hex digits.
std::string format_position(Position position);
std::optional<Position> parse_position(std::string_view text);

enum class Embed { None, Content, Rich, Body, PrettyBody, TryHarder };
// The embed query value, case-insensitive; unknown or absent -> None (as EventStore).
Embed parse_embed(const std::optional<std::string>& value);

// The media types a feed or event can be answered with.
enum class MediaType { Json, AtomJson, EventsJson };
std::string_view media_type_name(MediaType type);
// Picks the answer type from an Accept header: the first listed supported type (q-values are
// honoured in listed order only), "*/*" or "application/*" or absent -> `fallback`. nullopt when
// nothing acceptable is listed (406).
std::optional<MediaType> negotiate(const std::optional<std::string>& accept, MediaType fallback);

// EventStore's ETag for a stream version and answer type: "<version>;<hash of type>".
std::string stream_etag(int64_t version, MediaType type);
// True when an If-None-Match header names `etag` (quoted or not, or in a list).
bool etag_matches(const std::optional<std::string>& if_none_match, const std::string& etag);

}  // namespace chorus::http
