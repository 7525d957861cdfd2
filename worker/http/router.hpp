// Router: (method, path pattern) -> handler. Patterns are '/'-separated segments where "{name}"
// captures one decoded segment; routes are tried in registration order. A path that matches some
// pattern but none with the request's method is "method not allowed" (405 with Allow). Built once
// at start, then read-only: any thread may call match().
#pragma once

#include "worker/http/request.hpp"

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::http {

using Handler = std::function<Reply(Request&)>;

struct Route {
  std::string method;
  std::string pattern;
  std::vector<std::string> segments;
  Handler handler;
};

struct RouteMatch {
  enum class Kind { Found, NotFound, MethodNotAllowed };
  Kind kind = Kind::NotFound;
  const Route* route = nullptr;               // when Found
  std::map<std::string, std::string> params;  // when Found
  std::vector<std::string> allowed;           // methods whose patterns match the path
};

// Splits a path into percent-decoded segments ("/streams/a%2Fb/0" -> {"streams","a/b","0"}).
// A trailing '/' is ignored. Returns false for an invalid escape or too many segments.
bool split_path(std::string_view path, std::vector<std::string>& segments);

class Router {
 public:
  void add(std::string method, std::string pattern, Handler handler);
  RouteMatch match(std::string_view method, std::string_view path) const;
  // Methods registered for a path (for OPTIONS and CORS).
  std::vector<std::string> methods_for(std::string_view path) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace chorus::http
