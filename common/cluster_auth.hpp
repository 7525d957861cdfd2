// The shared cluster secret and the proofs built from it (docs/security.md): loading and creating
// the secret file, HMAC-SHA256 (OpenSSL), the challenge-response of the internal TCP handshake,
// and the signature that gossip HTTP requests and answers carry. Pure functions apart from the
// file system and OpenSSL's random generator; any thread. ReplayGuard locks internally.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace chorus::auth {

// Limits (one place, with their reasons).
// A secret shorter than 32 bytes (256 bits of a random file) is too easy to guess offline.
inline constexpr size_t kSecretBytesMin = 32;
// A secret file is a few dozen bytes; a large file is the wrong file.
inline constexpr size_t kSecretBytesMax = 4096;
// Fresh random bytes per challenge: never repeats in practice, so a recorded proof is useless.
inline constexpr size_t kNonceBytes = 32;
inline constexpr size_t kMacBytes = 32;  // HMAC-SHA256
// Clock difference tolerated between signer and verifier of a gossip request; requests older
// than this are refused, so the replay guard need only remember this long.
inline constexpr int64_t kClockWindowMs = 30'000;
// Nonces remembered at once by one verifier: far above gossip's rate (a few per second per
// member) over the clock window; beyond it requests are refused rather than memory growing.
inline constexpr size_t kReplayNoncesMax = 100'000;
// The HTTP header that carries a gossip request's or answer's signature.
inline constexpr const char* kAuthHeader = "X-Chorus-Auth";

struct Secret {
  std::string key;  // the file's bytes without surrounding whitespace
  bool empty() const { return key.empty(); }
};

// Reads a secret file. Refuses (with a message naming the file and the fix) a missing file, one
// that is not a regular file, readable or writable by group or others, shorter than
// kSecretBytesMin or longer than kSecretBytesMax.
std::optional<Secret> load_secret_file(const std::string& path, std::string* error);
// Writes a new random secret (64 hex digits) to `path` with mode 0600; refuses to overwrite.
bool create_secret_file(const std::string& path, std::string* error);

std::string random_bytes(size_t count);  // OpenSSL RAND_bytes; aborts if the RNG fails
std::string hmac_sha256(std::string_view key, std::string_view data);
bool equal_constant_time(std::string_view a, std::string_view b);
std::string to_hex(std::string_view bytes);

// --- internal TCP handshake (both directions proved; see transport) ---
// The connecting node sends kHelloMagic, its nonce and its node id; the accepting node answers
// its own nonce and server_proof(); the connecting node checks it and sends client_proof(). Each
// proof covers both nonces, the cluster name, the connector's node id and the direction.
inline constexpr std::string_view kHelloMagic = "CHORUS-AUTH-1\n";
inline constexpr size_t kNodeIdBytesMax = 255;  // "ip:port" or an instance id: short
std::string server_proof(const Secret& s, std::string_view cluster, std::string_view node_id,
                         std::string_view client_nonce, std::string_view server_nonce);
std::string client_proof(const Secret& s, std::string_view cluster, std::string_view node_id,
                         std::string_view client_nonce, std::string_view server_nonce);

// --- gossip HTTP signatures ---
// Header value "t=<unix ms>,n=<hex nonce>,m=<hex mac>" over method, path, time, nonce and body.
std::string sign_request(const Secret& s, std::string_view method, std::string_view path,
                         std::string_view body, int64_t now_unix_ms);

// Remembers the nonces of accepted requests for the clock window, so each is accepted once.
class ReplayGuard {
 public:
  // True if `nonce` (seen at `time_ms`) is new; it is remembered then.
  bool first_use(const std::string& nonce, int64_t time_ms, int64_t now_unix_ms);

 private:
  std::mutex mutex_;
  std::multimap<int64_t, std::string> by_time_;  // GUARDED_BY(mutex_)
  std::map<std::string, int64_t> nonces_;        // GUARDED_BY(mutex_)
};

// "" when the header proves the request, else why not. On success *nonce_out (if given) is the
// request's nonce, for signing the answer.
std::string verify_request(const Secret& s, std::string_view method, std::string_view path,
                           std::string_view body, std::string_view header, int64_t now_unix_ms,
                           ReplayGuard& guard, std::string* nonce_out = nullptr);

// The answer to a signed request carries a mac over the request's nonce, the status and the body,
// so a caller merges only what a member answered to its own request.
std::string sign_answer(const Secret& s, std::string_view request_header, int status,
                        std::string_view body);
bool verify_answer(const Secret& s, std::string_view request_header, int status,
                   std::string_view body, std::string_view answer_header);

int64_t now_unix_ms();

}  // namespace chorus::auth
