// Cluster secret and proofs: OpenSSL HMAC, RAND_bytes and CRYPTO_memcmp; no crypto of our own.
#include "common/cluster_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

namespace chorus::auth {
namespace {

std::string trim(std::string text) {
  const char* space = " \t\r\n";
  const size_t first = text.find_first_not_of(space);
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(space) - first + 1);
}

// Joins fields with their lengths, so no two different field lists give the same bytes.
std::string fields(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) {
    out += std::to_string(p.size());
    out += ':';
    out += p;
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]);
    const int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

struct SignedHeader {
  int64_t time_ms = 0;
  std::string nonce_hex;
  std::string mac_hex;
};

// Parses "t=<ms>,n=<hex>,m=<hex>" (exactly these keys, in this order).
std::optional<SignedHeader> parse_header(std::string_view header) {
  SignedHeader out;
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (parts.size() < 4) {
    const size_t comma = header.find(',', start);
    parts.push_back(header.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (parts.size() != 3) return std::nullopt;
  if (parts[0].substr(0, 2) != "t=" || parts[1].substr(0, 2) != "n=" ||
      parts[2].substr(0, 2) != "m=") {
    return std::nullopt;
  }
  const std::string_view t = parts[0].substr(2);
  if (t.empty() || t.size() > 15 || t.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  out.time_ms = std::stoll(std::string(t));
  out.nonce_hex = std::string(parts[1].substr(2));
  out.mac_hex = std::string(parts[2].substr(2));
  if (out.nonce_hex.size() != kNonceBytes * 2 || out.mac_hex.size() != kMacBytes * 2) {
    return std::nullopt;
  }
  return out;
}

std::string request_mac(const Secret& s, std::string_view method, std::string_view path,
                        std::string_view body, int64_t time_ms, std::string_view nonce_hex) {
  return hmac_sha256(s.key, fields({"chorus-gossip-request-1", method, path,
                                    std::to_string(time_ms), nonce_hex, body}));
}

std::string answer_mac(const Secret& s, std::string_view nonce_hex, int status,
                       std::string_view body) {
  return hmac_sha256(s.key,
                     fields({"chorus-gossip-answer-1", nonce_hex, std::to_string(status), body}));
}

}  // namespace

std::optional<Secret> load_secret_file(const std::string& path, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Secret> {
    if (error) *error = "cluster secret file '" + path + "': " + why;
    return std::nullopt;
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail(std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  if ((st.st_mode & 077) != 0) {
    return fail("readable or writable by group or others; run: chmod 600 '" + path + "'");
  }
  if (static_cast<size_t>(st.st_size) > kSecretBytesMax) {
    return fail("larger than " + std::to_string(kSecretBytesMax) + " bytes; is it the right file?");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot be read (permission?)");
  std::ostringstream text;
  text << in.rdbuf();
  Secret secret{trim(text.str())};
  if (secret.key.size() < kSecretBytesMin) {
    return fail("holds fewer than " + std::to_string(kSecretBytesMin) +
                " bytes; create one with: openssl rand -hex 32 > '" + path + "'");
  }
  return secret;
}

bool create_secret_file(const std::string& path, std::string* error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (error) *error = "cannot create cluster secret file '" + path + "': " + std::strerror(errno);
    return false;
  }
  const std::string text = to_hex(random_bytes(32)) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    if (error) *error = "cannot write cluster secret file '" + path + "': " + std::strerror(errno);
    ::unlink(path.c_str());
  }
  return ok;
}

std::string random_bytes(size_t count) {
  std::string out(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count)) != 1) {
    // Without randomness every challenge could repeat: stopping is the only safe answer.
    std::cerr << "chorus: OpenSSL's random generator failed" << std::endl;
    std::abort();
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  return std::string(reinterpret_cast<const char*>(mac), length);
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

std::string server_proof(const Secret& s, std::string_view cluster, std::string_view node_id,
                         std::string_view client_nonce, std::string_view server_nonce) {
  return hmac_sha256(
      s.key, fields({"chorus-int-tcp-server-1", cluster, node_id, client_nonce, server_nonce}));
}

std::string client_proof(const Secret& s, std::string_view cluster, std::string_view node_id,
                         std::string_view client_nonce, std::string_view server_nonce) {
  return hmac_sha256(
      s.key, fields({"chorus-int-tcp-client-1", cluster, node_id, client_nonce, server_nonce}));
}

std::string sign_request(const Secret& s, std::string_view method, std::string_view path,
                         std::string_view body, int64_t now_ms) {
  const std::string nonce_hex = to_hex(random_bytes(kNonceBytes));
  return "t=" + std::to_string(now_ms) + ",n=" + nonce_hex +
         ",m=" + to_hex(request_mac(s, method, path, body, now_ms, nonce_hex));
}

bool ReplayGuard::first_use(const std::string& nonce, int64_t time_ms, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  // Forget what is older than the window: such requests are refused by their time anyway.
  while (!by_time_.empty() && by_time_.begin()->first < now_ms - kClockWindowMs) {
    nonces_.erase(by_time_.begin()->second);
    by_time_.erase(by_time_.begin());
  }
  if (nonces_.count(nonce) != 0 || nonces_.size() >= kReplayNoncesMax) return false;
  nonces_.emplace(nonce, time_ms);
  by_time_.emplace(time_ms, nonce);
  return true;
}

std::string verify_request(const Secret& s, std::string_view method, std::string_view path,
                           std::string_view body, std::string_view header, int64_t now_ms,
                           ReplayGuard& guard, std::string* nonce_out) {
  if (header.empty()) return "no " + std::string(kAuthHeader) + " header";
  const auto parsed = parse_header(header);
  if (!parsed) return "malformed " + std::string(kAuthHeader) + " header";
  const auto mac = from_hex(parsed->mac_hex);
  const std::string expected =
      request_mac(s, method, path, body, parsed->time_ms, parsed->nonce_hex);
  if (!mac || !equal_constant_time(*mac, expected)) return "wrong signature (another secret?)";
  if (parsed->time_ms < now_ms - kClockWindowMs || parsed->time_ms > now_ms + kClockWindowMs) {
    return "signed " + std::to_string(parsed->time_ms - now_ms) +
           " ms away from this clock (outside the window; are the clocks in sync?)";
  }
  if (!guard.first_use(parsed->nonce_hex, parsed->time_ms, now_ms)) {
    return "replayed request (nonce seen before)";
  }
  if (nonce_out) *nonce_out = parsed->nonce_hex;
  return "";
}

std::string sign_answer(const Secret& s, std::string_view request_header, int status,
                        std::string_view body) {
  const auto parsed = parse_header(request_header);
  if (!parsed) return "";
  return to_hex(answer_mac(s, parsed->nonce_hex, status, body));
}

bool verify_answer(const Secret& s, std::string_view request_header, int status,
                   std::string_view body, std::string_view answer_header) {
  const auto parsed = parse_header(request_header);
  const auto mac = from_hex(answer_header);
  if (!parsed || !mac) return false;
  return equal_constant_time(*mac, answer_mac(s, parsed->nonce_hex, status, body));
}

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace chorus::auth
