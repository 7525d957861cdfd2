// The standard projections' link rules (see system_projections.hpp).
#include "worker/projections/system_projections.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/uuid/name_generator_sha1.hpp>

#include <sstream>

namespace chorus::projections {
namespace {

constexpr const char* kLinkType = "$>";
constexpr const char* kCorrelationIdKey = "$correlationId";

// The namespace of link ids (a fixed random UUID): ids are SHA-1 name-based (RFC 4122 v5).
const Guid kLinkIdNamespace = {{0x6d, 0x2b, 0x41, 0x1e, 0x93, 0x0c, 0x4f, 0x55, 0xa1, 0x7e, 0x58,
                                0x3c, 0x0b, 0x92, 0xd4, 0x17}};

bool is_system_stream(const std::string& stream) { return !stream.empty() && stream[0] == '$'; }

std::optional<std::string> correlation_id_of(const EventRecord& r) {
  if (r.metadata.find(kCorrelationIdKey) == std::string::npos) return std::nullopt;
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(r.metadata).extract<Poco::JSON::Object::Ptr>();
    if (!o || !o->has(kCorrelationIdKey) || !o->get(kCorrelationIdKey).isString()) {
      return std::nullopt;
    }
    auto id = o->getValue<std::string>(kCorrelationIdKey);
    if (id.empty()) return std::nullopt;
    return id;
  } catch (const std::exception&) {
    return std::nullopt;  // metadata that is not JSON has no correlation id
  }
}

// Where `p` links `r` to, if anywhere.
std::optional<std::string> target_of(SystemProjection p, const EventRecord& r) {
  switch (p) {
    case SystemProjection::Streams:
      if (r.number == 0) return std::string("$streams");
      return std::nullopt;
    case SystemProjection::StreamByCategory:
      if (r.number != 0) return std::nullopt;
      if (auto c = category_of(r.stream)) return "$category-" + *c;
      return std::nullopt;
    case SystemProjection::ByCategory:
      if (auto c = category_of(r.stream)) return "$ce-" + *c;
      return std::nullopt;
    case SystemProjection::ByEventType:
      if (r.event_type.empty()) return std::nullopt;
      return "$et-" + r.event_type;
    case SystemProjection::ByCorrelationId:
      if (auto id = correlation_id_of(r)) return "$bc-" + *id;
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

std::optional<std::string> category_of(const std::string& stream) {
  const auto dash = stream.find('-');
  if (dash == std::string::npos || dash == 0) return std::nullopt;
  return stream.substr(0, dash);
}

Guid link_id(SystemProjection p, const Position& source) {
  boost::uuids::name_generator_sha1 generate(kLinkIdNamespace);
  return generate(std::string(name_of(p)) + "@" + std::to_string(source.commit) + "/" +
                  std::to_string(source.prepare));
}

std::optional<Link> link_for(SystemProjection p, const EventRecord& r) {
  if (is_system_stream(r.stream) || r.event_type == kLinkType || r.number == kDeletedStreamNumber) {
    return std::nullopt;
  }
  auto target = target_of(p, r);
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
