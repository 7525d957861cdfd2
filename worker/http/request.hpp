// Request and Reply: the HTTP exchange as plain values, so handlers can be tested without sockets.
// The server turns Poco's request into a Request and writes a Reply back. Plain data; any thread.
#pragma once

#include "worker/engine/types.hpp"

#include <Poco/Net/Context.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::http {

// Case-insensitive header and query maps (header names are ASCII).
struct CaseLess {
  bool operator()(std::string_view a, std::string_view b) const;
};
using HeaderMap = std::map<std::string, std::string, CaseLess>;

// The leader's HTTP endpoints ("host:port"): external for clients (307), internal for writes a
// follower passes on over the internal network.
struct LeaderHttp {
  std::string external;
  std::string internal;
  // With TLS: the client context for the leader's HTTPS ports (null: plain HTTP).
  Poco::Net::Context::Ptr tls;
};

struct Request {
  std::string method;
  std::string path;                          // path as sent (router decodes), no query
  std::string raw_query;                     // the text after '?', as sent
  std::map<std::string, std::string> query;  // decoded query parameters (first value wins)
  HeaderMap headers;
  std::string body;
  std::string base_url;                       // "http://<Host header>", for links
  std::map<std::string, std::string> params;  // route parameters ({stream}, {count}, ...)
  Principal who;                              // anonymous unless valid credentials were sent
  std::optional<std::string> header(std::string_view name) const;
  std::string param(const std::string& name) const;
  std::optional<std::string> query_value(const std::string& name) const;
};

struct Reply {
  int status = 200;
  std::string reason;  // status line text; empty = the standard one
  HeaderMap headers;
  std::string content_type;
  std::string body;
  // Runs on the connection's thread once the reply is written and flushed, and the connection
  // then closes: an action the reply announces (a shutdown) that would otherwise close the
  // connection before its answer is sent. Honoured by HttpServer's Poco connections; the health
  // listener (HealthResponder) serves no route that sets it.
  std::function<void()> after_sent;
};

// Sets the request's path, raw query and decoded query from the request target ("/path?query").
// A 400 reply when the query cannot be decoded, else nullopt.
std::optional<Reply> set_target(Request& request, const std::string& target);

// A text reply whose reason phrase and body both carry `message`.
Reply text_reply(int status, const std::string& message);
// A JSON reply (content type application/json).
Reply json_reply(int status, std::string body);

}  // namespace chorus::http
