// Goal: the certificate loader accepts a good certificate, key and roots (file or folder), and
// refuses each broken setup with one clear line naming the file: missing files, a key of another
// certificate, an expired or not yet valid certificate, a certificate of another CA, an encrypted
// key, a roots folder without certificates. Over a real mutual-TLS handshake on loopback, the
// accepting side sees which addresses the client's certificate names (the internal transport's
// check that a sender speaks for its own address only). Certificates are made at test time with
// `openssl`.
#include "common/tls.hpp"
#include "common/tls_stream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

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

// A client with `client_certificate` connects to a server that requires one; after both
// handshakes, what the server's stream says about the names in the client's certificate.
struct HandshakeResult {
  boost::system::error_code server_error;
  bool names_own_address = false;
  bool names_other_address = false;
};

HandshakeResult mutual_handshake(const Certificates& server_side, const Certificates& client_side) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  chorus::tls::Stream client(io.get_executor(), client_side.asio_client_context());
  std::unique_ptr<chorus::tls::Stream> server;
  HandshakeResult result;
  acceptor.async_accept([&](boost::system::error_code ec, asio::ip::tcp::socket socket) {
    if (ec) return;
    server = std::make_unique<chorus::tls::Stream>(std::move(socket),
                                                   server_side.asio_server_context(true));
    server->async_handshake(chorus::tls::Stream::Role::kServer, [&](boost::system::error_code e) {
      result.server_error = e;
      result.names_own_address = server->peer_certificate_names("127.0.0.1");
      result.names_other_address = server->peer_certificate_names("127.0.0.2");
    });
  });
  client.socket().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    if (ec) return;
    client.expect_peer_name("127.0.0.1");
    client.async_handshake(chorus::tls::Stream::Role::kClient, [](boost::system::error_code) {});
  });
  io.run_for(std::chrono::seconds(10));
  return result;
}

TEST_F(TlsCertificatesTest, ServerSeesTheAddressesTheClientsCertificateNames) {
  std::string error;
  const auto node = Certificates::load(good(), &error);
  ASSERT_NE(node, nullptr) << error;
  const auto result = mutual_handshake(*node, *node);
  ASSERT_FALSE(result.server_error) << result.server_error.message();
  EXPECT_TRUE(result.names_own_address);     // the certificate has IP:127.0.0.1
  EXPECT_FALSE(result.names_other_address);  // a member cannot speak for 127.0.0.2
}

TEST_F(TlsCertificatesTest, ClientOfAnotherCaFailsTheHandshake) {
  std::string error;
  const auto node = Certificates::load(good(), &error);
  ASSERT_NE(node, nullptr) << error;
  // A certificate of another CA, which our server does not trust.
  const auto stranger = Certificates::load(
      {path("stranger.crt"), path("stranger.key"), path("other-ca.crt")}, &error);
  ASSERT_NE(stranger, nullptr) << error;
  const auto result = mutual_handshake(*node, *stranger);
  EXPECT_TRUE(result.server_error);
  EXPECT_FALSE(result.names_own_address);
}

}  // namespace
