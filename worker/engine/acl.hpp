// Stream metadata ($maxCount, $maxAge, $tb, $cacheControl, $acl, custom keys), the $settings
// defaults, and access checks as EventStore's IndexReader.CheckStreamAccess (PROTOCOL.md F2, F3).
// Pure functions and values; any thread.
#pragma once

#include "worker/engine/types.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

enum class StreamAccess { Read, Write, Delete, MetaRead, MetaWrite };

// One `$acl` object: the roles allowed per access type. An absent entry falls back to defaults.
struct StreamAcl {
  std::optional<std::vector<std::string>> read, write, del, meta_read, meta_write;
  const std::optional<std::vector<std::string>>& roles(StreamAccess access) const;
};

struct StreamMetadata {
  std::optional<int64_t> max_count;
  std::optional<int64_t> max_age_s;
  std::optional<int64_t> truncate_before;
  std::optional<int64_t> cache_control_s;
  std::optional<bool> temp;
  std::optional<StreamAcl> acl;
  bool soft_deleted() const { return truncate_before == kDeletedStreamNumber; }
};

struct SystemSettings {
  std::optional<StreamAcl> user_stream_acl;
  std::optional<StreamAcl> system_stream_acl;
};

// Invalid JSON or a non-object gives empty metadata, as EventStore does; invalid values of known
// keys are ignored.
StreamMetadata parse_metadata(std::string_view json);
SystemSettings parse_settings(std::string_view json);

// "$$x" -> true. Metastreams hold the metadata of stream x.
bool is_metastream(std::string_view stream);
// "$$x" -> "x"; anything else unchanged.
std::string_view original_stream(std::string_view stream);
std::string metastream_of(std::string_view stream);
bool is_system_stream(std::string_view stream);

// May `who` perform `access` on `stream`, given the metadata of the stream whose ACL governs
// (for "$$x" pass x's metadata; the function maps the access itself) and the system settings?
bool check_access(std::string_view stream, StreamAccess access, const Principal& who,
                  const StreamMetadata& metadata, const SystemSettings& settings);

// Sets "$tb" in a metadata JSON object, keeping every other key (used when a soft-deleted stream
// is written to again). Invalid JSON becomes {"$tb": n}.
std::string metadata_with_truncate_before(std::string_view json, int64_t truncate_before);

}  // namespace chorus
