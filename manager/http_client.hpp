// A blocking HTTP/1.1 request with a deadline (Poco Net), for health checks, gossip and calls to
// the nodes. Any thread; no shared state.
#pragma once

#include <Poco/JSON/Object.h>
#include <Poco/Net/Context.h>

#include <map>
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

// A JSON object from an answer's body; nullptr when the body is empty, not JSON or not an object.
Poco::JSON::Object::Ptr parse_json_object(const std::string& text);

}  // namespace chorus::manager
