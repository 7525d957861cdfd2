// Operations: request encoding, reply inspection (PROTOCOL.md B and C3) and conversion of the
// protobuf replies into the public types.
#include "client/operations.hpp"

#include <utility>

#include "common/guid.hpp"
#include "messages.pb.h"

namespace chorus::client {
namespace {

namespace msg = EventStore::Client::Messages;
using wire::Command;

// Content type 1 marks JSON data, as the EventStore clients send it.
constexpr int kContentTypeJson = 1;
// What EventStore reports as the metastream version of a hard-deleted stream (int32 max).
constexpr int64_t kDeletedMetastreamVersion = 0x7fffffff;

RecordedEvent to_recorded(const msg::EventRecord& r) {
  RecordedEvent e;
  e.stream = r.event_stream_id();
  e.number = r.event_number();
  e.id = from_dotnet_bytes(r.event_id()).value_or(Guid{});
  e.type = r.event_type();
  e.is_json = r.data_content_type() == kContentTypeJson;
  e.data = r.data();
  e.metadata = r.metadata();
  e.created_epoch_ms = r.created_epoch();
  return e;
}

ResolvedEvent to_resolved(const msg::ResolvedIndexedEvent& r) {
  ResolvedEvent e;
  if (r.has_event()) e.event = to_recorded(r.event());
  if (r.has_link()) e.link = to_recorded(r.link());
  return e;
}

ResolvedEvent to_resolved(const msg::ResolvedEvent& r) {
  ResolvedEvent e;
  if (r.has_event()) e.event = to_recorded(r.event());
  if (r.has_link()) e.link = to_recorded(r.link());
  e.position = Position{r.commit_position(), r.prepare_position()};
  return e;
}

bool is(const wire::Package& package, Command command) {
  return package.command == static_cast<uint8_t>(command);
}

// An operation whose handler receives a T.
template <class T>
class TypedOperation : public Operation {
 public:
  TypedOperation(Command command, std::string payload, Handler<T> done)
      : Operation(command, std::move(payload)), done_(std::move(done)) {}
  void fail(Error error) override { finish(Result<T>(std::move(error))); }

 protected:
  Decision succeed(T value) {
    finish(Result<T>(std::move(value)));
    return Decision{};
  }
  Decision unexpected(const wire::Package& package) {
    return fail_with(ErrorKind::ProtocolError,
                     "Unexpected command " + wire::command_name(package.command));
  }
  template <class M>
  bool parse(const wire::Package& package, M& message) {
    return message.ParseFromString(package.payload);
  }

 private:
  void finish(Result<T> result) {
    Handler<T> done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(result));
  }
  Handler<T> done_;
};

// WriteEvents and DeleteStream share their results (OperationResult).
Decision write_failure(Operation& op, msg::OperationResult result, const std::string& stream,
                       int64_t expected_version, std::optional<int64_t> current_version,
                       Error* error) {
  switch (result) {
    case msg::PrepareTimeout:
    case msg::CommitTimeout:
    case msg::ForwardTimeout:
      return Decision{Decision::Kind::Retry, {}};
    case msg::WrongExpectedVersion:
      *error = Error{ErrorKind::WrongExpectedVersion,
                     "Wrong expected version for stream '" + stream + "': expected " +
                         std::to_string(expected_version) +
                         (current_version ? ", current " + std::to_string(*current_version) : ""),
                     current_version};
      break;
    case msg::StreamDeleted:
      *error = Error{ErrorKind::StreamDeleted, "Stream '" + stream + "' is deleted", {}};
      break;
    case msg::AccessDenied:
      *error =
          Error{ErrorKind::AccessDenied, "Write access denied for stream '" + stream + "'", {}};
      break;
    default:
      *error = Error{ErrorKind::ServerError,
                     "Unexpected OperationResult " + std::string(msg::OperationResult_Name(result)),
                     {}};
      break;
  }
  (void)op;
  return Decision{};
}

class AppendOperation : public TypedOperation<WriteResult> {
 public:
  AppendOperation(std::string payload, std::string stream, int64_t expected_version,
                  Handler<WriteResult> done)
      : TypedOperation(Command::WriteEvents, std::move(payload), std::move(done)),
        stream_(std::move(stream)),
        expected_version_(expected_version) {}

 protected:
  Decision inspect_reply(const wire::Package& package) override {
    msg::WriteEventsCompleted reply;
    if (!is(package, Command::WriteEventsCompleted) || !parse(package, reply)) {
      return unexpected(package);
    }
    if (reply.result() == msg::Success) {
      return succeed(WriteResult{reply.last_event_number(),
                                 Position{reply.commit_position(), reply.prepare_position()}});
    }
    Error error;
    std::optional<int64_t> current;
    if (reply.has_current_version()) current = reply.current_version();
    const Decision d =
        write_failure(*this, reply.result(), stream_, expected_version_, current, &error);
    if (d.kind == Decision::Kind::Retry) return d;
    fail(std::move(error));
    return d;
  }

 private:
  std::string stream_;
  int64_t expected_version_;
};

class DeleteOperation : public TypedOperation<DeleteResult> {
 public:
  DeleteOperation(std::string payload, std::string stream, int64_t expected_version,
                  Handler<DeleteResult> done)
      : TypedOperation(Command::DeleteStream, std::move(payload), std::move(done)),
        stream_(std::move(stream)),
        expected_version_(expected_version) {}

 protected:
  Decision inspect_reply(const wire::Package& package) override {
    msg::DeleteStreamCompleted reply;
    if (!is(package, Command::DeleteStreamCompleted) || !parse(package, reply)) {
      return unexpected(package);
    }
    if (reply.result() == msg::Success) {
      return succeed(DeleteResult{Position{reply.commit_position(), reply.prepare_position()}});
    }
    Error error;
    const Decision d =
        write_failure(*this, reply.result(), stream_, expected_version_, std::nullopt, &error);
    if (d.kind == Decision::Kind::Retry) return d;
    fail(std::move(error));
    return d;
  }

 private:
  std::string stream_;
  int64_t expected_version_;
};

class ReadEventOperation : public TypedOperation<EventReadResult> {
 public:
  ReadEventOperation(std::string payload, std::string stream, Handler<EventReadResult> done)
      : TypedOperation(Command::ReadEvent, std::move(payload), std::move(done)),
        stream_(std::move(stream)) {}

 protected:
  Decision inspect_reply(const wire::Package& package) override {
    msg::ReadEventCompleted reply;
    if (!is(package, Command::ReadEventCompleted) || !parse(package, reply)) {
      return unexpected(package);
    }
    using R = msg::ReadEventCompleted;
    EventReadResult result;
    switch (reply.result()) {
      case R::Success:
        result.event = to_resolved(reply.event());
        return succeed(std::move(result));
      case R::NotFound:
        result.status = ReadStatus::NotFound;
        return succeed(std::move(result));
      case R::NoStream:
        result.status = ReadStatus::NoStream;
        return succeed(std::move(result));
      case R::StreamDeleted:
        result.status = ReadStatus::StreamDeleted;
        return succeed(std::move(result));
      case R::AccessDenied:
        return fail_with(ErrorKind::AccessDenied,
                         "Read access denied for stream '" + stream_ + "'");
      default:
        return fail_with(ErrorKind::ServerError, reply.error());
    }
  }

 private:
  std::string stream_;
};

class ReadStreamOperation : public TypedOperation<StreamSlice> {
 public:
  ReadStreamOperation(Command command, std::string payload, std::string stream,
                      Handler<StreamSlice> done)
      : TypedOperation(command, std::move(payload), std::move(done)), stream_(std::move(stream)) {}

 protected:
  Decision inspect_reply(const wire::Package& package) override {
    const Command expected = command() == Command::ReadStreamEventsForward
                                 ? Command::ReadStreamEventsForwardCompleted
                                 : Command::ReadStreamEventsBackwardCompleted;
    msg::ReadStreamEventsCompleted reply;
    if (!is(package, expected) || !parse(package, reply)) return unexpected(package);
    using R = msg::ReadStreamEventsCompleted;
    StreamSlice slice;
    switch (reply.result()) {
      case R::Success:
        break;
      case R::NoStream:
        slice.status = ReadStatus::NoStream;
        break;
      case R::StreamDeleted:
        slice.status = ReadStatus::StreamDeleted;
        break;
      case R::AccessDenied:
        return fail_with(ErrorKind::AccessDenied,
                         "Read access denied for stream '" + stream_ + "'");
      case R::NotModified:
        return fail_with(ErrorKind::ProtocolError, "Unexpected NotModified");
      default:
        return fail_with(ErrorKind::ServerError, reply.error());
    }
    slice.events.reserve(static_cast<size_t>(reply.events_size()));
    for (const msg::ResolvedIndexedEvent& e : reply.events())
      slice.events.push_back(to_resolved(e));
    slice.next_event_number = reply.next_event_number();
    slice.last_event_number = reply.last_event_number();
    slice.is_end_of_stream = reply.is_end_of_stream();
    slice.last_commit_position = reply.last_commit_position();
    return succeed(std::move(slice));
  }

 private:
  std::string stream_;
};

class ReadAllOperation : public TypedOperation<AllSlice> {
 public:
  ReadAllOperation(Command command, std::string payload, Handler<AllSlice> done)
      : TypedOperation(command, std::move(payload), std::move(done)) {}

 protected:
  Decision inspect_reply(const wire::Package& package) override {
    const Command expected = command() == Command::ReadAllEventsForward
                                 ? Command::ReadAllEventsForwardCompleted
                                 : Command::ReadAllEventsBackwardCompleted;
    msg::ReadAllEventsCompleted reply;
    if (!is(package, expected) || !parse(package, reply)) return unexpected(package);
    using R = msg::ReadAllEventsCompleted;
    if (reply.result() == R::AccessDenied) {
      return fail_with(ErrorKind::AccessDenied, "Read access denied for $all");
    }
    if (reply.result() != R::Success) {
      return fail_with(ErrorKind::ServerError, reply.error().empty()
                                                   ? R::ReadAllResult_Name(reply.result())
                                                   : reply.error());
    }
    AllSlice slice;
    slice.from = Position{reply.commit_position(), reply.prepare_position()};
    slice.next = Position{reply.next_commit_position(), reply.next_prepare_position()};
    slice.events.reserve(static_cast<size_t>(reply.events_size()));
    for (const msg::ResolvedEvent& e : reply.events()) slice.events.push_back(to_resolved(e));
    slice.is_end_of_stream = slice.events.empty();
    return succeed(std::move(slice));
  }
};

class GetMetadataOperation : public TypedOperation<StreamMetadataResult> {
 public:
  GetMetadataOperation(std::string payload, std::string stream, Handler<StreamMetadataResult> done)
      : TypedOperation(Command::ReadEvent, std::move(payload), std::move(done)),
        stream_(std::move(stream)) {}

 protected:
  Decision inspect_reply(const wire::Package& package) override {
    msg::ReadEventCompleted reply;
    if (!is(package, Command::ReadEventCompleted) || !parse(package, reply)) {
      return unexpected(package);
    }
    using R = msg::ReadEventCompleted;
    StreamMetadataResult result;
    result.stream = stream_;
    switch (reply.result()) {
      case R::Success:
        result.metastream_version = reply.event().event().event_number();
        result.json = reply.event().event().data();
        return succeed(std::move(result));
      case R::NotFound:
      case R::NoStream:
        return succeed(std::move(result));
      case R::StreamDeleted:
        result.is_stream_deleted = true;
        result.metastream_version = kDeletedMetastreamVersion;
        return succeed(std::move(result));
      case R::AccessDenied:
        return fail_with(ErrorKind::AccessDenied,
                         "Metadata read access denied for stream '" + stream_ + "'");
      default:
        return fail_with(ErrorKind::ServerError, reply.error());
    }
  }

 private:
  std::string stream_;
};

}  // namespace

Operation::Operation(wire::Command command, std::string payload)
    : command_(command), payload_(std::move(payload)) {}

Decision Operation::fail_with(ErrorKind kind, std::string message) {
  fail(Error{kind, std::move(message), {}});
  return Decision{};
}

std::optional<Endpoint> leader_from_not_handled(const std::string& payload) {
  msg::NotHandled not_handled;
  if (!not_handled.ParseFromString(payload) || !not_handled.has_additional_info()) {
    return std::nullopt;
  }
  msg::NotHandled::MasterInfo info;
  if (!info.ParseFromString(not_handled.additional_info())) return std::nullopt;
  const int port = info.external_tcp_port();
  if (info.external_tcp_address().empty() || port <= 0 || port > 65535) return std::nullopt;
  return Endpoint{info.external_tcp_address(), static_cast<uint16_t>(port)};
}

Decision Operation::inspect(const wire::Package& package) {
  if (is(package, Command::NotHandled)) {
    msg::NotHandled not_handled;
    if (!not_handled.ParseFromString(package.payload)) {
      return fail_with(ErrorKind::ProtocolError, "Undecodable NotHandled");
    }
    if (not_handled.reason() == msg::NotHandled::NotMaster) {
      std::optional<Endpoint> leader = leader_from_not_handled(package.payload);
      // A NotLeader that names no leader is treated like NotReady: the leader is being elected.
      if (leader) return Decision{Decision::Kind::Reconnect, *leader};
    }
    return Decision{Decision::Kind::Retry, {}};
  }
  if (is(package, Command::BadRequest)) {
    return fail_with(ErrorKind::BadRequest, "Bad request: " + package.payload);
  }
  if (is(package, Command::NotAuthenticated)) {
    return fail_with(ErrorKind::NotAuthenticated, "Authentication error: " + package.payload);
  }
  return inspect_reply(package);
}

std::unique_ptr<Operation> make_append(const std::string& stream, int64_t expected_version,
                                       const std::vector<EventData>& events, bool require_leader,
                                       Handler<WriteResult> done) {
  msg::WriteEvents write;
  write.set_event_stream_id(stream);
  write.set_expected_version(expected_version);
  write.set_require_master(require_leader);
  for (const EventData& e : events) {
    msg::NewEvent* event = write.add_events();
    event->set_event_id(to_dotnet_bytes(e.id));
    event->set_event_type(e.type);
    event->set_data_content_type(e.is_json ? kContentTypeJson : 0);
    event->set_metadata_content_type(0);
    event->set_data(e.data);
    if (!e.metadata.empty()) event->set_metadata(e.metadata);
  }
  return std::make_unique<AppendOperation>(write.SerializeAsString(), stream, expected_version,
                                           std::move(done));
}

std::unique_ptr<Operation> make_read_event(const std::string& stream, int64_t event_number,
                                           bool resolve_links, bool require_leader,
                                           Handler<EventReadResult> done) {
  msg::ReadEvent read;
  read.set_event_stream_id(stream);
  read.set_event_number(event_number);
  read.set_resolve_link_tos(resolve_links);
  read.set_require_master(require_leader);
  return std::make_unique<ReadEventOperation>(read.SerializeAsString(), stream, std::move(done));
}

std::unique_ptr<Operation> make_read_stream(const std::string& stream, int64_t from, int count,
                                            ReadDirection direction, bool resolve_links,
                                            bool require_leader, Handler<StreamSlice> done) {
  msg::ReadStreamEvents read;
  read.set_event_stream_id(stream);
  read.set_from_event_number(from);
  read.set_max_count(count);
  read.set_resolve_link_tos(resolve_links);
  read.set_require_master(require_leader);
  const Command command = direction == ReadDirection::Forward ? Command::ReadStreamEventsForward
                                                              : Command::ReadStreamEventsBackward;
  return std::make_unique<ReadStreamOperation>(command, read.SerializeAsString(), stream,
                                               std::move(done));
}

std::unique_ptr<Operation> make_read_all(Position from, int count, ReadDirection direction,
                                         bool resolve_links, bool require_leader,
                                         Handler<AllSlice> done) {
  msg::ReadAllEvents read;
  read.set_commit_position(from.commit);
  read.set_prepare_position(from.prepare);
  read.set_max_count(count);
  read.set_resolve_link_tos(resolve_links);
  read.set_require_master(require_leader);
  const Command command = direction == ReadDirection::Forward ? Command::ReadAllEventsForward
                                                              : Command::ReadAllEventsBackward;
  return std::make_unique<ReadAllOperation>(command, read.SerializeAsString(), std::move(done));
}

std::unique_ptr<Operation> make_delete(const std::string& stream, int64_t expected_version,
                                       bool hard_delete, bool require_leader,
                                       Handler<DeleteResult> done) {
  msg::DeleteStream del;
  del.set_event_stream_id(stream);
  del.set_expected_version(expected_version);
  del.set_require_master(require_leader);
  del.set_hard_delete(hard_delete);
  return std::make_unique<DeleteOperation>(del.SerializeAsString(), stream, expected_version,
                                           std::move(done));
}

std::unique_ptr<Operation> make_get_metadata(const std::string& stream, bool require_leader,
                                             Handler<StreamMetadataResult> done) {
  msg::ReadEvent read;
  read.set_event_stream_id("$$" + stream);
  read.set_event_number(kStreamEnd);
  read.set_resolve_link_tos(false);
  read.set_require_master(require_leader);
  return std::make_unique<GetMetadataOperation>(read.SerializeAsString(), stream, std::move(done));
}

namespace {
std::string subscribe_payload(const std::string& stream, bool resolve_links) {
  msg::SubscribeToStream subscribe;
  subscribe.set_event_stream_id(stream == "$all" ? "" : stream);
  subscribe.set_resolve_link_tos(resolve_links);
  return subscribe.SerializeAsString();
}

DropReason drop_reason(const msg::SubscriptionDropped& dropped) {
  switch (dropped.reason()) {
    case msg::SubscriptionDropped::Unsubscribed:
      return DropReason::Unsubscribed;
    case msg::SubscriptionDropped::AccessDenied:
      return DropReason::AccessDenied;
    case msg::SubscriptionDropped::NotFound:
      return DropReason::NotFound;
    default:
      return DropReason::ServerError;
  }
}
}  // namespace

SubscriptionOperation::SubscriptionOperation(uint64_t id, const std::string& stream,
                                             bool resolve_links, SubscriptionHandlers handlers)
    : Operation(Command::SubscribeToStream, subscribe_payload(stream, resolve_links)),
      id_(id),
      handlers_(std::move(handlers)) {}

void SubscriptionOperation::fail(Error error) {
  DropReason reason = DropReason::ServerError;
  if (error.kind == ErrorKind::AccessDenied) reason = DropReason::AccessDenied;
  if (error.kind == ErrorKind::NotAuthenticated) reason = DropReason::NotAuthenticated;
  if (error.kind == ErrorKind::ConnectionClosed) reason = DropReason::ConnectionClosed;
  drop(reason, error.message);
}

void SubscriptionOperation::drop(DropReason reason, const std::string& message) {
  if (dropped_) return;
  dropped_ = true;
  auto dropped = std::move(handlers_.dropped);
  handlers_ = {};
  if (dropped) dropped(reason, message);
}

Decision SubscriptionOperation::inspect_reply(const wire::Package& package) {
  if (is(package, Command::SubscriptionConfirmation)) {
    msg::SubscriptionConfirmation confirmation;
    if (!confirmation.ParseFromString(package.payload)) {
      drop(DropReason::ServerError, "Undecodable SubscriptionConfirmation");
      return Decision{};
    }
    SubscriptionConfirmation c;
    c.last_commit_position = confirmation.last_commit_position();
    if (confirmation.has_last_event_number())
      c.last_event_number = confirmation.last_event_number();
    if (handlers_.confirmed) handlers_.confirmed(c);
    return Decision{Decision::Kind::Subscribed, {}};
  }
  if (handle_live(package)) return Decision{};
  drop(DropReason::ServerError, "Unexpected command " + wire::command_name(package.command));
  return Decision{};
}

bool SubscriptionOperation::handle_live(const wire::Package& package) {
  if (is(package, Command::StreamEventAppeared)) {
    msg::StreamEventAppeared appeared;
    if (!appeared.ParseFromString(package.payload)) {
      drop(DropReason::ServerError, "Undecodable StreamEventAppeared");
      return true;
    }
    if (handlers_.event_appeared) handlers_.event_appeared(to_resolved(appeared.event()));
    return false;
  }
  if (is(package, Command::SubscriptionDropped)) {
    msg::SubscriptionDropped dropped;
    if (!dropped.ParseFromString(package.payload)) dropped.Clear();
    const DropReason reason = drop_reason(dropped);
    drop(reason, reason == DropReason::Unsubscribed ? "" : to_string(reason));
    return true;
  }
  if (is(package, Command::NotAuthenticated)) {
    drop(DropReason::NotAuthenticated, "Authentication error: " + package.payload);
    return true;
  }
  if (is(package, Command::BadRequest) || is(package, Command::NotHandled)) {
    drop(DropReason::ServerError, wire::command_name(package.command) + ": " + package.payload);
    return true;
  }
  return false;
}

}  // namespace chorus::client
