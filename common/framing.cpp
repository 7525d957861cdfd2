// Framing and package codec for EventStore's TCP protocol.
#include "common/framing.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

namespace chorus::wire {
namespace {

uint32_t read_le32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(u[0]) | (uint32_t(u[1]) << 8) | (uint32_t(u[2]) << 16) | (uint32_t(u[3]) << 24);
}

void append_le32(std::string& out, uint32_t v) {
  const std::array<char, 4> b{char(v & 0xFF), char((v >> 8) & 0xFF), char((v >> 16) & 0xFF),
                              char((v >> 24) & 0xFF)};
  out.append(b.data(), b.size());
}

}  // namespace

std::string command_name(uint8_t command) {
  switch (static_cast<Command>(command)) {
#define CHORUS_NAME(x) \
  case Command::x:     \
    return #x;
    CHORUS_NAME(HeartbeatRequest)
    CHORUS_NAME(HeartbeatResponse)
    CHORUS_NAME(Ping)
    CHORUS_NAME(Pong)
    CHORUS_NAME(WriteEvents)
    CHORUS_NAME(WriteEventsCompleted)
    CHORUS_NAME(TransactionStart)
    CHORUS_NAME(TransactionStartCompleted)
    CHORUS_NAME(TransactionWrite)
    CHORUS_NAME(TransactionWriteCompleted)
    CHORUS_NAME(TransactionCommit)
    CHORUS_NAME(TransactionCommitCompleted)
    CHORUS_NAME(DeleteStream)
    CHORUS_NAME(DeleteStreamCompleted)
    CHORUS_NAME(ReadEvent)
    CHORUS_NAME(ReadEventCompleted)
    CHORUS_NAME(ReadStreamEventsForward)
    CHORUS_NAME(ReadStreamEventsForwardCompleted)
    CHORUS_NAME(ReadStreamEventsBackward)
    CHORUS_NAME(ReadStreamEventsBackwardCompleted)
    CHORUS_NAME(ReadAllEventsForward)
    CHORUS_NAME(ReadAllEventsForwardCompleted)
    CHORUS_NAME(ReadAllEventsBackward)
    CHORUS_NAME(ReadAllEventsBackwardCompleted)
    CHORUS_NAME(SubscribeToStream)
    CHORUS_NAME(SubscriptionConfirmation)
    CHORUS_NAME(StreamEventAppeared)
    CHORUS_NAME(UnsubscribeFromStream)
    CHORUS_NAME(SubscriptionDropped)
    CHORUS_NAME(ConnectToPersistentSubscription)
    CHORUS_NAME(PersistentSubscriptionConfirmation)
    CHORUS_NAME(PersistentSubscriptionStreamEventAppeared)
    CHORUS_NAME(CreatePersistentSubscription)
    CHORUS_NAME(CreatePersistentSubscriptionCompleted)
    CHORUS_NAME(DeletePersistentSubscription)
    CHORUS_NAME(DeletePersistentSubscriptionCompleted)
    CHORUS_NAME(PersistentSubscriptionAckEvents)
    CHORUS_NAME(PersistentSubscriptionNakEvents)
    CHORUS_NAME(UpdatePersistentSubscription)
    CHORUS_NAME(UpdatePersistentSubscriptionCompleted)
    CHORUS_NAME(ScavengeDatabase)
    CHORUS_NAME(ScavengeDatabaseCompleted)
    CHORUS_NAME(BadRequest)
    CHORUS_NAME(NotHandled)
    CHORUS_NAME(Authenticate)
    CHORUS_NAME(Authenticated)
    CHORUS_NAME(NotAuthenticated)
    CHORUS_NAME(IdentifyClient)
    CHORUS_NAME(ClientIdentified)
#undef CHORUS_NAME
  }
  std::array<char, 8> text{};
  std::snprintf(text.data(), text.size(), "0x%02X", unsigned(command));
  return text.data();
}

PackageHeaderParse parse_package_header(std::string_view frame) {
  PackageHeaderParse result;
  if (frame.size() < kPackageHeaderBytes) {
    result.error =
        "package of " + std::to_string(frame.size()) + " bytes is shorter than its header";
    return result;
  }
  Package p;
  p.command = static_cast<uint8_t>(frame[0]);
  p.flags = static_cast<uint8_t>(frame[1]);
  p.correlation_id = *from_dotnet_bytes(frame.substr(2, 16));
  size_t offset = kPackageHeaderBytes;
  if (p.flags & static_cast<uint8_t>(Flags::Authenticated)) {
    // Lenient where EventStore is not: an empty password with an empty payload is accepted.
    if (offset + 1 > frame.size()) {
      result.error = "login length missing";
      return result;
    }
    const size_t login_len = static_cast<uint8_t>(frame[offset++]);
    if (offset + login_len + 1 > frame.size()) {
      result.error = "login or password length truncated";
      return result;
    }
    Credentials c;
    c.login = std::string(frame.substr(offset, login_len));
    offset += login_len;
    const size_t pass_len = static_cast<uint8_t>(frame[offset++]);
    if (offset + pass_len > frame.size()) {
      result.error = "password truncated";
      return result;
    }
    c.password = std::string(frame.substr(offset, pass_len));
    offset += pass_len;
    p.credentials = std::move(c);
  }
  result.package = std::move(p);
  result.payload_offset = offset;
  return result;
}

PackageParse parse_package(std::string_view frame) {
  PackageHeaderParse head = parse_package_header(frame);
  PackageParse result;
  if (!head.package) {
    result.error = std::move(head.error);
    return result;
  }
  head.package->payload = std::string(frame.substr(head.payload_offset));
  result.package = std::move(head.package);
  return result;
}

PackageParse parse_package(std::string&& frame) {
  PackageHeaderParse head = parse_package_header(frame);
  PackageParse result;
  if (!head.package) {
    result.error = std::move(head.error);
    return result;
  }
  frame.erase(0, head.payload_offset);
  head.package->payload = std::move(frame);
  result.package = std::move(head.package);
  return result;
}

std::string encode_package(const Package& package) {
  // A login or password longer than its one-byte length field is cut at 255 bytes, so the
  // frame stays well-formed (the server then answers NotAuthenticated).
  std::string_view login;
  std::string_view password;
  if (package.credentials) {
    login = std::string_view(package.credentials->login).substr(0, kCredentialBytesMax);
    password = std::string_view(package.credentials->password).substr(0, kCredentialBytesMax);
  }
  std::string out;
  size_t body = kPackageHeaderBytes + package.payload.size();
  if (package.credentials) body += 2 + login.size() + password.size();
  out.reserve(kLengthPrefixBytes + body);
  append_le32(out, static_cast<uint32_t>(body));
  out.push_back(static_cast<char>(package.command));
  uint8_t flags = package.flags;
  if (package.credentials) flags |= static_cast<uint8_t>(Flags::Authenticated);
  out.push_back(static_cast<char>(flags));
  out += to_dotnet_bytes(package.correlation_id);
  if (package.credentials) {
    out.push_back(static_cast<char>(login.size()));
    out += login;
    out.push_back(static_cast<char>(password.size()));
    out += password;
  }
  out += package.payload;
  return out;
}

std::string encode_package(Command command, const Guid& correlation_id, std::string_view payload) {
  Package p;
  p.command = static_cast<uint8_t>(command);
  p.correlation_id = correlation_id;
  p.payload = std::string(payload);
  return encode_package(p);
}

std::string encode_package_header(Command command, const Guid& correlation_id,
                                  size_t payload_bytes) {
  std::string out;
  out.reserve(kLengthPrefixBytes + kPackageHeaderBytes);
  append_le32(out, static_cast<uint32_t>(kPackageHeaderBytes + payload_bytes));
  out.push_back(static_cast<char>(command));
  out.push_back(static_cast<char>(0));  // flags: no credentials
  out += to_dotnet_bytes(correlation_id);
  return out;
}

FrameParser::FrameParser(uint32_t frame_bytes_max) : frame_bytes_max_(frame_bytes_max) {}

void FrameParser::feed(std::string_view bytes) {
  while (!bytes.empty() && !invalid()) {
    if (length_ == 0) {
      const size_t take = std::min(kLengthPrefixBytes - prefix_bytes_, bytes.size());
      std::memcpy(prefix_.data() + prefix_bytes_, bytes.data(), take);
      prefix_bytes_ += take;
      bytes.remove_prefix(take);
      if (prefix_bytes_ < kLengthPrefixBytes) return;
      const uint32_t raw = read_le32(prefix_.data());
      const auto length = static_cast<int32_t>(raw);
      if (length <= 0 || raw > frame_bytes_max_) {
        error_ = "invalid frame length " + std::to_string(length) + " (allowed 1.." +
                 std::to_string(frame_bytes_max_) + ")";
        return;
      }
      length_ = raw;
      frame_.reserve(length_);
    }
    const size_t take = std::min(size_t{length_} - frame_.size(), bytes.size());
    frame_.append(bytes.data(), take);
    bytes.remove_prefix(take);
    if (frame_.size() < length_) return;
    ready_bytes_ += kLengthPrefixBytes + frame_.size();
    ready_.push_back(std::move(frame_));
    frame_ = std::string();
    prefix_bytes_ = 0;
    length_ = 0;
  }
}

std::optional<std::string> FrameParser::next_frame() {
  if (ready_.empty()) return std::nullopt;
  std::string frame = std::move(ready_.front());
  ready_.pop_front();
  ready_bytes_ -= kLengthPrefixBytes + frame.size();
  return frame;
}

size_t FrameParser::capacity_bytes() const {
  size_t bytes = frame_.capacity();
  for (const std::string& frame : ready_) bytes += frame.capacity();
  return bytes;
}

}  // namespace chorus::wire
