// Stream: construction and the non-template parts; see tls_stream.hpp.
#include "common/tls_stream.hpp"

#include "common/tls.hpp"

namespace chorus::tls {

Stream::Stream(Socket socket, std::shared_ptr<boost::asio::ssl::context> context)
    : context_(std::move(context)), plain_(socket.get_executor()) {
  if (context_) {
    tls_ = std::make_unique<boost::asio::ssl::stream<Socket>>(std::move(socket), *context_);
  } else {
    plain_ = std::move(socket);
  }
}

Stream::Stream(const executor_type& executor, std::shared_ptr<boost::asio::ssl::context> context)
    : Stream(Socket(executor), std::move(context)) {}

bool Stream::expect_peer_name(const std::string& host) {
  return !tls_ || chorus::tls::expect_peer_name(tls_->native_handle(), host);
}

bool Stream::peer_certificate_names(const std::string& host) {
  return tls_ && chorus::tls::peer_certificate_names(tls_->native_handle(), host);
}

void Stream::close() {
  boost::system::error_code ignored;
  socket().shutdown(Socket::shutdown_both, ignored);
  socket().close(ignored);
}

}  // namespace chorus::tls
