// Replication messages <-> their protobuf form (chorus.internal.ReplicationMessage) on the
// internal TCP port. Pure functions; any thread.
#pragma once

#include "replication.pb.h"
#include "worker/replication/core.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::cluster {

// The core names nodes by instance id (from_instance, to_instance); the transport addresses them
// by internal TCP endpoint (from, to), which it knows from the voter set.
// By value: an Append's payloads move into the message instead of being copied.
internal::ReplicationMessage to_proto(replication::Message m, const std::string& cluster,
                                      const std::string& from_endpoint,
                                      const std::string& to_endpoint);
// The message as it goes on the wire: a 4-byte little-endian length, then the serialized
// ReplicationMessage. An Append is written straight from its entries' payloads into the one
// buffer (no protobuf message between: that copied every payload into it once per follower); the
// bytes are protobuf's own (a unit test compares them). Other messages go through to_proto.
std::string encode_frame(replication::Message m, const std::string& cluster,
                         const std::string& from_endpoint, const std::string& to_endpoint);
// A payload part at least this large goes into a frame by reference (a gather list), not copied:
// below it a copy costs less than one more buffer of the write.
inline constexpr size_t kFramePartByReferenceBytesMin = 64u << 10;

// A frame ready to write: `bytes` alone, or (an Append with a large payload) parts in order, each
// a slice of `bytes` (the small parts, owned) or a payload's bytes in place, which `keep` holds.
struct OutFrame {
  struct Part {
    const char* external = nullptr;  // null: bytes[offset, offset + size)
    size_t offset = 0;
    size_t size = 0;
  };
  OutFrame() = default;
  OutFrame(std::string b)  // NOLINT(google-explicit-constructor)
      : bytes(std::move(b)), size(bytes.size()) {}
  std::string_view part(const Part& p) const {
    return p.external != nullptr ? std::string_view(p.external, p.size)
                                 : std::string_view(bytes).substr(p.offset, p.size);
  }
  std::string bytes;
  std::vector<Part> parts;  // empty: the frame is `bytes`
  std::vector<replication::Payload> keep;
  size_t size = 0;  // of the whole frame
};
// As encode_frame, but an Append whose payloads have parts of kFramePartByReferenceBytesMin or
// more refers to those parts in place (Payload::write_parts): a large entry costs the leader no
// copy per follower. The bytes written are encode_frame's (a unit test compares them).
OutFrame encode_out_frame(replication::Message m, const std::string& cluster,
                          const std::string& from_endpoint, const std::string& to_endpoint);

// The length prefix and a message serialized behind it.
std::string frame(const internal::ReplicationMessage& m);
// nullopt when the message carries no replication body (e.g. a Forward) or is malformed. The
// message's from/to are the instance ids.
std::optional<replication::Message> from_proto(internal::ReplicationMessage m);
// As from_proto, moving the strings out of `m` in place (it may live on a protobuf Arena, which a
// by-value message would copy out of).
std::optional<replication::Message> take_from_proto(internal::ReplicationMessage& m);

}  // namespace chorus::cluster
