// BenchConnection: one client TCP connection to a Chorus/EventStore node for the benchmark. It
// connects, identifies (IdentifyClient -> ClientIdentified), answers the server's heartbeats and
// hands every other package to the owner's reply handler. All of its work, and every handler it
// calls, runs on its own strand; `send` and `close` must be called on that strand (use `post`).
#pragma once

#include "common/framing.hpp"
#include "common/guid.hpp"

// clang-format off
// Boost 1.74 asio/awaitable.hpp uses std::exchange without including <utility> (GCC 12, C++20),
// so <utility> must come first.
#include <utility>
#include <boost/asio.hpp>
// clang-format on

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chorus::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Connecting and identifying must finish within this time, or the connection fails.
inline constexpr int kHandshakeTimeoutMs = 5000;
// Bytes asked of the socket per read; large enough for 4096-event read pages in few calls.
inline constexpr size_t kReadChunkBytes = 256 * 1024;
// The benchmark keeps at most `--inflight` requests (<= 256) plus heartbeat replies queued, so a
// longer queue is a bug in the driver, not load.
inline constexpr size_t kWriteQueuePackagesMax = 4096;

class BenchConnection : public std::enable_shared_from_this<BenchConnection> {
 public:
  using ReadyHandler = std::function<void()>;
  using ReplyHandler = std::function<void(wire::Package&& package, size_t frame_bytes)>;
  using FailHandler = std::function<void(const std::string& reason)>;

  BenchConnection(asio::io_context& io, std::string name,
                  std::optional<wire::Credentials> credentials);

  // Starts connecting. `on_ready` runs once identified; `on_reply` for every package other than
  // heartbeats; `on_fail` once, on the first error (after which nothing else is called).
  void start(const tcp::endpoint& endpoint, ReadyHandler on_ready, ReplyHandler on_reply,
             FailHandler on_fail);

  // REQUIRES: on this connection's strand. Queues one request carrying the credentials (if any).
  void send(wire::Command command, const Guid& correlation_id, std::string payload);
  // REQUIRES: on this connection's strand. Closes the socket; no handler is called afterwards.
  void close();
  // Runs `fn` on this connection's strand.
  void post(std::function<void()> fn);

 private:
  void on_connect(const boost::system::error_code& ec);
  void read_some();
  void on_read(const boost::system::error_code& ec, size_t bytes);
  void handle_package(wire::Package&& package, size_t frame_bytes);
  void enqueue(std::string frame);
  void write_next();
  void on_write(const boost::system::error_code& ec);
  void fail(const std::string& reason);

  asio::strand<asio::io_context::executor_type> strand_;
  tcp::socket socket_;
  asio::steady_timer handshake_timer_;
  std::string name_;
  std::optional<wire::Credentials> credentials_;
  wire::FrameParser parser_;
  std::vector<char> read_buffer_;
  std::deque<std::string> write_queue_;
  std::vector<std::string> writing_;  // the frames of the one write in flight
  Guid identify_id_{};
  bool identified_ = false;
  bool closed_ = false;
  ReadyHandler on_ready_;
  ReplyHandler on_reply_;
  FailHandler on_fail_;
};

}  // namespace chorus::bench
