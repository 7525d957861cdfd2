// Connection: one link to a node's external TCP port. Resolves and connects (connect_timeout_ms),
// sends Authenticate when the settings carry credentials and IdentifyClient, then reports ready;
// answers heartbeats, sends its own when nothing arrived for heartbeat_interval_ms and closes
// when nothing arrives within heartbeat_timeout_ms more (PROTOCOL.md A4, A5). One write in flight;
// frames queued meanwhile go out together. Everything runs on the owner's strand; the owner
// calls send() and close() there, and no handler runs after close().
#pragma once

#include <chorus/settings.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/transport.hpp"
#include "common/framing.hpp"

namespace chorus::client {

// Bytes asked of the socket per read; a 4096-event page arrives in few calls.
inline constexpr size_t kReadChunkBytes = size_t{256} * 1024;
// Frames waiting to be written beyond the operations in flight (heartbeats, unsubscribes): the
// OperationTable bounds the rest, so passing this means a bug and closes the connection.
inline constexpr size_t kWriteQueueSlackFrames = 1024;
// How often the heartbeat clock is looked at.
inline constexpr int kHeartbeatTickMs = 200;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  struct Handlers {
    std::function<void()> ready;
    std::function<void(wire::Package&&)> package;
    // Once, when the connection failed or was lost; `refused_credentials` when the server
    // answered Authenticate with NotAuthenticated.
    std::function<void(const std::string& reason, bool refused_credentials)> closed;
  };

  Connection(const Strand& strand, const Settings& settings, Endpoint endpoint);

  void start(Handlers handlers);
  // REQUIRES: on the strand, after ready.
  void send(wire::Command command, const Guid& correlation_id, std::string_view payload);
  // REQUIRES: on the strand. No handler runs afterwards.
  void close();
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  void on_resolved(const boost::system::error_code& ec, const Tcp::resolver::results_type& r);
  void on_connected(const boost::system::error_code& ec);
  void send_handshake();
  void send_identify();
  void read_some();
  void on_read(const boost::system::error_code& ec, size_t bytes);
  void handle(wire::Package&& package);
  void handle_handshake(const wire::Package& package);
  void enqueue(std::string frame);
  void write_next();
  void arm_heartbeat();
  void on_heartbeat_tick();
  void fail(const std::string& reason, bool refused_credentials = false);

  Strand strand_;
  Settings settings_;
  Endpoint endpoint_;
  std::unique_ptr<Transport> transport_;
  Tcp::resolver resolver_;
  asio::steady_timer deadline_;
  asio::steady_timer heartbeat_timer_;
  wire::FrameParser parser_;
  std::vector<char> read_buffer_;
  std::deque<std::string> write_queue_;
  std::vector<std::string> writing_;
  Guid authenticate_id_{};
  Guid identify_id_{};
  Guid heartbeat_id_{};
  bool ready_ = false;
  bool closed_ = false;
  bool heartbeat_sent_ = false;
  std::chrono::steady_clock::time_point last_received_{};
  std::chrono::steady_clock::time_point heartbeat_sent_at_{};
  Handlers handlers_;
};

}  // namespace chorus::client
