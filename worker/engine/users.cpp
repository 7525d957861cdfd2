// Users: PBKDF2 password hashes and the JSON of user records.
#include "worker/engine/users.hpp"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <sstream>
#include <stdexcept>

namespace chorus {
namespace {

constexpr int kHashBytes = 32;

std::string base64(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out);
  encoder.rdbuf()->setLineLength(0);
  encoder << bytes;
  encoder.close();
  return out.str();
}

std::string unbase64(const std::string& text) {
  std::istringstream in(text);
  Poco::Base64Decoder decoder(in);
  std::string out((std::istreambuf_iterator<char>(decoder)), std::istreambuf_iterator<char>());
  return out;
}

std::string pbkdf2(std::string_view password, const std::string& salt) {
  std::string out(kHashBytes, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), kPasswordHashIterations, EVP_sha256(),
                        kHashBytes, reinterpret_cast<unsigned char*>(out.data())) != 1) {
    throw std::runtime_error("PBKDF2 failed");
  }
  return out;
}

}  // namespace

std::string user_stream(std::string_view login) { return "$user-" + std::string(login); }

UserRecord make_user(std::string login, std::string full_name, std::vector<std::string> groups,
                     std::string_view password) {
  std::string salt(kPasswordSaltBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), kPasswordSaltBytes) != 1) {
    throw std::runtime_error("no random bytes for a password salt");
  }
  UserRecord u;
  u.login = std::move(login);
  u.full_name = std::move(full_name);
  u.groups = std::move(groups);
  u.salt_b64 = base64(salt);
  u.hash_b64 = base64(pbkdf2(password, salt));
  return u;
}

bool verify_password(const UserRecord& user, std::string_view password) {
  if (user.disabled) return false;
  const std::string expected = unbase64(user.hash_b64);
  const std::string actual = pbkdf2(password, unbase64(user.salt_b64));
  return expected.size() == actual.size() &&
         CRYPTO_memcmp(expected.data(), actual.data(), actual.size()) == 0;
}

std::string user_to_json(const UserRecord& user) {
  Poco::JSON::Object o;
  o.set("loginName", user.login);
  o.set("fullName", user.full_name);
  o.set("salt", user.salt_b64);
  o.set("hash", user.hash_b64);
  o.set("disabled", user.disabled);
  Poco::JSON::Array groups;
  for (const auto& g : user.groups) groups.add(g);
  o.set("groups", groups);
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

std::optional<UserRecord> user_from_json(std::string_view json) {
  try {
    Poco::JSON::Parser parser;
    const auto o = parser.parse(std::string(json)).extract<Poco::JSON::Object::Ptr>();
    UserRecord u;
    u.login = o->getValue<std::string>("loginName");
    u.full_name = o->optValue<std::string>("fullName", "");
    u.salt_b64 = o->getValue<std::string>("salt");
    u.hash_b64 = o->getValue<std::string>("hash");
    u.disabled = o->optValue<bool>("disabled", false);
    if (const auto groups = o->getArray("groups")) {
      for (size_t i = 0; i < groups->size(); ++i)
        u.groups.push_back(groups->getElement<std::string>(i));
    }
    return u;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string credential_cache_key(std::string_view login, std::string_view password) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // The login's length goes first, so no two (login, password) pairs share an input: with a
  // plain separator, ("a\0", "b") and ("a", "\0b") collided (fuzzing finding F3).
  std::string input = std::to_string(login.size());
  input.push_back(':');
  input.append(login);
  input.append(password);
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

}  // namespace chorus
