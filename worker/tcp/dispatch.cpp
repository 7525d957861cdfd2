// Command -> Engine call -> reply; see dispatch.hpp. One short handler per command.
#include "worker/tcp/dispatch.hpp"

#include "worker/tcp/convert.hpp"
#include "worker/tcp/forwarded_write.hpp"
#include "worker/tcp/routing.hpp"

#include <type_traits>

namespace chorus::tcp {
namespace {

using wire::Command;

void reply_not_handled(const NotHandledReply& refusal, const ReplyFn& reply) {
  reply(Command::NotHandled,
        not_handled(static_cast<pb::NotHandled::NotHandledReason>(refusal.reason),
                    refusal.additional_info));
}

// A forwarded request's answer. A successful write is answered only once this node shows it
// (its commit position is visible here), so a client reads its own write on the node it talks
// to; CommitTimeout if that takes longer than the commit timeout.
void reply_forwarded(Engine& engine, const ReplyFn& reply,
                     std::optional<std::pair<uint8_t, std::string>> answer) {
  if (!answer) return reply_not_handled(NotHandledReply{}, reply);
  const auto command = static_cast<Command>(answer->first);
  const std::optional<int64_t> end = written_end(command, answer->second);
  if (!end) return reply(command, std::move(answer->second));
  engine.when_visible(*end, [reply, command, payload = std::move(answer->second)](bool visible) {
    reply(command, visible ? payload : as_commit_timeout(command, payload));
  });
}

// Refuses the request or passes it to the leader when this node must not serve it; true if so.
bool routed_elsewhere(Engine& engine, const wire::Package& package, const Principal& who,
                      bool require_master, const ReplyFn& reply, const ClusterState* cluster) {
  const auto command = static_cast<Command>(package.command);
  const RouteDecision route = route_request(command, require_master, cluster);
  switch (route.kind) {
    case RouteKind::Serve:
      return false;
    case RouteKind::Refuse:
      reply_not_handled(route.refusal, reply);
      return true;
    case RouteKind::Forward:
      cluster->forward(who, package.command, package.payload,
                       [&engine, reply](std::optional<std::pair<uint8_t, std::string>> answer) {
                         reply_forwarded(engine, reply, std::move(answer));
                       });
      return true;
  }
  return false;
}

// True (and NotHandled sent) when the engine refused because leadership moved meanwhile.
bool engine_refused(NotHandledReason reason, const ReplyFn& reply, const ClusterState* cluster) {
  if (reason == NotHandledReason::None) return false;
  reply_not_handled(refusal_for(reason, cluster), reply);
  return true;
}

template <typename Message>
bool decode(const wire::Package& package, Message* message) {
  return message->ParsePartialFromString(package.payload);
}

DispatchOutcome write_events(Engine& engine, const Principal& who, const wire::Package& package,
                             ReplyFn reply, const ClusterState* cluster) {
  pb::WriteEvents request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  std::optional<std::vector<NewEvent>> events = from_proto(request.events());
  if (!events) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  engine.append(who, request.event_stream_id(), request.expected_version(), std::move(*events),
                [reply = std::move(reply), cluster](WriteResult result) {
                  if (engine_refused(result.not_handled, reply, cluster)) return;
                  reply(Command::WriteEventsCompleted, write_completed(result));
                });
  return DispatchOutcome::Submitted;
}

DispatchOutcome delete_stream(Engine& engine, const Principal& who, const wire::Package& package,
                              ReplyFn reply, const ClusterState* cluster) {
  pb::DeleteStream request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  engine.delete_stream(who, request.event_stream_id(), request.expected_version(),
                       request.hard_delete(),
                       [reply = std::move(reply), cluster](DeleteResult result) {
                         if (engine_refused(result.not_handled, reply, cluster)) return;
                         reply(Command::DeleteStreamCompleted, delete_completed(result));
                       });
  return DispatchOutcome::Submitted;
}

DispatchOutcome transaction_start(Engine& engine, const Principal& who,
                                  const wire::Package& package, ReplyFn reply,
                                  const ClusterState* cluster) {
  pb::TransactionStart request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  engine.transaction_start(who, request.event_stream_id(), request.expected_version(),
                           [reply = std::move(reply), cluster](TransactionResult result) {
                             if (engine_refused(result.not_handled, reply, cluster)) return;
                             reply(Command::TransactionStartCompleted,
                                   transaction_start_completed(result));
                           });
  return DispatchOutcome::Submitted;
}

DispatchOutcome transaction_write(Engine& engine, const Principal& who,
                                  const wire::Package& package, ReplyFn reply,
                                  const ClusterState* cluster) {
  pb::TransactionWrite request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  std::optional<std::vector<NewEvent>> events = from_proto(request.events());
  if (!events) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  const int64_t id = request.transaction_id();
  engine.transaction_write(who, id, std::move(*events),
                           [reply = std::move(reply), id, cluster](TransactionResult result) {
                             if (engine_refused(result.not_handled, reply, cluster)) return;
                             reply(Command::TransactionWriteCompleted,
                                   transaction_write_completed(result, id));
                           });
  return DispatchOutcome::Submitted;
}

DispatchOutcome transaction_commit(Engine& engine, const Principal& who,
                                   const wire::Package& package, ReplyFn reply,
                                   const ClusterState* cluster) {
  pb::TransactionCommit request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  const int64_t id = request.transaction_id();
  engine.transaction_commit(
      who, id, [reply = std::move(reply), id, cluster](TransactionResult result) {
        if (engine_refused(result.not_handled, reply, cluster)) return;
        reply(Command::TransactionCommitCompleted, transaction_commit_completed(result, id));
      });
  return DispatchOutcome::Submitted;
}

DispatchOutcome read_event(Engine& engine, const Principal& who, const wire::Package& package,
                           ReplyFn reply, const ClusterState* cluster) {
  pb::ReadEvent request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  engine.read_event(who, request.event_stream_id(), request.event_number(),
                    request.resolve_link_tos(), [reply = std::move(reply)](ReadEventResult result) {
                      reply(Command::ReadEventCompleted, read_event_completed(result));
                    });
  return DispatchOutcome::Submitted;
}

DispatchOutcome read_stream(Engine& engine, const Principal& who, const wire::Package& package,
                            ReplyFn reply, bool forward, const ClusterState* cluster) {
  pb::ReadStreamEvents request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  const Command completed = forward ? Command::ReadStreamEventsForwardCompleted
                                    : Command::ReadStreamEventsBackwardCompleted;
  // max_count is passed through; the engine caps it at kReadCountMax.
  engine.read_stream(who, request.event_stream_id(), request.from_event_number(),
                     request.max_count(), forward, request.resolve_link_tos(),
                     [reply = std::move(reply), completed](ReadStreamResult result) {
                       reply(completed, read_stream_completed(result));
                     });
  return DispatchOutcome::Submitted;
}

DispatchOutcome read_all(Engine& engine, const Principal& who, const wire::Package& package,
                         ReplyFn reply, bool forward, const ClusterState* cluster) {
  pb::ReadAllEvents request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  const Command completed =
      forward ? Command::ReadAllEventsForwardCompleted : Command::ReadAllEventsBackwardCompleted;
  const Position from{request.commit_position(), request.prepare_position()};
  engine.read_all(who, from, request.max_count(), forward, request.resolve_link_tos(),
                  [reply = std::move(reply), completed](ReadAllResult result) {
                    reply(completed, read_all_completed(result));
                  });
  return DispatchOutcome::Submitted;
}

// Create/Update/Delete of persistent subscription groups (leader only; routed before this).
template <typename Request>
DispatchOutcome manage_persistent(Engine& engine, const Principal& who,
                                  const wire::Package& package, ReplyFn reply,
                                  const ClusterState* cluster, Command completed,
                                  std::string (*encode)(const PersistentResult&)) {
  Request request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  auto answer = [reply = std::move(reply), cluster, completed, encode](PersistentResult r) {
    if (engine_refused(r.not_handled, reply, cluster)) return;
    reply(completed, encode(r));
  };
  if constexpr (std::is_same_v<Request, pb::DeletePersistentSubscription>) {
    engine.persistent().remove(who, request.event_stream_id(), request.subscription_group_name(),
                               std::move(answer));
  } else {
    PersistentSettingsRequest settings = settings_from_proto(request);
    if (!settings.error.empty()) {
      PersistentResult r;
      r.status = PersistentStatus::Fail;
      r.reason = settings.error;
      answer(r);
      return DispatchOutcome::Submitted;
    }
    const auto method = std::is_same_v<Request, pb::CreatePersistentSubscription>
                            ? &PersistentApi::create
                            : &PersistentApi::update;
    (engine.persistent().*method)(who, request.event_stream_id(), request.subscription_group_name(),
                                  settings.settings, std::move(answer));
  }
  return DispatchOutcome::Submitted;
}

// Writes a scavenge's $scavenges events: on the leader (or a single node) as $system, as
// POST /admin/scavenge does; a follower passes them to the leader as `who`.
ScavengeLog scavenge_log(Engine& engine, const Principal& who, const ClusterState* cluster) {
  return [&engine, who, cluster](std::string stream, std::vector<NewEvent> events,
                                 std::function<void(bool)> done) {
    auto written = [done](const WriteResult& r) {
      done(r.not_handled == NotHandledReason::None && r.result == OperationResult::Success);
    };
    if (cluster == nullptr || cluster->is_leader()) {
      const Principal system{"$system", {"$admins"}};
      return engine.append(system, std::move(stream), kExpectedAny, std::move(events), written);
    }
    cluster->forward(
        who, static_cast<uint8_t>(Command::WriteEvents),
        write_events_request(stream, kExpectedAny, events),
        [written](std::optional<std::pair<uint8_t, std::string>> answer) {
          if (!answer) {
            WriteResult none;
            none.not_handled = NotHandledReason::NotLeader;
            return written(none);
          }
          written(forwarded_write_result(static_cast<Command>(answer->first), answer->second));
        });
  };
}

// ScavengeDatabase starts this node's scavenge, as POST /admin/scavenge?startFromChunk=0 does,
// and answers at once, as EventStore 5 does (ScavengeDatabaseResponse: Started, InProgress or
// Unauthorized, with the scavenge's id).
DispatchOutcome scavenge_database(Engine& engine, const Principal& who, const ReplyFn& reply,
                                  const ClusterState* cluster) {
  if (!who.is_admin() && !who.in_role("$ops")) {
    reply(Command::ScavengeDatabaseCompleted, scavenge_response(ScavengeAnswer::Unauthorized, ""));
    return DispatchOutcome::Submitted;
  }
  const ScavengeStart started = engine.start_scavenge(0, scavenge_log(engine, who, cluster));
  if (started.id.empty()) {
    reply(Command::ScavengeDatabaseCompleted,
          scavenge_failed("scavenging is not available on this node"));
  } else {
    reply(Command::ScavengeDatabaseCompleted,
          scavenge_response(started.started ? ScavengeAnswer::Started : ScavengeAnswer::InProgress,
                            started.id));
  }
  return DispatchOutcome::Submitted;
}

DispatchOutcome persistent_or_scavenge(Engine& engine, const Principal& who,
                                       const wire::Package& package, ReplyFn reply,
                                       const ClusterState* cluster) {
  switch (static_cast<Command>(package.command)) {
    case Command::CreatePersistentSubscription:
      return manage_persistent<pb::CreatePersistentSubscription>(
          engine, who, package, std::move(reply), cluster,
          Command::CreatePersistentSubscriptionCompleted, create_persistent_completed);
    case Command::UpdatePersistentSubscription:
      return manage_persistent<pb::UpdatePersistentSubscription>(
          engine, who, package, std::move(reply), cluster,
          Command::UpdatePersistentSubscriptionCompleted, update_persistent_completed);
    case Command::DeletePersistentSubscription:
      return manage_persistent<pb::DeletePersistentSubscription>(
          engine, who, package, std::move(reply), cluster,
          Command::DeletePersistentSubscriptionCompleted, delete_persistent_completed);
    case Command::ScavengeDatabase:
      return scavenge_database(engine, who, reply, cluster);
    default:
      // Connect, ack and nak are session state (Session::connect_persistent).
      return DispatchOutcome::Unsupported;
  }
}

}  // namespace

DispatchOutcome dispatch_request(Engine& engine, const Principal& who, const wire::Package& package,
                                 ReplyFn reply, const ClusterState* cluster) {
  const auto command = static_cast<Command>(package.command);
  switch (command) {
    case Command::WriteEvents:
      return write_events(engine, who, package, std::move(reply), cluster);
    case Command::DeleteStream:
      return delete_stream(engine, who, package, std::move(reply), cluster);
    case Command::TransactionStart:
      return transaction_start(engine, who, package, std::move(reply), cluster);
    case Command::TransactionWrite:
      return transaction_write(engine, who, package, std::move(reply), cluster);
    case Command::TransactionCommit:
      return transaction_commit(engine, who, package, std::move(reply), cluster);
    case Command::ReadEvent:
      return read_event(engine, who, package, std::move(reply), cluster);
    case Command::ReadStreamEventsForward:
      return read_stream(engine, who, package, std::move(reply), true, cluster);
    case Command::ReadStreamEventsBackward:
      return read_stream(engine, who, package, std::move(reply), false, cluster);
    case Command::ReadAllEventsForward:
      return read_all(engine, who, package, std::move(reply), true, cluster);
    case Command::ReadAllEventsBackward:
      return read_all(engine, who, package, std::move(reply), false, cluster);
    default: {
      // Persistent-subscription commands live on the leader only (PROTOCOL.md B).
      const RouteDecision route = route_request(command, false, cluster);
      if (route.kind == RouteKind::Refuse) {
        reply_not_handled(route.refusal, reply);
        return DispatchOutcome::Submitted;
      }
      return persistent_or_scavenge(engine, who, package, std::move(reply), cluster);
    }
  }
}

std::string unwrap_error_text(uint8_t command) {
  return "Could not unwrap network package for command " + wire::command_name(command) + ".";
}

}  // namespace chorus::tcp
