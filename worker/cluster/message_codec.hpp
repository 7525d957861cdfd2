// Replication messages <-> their protobuf form (chorus.internal.ReplicationMessage) on the
// internal TCP port. Pure functions; any thread.
#pragma once

#include "replication.pb.h"
#include "worker/replication/core.hpp"

#include <optional>
#include <string>

namespace chorus::cluster {

internal::ReplicationMessage to_proto(const replication::Message& m, const std::string& cluster);
// nullopt when the message carries no replication body (e.g. a Forward) or is malformed.
std::optional<replication::Message> from_proto(const internal::ReplicationMessage& m);

}  // namespace chorus::cluster
