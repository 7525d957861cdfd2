// Plain TCP transport (see transport.hpp).
#include "client/transport.hpp"

namespace chorus::client {
namespace {

class PlainTransport : public Transport {
 public:
  explicit PlainTransport(const Strand& strand) : socket_(strand) {}

  void async_connect(const Tcp::endpoint& endpoint, ConnectHandler done) override {
    socket_.async_connect(endpoint, [this, done = std::move(done)](const auto& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        socket_.set_option(Tcp::no_delay(true), ignored);
      }
      done(ec);
    });
  }
  void async_read_some(asio::mutable_buffer buffer, IoHandler done) override {
    socket_.async_read_some(buffer, std::move(done));
  }
  void async_write(const std::vector<asio::const_buffer>& buffers, IoHandler done) override {
    asio::async_write(socket_, buffers, std::move(done));
  }
  void close() override {
    boost::system::error_code ignored;
    socket_.shutdown(Tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  Tcp::socket socket_;
};

}  // namespace

std::unique_ptr<Transport> make_plain_transport(const Strand& strand) {
  return std::make_unique<PlainTransport>(strand);
}

}  // namespace chorus::client
