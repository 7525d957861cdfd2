// Stateless request handling: decodes one client package, asks the Engine, and hands the encoded
// reply to `reply` (exactly once, or never for commands without a reply). Session state
// (authentication, subscriptions, ordering) stays in Session. Call from the session's strand;
// `reply` is called later from an engine thread and must be thread-safe (it posts).
#pragma once

#include "common/framing.hpp"
#include "worker/engine/engine.hpp"
#include "worker/tcp/routing.hpp"

#include <functional>
#include <string>

namespace chorus::tcp {

using ReplyFn = std::function<void(wire::Command command, std::string payload)>;

enum class DispatchOutcome {
  Submitted,     // `reply` will be called once
  NoReply,       // handled; the command has no reply (persistent-subscription acks)
  DecodeFailed,  // the payload is not a valid message of the command
  Unsupported,   // not a request command this module handles
};

// `cluster` (null for a single node) decides whether the request is served here, passed to the
// leader, or refused with NotHandled.
DispatchOutcome dispatch_request(Engine& engine, const Principal& who, const wire::Package& package,
                                 ReplyFn reply, const ClusterState* cluster = nullptr);

// The text of the BadRequest for an undecodable payload, as EventStore words it.
std::string unwrap_error_text(uint8_t command);

}  // namespace chorus::tcp
