// Stream: one TCP connection that carries bytes either in the clear or inside TLS (Asio's
// ssl::stream), chosen when it is made, so the external TCP sessions and the internal transport
// run one code path for both. It is an Asio AsyncReadStream/AsyncWriteStream (async_read_some,
// async_write_some, get_executor), so asio::async_write works on it. Like the socket it wraps it
// is not thread-safe: use it from one strand, with at most one read and one write in flight.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <memory>
#include <string>
#include <utility>

namespace chorus::tls {

class Stream {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using executor_type = Socket::executor_type;
  enum class Role { kClient, kServer };

  // An accepted or connected socket; plain when `context` is null.
  Stream(Socket socket, std::shared_ptr<boost::asio::ssl::context> context);
  // A client stream on `executor`, to be connected through socket().
  Stream(const executor_type& executor, std::shared_ptr<boost::asio::ssl::context> context);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  bool secure() const { return tls_ != nullptr; }
  executor_type get_executor() { return socket().get_executor(); }
  // The TCP layer: connect, socket options, endpoints.
  Socket& socket() { return tls_ ? tls_->next_layer() : plain_; }

  // Client side: the server's certificate must name `host` (IP or DNS SAN). No effect if plain.
  // False when the name could not be set (empty host, no memory): the caller must not connect,
  // as the handshake would then not check the name.
  [[nodiscard]] bool expect_peer_name(const std::string& host);
  // After the handshake: the peer presented a verified certificate that names `host`. False
  // when plain.
  bool peer_certificate_names(const std::string& host);

  // The TLS handshake in `role`; for a plain stream the handler runs at once (posted) with
  // success. Handler: void(boost::system::error_code).
  template <typename Handler>
  void async_handshake(Role role, Handler&& handler) {
    if (!tls_) {
      boost::asio::post(get_executor(), [h = std::forward<Handler>(handler)]() mutable {
        h(boost::system::error_code());
      });
      return;
    }
    tls_->async_handshake(role == Role::kClient ? boost::asio::ssl::stream_base::client
                                                : boost::asio::ssl::stream_base::server,
                          std::forward<Handler>(handler));
  }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  }

  template <typename Buffers, typename Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_.async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

  // Shuts down and closes the TCP socket; pending operations complete with an error. No TLS
  // close_notify is sent: both protocols have their own framing, so a peer needs none.
  void close();

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;  // kept alive for tls_
  Socket plain_;  // the connection when plain; an unused closed socket under TLS
  std::unique_ptr<boost::asio::ssl::stream<Socket>> tls_;
};

}  // namespace chorus::tls
