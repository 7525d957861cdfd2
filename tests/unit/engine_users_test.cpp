// Proves the user records' pure helpers: password hashes verify only the right password, and the
// credential cache key never lets two different (login, password) pairs share an entry (fuzzing
// finding F3: ("a\0", "b") and ("a", "\0b") collided).
#include "worker/engine/users.hpp"

#include <gtest/gtest.h>

#include <string>

namespace chorus {
namespace {

using namespace std::string_literals;

TEST(Users, CredentialCacheKeysNeverCollide) {
  EXPECT_NE(credential_cache_key("a\0"s, "b"), credential_cache_key("a", "\0b"s));
  EXPECT_NE(credential_cache_key("ab", "c"), credential_cache_key("a", "bc"));
  EXPECT_EQ(credential_cache_key("admin", "changeit"), credential_cache_key("admin", "changeit"));
}

TEST(Users, PasswordHashVerifiesOnlyTheRightPassword) {
  const auto user = make_user("alice", "Alice", {"$ops"}, "secret");
  EXPECT_TRUE(verify_password(user, "secret"));
  EXPECT_FALSE(verify_password(user, "secreT"));
  const auto back = user_from_json(user_to_json(user));
  ASSERT_TRUE(back);
  EXPECT_TRUE(verify_password(*back, "secret"));
  EXPECT_EQ(back->groups, (std::vector<std::string>{"$ops"}));
}

}  // namespace
}  // namespace chorus
