// Goal: the certificate loader accepts a good certificate, key and roots (file or folder), and
// refuses each broken setup with one clear line naming the file: missing files, a key of another
// certificate, an expired or not yet valid certificate, a certificate of another CA, an encrypted
// key, a roots folder without certificates. Certificates are made at test time with `openssl`.
#include "common/tls.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using chorus::tls::CertificatePaths;
using chorus::tls::Certificates;

// Runs a shell command; fails the test when it fails.
void run(const std::string& command) {
  ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
}

// A CA, a second CA, and node certificates signed by each, in a fresh temporary folder.
class TlsCertificatesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        new fs::path(fs::temp_directory_path() / ("chorus-tls-test-" + std::to_string(::getpid())));
    fs::create_directories(*dir_ / "roots");
    const std::string d = dir_->string();
    make_ca(d + "/roots/ca");
    make_ca(d + "/other-ca");
    make_node(d + "/node", d + "/roots/ca");
    make_node(d + "/stranger", d + "/other-ca");
    run("openssl pkey -in " + d + "/node.key -aes256 -passout pass:secret -out " + d +
        "/encrypted.key");
    fs::create_directories(*dir_ / "empty-roots");
    std::ofstream(*dir_ / "empty-roots" / "notes.txt") << "no certificates here\n";
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }

  static void make_ca(const std::string& base) {
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + base +
        ".key -out " + base + ".crt -days 30 -subj /CN=ChorusTestCA" +
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign");
  }
  static void make_node(const std::string& base, const std::string& ca) {
    const std::string ext = base + ".ext";
    std::ofstream(ext) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                       << "extendedKeyUsage=serverAuth,clientAuth\n";
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + base +
        ".key -out " + base + ".csr -subj /CN=chorus-node");
    run("openssl x509 -req -in " + base + ".csr -CA " + ca + ".crt -CAkey " + ca +
        ".key -CAcreateserial -days 30 -extfile " + ext + " -out " + base + ".crt");
  }

  static std::string path(const std::string& name) { return (*dir_ / name).string(); }
  static CertificatePaths good() { return {path("node.crt"), path("node.key"), path("roots")}; }
  static std::string load_error(
      const CertificatePaths& paths,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    std::string error;
    auto loaded = Certificates::load(paths, &error, now);
    EXPECT_EQ(loaded, nullptr);
    return error;
  }

  static fs::path* dir_;
};

fs::path* TlsCertificatesTest::dir_ = nullptr;

TEST_F(TlsCertificatesTest, GoodPairWithRootsFolderOrFileLoads) {
  std::string error;
  auto loaded = Certificates::load(good(), &error);
  ASSERT_NE(loaded, nullptr) << error;
  EXPECT_EQ(loaded->summary().subject, "CN=chorus-node");
  EXPECT_EQ(loaded->summary().trusted_roots, 1u);
  // The contexts are built from it without error.
  EXPECT_NE(loaded->asio_server_context(true), nullptr);
  EXPECT_NE(loaded->asio_client_context(), nullptr);
  EXPECT_FALSE(loaded->poco_server_context(false).isNull());
  EXPECT_FALSE(loaded->poco_client_context().isNull());

  CertificatePaths one_file = good();
  one_file.trusted_roots_path = path("roots/ca.crt");
  EXPECT_NE(Certificates::load(one_file, &error), nullptr) << error;
}

TEST_F(TlsCertificatesTest, MissingFilesAreNamed) {
  CertificatePaths paths = good();
  paths.certificate_file = path("absent.crt");
  EXPECT_EQ(load_error(paths),
            "cannot read certificate file '" + path("absent.crt") + "': no such file");
  paths = good();
  paths.private_key_file = path("absent.key");
  EXPECT_EQ(load_error(paths),
            "cannot read private key file '" + path("absent.key") + "': no such file");
  paths = good();
  paths.trusted_roots_path = path("absent-roots");
  EXPECT_NE(load_error(paths).find("'" + path("absent-roots") + "': no such file"),
            std::string::npos);
}

TEST_F(TlsCertificatesTest, KeyOfAnotherCertificateIsRefused) {
  CertificatePaths paths = good();
  paths.private_key_file = path("stranger.key");
  EXPECT_EQ(load_error(paths), "private key '" + path("stranger.key") +
                                   "' does not match certificate '" + path("node.crt") + "'");
}

TEST_F(TlsCertificatesTest, ExpiredOrNotYetValidCertificateIsRefused) {
  const auto now = std::chrono::system_clock::now();
  const std::string expired = load_error(good(), now + std::chrono::hours(24 * 60));
  EXPECT_EQ(expired.rfind("certificate '" + path("node.crt") + "' expired on ", 0), 0u) << expired;
  const std::string early = load_error(good(), now - std::chrono::hours(24 * 2));
  EXPECT_NE(early.find("is not valid before"), std::string::npos) << early;
}

TEST_F(TlsCertificatesTest, CertificateOfAnotherCaIsRefused) {
  CertificatePaths paths{path("stranger.crt"), path("stranger.key"), path("roots")};
  const std::string error = load_error(paths);
  EXPECT_NE(error.find("does not chain to a root in '" + path("roots") + "'"), std::string::npos)
      << error;
}

TEST_F(TlsCertificatesTest, EncryptedKeyAndNonPemFilesAreRefused) {
  CertificatePaths paths = good();
  paths.private_key_file = path("encrypted.key");
  EXPECT_NE(load_error(paths).find("encrypted keys are not supported"), std::string::npos);
  paths = good();
  paths.certificate_file = path("node.key");
  EXPECT_EQ(load_error(paths),
            "certificate file '" + path("node.key") + "' holds no PEM certificate");
  paths = good();
  paths.trusted_roots_path = path("empty-roots");
  EXPECT_EQ(load_error(paths), "trusted root certificates folder '" + path("empty-roots") +
                                   "' holds no .pem, .crt or .cer file");
}

}  // namespace
