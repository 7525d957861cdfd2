// Connection: handshake, heartbeats, framing and the write queue (see connection.hpp).
#include "client/connection.hpp"

#include <utility>

#include "common/guid.hpp"
#include "messages.pb.h"

namespace chorus::client {

namespace msg = EventStore::Client::Messages;
using wire::Command;
using Clock = std::chrono::steady_clock;

Connection::Connection(const Strand& strand, const Settings& settings, Endpoint endpoint)
    : strand_(strand),
      settings_(settings),
      endpoint_(std::move(endpoint)),
      transport_(make_plain_transport(strand)),
      resolver_(strand),
      deadline_(strand),
      heartbeat_timer_(strand),
      read_buffer_(kReadChunkBytes) {}

void Connection::start(Handlers handlers) {
  handlers_ = std::move(handlers);
  auto self = shared_from_this();
  deadline_.expires_after(std::chrono::milliseconds(settings_.connect_timeout_ms));
  deadline_.async_wait([self](const boost::system::error_code& ec) {
    if (!ec && !self->ready_) self->fail("connect timeout");
  });
  resolver_.async_resolve(
      endpoint_.host, std::to_string(endpoint_.port),
      [self](const auto& ec, const auto& results) { self->on_resolved(ec, results); });
}

void Connection::on_resolved(const boost::system::error_code& ec,
                             const Tcp::resolver::results_type& results) {
  if (closed_) return;
  if (ec || results.empty()) return fail("resolve " + endpoint_.host + ": " + ec.message());
  auto self = shared_from_this();
  transport_->async_connect(results.begin()->endpoint(),
                            [self](const auto& connect_ec) { self->on_connected(connect_ec); });
}

void Connection::on_connected(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec) return fail("connect: " + ec.message());
  last_received_ = Clock::now();
  // Authentication and identification get the operation timeout, as in the official clients.
  deadline_.expires_after(std::chrono::milliseconds(settings_.operation_timeout_ms));
  auto self = shared_from_this();
  deadline_.async_wait([self](const boost::system::error_code& timer_ec) {
    if (!timer_ec && !self->ready_) self->fail("no answer to the handshake");
  });
  read_some();
  arm_heartbeat();
  send_handshake();
}

void Connection::send_handshake() {
  if (!settings_.credentials) return send_identify();
  wire::Package auth;
  auth.command = static_cast<uint8_t>(Command::Authenticate);
  auth.flags = static_cast<uint8_t>(wire::Flags::Authenticated);
  authenticate_id_ = random_guid();
  auth.correlation_id = authenticate_id_;
  auth.credentials =
      wire::Credentials{settings_.credentials->login, settings_.credentials->password};
  enqueue(wire::encode_package(auth));
}

void Connection::send_identify() {
  msg::IdentifyClient identify;
  identify.set_version(1);
  identify.set_connection_name(settings_.connection_name);
  identify_id_ = random_guid();
  enqueue(
      wire::encode_package(Command::IdentifyClient, identify_id_, identify.SerializeAsString()));
}

void Connection::send(wire::Command command, const Guid& correlation_id, std::string_view payload) {
  enqueue(wire::encode_package(command, correlation_id, payload));
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  resolver_.cancel();
  deadline_.cancel();
  heartbeat_timer_.cancel();
  transport_->close();
  // Drop the handlers (they hold the owner) once the handler running now, if any, has returned.
  auto self = shared_from_this();
  asio::post(strand_, [self] { self->handlers_ = {}; });
}

void Connection::read_some() {
  auto self = shared_from_this();
  transport_->async_read_some(asio::buffer(read_buffer_),
                              [self](const auto& ec, size_t bytes) { self->on_read(ec, bytes); });
}

void Connection::on_read(const boost::system::error_code& ec, size_t bytes) {
  if (closed_) return;
  if (ec) return fail(ec == asio::error::eof ? "closed by the server" : "read: " + ec.message());
  last_received_ = Clock::now();
  heartbeat_sent_ = false;
  parser_.feed(std::string_view(read_buffer_.data(), bytes));
  while (!closed_) {
    std::optional<std::string> frame = parser_.next_frame();
    if (!frame) break;
    wire::PackageParse parsed = wire::parse_package(std::move(*frame));
    if (!parsed.package) return fail("bad package from the server: " + parsed.error);
    handle(std::move(*parsed.package));
  }
  if (closed_) return;
  if (parser_.invalid()) return fail("bad framing from the server: " + parser_.error());
  read_some();
}

void Connection::handle(wire::Package&& package) {
  const auto command = static_cast<Command>(package.command);
  if (command == Command::HeartbeatRequest) {
    return enqueue(wire::encode_package(Command::HeartbeatResponse, package.correlation_id, ""));
  }
  if (command == Command::HeartbeatResponse) return;
  if (command == Command::BadRequest && package.correlation_id.is_nil()) {
    return fail("connection-wide BadRequest: " + package.payload);
  }
  if (!ready_) return handle_handshake(package);
  handlers_.package(std::move(package));
}

void Connection::handle_handshake(const wire::Package& package) {
  const auto command = static_cast<Command>(package.command);
  if (package.correlation_id == authenticate_id_ && identify_id_.is_nil()) {
    if (command == Command::NotAuthenticated) {
      return fail("authentication failed: " + package.payload, true);
    }
    if (command != Command::Authenticated) {
      return fail("unexpected " + wire::command_name(package.command) + " to Authenticate");
    }
    return send_identify();
  }
  if (package.correlation_id == identify_id_ && command == Command::ClientIdentified) {
    ready_ = true;
    deadline_.cancel();
    handlers_.ready();
    return;
  }
  fail("unexpected " + wire::command_name(package.command) + " during the handshake");
}

void Connection::enqueue(std::string frame) {
  if (closed_) return;
  const size_t max_frames =
      static_cast<size_t>(std::max(settings_.max_concurrent_items, 1)) + kWriteQueueSlackFrames;
  if (write_queue_.size() >= max_frames) return fail("write queue overflow");
  write_queue_.push_back(std::move(frame));
  if (writing_.empty()) write_next();
}

void Connection::write_next() {
  writing_.assign(std::make_move_iterator(write_queue_.begin()),
                  std::make_move_iterator(write_queue_.end()));
  write_queue_.clear();
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(writing_.size());
  for (const std::string& frame : writing_) buffers.push_back(asio::buffer(frame));
  auto self = shared_from_this();
  transport_->async_write(buffers, [self](const boost::system::error_code& ec, size_t) {
    self->writing_.clear();
    if (self->closed_) return;
    if (ec) return self->fail("write: " + ec.message());
    if (!self->write_queue_.empty()) self->write_next();
  });
}

void Connection::arm_heartbeat() {
  heartbeat_timer_.expires_after(std::chrono::milliseconds(kHeartbeatTickMs));
  auto self = shared_from_this();
  heartbeat_timer_.async_wait([self](const boost::system::error_code& ec) {
    if (!ec && !self->closed_) self->on_heartbeat_tick();
  });
}

void Connection::on_heartbeat_tick() {
  const Clock::time_point now = Clock::now();
  const auto since = [now](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count();
  };
  if (heartbeat_sent_ && since(heartbeat_sent_at_) >= settings_.heartbeat_timeout_ms) {
    return fail("heartbeat timeout");
  }
  if (!heartbeat_sent_ && since(last_received_) >= settings_.heartbeat_interval_ms) {
    heartbeat_sent_ = true;
    heartbeat_sent_at_ = now;
    heartbeat_id_ = random_guid();
    enqueue(wire::encode_package(Command::HeartbeatRequest, heartbeat_id_, ""));
  }
  if (!closed_) arm_heartbeat();
}

void Connection::fail(const std::string& reason, bool refused_credentials) {
  if (closed_) return;
  auto closed = handlers_.closed;
  close();
  if (closed) closed(to_string(endpoint_) + ": " + reason, refused_credentials);
}

}  // namespace chorus::client
