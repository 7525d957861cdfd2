// Fuzz target: the HTTP API's header parsers (worker/http/headers) and the router with the
// worker's route table (worker/http/router). Properties: nothing throws; parsed values stay in
// their documented ranges; positions and Basic credentials survive formatting and parsing; a
// route match carries every capture of its pattern and its method is among the allowed ones.
#include "tests/fuzz/fuzz_check.hpp"
#include "worker/http/headers.hpp"
#include "worker/http/limits.hpp"
#include "worker/http/router.hpp"

#include <Poco/Base64Encoder.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

namespace {

namespace http = chorus::http;

// The worker's routes (streams_api.cpp and node_api.cpp register these patterns).
const http::Router& worker_router() {
  static const http::Router router = [] {
    http::Router r;
    const std::array<std::pair<const char*, const char*>, 20> routes = {{
        {"POST", "/streams/{stream}/metadata"},
        {"GET", "/streams/{stream}/metadata"},
        {"POST", "/streams/{stream}"},
        {"POST", "/streams/{stream}/incoming/{guid}"},
        {"DELETE", "/streams/{stream}"},
        {"GET", "/streams/{stream}"},
        {"GET", "/streams/{stream}/{event}"},
        {"GET", "/streams/{stream}/{from}/{direction}"},
        {"GET", "/streams/{stream}/{from}/{direction}/{count}"},
        {"GET", "/gossip"},
        {"POST", "/gossip"},
        {"GET", "/ping"},
        {"GET", "/info"},
        {"GET", "/stats"},
        {"GET", "/health/live"},
        {"GET", "/metrics"},
        {"POST", "/admin/shutdown"},
        {"POST", "/admin/scavenge"},
        {"POST", "/admin/node/resign"},
        {"GET", "/users/$current"},
    }};
    for (const auto& [method, pattern] : routes) {
      r.add(method, pattern, [](http::Request&) { return http::Reply{}; });
    }
    return r;
  }();
  return router;
}

void check_route(const std::string& method, const std::string& path) {
  const http::RouteMatch match = worker_router().match(method, path);
  std::vector<std::string> segments;
  const bool split = http::split_path(path, segments);
  if (!split) FUZZ_CHECK(match.kind == http::RouteMatch::Kind::NotFound, "unsplittable path");
  if (split) FUZZ_CHECK(segments.size() <= http::kPathSegmentsMax, "too many segments");
  if (match.kind != http::RouteMatch::Kind::Found) {
    FUZZ_CHECK(match.route == nullptr, "a route without a match");
    FUZZ_CHECK((match.kind == http::RouteMatch::Kind::NotFound) == match.allowed.empty(),
               "allowed methods disagree with the match kind");
    return;
  }
  FUZZ_CHECK(match.route != nullptr && match.route->method == method, "matched another method");
  FUZZ_CHECK(std::count(match.allowed.begin(), match.allowed.end(), method) == 1, "allowed list");
  for (const std::string& segment : match.route->segments) {
    if (segment.size() < 2 || segment.front() != '{') continue;
    const auto param = match.params.find(segment.substr(1, segment.size() - 2));
    FUZZ_CHECK(param != match.params.end() && !param->second.empty(), "missing capture");
  }
}

std::string base64(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out);
  encoder.rdbuf()->setLineLength(0);
  encoder << bytes;
  encoder.close();
  return out.str();
}

void check_headers(FuzzedDataProvider& in, const std::string& value) {
  if (const auto v = http::parse_expected_version(value)) {
    FUZZ_CHECK(*v >= chorus::kExpectedStreamExists, "expected version below -4");
  }
  if (const auto v = http::parse_long_poll(value)) {
    FUZZ_CHECK(*v >= 0 && *v <= http::kLongPollSecondsMax, "long poll out of range");
  }
  if (const auto v = http::parse_non_negative(value)) FUZZ_CHECK(*v >= 0, "negative number");
  (void)http::parse_bool_header(value, in.ConsumeBool());
  (void)http::parse_embed(value);
  (void)http::negotiate(value, http::MediaType::AtomJson);
  (void)http::parse_basic_auth(value);
  if (const auto p = http::parse_position(value)) {
    FUZZ_CHECK(http::parse_position(http::format_position(*p)) == p, "position round trip");
  }
  const chorus::Position position{in.ConsumeIntegral<int64_t>(), in.ConsumeIntegral<int64_t>()};
  FUZZ_CHECK(http::parse_position(http::format_position(position)) == position, "position text");
  const std::string etag = http::stream_etag(in.ConsumeIntegral<int64_t>(), http::MediaType::Json);
  FUZZ_CHECK(http::etag_matches("\"" + etag + "\"", etag), "own ETag not matched");
  (void)http::etag_matches(value, etag);
}

void check_basic_auth(const std::string& login, const std::string& password) {
  if (login.find(':') != std::string::npos) return;  // Basic cannot carry a colon in the login
  const auto parsed = http::parse_basic_auth("Basic " + base64(login + ":" + password));
  FUZZ_CHECK(parsed.has_value(), "valid Basic credentials refused");
  FUZZ_CHECK(parsed->login == login && parsed->password == password, "Basic credentials changed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::array<const char*, 5> methods = {"GET", "POST", "DELETE", "PUT", "OPTIONS"};
  const std::string method = in.PickValueInArray(methods);
  const std::string login = in.ConsumeRandomLengthString(32);
  const std::string password = in.ConsumeRandomLengthString(32);
  const std::string value = in.ConsumeRandomLengthString(128);
  check_headers(in, value);
  check_basic_auth(login, password);
  check_route(method, in.ConsumeRemainingBytesAsString());
  return 0;
}
