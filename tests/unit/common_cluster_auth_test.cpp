// Goal: prove the cluster secret's rules and proofs: the secret file is refused when missing,
// short, or readable by others, and created with mode 0600; HMAC matches RFC 4231; handshake
// proofs depend on every input and on the direction; a signed gossip request is accepted once,
// and refused when altered, replayed, outside the clock window, or signed with another secret.
#include "common/cluster_auth.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>

namespace chorus::auth {
namespace {

namespace fs = std::filesystem;

class SecretFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("chorus-secret-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text, fs::perms perms) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    fs::permissions(p, perms);
    return p.string();
  }
  fs::path dir_;
};

TEST_F(SecretFile, RefusesMissingShortAndOpenFiles) {
  std::string error;
  EXPECT_FALSE(load_secret_file((dir_ / "none").string(), &error));
  EXPECT_NE(error.find("none"), std::string::npos) << error;
  const auto owner = fs::perms::owner_read | fs::perms::owner_write;
  EXPECT_FALSE(load_secret_file(write("short", "abc\n", owner), &error));
  EXPECT_NE(error.find("openssl rand"), std::string::npos) << error;
  const std::string good(64, 'a');
  EXPECT_FALSE(load_secret_file(write("group", good, owner | fs::perms::group_read), &error));
  EXPECT_NE(error.find("chmod 600"), std::string::npos) << error;
  EXPECT_FALSE(load_secret_file(write("world", good, owner | fs::perms::others_read), &error));
  EXPECT_FALSE(load_secret_file(dir_.string(), &error));
  EXPECT_FALSE(
      load_secret_file(write("big", std::string(kSecretBytesMax + 1, 'a'), owner), &error));
  const auto loaded = load_secret_file(write("ok", "  " + good + "\n", owner), &error);
  ASSERT_TRUE(loaded) << error;
  EXPECT_EQ(loaded->key, good);
}

TEST_F(SecretFile, CreatesPrivateRandomFilesAndNeverOverwrites) {
  const std::string a = (dir_ / "a").string();
  const std::string b = (dir_ / "b").string();
  std::string error;
  ASSERT_TRUE(create_secret_file(a, &error)) << error;
  ASSERT_TRUE(create_secret_file(b, &error)) << error;
  struct stat st {};
  ASSERT_EQ(::stat(a.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto sa = load_secret_file(a, &error);
  const auto sb = load_secret_file(b, &error);
  ASSERT_TRUE(sa && sb) << error;
  EXPECT_EQ(sa->key.size(), 64u);
  EXPECT_NE(sa->key, sb->key);
  EXPECT_FALSE(create_secret_file(a, &error));
  EXPECT_EQ(load_secret_file(a, &error)->key, sa->key);
}

TEST(ClusterAuth, HmacMatchesRfc4231) {
  // RFC 4231 test case 2.
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_TRUE(equal_constant_time("abc", "abc"));
  EXPECT_FALSE(equal_constant_time("abc", "abd"));
  EXPECT_FALSE(equal_constant_time("abc", "abcd"));
  EXPECT_NE(random_bytes(kNonceBytes), random_bytes(kNonceBytes));
}

TEST(ClusterAuth, HandshakeProofsBindEveryInputAndTheDirection) {
  const Secret s{std::string(64, 'k')};
  const Secret other{std::string(64, 'x')};
  const std::string cn(kNonceBytes, 'c');
  const std::string sn(kNonceBytes, 's');
  const std::string p = server_proof(s, "default", "127.0.0.1:1112", cn, sn);
  EXPECT_EQ(p.size(), kMacBytes);
  EXPECT_EQ(p, server_proof(s, "default", "127.0.0.1:1112", cn, sn));
  EXPECT_NE(p, client_proof(s, "default", "127.0.0.1:1112", cn, sn));  // no reflection
  EXPECT_NE(p, server_proof(other, "default", "127.0.0.1:1112", cn, sn));
  EXPECT_NE(p, server_proof(s, "other", "127.0.0.1:1112", cn, sn));
  EXPECT_NE(p, server_proof(s, "default", "127.0.0.1:1113", cn, sn));
  EXPECT_NE(p, server_proof(s, "default", "127.0.0.1:1112", sn, cn));
  // Length-prefixed fields: moving a byte between fields changes the proof.
  EXPECT_NE(server_proof(s, "ab", "c", cn, sn), server_proof(s, "a", "bc", cn, sn));
}

TEST(ClusterAuth, SignedRequestsAreAcceptedOnceAndOnlyUnaltered) {
  const Secret s{std::string(64, 'k')};
  const int64_t now = 1'800'000'000'000;
  ReplayGuard guard;
  const std::string h = sign_request(s, "POST", "/gossip", "{}", now);
  std::string nonce;
  EXPECT_EQ(verify_request(s, "POST", "/gossip", "{}", h, now + 10, guard, &nonce), "");
  EXPECT_EQ(nonce.size(), kNonceBytes * 2);
  EXPECT_NE(verify_request(s, "POST", "/gossip", "{}", h, now + 20, guard), "");  // replay
  ReplayGuard fresh;
  EXPECT_NE(verify_request(s, "POST", "/gossip", "{ }", h, now, fresh), "");  // body
  EXPECT_NE(verify_request(s, "GET", "/gossip", "{}", h, now, fresh), "");    // method
  EXPECT_NE(verify_request(s, "POST", "/stats", "{}", h, now, fresh), "");    // path
  EXPECT_NE(verify_request(Secret{std::string(64, 'x')}, "POST", "/gossip", "{}", h, now, fresh),
            "");
  EXPECT_NE(verify_request(s, "POST", "/gossip", "{}", "", now, fresh), "");
  EXPECT_NE(verify_request(s, "POST", "/gossip", "{}", "t=1,n=2,m=3", now, fresh), "");
  EXPECT_NE(verify_request(s, "POST", "/gossip", "{}", h + ",x=1", now, fresh), "");
  // Outside the clock window in either direction.
  EXPECT_NE(verify_request(s, "POST", "/gossip", "{}", h, now + kClockWindowMs + 1, fresh), "");
  EXPECT_NE(verify_request(s, "POST", "/gossip", "{}", h, now - kClockWindowMs - 1, fresh), "");
  // A changed time stamp breaks the mac.
  std::string moved = h;
  moved.replace(2, 13, std::to_string(now + 1).substr(0, 13));
  EXPECT_NE(verify_request(s, "POST", "/gossip", "{}", moved, now, fresh), "");
  // The same request is still good for a verifier that has not seen it.
  EXPECT_EQ(verify_request(s, "POST", "/gossip", "{}", h, now, fresh), "");
}

TEST(ClusterAuth, AnswersAreBoundToTheirRequest) {
  const Secret s{std::string(64, 'k')};
  const int64_t now = 1'800'000'000'000;
  const std::string h1 = sign_request(s, "POST", "/gossip", "{}", now);
  const std::string h2 = sign_request(s, "POST", "/gossip", "{}", now);
  const std::string a = sign_answer(s, h1, 200, "view");
  EXPECT_TRUE(verify_answer(s, h1, 200, "view", a));
  EXPECT_FALSE(verify_answer(s, h2, 200, "view", a));  // another request's answer
  EXPECT_FALSE(verify_answer(s, h1, 200, "viev", a));
  EXPECT_FALSE(verify_answer(s, h1, 409, "view", a));
  EXPECT_FALSE(verify_answer(s, h1, 200, "view", ""));
  EXPECT_FALSE(verify_answer(Secret{std::string(64, 'x')}, h1, 200, "view", a));
}

}  // namespace
}  // namespace chorus::auth
