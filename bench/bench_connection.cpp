// BenchConnection: handshake, heartbeat answers, one write in flight (queued frames are gathered
// into it), and frame splitting with the shared FrameParser.
#include "bench/bench_connection.hpp"

#include <utility>

#include "messages.pb.h"

namespace chorus::bench {

namespace msg = EventStore::Client::Messages;

BenchConnection::BenchConnection(asio::io_context& io, std::string name,
                                 std::optional<wire::Credentials> credentials)
    : strand_(asio::make_strand(io)),
      socket_(strand_),
      handshake_timer_(strand_),
      name_(std::move(name)),
      credentials_(std::move(credentials)),
      read_buffer_(kReadChunkBytes) {}

void BenchConnection::start(const tcp::endpoint& endpoint, ReadyHandler on_ready,
                            ReplyHandler on_reply, FailHandler on_fail) {
  on_ready_ = std::move(on_ready);
  on_reply_ = std::move(on_reply);
  on_fail_ = std::move(on_fail);
  auto self = shared_from_this();
  asio::post(strand_, [self, endpoint] {
    self->handshake_timer_.expires_after(std::chrono::milliseconds(kHandshakeTimeoutMs));
    self->handshake_timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec && !self->identified_) self->fail("no ClientIdentified within the handshake timeout");
    });
    self->socket_.async_connect(endpoint, [self](const boost::system::error_code& connect_ec) {
      self->on_connect(connect_ec);
    });
  });
}

void BenchConnection::on_connect(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec) return fail("connect: " + ec.message());
  socket_.set_option(tcp::no_delay(true));
  read_some();
  msg::IdentifyClient identify;
  identify.set_version(1);
  identify.set_connection_name(name_);
  identify_id_ = random_guid();
  // IdentifyClient goes without credentials, as the EventStore clients send it.
  enqueue(wire::encode_package(wire::Command::IdentifyClient, identify_id_,
                               identify.SerializeAsString()));
}

void BenchConnection::send(wire::Command command, const Guid& correlation_id, std::string payload) {
  wire::Package package;
  package.command = static_cast<uint8_t>(command);
  package.correlation_id = correlation_id;
  package.credentials = credentials_;
  package.payload = std::move(payload);
  enqueue(wire::encode_package(package));
}

void BenchConnection::post(std::function<void()> fn) { asio::post(strand_, std::move(fn)); }

void BenchConnection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  handshake_timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  // The handlers hold their owner, which holds this connection: drop them to break the cycle, but
  // only after the handler that may be running now (close is often called from one) returns.
  auto self = shared_from_this();
  asio::post(strand_, [self] {
    self->on_ready_ = nullptr;
    self->on_reply_ = nullptr;
    self->on_fail_ = nullptr;
  });
}

void BenchConnection::read_some() {
  auto self = shared_from_this();
  socket_.async_read_some(
      asio::buffer(read_buffer_),
      [self](const boost::system::error_code& ec, size_t bytes) { self->on_read(ec, bytes); });
}

void BenchConnection::on_read(const boost::system::error_code& ec, size_t bytes) {
  if (closed_) return;
  if (ec) return fail("read: " + ec.message());
  parser_.feed(std::string_view(read_buffer_.data(), bytes));
  while (!closed_) {
    std::optional<std::string> frame = parser_.next_frame();
    if (!frame) break;
    wire::PackageParse parsed = wire::parse_package(*frame);
    if (!parsed.package) return fail("bad package from server: " + parsed.error);
    handle_package(std::move(*parsed.package), frame->size());
  }
  if (closed_) return;
  if (parser_.invalid()) return fail("bad framing from server: " + parser_.error());
  read_some();
}

void BenchConnection::handle_package(wire::Package&& package, size_t frame_bytes) {
  const auto command = static_cast<wire::Command>(package.command);
  if (command == wire::Command::HeartbeatRequest) {
    enqueue(wire::encode_package(wire::Command::HeartbeatResponse, package.correlation_id, ""));
    return;
  }
  if (command == wire::Command::HeartbeatResponse) return;
  if (!identified_) {
    if (command != wire::Command::ClientIdentified || package.correlation_id != identify_id_) {
      return fail("expected ClientIdentified, got " + wire::command_name(package.command));
    }
    identified_ = true;
    handshake_timer_.cancel();
    on_ready_();
    return;
  }
  on_reply_(std::move(package), frame_bytes);
}

void BenchConnection::enqueue(std::string frame) {
  if (closed_) return;
  if (write_queue_.size() >= kWriteQueuePackagesMax) return fail("write queue overflow");
  write_queue_.push_back(std::move(frame));
  if (writing_.empty()) write_next();
}

void BenchConnection::write_next() {
  // One write in flight; everything queued meanwhile goes out together in the next one.
  writing_.assign(std::make_move_iterator(write_queue_.begin()),
                  std::make_move_iterator(write_queue_.end()));
  write_queue_.clear();
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(writing_.size());
  for (const std::string& frame : writing_) buffers.push_back(asio::buffer(frame));
  auto self = shared_from_this();
  asio::async_write(socket_, buffers,
                    [self](const boost::system::error_code& ec, size_t) { self->on_write(ec); });
}

void BenchConnection::on_write(const boost::system::error_code& ec) {
  writing_.clear();
  if (closed_) return;
  if (ec) return fail("write: " + ec.message());
  if (!write_queue_.empty()) write_next();
}

void BenchConnection::fail(const std::string& reason) {
  if (closed_) return;
  close();
  on_fail_(name_ + ": " + reason);
}

}  // namespace chorus::bench
