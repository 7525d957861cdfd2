// One client connection; see session.hpp. Design notes:
// - Requests are submitted to the engine strictly in arrival order (the engine's core strand then
//   keeps that order), so TransactionWrite and TransactionCommit sent back to back stay ordered.
//   Requests with their own credentials start their check at once; a request waits in pending_
//   until everything before it was submitted.
// - One socket write is in flight; it gathers queued packages. Heartbeats and pings jump ahead of
//   queued replies, so they wait behind at most one batch (kWriteBatchBytesMax).
// - Memory is bounded: reading pauses while many bytes or requests are outstanding, and a
//   connection whose queue still passes kOutgoingQueueBytesMax (a slow subscriber) is closed, and
//   so is one above its share of the node-wide send budget when that budget is spent;
//   so is one whose socket write does not complete within write_timeout_ms (a client that stopped
//   reading) and one whose partial frame the node-wide FrameBudget cannot hold.
#include "worker/tcp/session.hpp"

#include "worker/tcp/convert.hpp"
#include "worker/tcp/dispatch.hpp"
#include "worker/tcp/limits.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace chorus::tcp {
namespace {

using wire::Command;

constexpr const char* kNotAuthenticatedText = "Not Authenticated";

// Never 0 ("no connection") and unique across every listener of the process (plain and TLS
// ports): the engine binds a transaction to the connection that started it.
uint64_t next_connection_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

// Commands that go through the ordered request FIFO (they need a principal or an order).
bool is_ordered_request(Command command) {
  switch (command) {
    case Command::Authenticate:
    case Command::WriteEvents:
    case Command::DeleteStream:
    case Command::TransactionStart:
    case Command::TransactionWrite:
    case Command::TransactionCommit:
    case Command::ReadEvent:
    case Command::ReadStreamEventsForward:
    case Command::ReadStreamEventsBackward:
    case Command::ReadAllEventsForward:
    case Command::ReadAllEventsBackward:
    case Command::SubscribeToStream:
    case Command::UnsubscribeFromStream:
    case Command::ConnectToPersistentSubscription:
    case Command::CreatePersistentSubscription:
    case Command::UpdatePersistentSubscription:
    case Command::DeletePersistentSubscription:
    case Command::PersistentSubscriptionAckEvents:
    case Command::PersistentSubscriptionNakEvents:
    case Command::ScavengeDatabase:
      return true;
    default:
      return false;
  }
}

}  // namespace

Session::Session(Socket socket, Engine& engine, SessionConfig config,
                 std::function<void()> on_closed)
    : stream_(std::move(socket), config.tls),
      executor_(stream_.get_executor()),
      heartbeat_timer_(executor_),
      write_timer_(executor_),
      engine_(engine),
      config_(config),
      connection_id_(next_connection_id()),
      on_closed_(std::move(on_closed)),
      read_buffer_(kReadChunkBytes) {}

void Session::start() {
  boost::asio::post(executor_, [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->stream_.socket().set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    const auto peer = self->stream_.socket().remote_endpoint(ignored);
    self->peer_ = ignored ? std::string("an unknown peer")
                          : peer.address().to_string() + ":" + std::to_string(peer.port());
    self->last_received_ = Clock::now();
    if (!self->stream_.secure()) {
      self->begin_protocol();
      return;
    }
    self->handshaking_ = true;
    self->arm_heartbeat(std::chrono::milliseconds(kTlsHandshakeTimeoutMs));
    self->stream_.async_handshake(
        tls::Stream::Role::kServer,
        [self](const boost::system::error_code& error) { self->on_handshake(error); });
  });
}

void Session::on_handshake(const boost::system::error_code& error) {
  if (closed_) return;
  if (error) {
    // Not TLS (a plain client on the secure port), an untrusted client, or a timeout: the
    // connection ends; nothing was received, so nothing is lost.
    close_now();
    return;
  }
  handshaking_ = false;
  last_received_ = Clock::now();
  begin_protocol();
}

void Session::begin_protocol() {
  read_more();
  arm_heartbeat(std::chrono::milliseconds(config_.heartbeat_interval_ms));
}

void Session::close() {
  boost::asio::post(executor_, [self = shared_from_this()] { self->close_now(); });
}

// ---- Reading -------------------------------------------------------------------------------

void Session::read_more() {
  // While on_read() works through a chunk it starts the next read itself, once, at the end.
  if (closed_ || reading_ || handling_frames_ || closing_after_flush_ || reading_should_pause()) {
    return;
  }
  reading_ = true;
  stream_.async_read_some(
      boost::asio::buffer(read_buffer_),
      [self = shared_from_this()](const boost::system::error_code& error, size_t bytes) {
        self->on_read(error, bytes);
      });
}

void Session::on_read(const boost::system::error_code& error, size_t bytes) {
  reading_ = false;
  if (closed_) return;
  if (error) {
    close_now();
    return;
  }
  last_received_ = Clock::now();
  heartbeat_sent_at_.reset();
  parser_.feed(std::string_view(read_buffer_.data(), bytes));
  handling_frames_ = true;
  while (std::optional<std::string> frame = parser_.next_frame()) {
    handle_frame(std::move(*frame));
    if (closed_ || closing_after_flush_) break;
  }
  handling_frames_ = false;
  if (closed_ || closing_after_flush_) return;
  if (parser_.invalid()) {
    fail_and_close(nil_guid(), "Invalid TCP frame: " + parser_.error());
    return;
  }
  if (!hold_partial_frame()) return;
  read_more();
}

// Charges the bytes of the frame still arriving to the node-wide budget. A frame the budget
// cannot hold is dropped at once (its memory freed) and the connection closed with a BadRequest
// naming the limit; the client may send it again once fewer large frames are in flight.
bool Session::hold_partial_frame() {
  if (!config_.limits) return true;
  FrameBudget& budget = config_.limits->partial_frames();
  if (budget.resize(frame_bytes_held_, parser_.buffered_bytes() + decoding_bytes_)) return true;
  const std::string_view partial = parser_.partial();
  const uint32_t declared = parser_.partial_length();
  Guid correlation_id = nil_guid();
  if (partial.size() >= wire::kPackageHeaderBytes) {
    correlation_id = *from_dotnet_bytes(partial.substr(2, 16));
  }
  std::fprintf(stderr,
               "tcp: closing the connection from %s: its frame of %u bytes (%zu received) would "
               "pass the budget of %zu bytes for partially received frames of all connections "
               "(%zu held by others)\n",
               peer_.c_str(), declared, partial.size(), budget.bytes_max(),
               budget.used_bytes() - frame_bytes_held_);
  parser_ = wire::FrameParser();
  budget.resize(frame_bytes_held_, decoding_bytes_);
  fail_and_close(correlation_id, "The node is receiving too many large frames at once (at most " +
                                     std::to_string(budget.bytes_max()) +
                                     " bytes in all connections); this frame of " +
                                     std::to_string(declared) +
                                     " bytes was dropped. Send it again later.");
  return false;
}

void Session::handle_frame(std::string frame) {
  wire::PackageHeaderParse head = wire::parse_package_header(frame);
  if (!head.package) {
    // A package whose header or credentials do not parse: EventStore answers and disconnects.
    const Guid correlation_id = frame.size() >= wire::kPackageHeaderBytes
                                    ? *from_dotnet_bytes(std::string_view(frame).substr(2, 16))
                                    : nil_guid();
    fail_and_close(correlation_id, "Could not parse package: " + head.error);
    return;
  }
  if (decodes_elsewhere(frame)) {
    handle_package(std::move(*head.package), std::move(frame), head.payload_offset);
    return;
  }
  // The payload stays where it arrived: the header is cut off the front of the frame.
  frame.erase(0, head.payload_offset);
  head.package->payload = std::move(frame);
  handle_package(std::move(*head.package));
}

bool Session::decodes_elsewhere(const std::string& frame) const {
  if (!config_.decode_executor || frame.size() < kDecodeElsewhereFrameBytesMin) return false;
  const auto command = static_cast<Command>(frame[0]);
  return command == Command::WriteEvents || command == Command::TransactionWrite;
}

void Session::handle_package(wire::Package package, std::string frame, size_t payload_offset) {
  const Guid correlation_id = package.correlation_id;
  if (package.flags & static_cast<uint8_t>(wire::Flags::TrustedWrite)) {
    fail_and_close(correlation_id, "TrustedWrite flag is not allowed on the external TCP port.");
    return;
  }
  const auto command = static_cast<Command>(package.command);
  switch (command) {
    case Command::HeartbeatRequest:
      send(Command::HeartbeatResponse, correlation_id, {}, /*urgent=*/true);
      return;
    case Command::HeartbeatResponse:
      return;
    case Command::Ping:
      send(Command::Pong, correlation_id, {}, /*urgent=*/true);
      return;
    case Command::IdentifyClient: {
      pb::IdentifyClient identify;
      if (!identify.ParsePartialFromString(package.payload)) {
        send_text(Command::BadRequest, correlation_id, unwrap_error_text(package.command));
        return;
      }
      send(Command::ClientIdentified, correlation_id, {});
      return;
    }
    default:
      break;
  }
  if (is_ordered_request(command)) {
    enqueue_request(std::move(package), std::move(frame), payload_offset);
    return;
  }
  send_text(Command::BadRequest, correlation_id,
            "Unsupported command " + wire::command_name(package.command) + ".");
}

// ---- Ordered requests ----------------------------------------------------------------------

void Session::enqueue_request(wire::Package package, std::string frame, size_t payload_offset) {
  const uint64_t sequence = pending_front_sequence_ + pending_.size();
  Pending& pending = pending_.emplace_back();
  pending.package = std::move(package);
  ++requests_in_flight_;
  if (!frame.empty()) {
    pending.decoding = true;
    decode_elsewhere(sequence, pending.package.command, std::move(frame), payload_offset);
  }
  if (pending.package.credentials) {
    pending.generation = engine_.credentials_generation();
    if (std::optional<Principal> who = proven_principal(*pending.package.credentials)) {
      pending.auth = Pending::Auth::Valid;
      pending.principal = std::move(*who);
      drain_requests();
      return;
    }
    pending.auth = Pending::Auth::Checking;
    check_credentials(sequence, *pending.package.credentials);
    return;
  }
  drain_requests();
}

// The frame goes to the decode executor and comes back as its payload and the decoded write (in
// arrival order: the request keeps its place in pending_). Reading pauses meanwhile, so one
// connection has at most one frame there, charged to the partial-frame budget until it is back.
void Session::decode_elsewhere(uint64_t sequence, uint8_t command, std::string frame,
                               size_t payload_offset) {
  decoding_bytes_ = frame.size();
  const std::weak_ptr<Session> weak = weak_from_this();
  boost::asio::post(config_.decode_executor, [weak, executor = executor_, sequence, command,
                                              frame = std::move(frame), payload_offset]() mutable {
    frame.erase(0, payload_offset);
    std::optional<DecodedWrite> decoded = decode_write(static_cast<Command>(command), frame);
    boost::asio::post(executor, [weak, sequence, payload = std::move(frame),
                                 decoded = std::move(decoded)]() mutable {
      if (std::shared_ptr<Session> self = weak.lock()) {
        self->on_decoded(sequence, std::move(payload), std::move(decoded));
      }
    });
  });
}

void Session::on_decoded(uint64_t sequence, std::string payload,
                         std::optional<DecodedWrite> decoded) {
  decoding_bytes_ = 0;
  if (closed_) return;
  if (config_.limits) {
    config_.limits->partial_frames().resize(frame_bytes_held_, parser_.buffered_bytes());
  }
  if (sequence < pending_front_sequence_ || sequence - pending_front_sequence_ >= pending_.size()) {
    return;
  }
  Pending& pending = pending_[sequence - pending_front_sequence_];
  pending.package.payload = std::move(payload);
  pending.undecodable = !decoded;
  pending.decoded = std::move(decoded);
  pending.decoding = false;
  drain_requests();
}

// The check of the request at `sequence` (its own credentials, or the connection's default).
void Session::check_credentials(uint64_t sequence, const wire::Credentials& credentials) {
  engine_.authenticate(credentials.login, credentials.password,
                       [self = shared_from_this(), sequence](AuthResult checked) {
                         boost::asio::post(
                             self->executor_,
                             [self, sequence, checked = std::move(checked)]() mutable {
                               self->on_authenticated(sequence, std::move(checked));
                             });
                       });
}

void Session::on_authenticated(uint64_t sequence, AuthResult checked) {
  if (closed_ || sequence < pending_front_sequence_) return;
  const uint64_t index = sequence - pending_front_sequence_;
  if (index >= pending_.size()) return;
  Pending& pending = pending_[index];
  std::optional<Principal>& principal = checked.principal;
  pending.auth = principal           ? Pending::Auth::Valid
                 : checked.not_ready ? Pending::Auth::NotReady
                                     : Pending::Auth::Invalid;
  if (pending.refreshes_default) {
    default_principal_ = principal;
    default_generation_ = pending.generation;
    default_invalid_ = pending.auth == Pending::Auth::Invalid;
    default_unchecked_ = pending.auth == Pending::Auth::NotReady;
  } else if (principal) {
    remember_proven(*pending.package.credentials, *principal, pending.generation);
  }
  if (principal) pending.principal = std::move(*principal);
  drain_requests();
}

bool Session::default_is_stale() const {
  return default_credentials_ &&
         (default_unchecked_ || default_generation_ != engine_.credentials_generation());
}

// A user changed since the default credentials were proven: check them again (in order, before
// the request that would use them) so that a disabled user or a changed password counts at once.
void Session::recheck_default(Pending& pending) {
  pending.auth = Pending::Auth::Checking;
  pending.refreshes_default = true;
  pending.generation = engine_.credentials_generation();
  check_credentials(pending_front_sequence_, *default_credentials_);
}

std::optional<Principal> Session::proven_principal(const wire::Credentials& credentials) const {
  const Clock::time_point now = Clock::now();
  const uint64_t generation = engine_.credentials_generation();
  for (const ProvenCredentials& proven : proven_) {
    if (proven.expires_at > now && proven.generation == generation &&
        proven.credentials.login == credentials.login &&
        proven.credentials.password == credentials.password) {
      return proven.principal;
    }
  }
  return std::nullopt;
}

void Session::remember_proven(const wire::Credentials& credentials, const Principal& principal,
                              uint64_t generation) {
  const Clock::time_point expires_at =
      Clock::now() + std::chrono::milliseconds(kProvenCredentialsTtlMs);
  for (ProvenCredentials& proven : proven_) {
    if (proven.credentials.login == credentials.login) {
      proven = ProvenCredentials{credentials, principal, expires_at, generation};
      return;
    }
  }
  if (proven_.size() >= kProvenCredentialsMax) proven_.erase(proven_.begin());
  proven_.push_back(ProvenCredentials{credentials, principal, expires_at, generation});
}

void Session::drain_requests() {
  while (!closed_ && !pending_.empty() && pending_.front().auth != Pending::Auth::Checking &&
         !pending_.front().decoding) {
    if (pending_.front().auth == Pending::Auth::UseDefault && default_is_stale()) {
      recheck_default(pending_.front());
      break;
    }
    Pending pending = std::move(pending_.front());
    pending_.pop_front();
    ++pending_front_sequence_;
    process_request(pending);
  }
  read_more();
}

void Session::process_request(Pending& pending) {
  wire::Package& package = pending.package;
  const auto command = static_cast<Command>(package.command);
  if (command == Command::Authenticate) {
    --requests_in_flight_;
    authenticate_connection(pending);
    return;
  }
  const bool invalid = pending.auth == Pending::Auth::Invalid ||
                       (pending.auth == Pending::Auth::UseDefault && default_invalid_);
  if (invalid) {
    --requests_in_flight_;
    send_text(Command::NotAuthenticated, package.correlation_id, kNotAuthenticatedText);
    return;
  }
  if (pending.auth == Pending::Auth::NotReady) {
    --requests_in_flight_;
    send_not_ready(package.correlation_id);
    return;
  }
  Principal who = pending.auth == Pending::Auth::Valid
                      ? pending.principal
                      : default_principal_.value_or(Principal::anon());
  who.client_connection = connection_id_;
  if (command == Command::SubscribeToStream) {
    --requests_in_flight_;
    subscribe(who, package);
    return;
  }
  if (command == Command::UnsubscribeFromStream) {
    --requests_in_flight_;
    unsubscribe(package);
    return;
  }
  if (command == Command::ConnectToPersistentSubscription) {
    --requests_in_flight_;
    connect_persistent(who, package);
    return;
  }
  if (command == Command::PersistentSubscriptionAckEvents ||
      command == Command::PersistentSubscriptionNakEvents) {
    --requests_in_flight_;
    ack_persistent(package);
    return;
  }
  dispatch(who, pending);
}

void Session::authenticate_connection(const Pending& pending) {
  // Successful credentials become the connection's default; failed ones are kept as a failing
  // default, as EventStore does (PROTOCOL.md A4); ones the engine could not check yet are kept
  // unchecked (each request that uses them checks them again) and answered NotHandled NotReady.
  // An Authenticate without credentials fails whatever the connection's default is (a check of
  // that default may have run before it, when the default was stale).
  const bool own = pending.package.credentials.has_value();
  default_unchecked_ = own && pending.auth == Pending::Auth::NotReady;
  if (own && pending.auth == Pending::Auth::Valid) {
    default_principal_ = pending.principal;
    default_credentials_ = *pending.package.credentials;
    default_generation_ = pending.generation;
    default_invalid_ = false;
    send(Command::Authenticated, pending.package.correlation_id, {});
    return;
  }
  if (default_unchecked_) {
    default_principal_.reset();
    default_credentials_ = pending.package.credentials;
    default_generation_ = pending.generation;
    default_invalid_ = false;
    send_not_ready(pending.package.correlation_id);
    return;
  }
  // Kept with their verdict: a later user change (a reset password, an enabled user) may make
  // them valid, as EventStore checks the connection's credentials on every request.
  default_principal_.reset();
  default_credentials_ = pending.package.credentials;
  default_generation_ = pending.generation;
  default_invalid_ = true;
  send_text(Command::NotAuthenticated, pending.package.correlation_id, kNotAuthenticatedText);
}

// EventStore's answer when its auth backend is not ready (PROTOCOL.md A4): clients retry the
// operation (node-eventstore-client: at its next 1 s check, within its retry limit).
void Session::send_not_ready(const Guid& correlation_id) {
  send_owned(Command::NotHandled, correlation_id,
             not_handled(pb::NotHandled::NotReady, std::nullopt));
}

void Session::dispatch(const Principal& who, Pending& pending) {
  const wire::Package& package = pending.package;
  const Guid correlation_id = package.correlation_id;
  if (pending.undecodable) {
    --requests_in_flight_;
    send_text(Command::BadRequest, correlation_id, unwrap_error_text(package.command));
    return;
  }
  // Requests are counted and timed from dispatch to reply (TcpMetrics, for /metrics).
  std::shared_ptr<TcpMetrics> metrics = config_.metrics;
  if (metrics != nullptr) metrics->requests += 1;
  const auto started = std::chrono::steady_clock::now();
  const bool is_write = package.command == static_cast<uint8_t>(Command::WriteEvents);
  ReplyFn reply = [self = shared_from_this(), correlation_id, metrics, started, is_write](
                      Command command, std::string payload) {
    if (metrics != nullptr) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      metrics->request_duration_seconds.observe(seconds);
      if (is_write) metrics->write_duration_seconds.observe(seconds);
    }
    self->reply_later(command, correlation_id, std::move(payload));
  };
  switch (dispatch_request(engine_, who, package, std::move(reply), config_.cluster, read_ahead_,
                           pending.decoded ? &*pending.decoded : nullptr)) {
    case DispatchOutcome::Submitted:
      return;
    case DispatchOutcome::NoReply:
      --requests_in_flight_;
      return;
    case DispatchOutcome::DecodeFailed:
      --requests_in_flight_;
      send_text(Command::BadRequest, correlation_id, unwrap_error_text(package.command));
      return;
    case DispatchOutcome::Unsupported:
      --requests_in_flight_;
      send_text(Command::BadRequest, correlation_id,
                "Unsupported command " + wire::command_name(package.command) + ".");
      return;
  }
}

void Session::reply_later(Command command, const Guid& correlation_id, std::string payload) {
  boost::asio::post(executor_, [self = shared_from_this(), command, correlation_id,
                                payload = std::move(payload)]() mutable {
    --self->requests_in_flight_;
    self->send_owned(command, correlation_id, std::move(payload));
    self->read_more();
  });
}

void Session::subscribe(const Principal& who, const wire::Package& package) {
  const Guid correlation_id = package.correlation_id;
  pb::SubscribeToStream request;
  if (!request.ParsePartialFromString(package.payload)) {
    send_text(Command::BadRequest, correlation_id, unwrap_error_text(package.command));
    return;
  }
  if (subscriptions_.count(correlation_id) != 0) {
    send_text(Command::BadRequest, correlation_id, "Subscription already exists.");
    return;
  }
  if (subscriptions_.size() >= kSubscriptionsPerConnectionMax) {
    send(Command::SubscriptionDropped, correlation_id,
         subscription_dropped(DropReason::SubscriberMaxCountReached));
    return;
  }
  // The callbacks hold the session weakly: close() forgets the subscription, and a push that
  // races with it finds the session gone.
  const std::weak_ptr<Session> weak = weak_from_this();
  const boost::asio::any_io_executor executor = executor_;
  auto deliver = [weak, executor, correlation_id](Command command, std::string payload) {
    boost::asio::post(executor, [weak, correlation_id, command, payload = std::move(payload)] {
      if (std::shared_ptr<Session> self = weak.lock()) {
        if (command == Command::SubscriptionDropped) self->subscriptions_.erase(correlation_id);
        self->send(command, correlation_id, payload);
      }
    });
  };
  SubscriptionCallbacks callbacks;
  callbacks.confirmed = [deliver](int64_t last_commit_position, std::optional<int64_t> last) {
    deliver(Command::SubscriptionConfirmation,
            subscription_confirmation(last_commit_position, last));
  };
  // Encoded on the subscription hub's delivery thread, off the engine's core thread, once per
  // event: every subscriber that sees the event as it is shares the same bytes (hole 7).
  callbacks.shared_event_appeared = [weak, executor, correlation_id](const SharedEvent& event) {
    if (!event.encoded) {
      event.encoded = std::make_shared<const std::string>(stream_event_appeared(*event.event));
    }
    boost::asio::post(executor, [weak, correlation_id, payload = event.encoded]() mutable {
      if (std::shared_ptr<Session> self = weak.lock()) {
        self->send_shared(Command::StreamEventAppeared, correlation_id, std::move(payload));
      }
    });
  };
  callbacks.dropped = [deliver, weak, executor](DropReason reason) {
    if (reason == DropReason::SlowConsumer) {
      // As EventStore: a subscriber that cannot keep up loses its connection, and its client
      // reconnects and catches up by reading.
      boost::asio::post(executor, [weak] {
        if (std::shared_ptr<Session> self = weak.lock()) self->close();
      });
      return;
    }
    deliver(Command::SubscriptionDropped, subscription_dropped(reason));
  };
  subscriptions_[correlation_id] = engine_.subscribe(
      who, request.event_stream_id(), request.resolve_link_tos(), std::move(callbacks));
}

void Session::unsubscribe(const wire::Package& package) {
  const auto consumer = persistent_.find(package.correlation_id);
  if (consumer != persistent_.end()) {
    // The engine answers through the consumer's `dropped(Unsubscribed)`.
    engine_.persistent().disconnect(consumer->second, /*notify=*/true);
    return;
  }
  const auto it = subscriptions_.find(package.correlation_id);
  if (it == subscriptions_.end()) {
    send(Command::SubscriptionDropped, package.correlation_id,
         subscription_dropped(DropReason::Unsubscribed));
    return;
  }
  // The engine answers through the subscription's `dropped(Unsubscribed)`.
  engine_.unsubscribe(it->second);
}

void Session::refuse(const Guid& correlation_id, const NotHandledReply& refusal) {
  send(Command::NotHandled, correlation_id,
       not_handled(static_cast<pb::NotHandled::NotHandledReason>(refusal.reason),
                   refusal.additional_info));
}

void Session::connect_persistent(const Principal& who, const wire::Package& package) {
  const Guid correlation_id = package.correlation_id;
  pb::ConnectToPersistentSubscription request;
  if (!request.ParsePartialFromString(package.payload)) {
    send_text(Command::BadRequest, correlation_id, unwrap_error_text(package.command));
    return;
  }
  // Persistent subscriptions live on the leader only (PROTOCOL.md B).
  const RouteDecision route =
      route_request(Command::ConnectToPersistentSubscription, false, config_.cluster);
  if (route.kind == RouteKind::Refuse) return refuse(correlation_id, route.refusal);
  if (persistent_.count(correlation_id) != 0 || subscriptions_.count(correlation_id) != 0) {
    send_text(Command::BadRequest, correlation_id, "Subscription already exists.");
    return;
  }
  if (persistent_.size() + subscriptions_.size() >= kSubscriptionsPerConnectionMax) {
    send(Command::SubscriptionDropped, correlation_id,
         subscription_dropped(DropReason::SubscriberMaxCountReached));
    return;
  }
  // Callbacks run on the engine's core thread: they post to the strand, which serializes.
  const std::weak_ptr<Session> weak = weak_from_this();
  const boost::asio::any_io_executor executor = executor_;
  auto on_strand = [weak, executor](std::function<void(Session&)> work) {
    boost::asio::post(executor, [weak, work = std::move(work)] {
      if (std::shared_ptr<Session> self = weak.lock()) work(*self);
    });
  };
  const ClusterState* cluster = config_.cluster;
  PersistentCallbacks callbacks;
  callbacks.not_handled = [on_strand, correlation_id, cluster](NotHandledReason reason) {
    on_strand([correlation_id, reason, cluster](Session& s) {
      s.persistent_.erase(correlation_id);
      s.refuse(correlation_id, refusal_for(reason, cluster));
    });
  };
  callbacks.confirmed = [on_strand, correlation_id](const std::string& id, int64_t commit,
                                                    int64_t last) {
    on_strand([correlation_id, id, commit, last](Session& s) {
      s.send(Command::PersistentSubscriptionConfirmation, correlation_id,
             persistent_confirmation(id, commit, last));
    });
  };
  callbacks.event_appeared = [on_strand, correlation_id](std::shared_ptr<const ResolvedEvent> e,
                                                         int32_t retry_count) {
    on_strand([correlation_id, e = std::move(e), retry_count](Session& s) {
      s.send(Command::PersistentSubscriptionStreamEventAppeared, correlation_id,
             persistent_event_appeared(*e, retry_count));
    });
  };
  callbacks.dropped = [on_strand, correlation_id](DropReason reason) {
    on_strand([correlation_id, reason](Session& s) {
      s.persistent_.erase(correlation_id);
      s.send(Command::SubscriptionDropped, correlation_id, subscription_dropped(reason));
    });
  };
  boost::system::error_code ignored;
  const auto peer = stream_.socket().remote_endpoint(ignored);
  const std::string from =
      ignored ? "" : peer.address().to_string() + ":" + std::to_string(peer.port());
  persistent_[correlation_id] = engine_.persistent().connect(
      who, request.event_stream_id(), request.subscription_id(),
      request.allowed_in_flight_messages(), from, std::move(callbacks));
}

void Session::ack_persistent(const wire::Package& package) {
  const auto command = static_cast<Command>(package.command);
  const auto consumer = persistent_.find(package.correlation_id);
  auto ids_of = [](const auto& repeated) {
    std::vector<Guid> ids;
    for (const std::string& bytes : repeated) {
      if (auto id = from_dotnet_bytes(bytes)) ids.push_back(*id);
    }
    return ids;
  };
  if (command == Command::PersistentSubscriptionAckEvents) {
    pb::PersistentSubscriptionAckEvents request;
    if (!request.ParsePartialFromString(package.payload)) {
      send_text(Command::BadRequest, package.correlation_id, unwrap_error_text(package.command));
      return;
    }
    if (consumer == persistent_.end()) return;  // late: the subscription is gone
    engine_.persistent().ack(consumer->second, ids_of(request.processed_event_ids()));
    return;
  }
  pb::PersistentSubscriptionNakEvents request;
  if (!request.ParsePartialFromString(package.payload)) {
    send_text(Command::BadRequest, package.correlation_id, unwrap_error_text(package.command));
    return;
  }
  if (consumer == persistent_.end()) return;
  engine_.persistent().nak(consumer->second, ids_of(request.processed_event_ids()),
                           static_cast<NakAction>(request.action()), request.message());
}

// ---- Writing -------------------------------------------------------------------------------

void Session::send(Command command, const Guid& correlation_id, std::string_view payload,
                   bool urgent) {
  if (closed_) return;
  if (payload.size() + wire::kPackageHeaderBytes > wire::kFrameBytesMax) {
    // The client would drop the whole connection on such a frame (and retry for ever); fail
    // only this operation instead.
    send_text(Command::BadRequest, correlation_id,
              "The reply of " + std::to_string(payload.size()) +
                  " bytes exceeds the 64 MiB frame limit; read fewer events at a time.");
    return;
  }
  // One copy of the payload, after its header (encode_package would copy it twice).
  std::string bytes = wire::encode_package_header(command, correlation_id, payload.size());
  bytes.append(payload);
  enqueue(Frame{std::move(bytes), {}, nullptr}, urgent);
}

void Session::send_owned(Command command, const Guid& correlation_id, std::string payload) {
  if (closed_) return;
  if (payload.size() + wire::kPackageHeaderBytes > wire::kFrameBytesMax) {
    return send(command, correlation_id, payload);  // answered with the BadRequest above
  }
  std::string header = wire::encode_package_header(command, correlation_id, payload.size());
  enqueue(Frame{std::move(header), std::move(payload), nullptr}, false);
}

void Session::send_shared(Command command, const Guid& correlation_id,
                          std::shared_ptr<const std::string> payload) {
  if (closed_) return;
  if (payload->size() + wire::kPackageHeaderBytes > wire::kFrameBytesMax) {
    return send(command, correlation_id, *payload);  // answered with the BadRequest above
  }
  std::string header = wire::encode_package_header(command, correlation_id, payload->size());
  enqueue(Frame{std::move(header), {}, std::move(payload)}, false);
}

void Session::enqueue(Frame frame, bool urgent) {
  // A shared payload counts in full here and in the node's send budget: what this client has
  // not read yet (an over-estimate of the memory it holds, never an under-estimate).
  const size_t bytes = frame.size();
  if (queued_bytes_ + bytes > kOutgoingQueueBytesMax) {
    std::fprintf(stderr, "tcp: closing a connection whose outgoing queue passed %zu bytes\n",
                 kOutgoingQueueBytesMax);
    close_now();
    return;
  }
  if (!charge_send_queue(queued_bytes_ + bytes)) return;
  queued_bytes_ += bytes;
  (urgent ? urgent_ : normal_).push_back(std::move(frame));
  start_write();
}

// Charges the send queue, grown to `wanted` bytes, to the node-wide budget (see
// kQueuedSendBytesBudget). When the budget is spent, a connection above its fair share is closed
// (false): it reads more slowly than it is sent to, and closing it frees what it holds.
bool Session::charge_send_queue(size_t wanted) {
  if (!config_.limits) return true;
  if (config_.limits->charge_send_queue(send_bytes_held_, wanted)) return true;
  const FrameBudget& budget = config_.limits->queued_sends();
  std::fprintf(stderr,
               "tcp: closing the connection from %s: its %zu bytes queued for sending pass its "
               "share (%zu bytes) of the node's send budget of %zu bytes, which is spent (%zu "
               "queued by others); dropping %zu subscriptions\n",
               peer_.c_str(), wanted, config_.limits->send_share(), budget.bytes_max(),
               budget.used_bytes() - send_bytes_held_, subscriptions_.size() + persistent_.size());
  close_now();
  return false;
}

void Session::send_text(Command command, const Guid& correlation_id, const std::string& text) {
  send(command, correlation_id, text);
}

void Session::start_write() {
  if (writing_ || closed_) return;
  if (urgent_.empty() && normal_.empty()) {
    if (closing_after_flush_) close_now();
    return;
  }
  batch_.clear();
  size_t batch_bytes = 0;
  auto take_from = [&](std::deque<Frame>& queue) {
    while (!queue.empty() && batch_.size() < kWriteBatchPackagesMax &&
           (batch_.empty() || batch_bytes + queue.front().size() <= kWriteBatchBytesMax)) {
      batch_bytes += queue.front().size();
      batch_.push_back(std::move(queue.front()));
      queue.pop_front();
    }
  };
  take_from(urgent_);
  take_from(normal_);
  std::vector<boost::asio::const_buffer> buffers;
  buffers.reserve(2 * batch_.size());
  for (const Frame& frame : batch_) {
    buffers.emplace_back(boost::asio::buffer(frame.bytes));
    if (!frame.payload.empty()) buffers.emplace_back(boost::asio::buffer(frame.payload));
    if (frame.shared_payload) buffers.emplace_back(boost::asio::buffer(*frame.shared_payload));
  }
  writing_ = true;
  arm_write_deadline();
  boost::asio::async_write(
      stream_, buffers,
      [self = shared_from_this()](const boost::system::error_code& error, size_t bytes) {
        self->on_written(error, bytes);
      });
}

void Session::on_written(const boost::system::error_code& error, size_t bytes) {
  writing_ = false;
  if (closed_) return;
  queued_bytes_ -= bytes;
  if (config_.limits) config_.limits->queued_sends().resize(send_bytes_held_, queued_bytes_);
  batch_.clear();
  if (error) {
    close_now();
    return;
  }
  start_write();
  read_more();
}

void Session::arm_write_deadline() {
  const uint64_t write = ++writes_started_;
  write_timer_.expires_after(std::chrono::milliseconds(config_.write_timeout_ms));
  write_timer_.async_wait(
      [self = shared_from_this(), write](const boost::system::error_code& error) {
        self->on_write_deadline(error, write);
      });
}

// The write in flight did not complete in time: the client stopped reading (or its network is
// gone). Its queue, subscriptions and pending requests are freed with the connection.
void Session::on_write_deadline(const boost::system::error_code& error, uint64_t write) {
  if (error == boost::asio::error::operation_aborted || closed_) return;
  if (!writing_ || write != writes_started_) return;
  std::fprintf(stderr,
               "tcp: closing the connection from %s: a write did not complete within %d ms (the "
               "client does not read); dropping %zu queued bytes and %zu subscriptions\n",
               peer_.c_str(), config_.write_timeout_ms, queued_bytes_,
               subscriptions_.size() + persistent_.size());
  close_now();
}

void Session::fail_and_close(const Guid& correlation_id, const std::string& text) {
  send_text(Command::BadRequest, correlation_id, text);
  closing_after_flush_ = true;
  // The heartbeat timer becomes the flush deadline.
  arm_heartbeat(std::chrono::milliseconds(kCloseFlushTimeoutMs));
  start_write();
}

bool Session::reading_should_pause() const {
  return queued_bytes_ >= kReadPauseQueuedBytes || requests_in_flight_ >= kRequestsInFlightMax ||
         decoding_bytes_ > 0;
}

// ---- Heartbeats ----------------------------------------------------------------------------

void Session::arm_heartbeat(Clock::duration after) {
  heartbeat_timer_.expires_after(after);
  heartbeat_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    self->on_heartbeat_timer(error);
  });
}

void Session::on_heartbeat_timer(const boost::system::error_code& error) {
  if (error == boost::asio::error::operation_aborted || closed_) return;
  if (handshaking_ || closing_after_flush_ || heartbeat_sent_at_) {
    // Flush deadline passed, or nothing arrived within heartbeat_timeout of our request.
    close_now();
    return;
  }
  const auto interval = std::chrono::milliseconds(config_.heartbeat_interval_ms);
  if (!reading_ && reading_should_pause()) {
    // We stopped reading ourselves (backpressure); silence is not the client's fault.
    arm_heartbeat(interval);
    return;
  }
  const Clock::time_point now = Clock::now();
  const Clock::duration idle = now - last_received_;
  if (idle < interval) {
    arm_heartbeat(interval - idle);
    return;
  }
  send(Command::HeartbeatRequest, random_guid(), {}, /*urgent=*/true);
  heartbeat_sent_at_ = now;
  arm_heartbeat(std::chrono::milliseconds(config_.heartbeat_timeout_ms));
}

void Session::close_now() {
  if (closed_) return;
  closed_ = true;
  stream_.close();
  heartbeat_timer_.cancel();
  write_timer_.cancel();
  parser_ = wire::FrameParser();
  if (config_.limits) {
    config_.limits->partial_frames().resize(frame_bytes_held_, 0);
    config_.limits->queued_sends().resize(send_bytes_held_, 0);
  }
  for (const auto& [correlation_id, subscription_id] : subscriptions_) {
    engine_.forget_subscription(subscription_id);
  }
  subscriptions_.clear();
  for (const auto& [correlation_id, consumer] : persistent_) {
    engine_.persistent().disconnect(consumer, /*notify=*/false);
  }
  persistent_.clear();
  pending_front_sequence_ += pending_.size();
  pending_.clear();
  urgent_.clear();
  normal_.clear();
  if (on_closed_) {
    std::function<void()> on_closed = std::move(on_closed_);
    on_closed_ = nullptr;
    on_closed();
  }
}

}  // namespace chorus::tcp
