// Poco's HTTPClientSession with one timeout for connect, send and receive, over TCP or over a
// Unix socket (a node's health listener); HTTPS when given a TLS client context.
#include "manager/http_client.hpp"

#include "common/tls.hpp"

#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>

namespace chorus::manager {
namespace {

// The session's timeouts are set by the caller. `keep_alive`: the server said it keeps the
// connection open.
std::optional<HttpAnswer> exchange(Poco::Net::HTTPClientSession& session, const std::string& method,
                                   const std::string& target, const std::string& body,
                                   const std::map<std::string, std::string>& headers,
                                   bool* keep_alive = nullptr) {
  Poco::Net::HTTPRequest request(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
  for (const auto& [name, value] : headers) request.set(name, value);
  if (method == "POST" || !body.empty()) {
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    if (!request.has("Content-Type")) request.setContentType("application/json");
  }
  session.sendRequest(request) << body;
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  HttpAnswer answer;
  answer.status = static_cast<int>(response.getStatus());
  answer.content_type = response.getContentType();
  for (const auto& [name, value] : response) answer.headers[name] = value;
  Poco::StreamCopier::copyToString(in, answer.body);
  if (keep_alive) *keep_alive = response.getKeepAlive();
  return answer;
}

Poco::Timespan milliseconds(int ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms) * 1000);
}

// Poco's own reconnect after its client-side idle timeout would dial host:port, which a session
// on a Unix socket does not have; the server's keep-alive timeout and limit are handled here.
constexpr int kClientKeepAliveSeconds = 24 * 3600;

}  // namespace

std::optional<HttpAnswer> http_request(const std::string& method, const std::string& host, int port,
                                       const std::string& target, const std::string& body,
                                       const std::map<std::string, std::string>& headers,
                                       int timeout_ms, const Poco::Net::Context::Ptr& tls) {
  try {
    const auto session = tls::make_http_session(host, static_cast<uint16_t>(port), tls, timeout_ms);
    return exchange(*session, method, target, body, headers);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<HttpAnswer> http_request_unix(const std::string& socket_path,
                                            const std::string& target, int timeout_ms) {
  return http_request_unix(socket_path, "GET", target, "", timeout_ms);
}

std::optional<HttpAnswer> http_request_unix(const std::string& socket_path,
                                            const std::string& method, const std::string& target,
                                            const std::string& body, int timeout_ms) {
  try {
    const Poco::Timespan timeout(static_cast<long>(timeout_ms) * 1000);
    Poco::Net::StreamSocket socket;
    socket.connect(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, socket_path),
                   timeout);
    Poco::Net::HTTPClientSession session(socket);
    session.setTimeout(timeout);
    return exchange(session, method, target, body, {{"Host", "localhost"}});
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

HttpConnection::HttpConnection(std::string host, int port, Poco::Net::Context::Ptr tls)
    : host_(std::move(host)), port_(port), tls_(std::move(tls)) {}

HttpConnection::HttpConnection(std::string socket_path) : socket_path_(std::move(socket_path)) {}

HttpConnection::~HttpConnection() { close(); }

void HttpConnection::close() {
  if (!session_) return;
  try {
    session_->reset();
  } catch (const std::exception&) {
    // Closing a broken connection: nothing left to do.
  }
  session_.reset();
}

std::optional<HttpAnswer> HttpConnection::request(const std::string& method,
                                                  const std::string& target,
                                                  const std::string& body,
                                                  const std::map<std::string, std::string>& headers,
                                                  int timeout_ms) {
  bool retry = false;
  auto answer = attempt(method, target, body, headers, timeout_ms, &retry);
  if (!answer && retry) answer = attempt(method, target, body, headers, timeout_ms, &retry);
  return answer;
}

std::optional<HttpAnswer> HttpConnection::attempt(const std::string& method,
                                                  const std::string& target,
                                                  const std::string& body,
                                                  const std::map<std::string, std::string>& headers,
                                                  int timeout_ms, bool* retry) {
  *retry = false;
  const bool reused = session_ != nullptr && requests_ > 0;
  try {
    if (!session_) {
      requests_ = 0;
      if (socket_path_.empty()) {
        session_ = tls::make_http_session(host_, static_cast<uint16_t>(port_), tls_, timeout_ms);
      } else {
        Poco::Net::StreamSocket socket;
        socket.connect(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, socket_path_),
                       milliseconds(timeout_ms));
        session_ = std::make_unique<Poco::Net::HTTPClientSession>(socket);
        session_->setTimeout(milliseconds(timeout_ms));
      }
      session_->setKeepAlive(true);
      session_->setKeepAliveTimeout(Poco::Timespan(kClientKeepAliveSeconds, 0));
    }
    auto all_headers = headers;
    if (!socket_path_.empty()) all_headers.emplace("Host", "localhost");
    bool keep_alive = false;
    auto answer = exchange(*session_, method, target, body, all_headers, &keep_alive);
    ++requests_;
    if (!keep_alive) close();
    return answer;
  } catch (const Poco::TimeoutException&) {
    close();  // a silent server: no second wait
  } catch (const std::exception&) {
    close();
    *retry = reused;  // closed by the server while idle, most likely
  }
  return std::nullopt;
}

Poco::JSON::Object::Ptr parse_json_object(const std::string& text) {
  if (text.empty()) return nullptr;
  try {
    Poco::JSON::Parser parser;
    return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace chorus::manager
