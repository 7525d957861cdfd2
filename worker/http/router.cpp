// Router and path splitting (see router.hpp).
#include "worker/http/router.hpp"

#include "worker/http/limits.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace chorus::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view text, std::string& out) {
  out.clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return false;
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return false;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return true;
}

bool segments_match(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
                    std::map<std::string, std::string>* params) {
  if (pattern.size() != path.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string& p = pattern[i];
    const bool capture = p.size() >= 2 && p.front() == '{' && p.back() == '}';
    if (capture) {
      if (path[i].empty()) return false;
      if (params != nullptr) (*params)[p.substr(1, p.size() - 2)] = path[i];
    } else if (p != path[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool split_path(std::string_view path, std::vector<std::string>& segments) {
  segments.clear();
  size_t start = path.empty() || path.front() != '/' ? 0 : 1;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string segment;
    if (!percent_decode(path.substr(start, end - start), segment)) return false;
    segments.push_back(std::move(segment));
    if (segments.size() > kPathSegmentsMax) return false;
    start = end + 1;
  }
  return true;
}

void Router::add(std::string method, std::string pattern, Handler handler) {
  Route route{std::move(method), std::move(pattern), {}, std::move(handler)};
  split_path(route.pattern, route.segments);
  routes_.push_back(std::move(route));
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  RouteMatch result;
  std::vector<std::string> segments;
  if (!split_path(path, segments)) return result;
  for (const Route& route : routes_) {
    std::map<std::string, std::string> params;
    if (!segments_match(route.segments, segments, &params)) continue;
    if (route.method == method) {
      if (result.kind != RouteMatch::Kind::Found) {
        result.kind = RouteMatch::Kind::Found;
        result.route = &route;
        result.params = std::move(params);
      }
    }
    if (std::find(result.allowed.begin(), result.allowed.end(), route.method) ==
        result.allowed.end()) {
      result.allowed.push_back(route.method);
    }
  }
  if (result.kind != RouteMatch::Kind::Found && !result.allowed.empty()) {
    result.kind = RouteMatch::Kind::MethodNotAllowed;
  }
  return result;
}

std::vector<std::string> Router::methods_for(std::string_view path) const {
  return match("", path).allowed;
}

}  // namespace chorus::http
