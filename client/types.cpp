// Names of the public enums and the endpoint text form.
#include <chorus/settings.hpp>
#include <chorus/types.hpp>

#include <charconv>

#include "common/guid.hpp"

namespace chorus::client {

Guid new_event_id() { return random_guid(); }

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::WrongExpectedVersion:
      return "WrongExpectedVersion";
    case ErrorKind::StreamDeleted:
      return "StreamDeleted";
    case ErrorKind::AccessDenied:
      return "AccessDenied";
    case ErrorKind::NotAuthenticated:
      return "NotAuthenticated";
    case ErrorKind::BadRequest:
      return "BadRequest";
    case ErrorKind::ServerError:
      return "ServerError";
    case ErrorKind::RetryLimitReached:
      return "RetryLimitReached";
    case ErrorKind::QueueFull:
      return "QueueFull";
    case ErrorKind::ConnectionClosed:
      return "ConnectionClosed";
    case ErrorKind::InvalidArgument:
      return "InvalidArgument";
    case ErrorKind::ProtocolError:
      return "ProtocolError";
  }
  return "Unknown";
}

const char* to_string(ReadStatus status) {
  switch (status) {
    case ReadStatus::Success:
      return "Success";
    case ReadStatus::NotFound:
      return "NotFound";
    case ReadStatus::NoStream:
      return "NoStream";
    case ReadStatus::StreamDeleted:
      return "StreamDeleted";
  }
  return "Unknown";
}

const char* to_string(DropReason reason) {
  switch (reason) {
    case DropReason::Unsubscribed:
      return "Unsubscribed";
    case DropReason::AccessDenied:
      return "AccessDenied";
    case DropReason::NotFound:
      return "NotFound";
    case DropReason::NotAuthenticated:
      return "NotAuthenticated";
    case DropReason::ConnectionClosed:
      return "ConnectionClosed";
    case DropReason::ServerError:
      return "ServerError";
  }
  return "Unknown";
}

std::optional<Endpoint> parse_endpoint(std::string_view text, uint16_t default_port,
                                       std::string* error) {
  Endpoint endpoint;
  const size_t colon = text.rfind(':');
  std::string_view host = colon == std::string_view::npos ? text : text.substr(0, colon);
  if (colon == std::string_view::npos) {
    endpoint.port = default_port;
  } else {
    const std::string_view port = text.substr(colon + 1);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      *error = "bad port in '" + std::string(text) + "' (expected host:port)";
      return std::nullopt;
    }
    endpoint.port = static_cast<uint16_t>(value);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || endpoint.port == 0) {
    *error = "bad endpoint '" + std::string(text) + "' (expected host:port)";
    return std::nullopt;
  }
  endpoint.host = std::string(host);
  return endpoint;
}

std::string to_string(const Endpoint& endpoint) {
  return endpoint.host + ":" + std::to_string(endpoint.port);
}

}  // namespace chorus::client
