// Fuzz target: stream metadata, $settings and access checks (worker/engine/acl). Properties:
// parsing never throws; setting $tb keeps every other key; the explicit refusals ($all write,
// metastream delete) hold even for admins; an extra group never takes access away; an admin
// passes every other check.
#include "tests/fuzz/fuzz_check.hpp"
#include "worker/engine/acl.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

using chorus::StreamAccess;
using chorus::StreamMetadata;

constexpr std::array<const char*, 6> kRoles = {"$admins", "$ops", "$all", "ops", "alice", "$$"};
constexpr std::array<StreamAccess, 5> kAccesses = {StreamAccess::Read, StreamAccess::Write,
                                                   StreamAccess::Delete, StreamAccess::MetaRead,
                                                   StreamAccess::MetaWrite};

bool same_except_tb(const StreamMetadata& a, const StreamMetadata& b) {
  auto acl_equal = [](const auto& x, const auto& y) {
    if (x.has_value() != y.has_value()) return false;
    if (!x) return true;
    return x->read == y->read && x->write == y->write && x->del == y->del &&
           x->meta_read == y->meta_read && x->meta_write == y->meta_write;
  };
  return a.max_count == b.max_count && a.max_age_s == b.max_age_s &&
         a.cache_control_s == b.cache_control_s && a.temp == b.temp && acl_equal(a.acl, b.acl);
}

void check_truncate_before(const std::string& json, int64_t tb) {
  const StreamMetadata before = chorus::parse_metadata(json);
  const std::string updated = chorus::metadata_with_truncate_before(json, tb);
  const StreamMetadata after = chorus::parse_metadata(updated);
  FUZZ_CHECK(after.truncate_before == (tb >= 0 ? std::optional<int64_t>(tb) : std::nullopt),
             "$tb not set");
  FUZZ_CHECK(same_except_tb(before, after), "setting $tb changed another key");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string stream = in.ConsumeRandomLengthString(64);
  const StreamAccess access = in.PickValueInArray(kAccesses);
  chorus::Principal who;
  who.login = in.ConsumeBool() ? in.ConsumeRandomLengthString(16) : "";
  const size_t groups = in.ConsumeIntegralInRange<size_t>(0, 3);
  for (size_t i = 0; i < groups; ++i) who.groups.emplace_back(in.PickValueInArray(kRoles));
  const std::string extra_group = in.PickValueInArray(kRoles);
  const int64_t tb = in.ConsumeIntegral<int64_t>();
  const std::string settings_json = in.ConsumeRandomLengthString(512);
  const std::string metadata_json = in.ConsumeRemainingBytesAsString();

  const StreamMetadata metadata = chorus::parse_metadata(metadata_json);
  const chorus::SystemSettings settings = chorus::parse_settings(settings_json);
  const bool allowed = chorus::check_access(stream, access, who, metadata, settings);

  chorus::Principal more = who;
  more.groups.push_back(extra_group);
  FUZZ_CHECK(!allowed || chorus::check_access(stream, access, more, metadata, settings),
             "an extra group took access away");

  const bool refused_always =
      (stream == "$all" && (access == StreamAccess::Write || access == StreamAccess::Delete)) ||
      (chorus::is_metastream(stream) && access != StreamAccess::Read &&
       access != StreamAccess::Write);
  chorus::Principal admin = who;
  if (admin.anonymous()) admin.login = "admin";  // the anonymous user has no groups
  admin.groups.emplace_back("$admins");
  const bool admin_allowed = chorus::check_access(stream, access, admin, metadata, settings);
  FUZZ_CHECK(admin_allowed == !refused_always, "admin access differs from the fixed rules");
  if (refused_always) FUZZ_CHECK(!allowed, "a fixed refusal was granted");
  FUZZ_CHECK(chorus::original_stream(chorus::metastream_of(stream)) == stream, "metastream name");

  check_truncate_before(metadata_json, tb);
  return 0;
}
