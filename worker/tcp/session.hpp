// Session: one client connection of the external TCP protocol. Owns the socket, the frame
// parser, the bounded outgoing queue (one write in flight, heartbeats ahead of other replies),
// the heartbeat timer, the connection's default credentials, its volatile and persistent
// subscriptions (consumers) and the
// FIFO that submits requests to the engine in arrival order while their credentials are checked.
// Every member runs on the socket's executor (a strand, or an io_context run by one thread);
// close() may be called from any thread.
#pragma once

#include "common/framing.hpp"
#include "common/histogram.hpp"
#include "common/tls_stream.hpp"
#include "worker/engine/engine.hpp"
#include "worker/tcp/client_limits.hpp"
#include "worker/tcp/dispatch.hpp"
#include "worker/tcp/limits.hpp"
#include "worker/tcp/routing.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::tcp {

// Counts and durations of the client requests a server's sessions dispatch (shared by them).
struct TcpMetrics {
  std::atomic<int64_t> requests{0};
  Histogram request_duration_seconds{Histogram::seconds_buckets()};
  Histogram write_duration_seconds{Histogram::seconds_buckets()};  // WriteEvents only
};

struct SessionConfig {
  int heartbeat_interval_ms = 2000;
  int heartbeat_timeout_ms = 1000;
  const ClusterState* cluster = nullptr;  // null: a single node that serves everything
  std::shared_ptr<TcpMetrics> metrics;    // null: not measured
  // The node-wide limits (budgets of partially received frames and of queued sends); null: not
  // budgeted.
  std::shared_ptr<ClientLimits> limits;
  int write_timeout_ms = kWriteTimeoutMs;          // a socket write must complete within this
  std::shared_ptr<boost::asio::ssl::context> tls;  // null: plain TCP; else TLS server side
  // Where a large write's payload is decoded (a WriteEvents or TransactionWrite frame of
  // kDecodeElsewhereFrameBytesMin or more), so that the session's own thread (the engine's core
  // thread in the worker) is not held by it; the result comes back to the session's executor.
  // Empty: decoded on the session's executor, at dispatch.
  boost::asio::any_io_executor decode_executor;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  // `socket` is an accepted connection; with config.tls the session first completes the TLS
  // handshake (within kTlsHandshakeTimeoutMs). `on_closed` runs once, on the strand, when the
  // connection is closed.
  Session(Socket socket, Engine& engine, SessionConfig config, std::function<void()> on_closed);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  // Closes the connection (from any thread).
  void close();

 private:
  using Clock = std::chrono::steady_clock;

  // One outgoing package: its bytes, or its header followed by its own payload (moved in, not
  // copied: a read reply is up to megabytes) or by a payload shared with others.
  struct Frame {
    std::string bytes;
    std::string payload;
    std::shared_ptr<const std::string> shared_payload;
    size_t size() const {
      return bytes.size() + payload.size() + (shared_payload ? shared_payload->size() : 0);
    }
  };

  // A request waiting for its turn to be submitted (arrival order) and, when it carries its own
  // credentials, for their check.
  struct Pending {
    wire::Package package;
    // NotReady: the engine could not check the credentials yet (AuthResult::not_ready).
    enum class Auth { UseDefault, Checking, Valid, Invalid, NotReady } auth = Auth::UseDefault;
    Principal principal;
    uint64_t generation = 0;         // the engine's credentials generation its check started in
    bool refreshes_default = false;  // a re-check of the connection's default credentials
    // A large write decoded on config_.decode_executor: waits until it is back (`decoding`);
    // then `decoded` holds it, or `undecodable` is set.
    bool decoding = false;
    bool undecodable = false;
    std::optional<DecodedWrite> decoded;
  };

  // The TLS handshake (secure port only), then the protocol.
  void on_handshake(const boost::system::error_code& error);
  void begin_protocol();

  // Reading and frames.
  void read_more();
  void on_read(const boost::system::error_code& error, size_t bytes);
  void handle_frame(std::string frame);
  // `frame` non-empty: the package's payload is still in it from `payload_offset` on, to be
  // decoded on config_.decode_executor.
  void handle_package(wire::Package package, std::string frame = {}, size_t payload_offset = 0);
  bool decodes_elsewhere(const std::string& frame) const;
  bool hold_partial_frame();

  // Ordered requests.
  void enqueue_request(wire::Package package, std::string frame, size_t payload_offset);
  void decode_elsewhere(uint64_t sequence, uint8_t command, std::string frame,
                        size_t payload_offset);
  void on_decoded(uint64_t sequence, std::string payload, std::optional<DecodedWrite> decoded);
  void on_authenticated(uint64_t sequence, AuthResult checked);
  void check_credentials(uint64_t sequence, const wire::Credentials& credentials);
  void send_not_ready(const Guid& correlation_id);
  void drain_requests();
  void process_request(Pending& pending);
  void authenticate_connection(const Pending& pending);
  void dispatch(const Principal& who, Pending& pending);
  void subscribe(const Principal& who, const wire::Package& package);
  void unsubscribe(const wire::Package& package);
  void connect_persistent(const Principal& who, const wire::Package& package);
  void ack_persistent(const wire::Package& package);
  void refuse(const Guid& correlation_id, const NotHandledReply& refusal);
  void reply_later(wire::Command command, const Guid& correlation_id, std::string payload);

  // Writing.
  void send(wire::Command command, const Guid& correlation_id, std::string_view payload,
            bool urgent = false);
  // The same for a payload the session may keep: sent after its header without a copy.
  void send_owned(wire::Command command, const Guid& correlation_id, std::string payload);
  void send_text(wire::Command command, const Guid& correlation_id, const std::string& text);
  // A package whose payload other connections share (an event sent to many subscribers).
  void send_shared(wire::Command command, const Guid& correlation_id,
                   std::shared_ptr<const std::string> payload);
  void enqueue(Frame frame, bool urgent);
  bool charge_send_queue(size_t wanted);
  void start_write();
  void on_written(const boost::system::error_code& error, size_t bytes);
  void arm_write_deadline();
  void on_write_deadline(const boost::system::error_code& error, uint64_t write);
  void fail_and_close(const Guid& correlation_id, const std::string& text);
  bool reading_should_pause() const;

  // Heartbeats.
  void arm_heartbeat(Clock::duration after);
  void on_heartbeat_timer(const boost::system::error_code& error);

  void close_now();

  tls::Stream stream_;
  boost::asio::any_io_executor executor_;  // the strand all members run on
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer write_timer_;  // the deadline of the write in flight
  Engine& engine_;
  SessionConfig config_;
  const uint64_t connection_id_;  // unique in the process; binds the connection's transactions
  std::function<void()> on_closed_;

  wire::FrameParser parser_;
  std::vector<char> read_buffer_;
  std::string peer_;             // "address:port", for log lines
  size_t frame_bytes_held_ = 0;  // this connection's share of the partial-frame budget
  // The frame being decoded elsewhere (at most one: reading pauses meanwhile); it stays charged
  // to the partial-frame budget until it is back.
  size_t decoding_bytes_ = 0;
  bool handshaking_ = false;  // TLS handshake in progress; the heartbeat timer is its deadline
  bool reading_ = false;
  bool handling_frames_ = false;  // on_read() is working through a chunk of bytes
  bool closed_ = false;
  bool closing_after_flush_ = false;

  // Outgoing: heartbeats go to urgent_, everything else to normal_; batch_ is in flight.
  std::deque<Frame> urgent_;
  std::deque<Frame> normal_;
  std::vector<Frame> batch_;
  size_t queued_bytes_ = 0;     // urgent_ + normal_ + batch_
  size_t send_bytes_held_ = 0;  // queued_bytes_ as charged to the node's send budget
  bool writing_ = false;
  uint64_t writes_started_ = 0;  // names the write a deadline belongs to

  Clock::time_point last_received_;
  std::optional<Clock::time_point> heartbeat_sent_at_;

  // Default credentials from Authenticate: a principal, or "invalid" after a failed attempt
  // (EventStore keeps bad defaults, so later requests without credentials are refused). The
  // verdict holds while the engine's credentials generation is the one it was reached in; after
  // a user change the credentials are checked again before the next request uses them, and so
  // are credentials the engine could not check yet (`default_unchecked_`: answered not ready).
  std::optional<Principal> default_principal_;
  std::optional<wire::Credentials> default_credentials_;
  uint64_t default_generation_ = 0;
  bool default_invalid_ = false;
  bool default_unchecked_ = false;
  bool default_is_stale() const;
  void recheck_default(Pending& pending);

  // Credentials this connection proved recently: later packages with the same ones skip the
  // asynchronous check, while no user changed since (the engine's credentials generation).
  struct ProvenCredentials {
    wire::Credentials credentials;
    Principal principal;
    Clock::time_point expires_at;
    uint64_t generation = 0;
  };
  std::optional<Principal> proven_principal(const wire::Credentials& credentials) const;
  void remember_proven(const wire::Credentials& credentials, const Principal& principal,
                       uint64_t generation);
  std::vector<ProvenCredentials> proven_;

  std::deque<Pending> pending_;
  uint64_t pending_front_sequence_ = 0;  // sequence number of pending_.front()
  size_t requests_in_flight_ = 0;        // pending_ + submitted and not yet answered

  // The page read ahead for this connection's forward reads (dispatch.hpp).
  std::shared_ptr<ReadAhead> read_ahead_ = std::make_shared<ReadAhead>();

  std::map<Guid, uint64_t> subscriptions_;  // correlation id -> engine subscription id
  std::map<Guid, uint64_t> persistent_;     // correlation id -> persistent consumer id
};

}  // namespace chorus::tcp
