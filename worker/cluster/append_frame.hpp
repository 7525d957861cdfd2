// An Append read straight from the bytes of its frame, a follower's hot path: the entries'
// payloads are slices of the one frame buffer (the bytes the leader encoded once), with no
// protobuf message, arena or copy of each payload between. It reads only the plain shape that
// encode_frame writes (each field at most once, no unknown field, no other body); for anything
// else it answers nullopt and the caller parses the frame with protobuf as before, so what it
// accepts it reads exactly as protobuf would. The wire format is unchanged. Pure; any thread.
#pragma once

#include "worker/replication/core.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace chorus::cluster {

struct AppendFrame {
  // ReplicationMessage's envelope, pointing into the frame.
  std::string_view from;
  std::string_view to;
  std::string_view cluster;
  std::string_view from_instance;  // empty when absent
  std::string_view to_instance;    // empty when absent
  replication::Append append;      // payloads: slices of the frame
};

// `frame`: one frame's bytes without the length prefix (a serialized ReplicationMessage).
std::optional<AppendFrame> read_append_frame(const std::shared_ptr<const std::string>& frame);

}  // namespace chorus::cluster
