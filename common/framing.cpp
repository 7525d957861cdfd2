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

PackageParse parse_package(std::string_view frame) {
  PackageParse result;
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
  p.payload = std::string(frame.substr(offset));
  result.package = std::move(p);
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
  if (invalid()) return;
  compact();
  grow_for(bytes.size());
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

void FrameParser::grow_for(size_t more_bytes) {
  const size_t needed = buffer_.size() + more_bytes;
  if (needed <= buffer_.capacity()) return;
  // Doubling, but not past the end of the frame in progress: a 64 MiB frame then holds 64 MiB,
  // not the 128 MiB plain doubling could reach (a vector reserves exactly what it is asked).
  size_t target = std::max(needed, buffer_.capacity() * 2);
  if (buffered_bytes() >= kLengthPrefixBytes) {
    const uint32_t length = read_le32(buffer_.data() + consumed_);
    const size_t frame_end = consumed_ + kLengthPrefixBytes + length;
    if (length <= frame_bytes_max_ && frame_end >= needed) target = std::min(target, frame_end);
  }
  buffer_.reserve(target);
}

void FrameParser::release_if_empty() {
  if (consumed_ != buffer_.size()) return;
  consumed_ = 0;
  if (buffer_.capacity() > kParserIdleCapacityBytesMax) {
    std::vector<char>().swap(buffer_);
  } else {
    buffer_.clear();
  }
}

std::optional<std::string> FrameParser::next_frame() {
  if (invalid()) return std::nullopt;
  const size_t available = buffer_.size() - consumed_;
  if (available < kLengthPrefixBytes) return std::nullopt;
  const uint32_t raw = read_le32(buffer_.data() + consumed_);
  const auto length = static_cast<int32_t>(raw);
  if (length <= 0 || raw > frame_bytes_max_) {
    error_ = "invalid frame length " + std::to_string(length) + " (allowed 1.." +
             std::to_string(frame_bytes_max_) + ")";
    return std::nullopt;
  }
  if (available < kLengthPrefixBytes + raw) return std::nullopt;
  std::string frame(buffer_.data() + consumed_ + kLengthPrefixBytes, raw);
  consumed_ += kLengthPrefixBytes + raw;
  release_if_empty();
  return frame;
}

void FrameParser::compact() {
  // Drop consumed bytes once they dominate the buffer, so memory stays bounded by one frame.
  if (consumed_ > 0 && consumed_ * 2 >= buffer_.size()) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
}

}  // namespace chorus::wire
