// Command -> Engine call -> reply; see dispatch.hpp. One short handler per command.
#include "worker/tcp/dispatch.hpp"

#include "worker/tcp/convert.hpp"
#include "worker/tcp/forwarded_write.hpp"
#include "worker/tcp/routing.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
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
                             ReplyFn reply, const ClusterState* cluster, DecodedWrite* decoded) {
  std::optional<DecodedWrite> own;
  if (decoded == nullptr) {
    own = decode_write(Command::WriteEvents, package.payload);
    if (!own) return DispatchOutcome::DecodeFailed;
    decoded = &*own;
  }
  if (routed_elsewhere(engine, package, who, decoded->require_master, reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  engine.append(who, std::move(decoded->stream), decoded->expected_version,
                std::move(decoded->events),
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
                                  const ClusterState* cluster, DecodedWrite* decoded) {
  std::optional<DecodedWrite> own;
  if (decoded == nullptr) {
    own = decode_write(Command::TransactionWrite, package.payload);
    if (!own) return DispatchOutcome::DecodeFailed;
    decoded = &*own;
  }
  if (routed_elsewhere(engine, package, who, decoded->require_master, reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  const int64_t id = decoded->transaction_id;
  engine.transaction_write(who, id, std::move(decoded->events),
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

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ReadAhead::Key read_key(const wire::Package& package, const Principal& who, int32_t count) {
  ReadAhead::Key key;
  key.command = static_cast<Command>(package.command);
  key.count = count;
  key.login = who.login;
  key.roles = who.groups;
  return key;
}

// Reads the page `key` names ahead, on a reader thread, and keeps it in `ahead` (see ReadAhead).
void read_stream_ahead(Engine& engine, const Principal& who, std::shared_ptr<ReadAhead> ahead,
                       const ReadAhead::Key& key, uint64_t ticket);
void read_all_ahead(Engine& engine, const Principal& who, std::shared_ptr<ReadAhead> ahead,
                    const ReadAhead::Key& key, uint64_t ticket);

// The page after a forward stream page, when it was full and not the end.
std::optional<ReadAhead::Key> next_stream_page(ReadAhead::Key key, const ReadStreamResult& r,
                                               int32_t events) {
  if (r.status != ReadStreamStatus::Success || r.is_end_of_stream || events < key.count) {
    return std::nullopt;
  }
  key.from_number = r.next_event_number;
  return key;
}

std::optional<ReadAhead::Key> next_all_page(ReadAhead::Key key, const ReadAllResult& r,
                                            int32_t events) {
  if (r.status != ReadAllStatus::Success || events < key.count) {
    return std::nullopt;
  }
  key.from_position = r.next;
  return key;
}

// Notes a page answered (read now or ahead) and reads its next one ahead when ReadAhead says so.
void chain(Engine& engine, const Principal& who, const std::shared_ptr<ReadAhead>& ahead,
           const std::optional<ReadAhead::Key>& next, int64_t committed_position) {
  const std::optional<uint64_t> ticket = ahead->expect(next, committed_position);
  if (!ticket) return;
  if (next->stream.empty()) return read_all_ahead(engine, who, ahead, *next, *ticket);
  read_stream_ahead(engine, who, ahead, *next, *ticket);
}

void read_stream_ahead(Engine& engine, const Principal& who, std::shared_ptr<ReadAhead> ahead,
                       const ReadAhead::Key& key, uint64_t ticket) {
  auto encoder = std::make_shared<ReadReplyEncoder>(ReadReplyEncoder::Kind::Stream);
  engine.read_stream_into(who, key.stream, key.from_number, key.count, true, false, encoder,
                          [ahead = std::move(ahead), key, ticket, encoder](ReadStreamResult r) {
                            if (r.status != ReadStreamStatus::Success)
                              return ahead->fill(ticket, {});
                            auto next = next_stream_page(key, r, encoder->events());
                            ahead->fill(ticket,
                                        ReadAhead::Page{encoder->finish(r), r.last_commit_position,
                                                        r.expires_at_ms, std::move(next)});
                          });
}

void read_all_ahead(Engine& engine, const Principal& who, std::shared_ptr<ReadAhead> ahead,
                    const ReadAhead::Key& key, uint64_t ticket) {
  auto encoder = std::make_shared<ReadReplyEncoder>(ReadReplyEncoder::Kind::All);
  engine.read_all_into(
      who, key.from_position, key.count, true, false, encoder,
      [ahead = std::move(ahead), key, ticket, encoder](ReadAllResult r) {
        // A failed read hands over nothing, so a request waiting for it reads for itself.
        if (r.status != ReadAllStatus::Success) return ahead->fill(ticket, {});
        auto next = next_all_page(key, r, encoder->events());
        ahead->fill(ticket, ReadAhead::Page{encoder->finish(r), r.last_commit_position,
                                            std::numeric_limits<int64_t>::max(), std::move(next)});
      });
}

// Whether a page read ahead may be served now (see ReadAhead).
bool still_valid(const Engine& engine, const ReadAhead::Page& page) {
  const int64_t committed = engine.committed_position();
  return committed >= 0 && page.committed_position == committed && wall_ms() < page.expires_at_ms;
}

// Serves the request from the page read ahead for it, now or when its read ends, and otherwise
// runs `read_now`. A request that does not match ends the sequence (the slot is emptied).
// The answer to a page read now: encoded, the next page chained for read-ahead, then sent.
template <class Result>
std::function<void(Result)> answer_page(
    Engine& engine, const Principal& who, const ReplyFn& reply, Command completed,
    const std::shared_ptr<ReadAhead>& ahead, const std::optional<ReadAhead::Key>& key,
    std::shared_ptr<ReadReplyEncoder> encoder,
    std::optional<ReadAhead::Key> (*next_page)(ReadAhead::Key, const Result&, int32_t)) {
  return [&engine, who, reply, completed, ahead, key, encoder = std::move(encoder),
          next_page](Result result) {
    const int32_t events = encoder->events();
    std::string payload = encoder->finish(result);
    if (ahead) {
      chain(engine, who, ahead, next_page(*key, result, events), result.last_commit_position);
    }
    reply(completed, std::move(payload));
  };
}

// A read's page is answered from read-ahead when it holds that page, else read now; without
// read-ahead (backward reads, links resolved, from the end) it is always read now.
void serve(Engine& engine, const Principal& who, const std::shared_ptr<ReadAhead>& ahead,
           const std::optional<ReadAhead::Key>& key, Command completed, const ReplyFn& reply,
           const std::function<void()>& read_now) {
  if (!ahead) return read_now();
  auto answer = [&engine, who, ahead, completed, reply](ReadAhead::Page page) {
    chain(engine, who, ahead, page.next, page.committed_position);
    reply(completed, std::move(page.payload));
  };
  auto later = [&engine, answer, read_now](std::optional<ReadAhead::Page> page) {
    if (page && still_valid(engine, *page)) return answer(std::move(*page));
    read_now();
  };
  bool waiting = false;
  std::optional<ReadAhead::Page> page =
      ahead->take(*key, engine.committed_position(), wall_ms(), later, &waiting);
  if (waiting) return;
  if (page) return answer(std::move(*page));
  read_now();
}

DispatchOutcome read_stream(Engine& engine, const Principal& who, const wire::Package& package,
                            ReplyFn reply, bool forward, const ClusterState* cluster,
                            std::shared_ptr<ReadAhead> ahead) {
  pb::ReadStreamEvents request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  const Command completed = forward ? Command::ReadStreamEventsForwardCompleted
                                    : Command::ReadStreamEventsBackwardCompleted;
  // max_count is passed through; the engine caps it at kReadCountMax.
  const int32_t count = std::clamp<int32_t>(request.max_count(), 0, kReadCountMax);
  if (!forward || request.resolve_link_tos() || request.event_stream_id().empty()) ahead.reset();
  std::optional<ReadAhead::Key> key;
  if (ahead) {
    key = read_key(package, who, count);
    key->stream = request.event_stream_id();
    key->from_number = request.from_event_number();
  }
  auto read_now = [&engine, who, stream = request.event_stream_id(),
                   from = request.from_event_number(), max_count = request.max_count(), forward,
                   resolve = request.resolve_link_tos(), reply, completed, ahead, key] {
    auto encoder = std::make_shared<ReadReplyEncoder>(ReadReplyEncoder::Kind::Stream);
    engine.read_stream_into(who, stream, from, max_count, forward, resolve, encoder,
                            answer_page<ReadStreamResult>(engine, who, reply, completed, ahead, key,
                                                          encoder, next_stream_page));
  };
  serve(engine, who, ahead, key, completed, reply, read_now);
  return DispatchOutcome::Submitted;
}

DispatchOutcome read_all(Engine& engine, const Principal& who, const wire::Package& package,
                         ReplyFn reply, bool forward, const ClusterState* cluster,
                         std::shared_ptr<ReadAhead> ahead) {
  pb::ReadAllEvents request;
  if (!decode(package, &request)) return DispatchOutcome::DecodeFailed;
  if (routed_elsewhere(engine, package, who, request.require_master(), reply, cluster)) {
    return DispatchOutcome::Submitted;
  }
  const Command completed =
      forward ? Command::ReadAllEventsForwardCompleted : Command::ReadAllEventsBackwardCompleted;
  const Position from{request.commit_position(), request.prepare_position()};
  const int32_t count = std::clamp<int32_t>(request.max_count(), 0, kReadCountMax);
  // From the end there is nothing to read ahead (its position moves with every write).
  if (!forward || request.resolve_link_tos() || from.is_end()) ahead.reset();
  std::optional<ReadAhead::Key> key;
  if (ahead) {
    key = read_key(package, who, count);
    key->from_position = from;
  }
  auto read_now = [&engine, who, from, max_count = request.max_count(), forward,
                   resolve = request.resolve_link_tos(), reply, completed, ahead, key] {
    auto encoder = std::make_shared<ReadReplyEncoder>(ReadReplyEncoder::Kind::All);
    engine.read_all_into(who, from, max_count, forward, resolve, encoder,
                         answer_page<ReadAllResult>(engine, who, reply, completed, ahead, key,
                                                    encoder, next_all_page));
  };
  serve(engine, who, ahead, key, completed, reply, read_now);
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
                                 ReplyFn reply, const ClusterState* cluster,
                                 std::shared_ptr<ReadAhead> read_ahead, DecodedWrite* decoded) {
  const auto command = static_cast<Command>(package.command);
  switch (command) {
    case Command::WriteEvents:
      return write_events(engine, who, package, std::move(reply), cluster, decoded);
    case Command::DeleteStream:
      return delete_stream(engine, who, package, std::move(reply), cluster);
    case Command::TransactionStart:
      return transaction_start(engine, who, package, std::move(reply), cluster);
    case Command::TransactionWrite:
      return transaction_write(engine, who, package, std::move(reply), cluster, decoded);
    case Command::TransactionCommit:
      return transaction_commit(engine, who, package, std::move(reply), cluster);
    case Command::ReadEvent:
      return read_event(engine, who, package, std::move(reply), cluster);
    case Command::ReadStreamEventsForward:
      return read_stream(engine, who, package, std::move(reply), true, cluster,
                         std::move(read_ahead));
    case Command::ReadStreamEventsBackward:
      return read_stream(engine, who, package, std::move(reply), false, cluster, nullptr);
    case Command::ReadAllEventsForward:
      return read_all(engine, who, package, std::move(reply), true, cluster, std::move(read_ahead));
    case Command::ReadAllEventsBackward:
      return read_all(engine, who, package, std::move(reply), false, cluster, nullptr);
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

namespace {

std::atomic<size_t> read_ahead_bytes_held{0};  // all connections' pages; kReadAheadBytesMax

}  // namespace

ReadAhead::~ReadAhead() { release_locked(); }

void ReadAhead::release_locked() {
  read_ahead_bytes_held -= bytes_held_;
  bytes_held_ = 0;
  page_.reset();
}

std::optional<ReadAhead::Page> ReadAhead::take(const Key& key, int64_t committed_now,
                                               int64_t now_ms, Waiter waiter, bool* waiting) {
  std::optional<Page> out;
  Waiter orphan;  // a request still waiting for the page it asked for: it reads for itself
  {
    std::lock_guard lock(mutex_);
    *waiting = false;
    if (key_ == key && !page_ && !waiter_) {
      waiter_ = std::move(waiter);  // still being read: its reader hands it over
      *waiting = true;
      return out;
    }
    if (page_ && key_ == key && committed_now >= 0 && page_->committed_position == committed_now &&
        now_ms < page_->expires_at_ms) {
      out = std::move(page_);
    }
    orphan = std::move(waiter_);
    waiter_ = nullptr;
    release_locked();
    key_.reset();
    ++ticket_;
  }
  if (orphan) orphan(std::nullopt);
  return out;
}

std::optional<uint64_t> ReadAhead::expect(const std::optional<Key>& next,
                                          int64_t committed_position) {
  std::lock_guard lock(mutex_);
  const bool quiet = committed_position == last_committed_seen_;
  last_committed_seen_ = committed_position;
  if (!next || !quiet || waiter_) return std::nullopt;
  release_locked();
  key_ = next;
  return ++ticket_;
}

void ReadAhead::fill(uint64_t ticket, std::optional<Page> page) {
  Waiter waiter;
  {
    std::lock_guard lock(mutex_);
    if (ticket != ticket_ || page_) return;
    if (waiter_) {
      waiter = std::move(waiter_);
      waiter_ = nullptr;
      key_.reset();
      ++ticket_;
    } else {
      const size_t bytes = page ? page->payload.size() : 0;
      if (!page || read_ahead_bytes_held.fetch_add(bytes) + bytes > kReadAheadBytesMax) {
        read_ahead_bytes_held -= bytes;
        key_.reset();  // nothing to wait for: the request reads for itself
        ++ticket_;
        return;
      }
      bytes_held_ = bytes;
      page_ = std::move(page);
      return;
    }
  }
  waiter(std::move(page));
}

std::optional<DecodedWrite> decode_write(Command command, std::string_view payload) {
  // The strings move out of the messages: an event's data is copied once, from the payload.
  DecodedWrite out;
  google::protobuf::RepeatedPtrField<pb::NewEvent>* events = nullptr;
  pb::WriteEvents write;
  pb::TransactionWrite transaction;
  const auto size = static_cast<int>(payload.size());
  if (command == Command::WriteEvents) {
    if (!write.ParsePartialFromArray(payload.data(), size)) return std::nullopt;
    out.stream = std::move(*write.mutable_event_stream_id());
    out.expected_version = write.expected_version();
    out.require_master = write.require_master();
    events = write.mutable_events();
  } else if (command == Command::TransactionWrite) {
    if (!transaction.ParsePartialFromArray(payload.data(), size)) return std::nullopt;
    out.transaction_id = transaction.transaction_id();
    out.require_master = transaction.require_master();
    events = transaction.mutable_events();
  } else {
    return std::nullopt;
  }
  std::optional<std::vector<NewEvent>> taken = take_from_proto(*events);
  if (!taken) return std::nullopt;
  out.events = std::move(*taken);
  return out;
}

std::string unwrap_error_text(uint8_t command) {
  return "Could not unwrap network package for command " + wire::command_name(command) + ".";
}

}  // namespace chorus::tcp
