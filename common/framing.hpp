// EventStore TCP framing (PROTOCOL.md A1): a little-endian int32 length prefix, then a package of
// command, flags, correlation id, optional credentials and payload. FrameParser is pure and
// incremental: it is fed bytes as they arrive and hands back whole frames. Not thread-safe; one
// parser per connection.
#pragma once

#include "common/guid.hpp"

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::wire {

// The largest frame either side accepts; EventStore and its clients use the same cap.
inline constexpr uint32_t kFrameBytesMax = 64u * 1024u * 1024u;
// command(1) + flags(1) + correlation id(16).
inline constexpr size_t kPackageHeaderBytes = 18;
inline constexpr size_t kLengthPrefixBytes = 4;
// Login and password each carry a one-byte length.
inline constexpr size_t kCredentialBytesMax = 255;

enum class Flags : uint8_t { None = 0x00, Authenticated = 0x01, TrustedWrite = 0x02 };

enum class Command : uint8_t {
  HeartbeatRequest = 0x01,
  HeartbeatResponse = 0x02,
  Ping = 0x03,
  Pong = 0x04,
  WriteEvents = 0x82,
  WriteEventsCompleted = 0x83,
  TransactionStart = 0x84,
  TransactionStartCompleted = 0x85,
  TransactionWrite = 0x86,
  TransactionWriteCompleted = 0x87,
  TransactionCommit = 0x88,
  TransactionCommitCompleted = 0x89,
  DeleteStream = 0x8A,
  DeleteStreamCompleted = 0x8B,
  ReadEvent = 0xB0,
  ReadEventCompleted = 0xB1,
  ReadStreamEventsForward = 0xB2,
  ReadStreamEventsForwardCompleted = 0xB3,
  ReadStreamEventsBackward = 0xB4,
  ReadStreamEventsBackwardCompleted = 0xB5,
  ReadAllEventsForward = 0xB6,
  ReadAllEventsForwardCompleted = 0xB7,
  ReadAllEventsBackward = 0xB8,
  ReadAllEventsBackwardCompleted = 0xB9,
  SubscribeToStream = 0xC0,
  SubscriptionConfirmation = 0xC1,
  StreamEventAppeared = 0xC2,
  UnsubscribeFromStream = 0xC3,
  SubscriptionDropped = 0xC4,
  ConnectToPersistentSubscription = 0xC5,
  PersistentSubscriptionConfirmation = 0xC6,
  PersistentSubscriptionStreamEventAppeared = 0xC7,
  CreatePersistentSubscription = 0xC8,
  CreatePersistentSubscriptionCompleted = 0xC9,
  DeletePersistentSubscription = 0xCA,
  DeletePersistentSubscriptionCompleted = 0xCB,
  PersistentSubscriptionAckEvents = 0xCC,
  PersistentSubscriptionNakEvents = 0xCD,
  UpdatePersistentSubscription = 0xCE,
  UpdatePersistentSubscriptionCompleted = 0xCF,
  ScavengeDatabase = 0xD0,
  ScavengeDatabaseCompleted = 0xD1,
  BadRequest = 0xF0,
  NotHandled = 0xF1,
  Authenticate = 0xF2,
  Authenticated = 0xF3,
  NotAuthenticated = 0xF4,
  IdentifyClient = 0xF5,
  ClientIdentified = 0xF6,
};

// A name for logs and error texts ("WriteEvents", or "0x5A" for an unknown byte).
std::string command_name(uint8_t command);

struct Credentials {
  std::string login;
  std::string password;
};

struct Package {
  uint8_t command = 0;
  uint8_t flags = 0;
  Guid correlation_id{};
  std::optional<Credentials> credentials;
  std::string payload;
};

// Result of decoding one frame's bytes into a Package.
struct PackageParse {
  std::optional<Package> package;  // set on success
  std::string error;               // set on failure
};

// Decodes the N bytes of one frame (without the length prefix).
PackageParse parse_package(std::string_view frame);
// The same, taking the frame: its bytes become the payload in place (the header is cut off the
// front), so a large payload is not copied into a new allocation.
PackageParse parse_package(std::string&& frame);

// A package's header (command, flags, correlation id, credentials) without its payload, and where
// the payload starts in the frame.
struct PackageHeaderParse {
  std::optional<Package> package;  // set on success; its payload is empty
  size_t payload_offset = 0;
  std::string error;  // set on failure
};
PackageHeaderParse parse_package_header(std::string_view frame);

// Encodes a package with its length prefix, ready to write to a socket.
std::string encode_package(const Package& package);
std::string encode_package(Command command, const Guid& correlation_id, std::string_view payload);
// The length prefix and header of a package without credentials whose payload of
// `payload_bytes` is sent right after it from elsewhere (a payload shared by many connections).
std::string encode_package_header(Command command, const Guid& correlation_id,
                                  size_t payload_bytes);

// Incremental frame splitter. Feed bytes; pull complete frames; once `invalid()` the stream is
// unrecoverable (a length prefix <= 0 or over the cap) and the connection must be closed; the
// frames before the bad prefix are still returned first.
// A frame's bytes go once, as they arrive, into the string that next_frame() hands out (moved, not
// copied): as soon as its length prefix is complete the parser reserves the whole frame, as
// EventStore's framer allocates it, so a large frame is never copied to grow or to be taken out.
// The reservation is address space; memory is touched only as bytes arrive (which the node's
// partial-frame budget bounds).
class FrameParser {
 public:
  explicit FrameParser(uint32_t frame_bytes_max = kFrameBytesMax);

  void feed(std::string_view bytes);
  // The next complete frame's bytes (without prefix), or nullopt if more bytes are needed.
  std::optional<std::string> next_frame();
  bool invalid() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  // Bytes buffered but not yet returned as a frame (complete frames and the partial one, with
  // their length prefixes).
  size_t buffered_bytes() const { return ready_bytes_ + prefix_bytes_ + frame_.size(); }
  // The frame being received: its declared length (0 while its length prefix is incomplete) and
  // the bytes of it received so far (without the prefix).
  uint32_t partial_length() const { return length_; }
  std::string_view partial() const { return frame_; }
  // Memory the parser holds (capacities): at most the frames buffered, and the frame in progress
  // in full once its length is known; nothing once every frame has been taken.
  size_t capacity_bytes() const;

 private:
  uint32_t frame_bytes_max_;
  std::array<char, kLengthPrefixBytes> prefix_{};
  size_t prefix_bytes_ = 0;        // of the partial frame's length prefix
  uint32_t length_ = 0;            // the partial frame's declared length; 0: prefix incomplete
  std::string frame_;              // the partial frame's bytes so far
  std::deque<std::string> ready_;  // complete frames not yet taken
  size_t ready_bytes_ = 0;         // their bytes, with their prefixes
  std::string error_;
};

}  // namespace chorus::wire
