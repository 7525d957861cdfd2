// Transport: the byte stream under a client Connection. The Connection only connects, reads,
// writes and closes through this interface, so TLS (the external secure TCP port) is one more
// implementation and no change to the protocol code. All calls and callbacks on the connection's
// strand.
#pragma once

// clang-format off
// Boost 1.74 asio/awaitable.hpp uses std::exchange without including <utility> (GCC 12, C++20),
// so <utility> must come first.
#include <utility>
#include <boost/asio.hpp>
// clang-format on

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

namespace chorus::client {

namespace asio = boost::asio;
using Tcp = asio::ip::tcp;
using Strand = asio::strand<asio::any_io_executor>;

class Transport {
 public:
  using ConnectHandler = std::function<void(const boost::system::error_code&)>;
  using IoHandler = std::function<void(const boost::system::error_code&, size_t)>;

  virtual ~Transport() = default;
  virtual void async_connect(const Tcp::endpoint& endpoint, ConnectHandler done) = 0;
  virtual void async_read_some(asio::mutable_buffer buffer, IoHandler done) = 0;
  // Writes all of `buffers` (they stay valid until `done`).
  virtual void async_write(const std::vector<asio::const_buffer>& buffers, IoHandler done) = 0;
  virtual void close() = 0;
};

// Plain TCP with TCP_NODELAY.
std::unique_ptr<Transport> make_plain_transport(const Strand& strand);

}  // namespace chorus::client
