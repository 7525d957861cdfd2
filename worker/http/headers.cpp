// Header parsing and formatting (see headers.hpp).
#include "worker/http/headers.hpp"

#include "common/text.hpp"

#include "worker/http/limits.hpp"

#include <Poco/Base64Decoder.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <sstream>

namespace chorus::http {
namespace {

using text::lower;
using text::trim;

std::optional<int64_t> parse_integer(std::string_view text) {
  text = trim(text);
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

std::optional<uint64_t> parse_hex16(std::string_view text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value, 16);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// FNV-1a: a hash that is the same in every process, for ETags.
uint32_t stable_hash(std::string_view text) {
  uint32_t hash = 2166136261u;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619u;
  }
  return hash;
}

}  // namespace

std::string header_error_text(std::string_view header) {
  return std::string(header) + " header in wrong format.";
}

std::optional<int64_t> parse_expected_version(const std::optional<std::string>& value) {
  if (!value) return kExpectedAny;
  const std::optional<int64_t> number = parse_integer(*value);
  if (!number || *number < kExpectedStreamExists) return std::nullopt;
  return number;
}

std::optional<bool> parse_bool_header(const std::optional<std::string>& value, bool fallback) {
  if (!value) return fallback;
  const std::string text = lower(trim(*value));
  if (text == "true") return true;
  if (text == "false") return false;
  return std::nullopt;
}

std::optional<int> parse_long_poll(const std::optional<std::string>& value) {
  if (!value) return 0;
  const std::optional<int64_t> seconds = parse_integer(*value);
  if (!seconds || *seconds < 0) return std::nullopt;
  return static_cast<int>(std::min<int64_t>(*seconds, kLongPollSecondsMax));
}

std::optional<int64_t> parse_non_negative(std::string_view text) {
  if (text.empty() || !std::all_of(text.begin(), text.end(),
                                   [](unsigned char c) { return std::isdigit(c) != 0; })) {
    return std::nullopt;
  }
  const std::optional<int64_t> number = parse_integer(text);
  if (!number || *number < 0) return std::nullopt;
  return number;
}

std::optional<Credentials> parse_basic_auth(std::string_view header) {
  header = trim(header);
  if (header.size() < 6 || lower(header.substr(0, 6)) != "basic ") return std::nullopt;
  std::istringstream encoded(std::string(trim(header.substr(6))));
  std::string decoded;
  try {
    Poco::Base64Decoder decoder(encoded);
    decoded.assign(std::istreambuf_iterator<char>(decoder), std::istreambuf_iterator<char>());
  } catch (...) {
    return std::nullopt;
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return Credentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
}

std::string format_position(Position position) {
  char text[40];
  std::snprintf(text, sizeof text, "%016llX%016llX",
                static_cast<unsigned long long>(position.commit),
                static_cast<unsigned long long>(position.prepare));
  return text;
}

std::optional<Position> parse_position(std::string_view text) {
  if (text.size() != 32) return std::nullopt;
  const std::optional<uint64_t> commit = parse_hex16(text.substr(0, 16));
  const std::optional<uint64_t> prepare = parse_hex16(text.substr(16));
  if (!commit || !prepare) return std::nullopt;
  return Position{static_cast<int64_t>(*commit), static_cast<int64_t>(*prepare)};
}

Embed parse_embed(const std::optional<std::string>& value) {
  if (!value) return Embed::None;
  const std::string text = lower(trim(*value));
  if (text == "content") return Embed::Content;
  if (text == "rich") return Embed::Rich;
  if (text == "body") return Embed::Body;
  if (text == "prettybody") return Embed::PrettyBody;
  if (text == "tryharder") return Embed::TryHarder;
  return Embed::None;
}

std::string_view media_type_name(MediaType type) {
  switch (type) {
    case MediaType::AtomJson:
      return "application/vnd.eventstore.atom+json";
    case MediaType::EventsJson:
      return "application/vnd.eventstore.events+json";
    case MediaType::Json:
      break;
  }
  return "application/json";
}

std::optional<MediaType> negotiate(const std::optional<std::string>& accept, MediaType fallback) {
  if (!accept || trim(*accept).empty()) return fallback;
  std::string_view rest = *accept;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const size_t semicolon = item.find(';');
    const std::string type = lower(trim(item.substr(0, semicolon)));
    if (type == "application/json") return MediaType::Json;
    if (type == "application/vnd.eventstore.atom+json") return MediaType::AtomJson;
    if (type == "application/vnd.eventstore.events+json") return MediaType::EventsJson;
    if (type == "*/*" || type == "application/*") return fallback;
  }
  return std::nullopt;
}

std::string stream_etag(int64_t version, MediaType type) {
  return std::to_string(version) + ";" + std::to_string(stable_hash(media_type_name(type)));
}

bool etag_matches(const std::optional<std::string>& if_none_match, const std::string& etag) {
  if (!if_none_match) return false;
  std::string_view rest = *if_none_match;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.size() >= 2 && item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (item.size() >= 2 && item.front() == '"' && item.back() == '"') {
      item = item.substr(1, item.size() - 2);
    }
    if (item == etag) return true;
  }
  return false;
}

std::string join_header_values(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string safe_reason_phrase(std::string reason) {
  for (char& c : reason) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return reason;
}

}  // namespace chorus::http
