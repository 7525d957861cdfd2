// Replication messages <-> their protobuf form (chorus.internal.ReplicationMessage) on the
// internal TCP port. Pure functions; any thread.
#pragma once

#include "replication.pb.h"
#include "worker/replication/core.hpp"

#include <optional>
#include <string>

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
// The length prefix and a message serialized behind it.
std::string frame(const internal::ReplicationMessage& m);
// nullopt when the message carries no replication body (e.g. a Forward) or is malformed. The
// message's from/to are the instance ids.
std::optional<replication::Message> from_proto(internal::ReplicationMessage m);
// As from_proto, moving the strings out of `m` in place (it may live on a protobuf Arena, which a
// by-value message would copy out of).
std::optional<replication::Message> take_from_proto(internal::ReplicationMessage& m);

}  // namespace chorus::cluster
