// The standard projections' link rules (see system_projections.hpp).
#include "worker/projections/system_projections.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/uuid/name_generator_sha1.hpp>

#include <cctype>
#include <sstream>

namespace chorus::projections {
namespace {

constexpr const char* kLinkType = "$>";
constexpr const char* kCorrelationPropertyKey = "correlationIdProperty";
// A correlation property name is a JSON key in event metadata, not a document.
constexpr size_t kCorrelationPropertyBytesMax = 200;

// The namespace of link ids (a fixed random UUID): ids are SHA-1 name-based (RFC 4122 v5).
const Guid kLinkIdNamespace = {{0x6d, 0x2b, 0x41, 0x1e, 0x93, 0x0c, 0x4f, 0x55, 0xa1, 0x7e, 0x58,
                                0x3c, 0x0b, 0x92, 0xd4, 0x17}};

bool is_system_stream(const std::string& stream) { return !stream.empty() && stream[0] == '$'; }

std::optional<std::string> correlation_id_of(const EventRecord& r, const std::string& key) {
  if (r.metadata.find(key) == std::string::npos) return std::nullopt;
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(r.metadata).extract<Poco::JSON::Object::Ptr>();
    if (!o || !o->has(key) || !o->get(key).isString()) return std::nullopt;
    auto id = o->getValue<std::string>(key);
    if (id.empty()) return std::nullopt;
    return id;
  } catch (const std::exception&) {
    return std::nullopt;  // metadata that is not JSON has no correlation id
  }
}

// Where `p` links `r` to, if anywhere.
std::optional<std::string> target_of(SystemProjection p, const EventRecord& r,
                                     const SystemRules& rules) {
  switch (p) {
    case SystemProjection::Streams:
      if (r.number == 0) return std::string("$streams");
      return std::nullopt;
    case SystemProjection::StreamByCategory:
      if (r.number != 0) return std::nullopt;
      if (auto c = category_of(r.stream, rules)) return "$category-" + *c;
      return std::nullopt;
    case SystemProjection::ByCategory:
      if (auto c = category_of(r.stream, rules)) return "$ce-" + *c;
      return std::nullopt;
    case SystemProjection::ByEventType:
      if (r.event_type.empty()) return std::nullopt;
      return "$et-" + r.event_type;
    case SystemProjection::ByCorrelationId:
      if (auto id = correlation_id_of(r, rules.correlation_property)) return "$bc-" + *id;
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

const char* name_of(SystemProjection p) {
  switch (p) {
    case SystemProjection::Streams:
      return "$streams";
    case SystemProjection::StreamByCategory:
      return "$stream_by_category";
    case SystemProjection::ByCategory:
      return "$by_category";
    case SystemProjection::ByEventType:
      return "$by_event_type";
    case SystemProjection::ByCorrelationId:
      return "$by_correlation_id";
  }
  return "?";
}

std::string checkpoint_stream_of(const std::string& projection_name) {
  return "$projections-" + projection_name + "-checkpoint";
}

std::string partition_result_stream_of(const std::string& projection_name,
                                       const std::string& partition) {
  return "$projections-" + projection_name + "-" + partition + "-result";
}

std::optional<std::string> category_of(const std::string& stream, const SystemRules& rules) {
  const auto at =
      rules.category_by_last ? stream.rfind(rules.separator) : stream.find(rules.separator);
  if (at == std::string::npos || at == 0) return std::nullopt;
  return stream.substr(0, at);
}

std::optional<SystemProjection> system_projection_named(const std::string& name) {
  for (SystemProjection p : kSystemProjections) {
    if (name == name_of(p)) return p;
  }
  return std::nullopt;
}

std::string query_of(SystemProjection p, const SystemRules& rules) {
  switch (p) {
    case SystemProjection::StreamByCategory:
    case SystemProjection::ByCategory:
      return std::string(rules.category_by_last ? "last" : "first") + "\n" + rules.separator;
    case SystemProjection::ByCorrelationId: {
      Poco::JSON::Object o;
      o.set(kCorrelationPropertyKey, rules.correlation_property);
      std::ostringstream out;
      o.stringify(out);
      return out.str();
    }
    case SystemProjection::Streams:
    case SystemProjection::ByEventType:
      break;
  }
  return "";
}

namespace {

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// EventStore's categorization source: one separator character (last), or "first|last\n<c>".
std::optional<SystemRules> parse_category_query(const std::string& query, SystemRules rules,
                                                std::string* error) {
  const std::string source = trimmed(query);
  const char* format = "Configuration format is: first|last, a newline, one separator character";
  if (source.size() == 1) {
    rules.category_by_last = true;
    rules.separator = source[0];
    return rules;
  }
  const auto newline = source.find('\n');
  if (source.empty() || newline == std::string::npos ||
      source.find('\n', newline + 1) != std::string::npos) {
    *error = std::string("Invalid configuration. ") + format;
    return std::nullopt;
  }
  std::string direction = trimmed(source.substr(0, newline));
  for (char& c : direction) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string separator = source.substr(newline + 1);
  if (!separator.empty() && separator.back() == '\r') separator.pop_back();
  if (direction != "first" && direction != "last") {
    *error = std::string("Invalid direction specifier. Expected 'first' or 'last'. ") + format;
    return std::nullopt;
  }
  if (separator.size() != 1) {
    *error = std::string("Single separator expected. ") + format;
    return std::nullopt;
  }
  rules.category_by_last = direction == "last";
  rules.separator = separator[0];
  return rules;
}

std::optional<SystemRules> parse_correlation_query(const std::string& query, SystemRules rules,
                                                   std::string* error) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(query).extract<Poco::JSON::Object::Ptr>();
    if (!o || !o->has(kCorrelationPropertyKey) || !o->get(kCorrelationPropertyKey).isString()) {
      *error = "Expected {\"correlationIdProperty\": \"<metadata property>\"}";
      return std::nullopt;
    }
    auto property = o->getValue<std::string>(kCorrelationPropertyKey);
    if (property.empty() || property.size() > kCorrelationPropertyBytesMax) {
      *error = "correlationIdProperty needs 1 to " + std::to_string(kCorrelationPropertyBytesMax) +
               " bytes";
      return std::nullopt;
    }
    rules.correlation_property = std::move(property);
    return rules;
  } catch (const std::exception& e) {
    *error = std::string("The query is not JSON: ") + e.what();
    return std::nullopt;
  }
}

}  // namespace

std::optional<SystemRules> parse_query(SystemProjection p, const std::string& query,
                                       SystemRules rules, std::string* error) {
  switch (p) {
    case SystemProjection::StreamByCategory:
    case SystemProjection::ByCategory:
      return parse_category_query(query, std::move(rules), error);
    case SystemProjection::ByCorrelationId:
      return parse_correlation_query(query, std::move(rules), error);
    case SystemProjection::Streams:
    case SystemProjection::ByEventType:
      break;
  }
  if (!trimmed(query).empty()) {
    *error = std::string(name_of(p)) + " takes no query";
    return std::nullopt;
  }
  return rules;
}

Guid link_id(SystemProjection p, const Position& source) {
  boost::uuids::name_generator_sha1 generate(kLinkIdNamespace);
  return generate(std::string(name_of(p)) + "@" + std::to_string(source.commit) + "/" +
                  std::to_string(source.prepare));
}

std::optional<Link> link_for(SystemProjection p, const EventRecord& r, const SystemRules& rules) {
  if (is_system_stream(r.stream) || r.event_type == kLinkType || r.number == kDeletedStreamNumber) {
    return std::nullopt;
  }
  auto target = target_of(p, r, rules);
  if (!target) return std::nullopt;
  Poco::JSON::Object meta;
  meta.set("$o", r.stream);
  meta.set("$c", r.position.commit);
  meta.set("$p", r.position.prepare);
  std::ostringstream meta_json;
  meta.stringify(meta_json);
  Link link;
  link.stream = std::move(*target);
  link.event = NewEvent{
      link_id(p, r.position), kLinkType, false, true, std::to_string(r.number) + "@" + r.stream,
      meta_json.str()};
  return link;
}

}  // namespace chorus::projections
