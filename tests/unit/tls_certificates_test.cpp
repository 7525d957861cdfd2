// Goal: the certificate loader accepts a good certificate, key and roots (file or folder), and
// refuses each broken setup with one clear line naming the file: missing files, a key of another
// certificate, an expired or not yet valid certificate, a certificate of another CA, an encrypted
// key, a roots folder without certificates. Over a real mutual-TLS handshake on loopback, the
// accepting side sees which addresses the client's certificate names (the internal transport's
// check that a sender speaks for its own address only). An HTTPS session of make_http_session()
// refuses a server whose certificate (of the trusted CA) names another address during the
// handshake, also when the server answers the handshake later than the session's timeout part,
// and also on a kept-alive session's reconnect; no byte of the request reaches such a server.
// Certificates are made at test time with `openssl`.
#include "common/tls.hpp"
#include "common/tls_stream.hpp"

#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/StreamCopier.h>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

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
    // Of the trusted CA, but for another address than the 127.0.0.1 the tests dial.
    make_node(d + "/wrongname", d + "/roots/ca", "IP:127.0.0.9");
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
  static void make_node(const std::string& base, const std::string& ca,
                        const std::string& sans = "IP:127.0.0.1,DNS:localhost") {
    const std::string ext = base + ".ext";
    std::ofstream(ext) << "subjectAltName=" << sans << "\n"
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
    ASSERT_TRUE(client.expect_peer_name("127.0.0.1"));
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

// The replication transport refuses to connect when the name cannot be set: the handshake would
// then check the chain only.
TEST_F(TlsCertificatesTest, AStreamThatCannotExpectTheNameSaysSo) {
  std::string error;
  const auto node = Certificates::load(good(), &error);
  ASSERT_NE(node, nullptr) << error;
  boost::asio::io_context io;
  chorus::tls::Stream client(io.get_executor(), node->asio_client_context());
  EXPECT_FALSE(client.expect_peer_name(""));
  EXPECT_TRUE(client.expect_peer_name("127.0.0.1"));
  EXPECT_TRUE(client.expect_peer_name("node-1.example"));
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

// An HTTPS server on 127.0.0.1 for the client sessions below. Connection i is served by steps[i]
// (the last step serves all later ones): the certificate it presents, and how long it holds back
// its part of the handshake once the client's first bytes arrived. It answers a request with
// "200 ok" and closes, and counts the bytes it received after completed handshakes (what a
// wrongly named server must never get). Runs on its own thread until destroyed.
class SlowTlsServer {
 public:
  struct Step {
    std::shared_ptr<boost::asio::ssl::context> context;
    std::chrono::milliseconds delay{0};
  };

  explicit SlowTlsServer(std::vector<Step> steps)
      : steps_(std::move(steps)),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        port_(acceptor_.local_endpoint().port()) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~SlowTlsServer() {
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }
  size_t request_bytes() const { return request_bytes_; }
  int connections() const { return accepted_; }
  // Waits until every accepted connection was served to its end; false after `timeout`.
  bool settled(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (done_ != accepted_) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

 private:
  using Stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
  struct Connection {
    Connection(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& context)
        : stream(std::move(socket), context), timer(stream.get_executor()) {}
    Stream stream;
    boost::asio::steady_timer timer;
    std::string request;
    char buffer[4096];
  };
  using ConnectionPtr = std::shared_ptr<Connection>;

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
      if (ec) return;
      const Step& step = steps_[std::min<size_t>(accepted_, steps_.size() - 1)];
      ++accepted_;
      serve(std::make_shared<Connection>(std::move(s), *step.context), step.delay);
      accept();
    });
  }

  void serve(const ConnectionPtr& c, std::chrono::milliseconds delay) {
    // The client's hello has arrived when the socket is readable; the delay starts there.
    c->stream.next_layer().async_wait(
        boost::asio::ip::tcp::socket::wait_read, [this, c, delay](boost::system::error_code ec) {
          if (ec) return finish();
          c->timer.expires_after(delay);
          c->timer.async_wait([this, c](boost::system::error_code) {
            c->stream.async_handshake(boost::asio::ssl::stream_base::server,
                                      [this, c](boost::system::error_code e) {
                                        if (e) return finish();
                                        read(c);
                                      });
          });
        });
  }

  void read(const ConnectionPtr& c) {
    c->stream.async_read_some(boost::asio::buffer(c->buffer),
                              [this, c](boost::system::error_code ec, size_t n) {
                                if (ec) return finish();
                                request_bytes_ += n;
                                c->request.append(c->buffer, n);
                                if (c->request.find("\r\n\r\n") == std::string::npos) {
                                  return read(c);
                                }
                                answer(c);
                              });
  }

  void answer(const ConnectionPtr& c) {
    static const std::string kAnswer =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    boost::asio::async_write(c->stream, boost::asio::buffer(kAnswer),
                             [this, c](boost::system::error_code, size_t) {
                               boost::system::error_code ignored;
                               c->stream.next_layer().close(ignored);
                               finish();
                             });
  }

  void finish() { ++done_; }

  std::vector<Step> steps_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_;
  std::atomic<size_t> request_bytes_{0};
  std::atomic<int> accepted_{0};
  std::atomic<int> done_{0};
  std::thread thread_;
};

// GET / on `session`: "<status> <body>", or "failed: " and Poco's text of the failure.
std::string get(Poco::Net::HTTPClientSession& session) {
  try {
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/",
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::string body;
    Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
    return std::to_string(static_cast<int>(response.getStatus())) + " " + body;
  } catch (const Poco::Exception& e) {
    return "failed: " + e.displayText();
  }
}

// The session's whole budget; make_http_session gives the TLS handshake a third of it.
constexpr int kSessionBudgetMs = 2400;
// Past the handshake's third (its receive wait ends and Poco 1.11 goes on as if the handshake had
// finished), but within the first write's wait, which then completes the handshake: 400 ms of
// margin on either side for a loaded machine.
constexpr auto kSlowHandshake = std::chrono::milliseconds(1200);
// What OpenSSL reports when its own verification (chain and name) refuses the server.
constexpr const char* kVerifyFailed = "certificate verify failed";

class TlsHttpSessionTest : public TlsCertificatesTest {
 protected:
  void SetUp() override {
    std::string error;
    node_ = Certificates::load(good(), &error);
    ASSERT_NE(node_, nullptr) << error;
    wrong_name_ =
        Certificates::load({path("wrongname.crt"), path("wrongname.key"), path("roots")}, &error);
    ASSERT_NE(wrong_name_, nullptr) << error;
    client_ = node_->poco_client_context();
  }
  std::unique_ptr<Poco::Net::HTTPClientSession> session(const SlowTlsServer& server,
                                                        const std::string& host = "127.0.0.1") {
    return chorus::tls::make_http_session(host, server.port(), client_, kSessionBudgetMs);
  }
  std::shared_ptr<const Certificates> node_;
  std::shared_ptr<const Certificates> wrong_name_;
  Poco::Net::Context::Ptr client_;  // one per process in the worker and the manager
};

TEST_F(TlsHttpSessionTest, ServerNamingAnotherAddressIsRefusedBeforeTheRequestAlsoWhenSlow) {
  for (const auto delay : {std::chrono::milliseconds(0), kSlowHandshake}) {
    SlowTlsServer server({{wrong_name_->asio_server_context(true), delay}});
    const std::string outcome = get(*session(server));
    EXPECT_NE(outcome.find(kVerifyFailed), std::string::npos)
        << "delay " << delay.count() << " ms: " << outcome;
    ASSERT_TRUE(server.settled());
    EXPECT_EQ(server.connections(), 1);
    EXPECT_EQ(server.request_bytes(), 0u) << "delay " << delay.count() << " ms";
  }
}

TEST_F(TlsHttpSessionTest, CorrectlyNamedServerIsReachedAlsoWhenSlow) {
  for (const auto delay : {std::chrono::milliseconds(0), kSlowHandshake}) {
    SlowTlsServer server({{node_->asio_server_context(true), delay}});
    EXPECT_EQ(get(*session(server)), "200 ok") << "delay " << delay.count() << " ms";
    ASSERT_TRUE(server.settled());
    EXPECT_GT(server.request_bytes(), 0u);
  }
}

TEST_F(TlsHttpSessionTest, KeptAliveSessionChecksTheNameAgainWhenItReconnects) {
  // The first connection has the right certificate; the server closes it after the answer, so
  // the second request dials again and meets a slow server with the wrong name.
  SlowTlsServer server({{node_->asio_server_context(true), std::chrono::milliseconds(0)},
                        {wrong_name_->asio_server_context(true), kSlowHandshake}});
  const auto kept = session(server);
  kept->setKeepAlive(true);
  ASSERT_EQ(get(*kept), "200 ok");
  ASSERT_TRUE(server.settled());
  const size_t first_bytes = server.request_bytes();
  const std::string outcome = get(*kept);
  EXPECT_NE(outcome.find(kVerifyFailed), std::string::npos) << outcome;
  ASSERT_TRUE(server.settled());
  // Poco writes a kept-alive session's request once more on a new connection when the first write
  // fails: a third handshake, refused too.
  EXPECT_GE(server.connections(), 2);
  EXPECT_EQ(server.request_bytes(), first_bytes);
}

TEST_F(TlsHttpSessionTest, NamesAreCheckedForDnsNamesAndPastTheContextCache) {
  // More peer hosts than the cache keeps contexts for: the hosts below get theirs made again.
  for (size_t i = 0; i <= chorus::tls::kPeerContextsMax; ++i) {
    const std::string host = "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(i % 250);
    EXPECT_NE(chorus::tls::make_http_session(host, 1, client_, 100), nullptr);
  }
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    SlowTlsServer wrong({{wrong_name_->asio_server_context(true), kSlowHandshake}});
    const std::string outcome = get(*session(wrong, host));
    EXPECT_NE(outcome.find(kVerifyFailed), std::string::npos) << host << ": " << outcome;
    ASSERT_TRUE(wrong.settled());
    EXPECT_EQ(wrong.request_bytes(), 0u) << host;
    SlowTlsServer right({{node_->asio_server_context(true), kSlowHandshake}});
    EXPECT_EQ(get(*session(right, host)), "200 ok") << host;  // the certificate has DNS:localhost
  }
}

TEST_F(TlsHttpSessionTest, TheClientContextConnectsOnlyThroughMakeHttpSession) {
  // A session made on the client context directly would have no name for OpenSSL to check: every
  // server is refused, even one with the right certificate.
  SlowTlsServer server({{node_->asio_server_context(true), std::chrono::milliseconds(0)}});
  Poco::Net::HTTPSClientSession direct("127.0.0.1", server.port(), client_);
  direct.setTimeout(Poco::Timespan(5, 0));
  const std::string outcome = get(direct);
  EXPECT_NE(outcome.find(kVerifyFailed), std::string::npos) << outcome;
  ASSERT_TRUE(server.settled());
  EXPECT_EQ(server.request_bytes(), 0u);
  // A context that did not come from poco_client_context() is not taken.
  const Poco::Net::Context::Ptr foreign =
      new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, Poco::Net::Context::Params());
  EXPECT_THROW(chorus::tls::make_http_session("127.0.0.1", server.port(), foreign, 1000),
               std::invalid_argument);
}

}  // namespace
