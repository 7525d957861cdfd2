// Stream metadata parsing and ACL resolution (EventStore semantics, PROTOCOL.md F2/F3).
#include "worker/engine/acl.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <sstream>

namespace chorus {
namespace {

using Poco::JSON::Object;

Object::Ptr parse_object(std::string_view json) {
  try {
    Poco::JSON::Parser parser;
    auto value = parser.parse(std::string(json));
    if (value.type() == typeid(Object::Ptr)) return value.extract<Object::Ptr>();
  } catch (const std::exception&) {
  }
  return nullptr;
}

std::optional<int64_t> get_int(const Object::Ptr& o, const std::string& key) {
  if (!o->has(key)) return std::nullopt;
  try {
    const auto v = o->get(key);
    if (v.isNumeric() || v.isString()) return v.convert<int64_t>();
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<std::vector<std::string>> get_roles(const Object::Ptr& o, const std::string& key) {
  if (!o->has(key)) return std::nullopt;
  const auto v = o->get(key);
  std::vector<std::string> roles;
  try {
    if (v.isString()) {
      roles.push_back(v.convert<std::string>());
    } else if (v.type() == typeid(Poco::JSON::Array::Ptr)) {
      const auto array = v.extract<Poco::JSON::Array::Ptr>();
      for (size_t i = 0; i < array->size(); ++i)
        roles.push_back(array->get(i).convert<std::string>());
    } else {
      return std::nullopt;
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return roles;
}

std::optional<StreamAcl> parse_acl(const Object::Ptr& o, const std::string& key) {
  if (!o->has(key)) return std::nullopt;
  Object::Ptr acl;
  try {
    acl = o->getObject(key);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!acl) return std::nullopt;
  StreamAcl result;
  result.read = get_roles(acl, "$r");
  result.write = get_roles(acl, "$w");
  result.del = get_roles(acl, "$d");
  result.meta_read = get_roles(acl, "$mr");
  result.meta_write = get_roles(acl, "$mw");
  return result;
}

bool granted(const std::vector<std::string>& roles, const Principal& who) {
  for (const auto& role : roles) {
    if (role == "$all") return true;
    if (who.in_role(role)) return true;
  }
  return false;
}

}  // namespace

const std::optional<std::vector<std::string>>& StreamAcl::roles(StreamAccess access) const {
  switch (access) {
    case StreamAccess::Read:
      return read;
    case StreamAccess::Write:
      return write;
    case StreamAccess::Delete:
      return del;
    case StreamAccess::MetaRead:
      return meta_read;
    case StreamAccess::MetaWrite:
      return meta_write;
  }
  return read;
}

StreamMetadata parse_metadata(std::string_view json) {
  StreamMetadata m;
  const auto o = parse_object(json);
  if (!o) return m;
  if (auto v = get_int(o, "$maxCount"); v && *v > 0) m.max_count = v;
  if (auto v = get_int(o, "$maxAge"); v && *v > 0) m.max_age_s = v;
  if (auto v = get_int(o, "$tb"); v && *v >= 0) m.truncate_before = v;
  if (auto v = get_int(o, "$cacheControl"); v && *v > 0) m.cache_control_s = v;
  if (o->has("$tmp")) {
    try {
      m.temp = o->getValue<bool>("$tmp");
    } catch (const std::exception&) {
    }
  }
  m.acl = parse_acl(o, "$acl");
  return m;
}

SystemSettings parse_settings(std::string_view json) {
  SystemSettings s;
  const auto o = parse_object(json);
  if (!o) return s;
  s.user_stream_acl = parse_acl(o, "$userStreamAcl");
  s.system_stream_acl = parse_acl(o, "$systemStreamAcl");
  return s;
}

bool is_metastream(std::string_view stream) {
  return stream.size() >= 2 && stream.substr(0, 2) == "$$";
}

std::string_view original_stream(std::string_view stream) {
  return is_metastream(stream) ? stream.substr(2) : stream;
}

std::string metastream_of(std::string_view stream) { return "$$" + std::string(stream); }

bool is_system_stream(std::string_view stream) { return !stream.empty() && stream[0] == '$'; }

bool check_access(std::string_view stream, StreamAccess access, const Principal& who,
                  const StreamMetadata& metadata, const SystemSettings& settings) {
  if (stream == "$all" && (access == StreamAccess::Write || access == StreamAccess::Delete)) {
    return false;
  }
  if (is_metastream(stream)) {
    // Read/write of "$$x" is meta access to x; delete or meta access on a metastream is refused.
    if (access == StreamAccess::Delete || access == StreamAccess::MetaRead ||
        access == StreamAccess::MetaWrite) {
      return false;
    }
    access = access == StreamAccess::Read ? StreamAccess::MetaRead : StreamAccess::MetaWrite;
    stream = original_stream(stream);
  }
  if (who.is_admin()) return true;
  if (metadata.acl) {
    if (const auto& roles = metadata.acl->roles(access)) return granted(*roles, who);
  }
  const auto& fallback =
      is_system_stream(stream) ? settings.system_stream_acl : settings.user_stream_acl;
  if (fallback) {
    if (const auto& roles = fallback->roles(access)) return granted(*roles, who);
  }
  // Defaults: user streams are open to everyone, system streams to admins only.
  return !is_system_stream(stream);
}

std::string metadata_with_truncate_before(std::string_view json, int64_t truncate_before) {
  auto o = parse_object(json);
  if (!o) o = new Object;
  o->set("$tb", truncate_before);
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

}  // namespace chorus
