// A blocking test client on a raw stream socket (loopback TCP or a Unix socket) with deadlines
// (poll): for tests that must send malformed, partial or pipelined bytes a real client never
// would, and see exactly what the server answers or when it closes.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

namespace chorus::test {

class RawSocketClient {
 public:
  static RawSocketClient loopback(uint16_t port) {
    RawSocketClient c(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return c;
  }
  static RawSocketClient unix_socket(const std::string& path) {
    RawSocketClient c(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return c;
  }
  RawSocketClient(RawSocketClient&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RawSocketClient(const RawSocketClient&) = delete;
  RawSocketClient& operator=(const RawSocketClient&) = delete;
  RawSocketClient& operator=(RawSocketClient&&) = delete;
  ~RawSocketClient() {
    if (fd_ >= 0) ::close(fd_);
  }

  // False when the server has closed the connection.
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // What arrives until `done(text)` holds (without `done`: until the server closes), the server
  // closes, or `timeout`; `closed` tells whether the server closed.
  std::string receive(std::chrono::milliseconds timeout, bool* closed,
                      const std::function<bool(const std::string&)>& done = {}) {
    using std::chrono::milliseconds;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string out;
    *closed = false;
    while (!(done && done(out))) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd pfd{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return out;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        *closed = true;
        return out;
      }
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  explicit RawSocketClient(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace chorus::test
