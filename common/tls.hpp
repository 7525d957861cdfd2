// Certificates for every TLS link of the worker and the manager, in one place: loads the PEM
// certificate (with its chain), its private key and the trusted root CAs named by EventStore's
// options, checks them (readable, key matches, not expired, chains to a trusted root) and builds
// what Asio's ssl streams (boost::asio::ssl::context) and Poco NetSSL (Poco::Net::Context) need.
// Crypto is OpenSSL's; nothing here implements any. A loaded Certificates is immutable and may be
// shared by any threads.
#pragma once

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chorus::tls {

// Where the PEM files are; empty certificate_file means "no TLS".
struct CertificatePaths {
  std::string certificate_file;    // --certificate-file: the node's certificate, then its chain
  std::string private_key_file;    // --certificate-private-key-file: unencrypted PEM key
  std::string trusted_roots_path;  // --trusted-root-certificates-path: a folder or one PEM file
  bool configured() const { return !certificate_file.empty(); }
};

// Files of a trusted-roots folder that are read; others (keys, notes) are ignored.
inline constexpr const char* kRootFileExtensions[] = {".pem", ".crt", ".cer"};
// Roots read from one path at most: a folder of thousands of files is a mistake, not a trust store.
inline constexpr size_t kTrustedRootsMax = 1000;
// Bytes read from one PEM file at most (a certificate chain is a few KiB).
inline constexpr size_t kPemFileBytesMax = 1u << 20;

// What a certificate check reports, for the startup log.
struct CertificateSummary {
  std::string subject;
  std::string not_after;  // e.g. "Dec  1 00:00:00 2027 GMT"
  size_t trusted_roots = 0;
};

// Which of the three paths a load error is about (for messages that name the option or key).
enum class PathField { kCertificate, kPrivateKey, kTrustedRoots };

class Certificates : public std::enable_shared_from_this<Certificates> {
 public:
  // Loads and checks the three paths at time `now`. On failure returns null and sets `error` to
  // one line naming the file and the problem, and `field` (if given) to the path at fault.
  static std::shared_ptr<const Certificates> load(
      const CertificatePaths& paths, std::string* error,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now(),
      PathField* field = nullptr);

  ~Certificates();
  Certificates(const Certificates&) = delete;
  Certificates& operator=(const Certificates&) = delete;

  const CertificatePaths& paths() const { return paths_; }
  CertificateSummary summary() const;

  // Contexts for Asio ssl streams. A server context with `require_peer_certificate` refuses a
  // client without a certificate signed by a trusted root (mutual TLS); without it clients are
  // not asked for one. A client context always presents our certificate and verifies the
  // server's chain (the peer's name is checked per connection: see expect_peer_name()).
  std::shared_ptr<boost::asio::ssl::context> asio_server_context(
      bool require_peer_certificate) const;
  std::shared_ptr<boost::asio::ssl::context> asio_client_context() const;

  // The same for Poco NetSSL. The server context is for SecureServerSocket. The client context is
  // for make_http_session() only, which makes from it, per host, a context whose handshakes fail
  // unless the server's certificate chains to a trusted root and names that host; a session made
  // on the client context itself is refused at every handshake.
  Poco::Net::Context::Ptr poco_server_context(bool require_peer_certificate) const;
  Poco::Net::Context::Ptr poco_client_context() const;

 private:
  struct Material;
  explicit Certificates(CertificatePaths paths, std::unique_ptr<Material> material);
  // Our certificate, chain and key, the trusted roots and TLS 1.2 as the minimum.
  void apply(SSL_CTX* context) const;
  // A Poco client context whose handshakes check that the server's certificate names `host`.
  Poco::Net::Context::Ptr poco_client_context_for(const std::string& host) const;

  CertificatePaths paths_;
  std::unique_ptr<Material> material_;
};

// Makes an OpenSSL connection check that the peer's certificate names `host` (an IP address is
// matched against IP SANs, a name against DNS SANs), and sends it as SNI when it is a name.
// Call before the handshake of a client connection.
bool expect_peer_name(SSL* connection, const std::string& host);

// True when the verified certificate the peer presented on `connection` names `host` (an IP
// address against IP SANs, a name against DNS SANs). False when it presented none.
bool peer_certificate_names(SSL* connection, const std::string& host);

// Client contexts per peer host one poco_client_context() keeps at most. Peers come from gossip
// and the manager's configuration (a cluster has a handful); past the limit the cache starts
// again empty, and sessions keep the contexts they use by reference.
inline constexpr size_t kPeerContextsMax = 64;

// An HTTP client session to host:port whose whole exchange (connect, send, receive) gives up
// after about `timeout_ms`: HTTPS when `context` is set (a client context from
// poco_client_context(): our certificate is presented, and OpenSSL refuses the handshake, before
// any byte of a request is sent, unless the server's certificate chains to a trusted root and
// names `host`), plain HTTP when it is null. Throws std::invalid_argument for a context that did
// not come from poco_client_context(), or a host that cannot be checked.
std::unique_ptr<Poco::Net::HTTPClientSession> make_http_session(
    const std::string& host, uint16_t port, const Poco::Net::Context::Ptr& context, int timeout_ms);

}  // namespace chorus::tls
