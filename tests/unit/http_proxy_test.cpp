// Goal: hole 8 (first half) of issue 10: a follower relays the leader's answer to a proxied write
// only up to kProxiedReplyBytesMax; a leader (or an impostor) answering more, with or without a
// Content-Length, gets the client a 502 with a clear message, while a normal answer is relayed
// with its status, headers and body. The "leader" is a real Poco HTTP server on 127.0.0.1:0.
#include "worker/http/proxy.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <string>

namespace chorus::http {
namespace {

// Answers every request with `size` bytes of 'x', chunked when asked.
class BigAnswer : public Poco::Net::HTTPRequestHandler {
 public:
  BigAnswer(size_t size, bool chunked) : size_(size), chunked_(chunked) {}
  void handleRequest(Poco::Net::HTTPServerRequest& in,
                     Poco::Net::HTTPServerResponse& out) override {
    in.stream().ignore(std::numeric_limits<std::streamsize>::max());
    out.setStatus(Poco::Net::HTTPResponse::HTTP_CREATED);
    out.set("Location", "http://leader/streams/s/0");
    out.setContentType("text/plain");
    if (chunked_) {
      out.setChunkedTransferEncoding(true);
    } else {
      out.setContentLength64(static_cast<Poco::Int64>(size_));
    }
    std::ostream& body = out.send();
    const std::string block(64 * 1024, 'x');
    for (size_t sent = 0; sent < size_ && body; sent += block.size()) {
      body.write(block.data(), static_cast<std::streamsize>(std::min(block.size(), size_ - sent)));
    }
  }

 private:
  size_t size_;
  bool chunked_;
};

class Leader {
 public:
  Leader(size_t size, bool chunked) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = socket.address().port();
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(size, chunked), socket,
                                                      new Poco::Net::HTTPServerParams);
    server_->start();
  }
  ~Leader() { server_->stopAll(true); }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    Factory(size_t size, bool chunked) : size_(size), chunked_(chunked) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new BigAnswer(size_, chunked_);
    }

   private:
    size_t size_;
    bool chunked_;
  };
  Poco::UInt16 port_ = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

Request write_request() {
  Request request;
  request.method = "POST";
  request.path = "/streams/s";
  request.headers["Content-Type"] = "application/vnd.eventstore.events+json";
  request.body = "[]";
  return request;
}

TEST(HttpProxy, RelaysAnAnswerWithinTheLimit) {
  Leader leader(kProxiedReplyBytesMax, false);
  const Reply reply = proxy_to_leader(leader.endpoint(), write_request(), nullptr);
  EXPECT_EQ(reply.status, 201);
  EXPECT_EQ(reply.body.size(), kProxiedReplyBytesMax);
  EXPECT_EQ(reply.headers.at("Location"), "http://leader/streams/s/0");
}

TEST(HttpProxy, RefusesAnOversizedAnswer) {
  for (const bool chunked : {false, true}) {
    Leader leader(kProxiedReplyBytesMax + 1, chunked);
    const Reply reply = proxy_to_leader(leader.endpoint(), write_request(), nullptr);
    EXPECT_EQ(reply.status, 502) << "chunked " << chunked;
    EXPECT_EQ(reply.body,
              "The leader's answer exceeds " + std::to_string(kProxiedReplyBytesMax) + " bytes");
  }
}

}  // namespace
}  // namespace chorus::http
