// Request and Reply helpers (see request.hpp).
#include "worker/http/request.hpp"

#include <Poco/Exception.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cctype>

namespace chorus::http {

bool CaseLess::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(
      a.begin(), a.end(), b.begin(), b.end(),
      [](unsigned char x, unsigned char y) { return std::tolower(x) < std::tolower(y); });
}

std::optional<std::string> Request::header(std::string_view name) const {
  const auto it = headers.find(std::string(name));
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

std::string Request::param(const std::string& name) const {
  const auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

std::optional<std::string> Request::query_value(const std::string& name) const {
  for (const auto& [key, value] : query) {
    if (!CaseLess()(key, name) && !CaseLess()(name, key)) return value;
  }
  return std::nullopt;
}

std::optional<Reply> set_target(Request& request, const std::string& target) {
  const size_t question = target.find('?');
  request.path = target.substr(0, question);
  if (question != std::string::npos) request.raw_query = target.substr(question + 1);
  try {
    for (const auto& [key, value] : Poco::URI(target).getQueryParameters()) {
      request.query.emplace(key, value);
    }
  } catch (const Poco::Exception&) {
    return text_reply(400, "Invalid request URI.");
  }
  return std::nullopt;
}

Reply text_reply(int status, const std::string& message) {
  Reply reply;
  reply.status = status;
  reply.reason = message;
  reply.content_type = "text/plain; charset=utf-8";
  reply.body = message;
  return reply;
}

Reply json_reply(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.content_type = "application/json; charset=utf-8";
  reply.body = std::move(body);
  return reply;
}

}  // namespace chorus::http
