// Fuzz target: user records as stored in $user-<login> streams (worker/engine/users). Properties:
// parsing never throws; a parsed record survives user_to_json and back unchanged; the credential
// cache key tells (login, password) pairs apart even when one is a prefix of the other.
// verify_password is left out: its PBKDF2 cost (by design) would make every input take 20 ms.
#include "tests/fuzz/fuzz_check.hpp"
#include "worker/engine/users.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

bool same(const chorus::UserRecord& a, const chorus::UserRecord& b) {
  return a.login == b.login && a.full_name == b.full_name && a.groups == b.groups &&
         a.disabled == b.disabled && a.salt_b64 == b.salt_b64 && a.hash_b64 == b.hash_b64;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string login = in.ConsumeRandomLengthString(32);
  const std::string password = in.ConsumeRandomLengthString(32);
  const std::string json = in.ConsumeRemainingBytesAsString();

  if (const auto user = chorus::user_from_json(json)) {
    const auto again = chorus::user_from_json(chorus::user_to_json(*user));
    FUZZ_CHECK(again.has_value(), "our own user JSON does not parse back");
    FUZZ_CHECK(same(*user, *again), "user_to_json and back changed the record");
    FUZZ_CHECK(chorus::user_stream(user->login).rfind("$user-", 0) == 0, "user stream name");
  }
  // "a" + "\0b" and "a\0" + "b" are different credentials and must not share a cache entry.
  const std::string key = chorus::credential_cache_key(login, password);
  if (!login.empty()) {
    const std::string shifted = chorus::credential_cache_key(
        login.substr(0, login.size() - 1), login.substr(login.size() - 1) + password);
    FUZZ_CHECK(key != shifted, "two credentials share a cache key");
  }
  return 0;
}
