// Certificate loading and TLS contexts; see tls.hpp. OpenSSL objects are held by unique_ptrs
// with OpenSSL's own free functions; contexts take their own references (SSL_CTX_use_*, add1).
#include "common/tls.hpp"

#include <Poco/Net/HTTPSClientSession.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>

namespace chorus::tls {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // the stack, not its items
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Waits of a Poco TLS client exchange on a silent peer: handshake, then two receive waits.
constexpr int kTlsTimeoutParts = 3;

// Names the sessions of our servers (any fixed value; one per application).
constexpr char kSessionIdContext[] = "chorus";

// Ciphers for TLS 1.2 (1.3 suites are OpenSSL's defaults): forward secrecy and AEAD only.
constexpr const char* kCipherList = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5";

// Reads a whole (small) file; "" error or the reason.
std::string read_file(const std::string& path, const char* what, std::string& out) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return std::string("cannot read ") + what + " '" + path + "': no such file";
  }
  if (std::filesystem::is_directory(path, ec)) {
    return std::string(what) + " '" + path + "' is a folder, not a file";
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::string("cannot read ") + what + " '" + path + "': " + std::strerror(errno);
  }
  out.assign(kPemFileBytesMax + 1, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  if (out.size() > kPemFileBytesMax) {
    return std::string(what) + " '" + path + "' is larger than " +
           std::to_string(kPemFileBytesMax) + " bytes";
  }
  return "";
}

// Every certificate of a PEM text, in order.
std::vector<X509Ptr> parse_certificates(const std::string& pem) {
  std::vector<X509Ptr> out;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the loop ends on "no start line"
  return out;
}

// A passphrase callback that refuses: OpenSSL's default would prompt on the terminal.
int no_passphrase(char*, int, int, void*) { return -1; }

std::string text_of(const ASN1_TIME* time) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(bio.get(), time);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string subject_of(X509* x) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

bool has_root_extension(const std::filesystem::path& file) {
  const std::string ext = file.extension().string();
  return std::any_of(std::begin(kRootFileExtensions), std::end(kRootFileExtensions),
                     [&](const char* e) { return ext == e; });
}

// The PEM files that hold the trusted roots: the path itself, or the root files of a folder.
std::string root_files(const std::string& path, std::vector<std::string>& files) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return "cannot read trusted root certificates path '" + path + "': no such file or folder";
  }
  if (!std::filesystem::is_directory(path, ec)) {
    files.push_back(path);
    return "";
  }
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    if (entry.is_regular_file(ec) && has_root_extension(entry.path())) {
      files.push_back(entry.path().string());
    }
  }
  if (ec) return "cannot list trusted root certificates folder '" + path + "': " + ec.message();
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    return "trusted root certificates folder '" + path + "' holds no .pem, .crt or .cer file";
  }
  return "";
}

std::string load_certificate(const std::string& path, X509Ptr& leaf, std::vector<X509Ptr>& chain) {
  std::string pem;
  if (std::string e = read_file(path, "certificate file", pem); !e.empty()) return e;
  std::vector<X509Ptr> certs = parse_certificates(pem);
  if (certs.empty()) return "certificate file '" + path + "' holds no PEM certificate";
  leaf = std::move(certs.front());
  for (size_t i = 1; i < certs.size(); ++i) chain.push_back(std::move(certs[i]));
  return "";
}

std::string load_key(const std::string& path, KeyPtr& key) {
  std::string pem;
  if (std::string e = read_file(path, "private key file", pem); !e.empty()) return e;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  ERR_clear_error();
  if (!key) {
    return "private key file '" + path +
           "' holds no unencrypted PEM private key (encrypted keys are not supported)";
  }
  return "";
}

std::string load_roots(const std::string& path, std::vector<X509Ptr>& roots) {
  std::vector<std::string> files;
  if (std::string e = root_files(path, files); !e.empty()) return e;
  for (const std::string& file : files) {
    std::string pem;
    if (std::string e = read_file(file, "trusted root certificate", pem); !e.empty()) return e;
    std::vector<X509Ptr> certs = parse_certificates(pem);
    if (certs.empty()) return "trusted root certificate '" + file + "' holds no PEM certificate";
    for (X509Ptr& cert : certs) roots.push_back(std::move(cert));
    if (roots.size() > kTrustedRootsMax) {
      return "trusted root certificates path '" + path + "' holds more than " +
             std::to_string(kTrustedRootsMax) + " certificates";
    }
  }
  return "";
}

// The certificate's validity period against `now`; "" or the problem.
std::string check_validity(X509* leaf, const std::string& path, time_t now) {
  if (X509_cmp_time(X509_get0_notAfter(leaf), &now) < 0) {
    return "certificate '" + path + "' expired on " + text_of(X509_get0_notAfter(leaf));
  }
  if (X509_cmp_time(X509_get0_notBefore(leaf), &now) > 0) {
    return "certificate '" + path + "' is not valid before " + text_of(X509_get0_notBefore(leaf));
  }
  return "";
}

// Our own certificate must chain to a trusted root, or every peer would refuse it.
std::string check_chain(const CertificatePaths& paths, X509* leaf,
                        const std::vector<X509Ptr>& chain, const std::vector<X509Ptr>& roots,
                        time_t now) {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (const X509Ptr& root : roots) X509_STORE_add_cert(store.get(), root.get());
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  for (const X509Ptr& cert : chain) sk_X509_push(untrusted.get(), cert.get());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> context(X509_STORE_CTX_new());
  X509_STORE_CTX_init(context.get(), store.get(), leaf, untrusted.get());
  X509_STORE_CTX_set_time(context.get(), 0, now);
  if (X509_verify_cert(context.get()) == 1) return "";
  const int code = X509_STORE_CTX_get_error(context.get());
  ERR_clear_error();
  return "certificate '" + paths.certificate_file + "' does not chain to a root in '" +
         paths.trusted_roots_path + "': " + X509_verify_cert_error_string(code);
}

// What expect_name() made of a host.
enum class HostKind { kUnusable, kIpAddress, kDnsName };

// Makes a certificate check demand that the certificate names `host`: an IP address against IP
// SANs, a name against DNS SANs (without partial wildcards such as "n*.example.com").
HostKind expect_name(X509_VERIFY_PARAM* param, const std::string& host) {
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1) return HostKind::kIpAddress;
  ERR_clear_error();  // not an IP address: a DNS name
  if (!host.empty() && X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1) {
    return HostKind::kDnsName;
  }
  ERR_clear_error();
  return HostKind::kUnusable;
}

// The client parameters of every Poco client context: verify the server's chain against our
// roots only. STRICT, not RELAXED: Poco skips its own name check for loopback hosts under RELAXED;
// a client presents no "fail if no peer certificate" anyway.
Poco::Net::Context::Params poco_client_params() {
  Poco::Net::Context::Params params;
  params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
  params.loadDefaultCAs = false;
  params.cipherList = kCipherList;
  return params;
}

// OpenSSL's certificate check of the client context below: refuses without looking.
int refuse_certificate(X509_STORE_CTX* store, void*) {
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

// What poco_client_context() hands out. Poco 1.11 checks the server's name only after its
// handshake call returns, and not at all when that call ended at the receive timeout (a slow
// server): Poco goes on as if the handshake had finished, and the request's first write completes
// it with OpenSSL's chain check but no name check, so any holder of a certificate of the trusted
// CA got the request. Hence the name goes where OpenSSL checks it during the handshake, before
// any request byte: the verification parameters of the SSL_CTX, which every SSL object Poco makes
// from it inherits (first connect, reconnect of a kept-alive session, whichever call completes
// the handshake). Poco 1.11 has no hook between SSL_new and the handshake, and a verify callback
// on a shared context would have to read the host from the SNI that Poco chooses to send, so
// there is one context per peer host; this context makes and caches them and, should a session
// be made on it directly, refuses every server.
class PeerContexts final : public Poco::Net::Context {
 public:
  using Make = std::function<Poco::Net::Context::Ptr(const std::string& host)>;

  explicit PeerContexts(Make make)
      : Context(TLS_CLIENT_USE, poco_client_params()), make_(std::move(make)) {
    SSL_CTX_set_cert_verify_callback(sslContext(), refuse_certificate, nullptr);
  }

  Poco::Net::Context::Ptr for_host(const std::string& host) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = by_host_.find(host);
    if (it != by_host_.end()) return it->second;
    if (by_host_.size() >= kPeerContextsMax) by_host_.clear();
    Poco::Net::Context::Ptr context = make_(host);
    by_host_.emplace(host, context);
    return context;
  }

 private:
  const Make make_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, Poco::Net::Context::Ptr> by_host_;  // GUARDED_BY(mutex_)
};

}  // namespace

struct Certificates::Material {
  X509Ptr leaf;
  std::vector<X509Ptr> chain;  // intermediates sent after the leaf
  KeyPtr key;
  std::vector<X509Ptr> roots;
};

std::shared_ptr<const Certificates> Certificates::load(const CertificatePaths& paths,
                                                       std::string* error,
                                                       std::chrono::system_clock::time_point now,
                                                       PathField* field) {
  auto material = std::make_unique<Material>();
  const time_t now_seconds = std::chrono::system_clock::to_time_t(now);
  PathField at = PathField::kCertificate;
  std::string problem = load_certificate(paths.certificate_file, material->leaf, material->chain);
  if (problem.empty()) {
    at = PathField::kPrivateKey;
    problem = load_key(paths.private_key_file, material->key);
  }
  if (problem.empty() && X509_check_private_key(material->leaf.get(), material->key.get()) != 1) {
    ERR_clear_error();
    problem = "private key '" + paths.private_key_file + "' does not match certificate '" +
              paths.certificate_file + "'";
  }
  if (problem.empty()) {
    at = PathField::kCertificate;
    problem = check_validity(material->leaf.get(), paths.certificate_file, now_seconds);
  }
  if (problem.empty()) {
    at = PathField::kTrustedRoots;
    problem = load_roots(paths.trusted_roots_path, material->roots);
  }
  if (problem.empty()) {
    at = PathField::kCertificate;
    problem =
        check_chain(paths, material->leaf.get(), material->chain, material->roots, now_seconds);
  }
  if (!problem.empty()) {
    if (error != nullptr) *error = problem;
    if (field != nullptr) *field = at;
    return nullptr;
  }
  return std::shared_ptr<const Certificates>(new Certificates(paths, std::move(material)));
}

Certificates::Certificates(CertificatePaths paths, std::unique_ptr<Material> material)
    : paths_(std::move(paths)), material_(std::move(material)) {}

Certificates::~Certificates() = default;

CertificateSummary Certificates::summary() const {
  return CertificateSummary{subject_of(material_->leaf.get()),
                            text_of(X509_get0_notAfter(material_->leaf.get())),
                            material_->roots.size()};
}

void Certificates::apply(SSL_CTX* context) const {
  bool ok = SSL_CTX_use_certificate(context, material_->leaf.get()) == 1;
  for (const X509Ptr& cert : material_->chain) {
    ok = ok && SSL_CTX_add1_chain_cert(context, cert.get()) == 1;
  }
  ok = ok && SSL_CTX_use_PrivateKey(context, material_->key.get()) == 1;
  X509_STORE* store = SSL_CTX_get_cert_store(context);
  for (const X509Ptr& root : material_->roots) {
    ok = ok && X509_STORE_add_cert(store, root.get()) == 1;
  }
  ok = ok && SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) == 1;
  ok = ok && SSL_CTX_set_cipher_list(context, kCipherList) == 1;
  // A client that resumes a session (Node's HTTPS agent does) on a server that asks for client
  // certificates fails with an internal error unless a session id context is set.
  ok = ok && SSL_CTX_set_session_id_context(
                 context, reinterpret_cast<const unsigned char*>(kSessionIdContext),
                 sizeof(kSessionIdContext) - 1) == 1;
  if (!ok) {
    // load() checked everything these calls need: failing here is a programming error.
    const unsigned long code = ERR_get_error();
    throw std::logic_error(std::string("cannot set up a TLS context: ") +
                           ERR_error_string(code, nullptr));
  }
}

std::shared_ptr<boost::asio::ssl::context> Certificates::asio_server_context(
    bool require_peer_certificate) const {
  namespace ssl = boost::asio::ssl;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::single_dh_use);
  apply(context->native_handle());
  context->set_verify_mode(require_peer_certificate
                               ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                               : ssl::verify_none);
  return context;
}

std::shared_ptr<boost::asio::ssl::context> Certificates::asio_client_context() const {
  namespace ssl = boost::asio::ssl;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3);
  apply(context->native_handle());
  context->set_verify_mode(ssl::verify_peer);
  return context;
}

Poco::Net::Context::Ptr Certificates::poco_server_context(bool require_peer_certificate) const {
  using Poco::Net::Context;
  Context::Params params;
  params.verificationMode =
      require_peer_certificate ? Context::VERIFY_STRICT : Context::VERIFY_NONE;
  params.loadDefaultCAs = false;
  params.cipherList = kCipherList;
  Context::Ptr context = new Context(Context::TLS_SERVER_USE, params);
  context->requireMinimumProtocol(Context::PROTO_TLSV1_2);
  // A server does not match a client's certificate against a host name.
  context->enableExtendedCertificateVerification(false);
  apply(context->sslContext());
  return context;
}

Poco::Net::Context::Ptr Certificates::poco_client_context() const {
  return new PeerContexts([self = shared_from_this()](const std::string& host) {
    return self->poco_client_context_for(host);
  });
}

Poco::Net::Context::Ptr Certificates::poco_client_context_for(const std::string& host) const {
  using Poco::Net::Context;
  Context::Ptr context = new Context(Context::TLS_CLIENT_USE, poco_client_params());
  context->requireMinimumProtocol(Context::PROTO_TLSV1_2);
  // Poco's own check after the handshake stays on; OpenSSL's is the one that cannot be skipped.
  context->enableExtendedCertificateVerification(true);
  apply(context->sslContext());
  if (expect_name(SSL_CTX_get0_param(context->sslContext()), host) == HostKind::kUnusable) {
    throw std::invalid_argument("cannot check a TLS certificate for the host '" + host + "'");
  }
  return context;
}

bool expect_peer_name(SSL* connection, const std::string& host) {
  const HostKind kind = expect_name(SSL_get0_param(connection), host);
  if (kind == HostKind::kDnsName) SSL_set_tlsext_host_name(connection, host.c_str());
  return kind != HostKind::kUnusable;
}

bool peer_certificate_names(SSL* connection, const std::string& host) {
  if (SSL_get_verify_result(connection) != X509_V_OK) return false;
  X509* certificate = SSL_get1_peer_certificate(connection);
  if (certificate == nullptr) return false;
  int found = X509_check_ip_asc(certificate, host.c_str(), 0);
  if (found < 0) {  // not an IP address: a DNS name
    ERR_clear_error();
    found = X509_check_host(certificate, host.c_str(), host.size(),
                            X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr);
  }
  X509_free(certificate);
  return found == 1;
}

std::unique_ptr<Poco::Net::HTTPClientSession> make_http_session(
    const std::string& host, uint16_t port, const Poco::Net::Context::Ptr& context,
    int timeout_ms) {
  const auto us = [](int ms) {
    return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms) * 1000);
  };
  if (context.isNull()) {
    auto session = std::make_unique<Poco::Net::HTTPClientSession>(host, port);
    session->setTimeout(us(timeout_ms));
    return session;
  }
  const auto* peers = dynamic_cast<const PeerContexts*>(context.get());
  if (peers == nullptr) {
    throw std::invalid_argument(
        "an HTTPS session needs a client context from Certificates::poco_client_context()");
  }
  auto session = std::make_unique<Poco::Net::HTTPSClientSession>(host, port, peers->for_host(host));
  // On a silent peer Poco's TLS session (1.11) waits for the connect timeout during the handshake
  // and then twice the receive timeout (measured); a third of the budget each keeps the whole
  // exchange within it, as the plain session's single timeout does. A handshake that takes longer
  // than its third is completed by the first write, still checked by OpenSSL (PeerContexts).
  const int part_ms = std::max(1, timeout_ms / kTlsTimeoutParts);
  session->setTimeout(us(part_ms), us(part_ms), us(part_ms));
  return session;
}

}  // namespace chorus::tls
