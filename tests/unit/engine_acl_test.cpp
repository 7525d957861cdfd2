// Proves ACL resolution (PROTOCOL.md F2) and metadata parsing (F3).
#include "worker/engine/acl.hpp"

#include <gtest/gtest.h>

namespace chorus {
namespace {

const Principal kAnon = Principal::anon();
const Principal kAdmin{"admin", {"$admins"}};
const Principal kOps{"ops", {"$ops"}};
const Principal kBob{"bob", {}};

TEST(Acl, DefaultsOpenUserStreamsAndCloseSystemStreams) {
  const StreamMetadata none;
  const SystemSettings defaults;
  EXPECT_TRUE(check_access("orders", StreamAccess::Write, kAnon, none, defaults));
  EXPECT_TRUE(check_access("orders", StreamAccess::Read, kAnon, none, defaults));
  EXPECT_FALSE(check_access("$all", StreamAccess::Read, kAnon, none, defaults));
  EXPECT_FALSE(check_access("$settings", StreamAccess::Read, kOps, none, defaults));
  EXPECT_TRUE(check_access("$all", StreamAccess::Read, kAdmin, none, defaults));
  EXPECT_FALSE(check_access("$all", StreamAccess::Write, kAdmin, none, defaults));
}

TEST(Acl, StreamAclThenSettingsThenDefaults) {
  const auto m = parse_metadata(R"({"$acl":{"$w":"$admins","$r":["bob","$ops"]}})");
  const SystemSettings defaults;
  EXPECT_FALSE(check_access("s", StreamAccess::Write, kAnon, m, defaults));
  EXPECT_TRUE(check_access("s", StreamAccess::Write, kAdmin, m, defaults));
  EXPECT_TRUE(check_access("s", StreamAccess::Read, kBob, m, defaults));
  EXPECT_TRUE(check_access("s", StreamAccess::Read, kOps, m, defaults));
  EXPECT_FALSE(check_access("s", StreamAccess::Read, kAnon, m, defaults));
  EXPECT_TRUE(check_access("s", StreamAccess::Delete, kAnon, m, defaults));  // not listed
  const auto settings = parse_settings(R"({"$userStreamAcl":{"$d":"$admins"}})");
  EXPECT_FALSE(check_access("s", StreamAccess::Delete, kAnon, m, settings));
}

TEST(Acl, MetastreamsMapToMetaAccess) {
  const auto m = parse_metadata(R"({"$acl":{"$mw":"$admins","$mr":"$all"}})");
  const SystemSettings defaults;
  EXPECT_FALSE(check_access("$$s", StreamAccess::Write, kAnon, m, defaults));
  EXPECT_TRUE(check_access("$$s", StreamAccess::Read, kAnon, m, defaults));
  EXPECT_FALSE(check_access("$$s", StreamAccess::Delete, kAdmin, m, defaults));
}

TEST(Metadata, KnownKeysCustomKeysAndInvalidJson) {
  const auto m = parse_metadata(R"({"$maxCount":5,"$maxAge":60,"$tb":3,"custom":{"x":1}})");
  EXPECT_EQ(m.max_count, 5);
  EXPECT_EQ(m.max_age_s, 60);
  EXPECT_EQ(m.truncate_before, 3);
  EXPECT_FALSE(m.soft_deleted());
  const auto bad = parse_metadata("{not json");
  EXPECT_FALSE(bad.max_count);
  EXPECT_FALSE(bad.acl);
  EXPECT_FALSE(parse_metadata(R"({"$maxCount":-1})").max_count);
  EXPECT_TRUE(parse_metadata(R"({"$tb":9223372036854775807})").soft_deleted());
  const auto kept = metadata_with_truncate_before(R"({"custom":"v","$tb":1})", 7);
  EXPECT_NE(kept.find("\"custom\""), std::string::npos);
  EXPECT_EQ(parse_metadata(kept).truncate_before, 7);
}

}  // namespace
}  // namespace chorus
