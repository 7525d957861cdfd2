// User records ($user-<login> streams) and salted password hashes (OpenSSL PBKDF2-HMAC-SHA256).
// Pure functions; any thread.
#pragma once

#include "worker/engine/types.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

// Slow on purpose: a stolen user stream should not give passwords away cheaply. Successful
// checks are cached by the engine, so this cost is paid once per credential, not per request.
inline constexpr int kPasswordHashIterations = 50000;
inline constexpr int kPasswordSaltBytes = 16;
inline constexpr const char* kUserEventType = "$UserCreated";
inline constexpr const char* kUsersStream = "$users";

struct UserRecord {
  std::string login;
  std::string full_name;
  std::vector<std::string> groups;
  bool disabled = false;
  std::string salt_b64;
  std::string hash_b64;
};

std::string user_stream(std::string_view login);  // "$user-<login>"

// A record with a fresh random salt and the password's hash.
UserRecord make_user(std::string login, std::string full_name, std::vector<std::string> groups,
                     std::string_view password);
bool verify_password(const UserRecord& user, std::string_view password);

std::string user_to_json(const UserRecord& user);
std::optional<UserRecord> user_from_json(std::string_view json);

// A key for the credential cache that does not keep the password itself.
std::string credential_cache_key(std::string_view login, std::string_view password);

}  // namespace chorus
