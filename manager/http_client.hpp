// A blocking HTTP/1.1 request with a deadline (Poco Net), for health checks, gossip and calls to
// the nodes. Any thread; no shared state. HttpConnection keeps one connection open for requests
// repeated every interval; one thread uses it at a time.
#pragma once

#include <Poco/JSON/Object.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace chorus::manager {

struct HttpAnswer {
  int status = 0;
  std::string body;
  std::string content_type;
  std::map<std::string, std::string> headers;
};

// nullopt when the connection or the deadline failed. With `tls` (a client context) the request
// goes over HTTPS, presenting our certificate and verifying the server's; null: plain HTTP.
std::optional<HttpAnswer> http_request(const std::string& method, const std::string& host, int port,
                                       const std::string& target, const std::string& body,
                                       const std::map<std::string, std::string>& headers,
                                       int timeout_ms, const Poco::Net::Context::Ptr& tls);

// A GET over a node's health listener (a Unix socket); nullopt as above.
std::optional<HttpAnswer> http_request_unix(const std::string& socket_path,
                                            const std::string& target, int timeout_ms);
// Any method with a JSON body over a node's health listener (e.g. POST /admin/backup).
std::optional<HttpAnswer> http_request_unix(const std::string& socket_path,
                                            const std::string& method, const std::string& target,
                                            const std::string& body, int timeout_ms);

// One kept-alive connection to a server (TCP, HTTPS with `tls`, or a node's health listener, a
// Unix socket), for requests repeated every interval: the health checks and the gossip relay.
// Idle cost (issue 16): a new connection per request costs both sides a connect, an accept, the
// server's hand-off of the connection to a request thread and a close, several thread wake-ups
// each; on a kept one a request wakes the server's request thread once. A request on a reused
// connection that the server has closed meanwhile (its keep-alive timeout or request limit) is
// sent once more on a new one; a timeout is not retried, so a silent node still fails within
// `timeout_ms` (which is applied when a connection opens: give each request of one object the
// same). Not thread-safe: one owner.
class HttpConnection {
 public:
  HttpConnection(std::string host, int port, Poco::Net::Context::Ptr tls);
  explicit HttpConnection(std::string socket_path);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  std::optional<HttpAnswer> request(const std::string& method, const std::string& target,
                                    const std::string& body,
                                    const std::map<std::string, std::string>& headers,
                                    int timeout_ms);
  // Closes the connection; the next request opens a new one.
  void close();

 private:
  std::optional<HttpAnswer> attempt(const std::string& method, const std::string& target,
                                    const std::string& body,
                                    const std::map<std::string, std::string>& headers,
                                    int timeout_ms, bool* retry);

  std::string host_;
  int port_ = 0;
  Poco::Net::Context::Ptr tls_;
  std::string socket_path_;  // non-empty: a Unix socket
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
  int64_t requests_ = 0;  // answered on the current connection
};

// A JSON object from an answer's body; nullptr when the body is empty, not JSON or not an object.
Poco::JSON::Object::Ptr parse_json_object(const std::string& text);

}  // namespace chorus::manager
