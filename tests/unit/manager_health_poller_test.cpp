// Goal: prove the HealthPoller's isolation (issue 16: one thread probes every node): a node whose
// health listener accepts but never answers fails each probe at the deadline, while a healthy
// node on the same poller keeps being probed every interval meanwhile, with its /stats fetched
// at the refresh time, asked for in the same write as a health check (pipelined: one wake-up of
// the node for both); a node without a process is not probed.
#include "manager/health_poller.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace chorus::manager {
namespace {

int listen_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  EXPECT_EQ(::listen(fd, 8), 0);
  return fd;
}

// Answers every request on one connection at a time: 204 for /health/live, 200 "{}" for /stats.
// Counts the /stats requests that arrived alone, i.e. first in what one read() returned.
class AnsweringNode {
 public:
  explicit AnsweringNode(const std::string& path) : fd_(listen_unix(path)) {
    thread_ = std::thread([this] { run(); });
  }
  ~AnsweringNode() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int stats_alone() const { return stats_alone_.load(); }

 private:
  void run() {
    for (;;) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buffer[1024];
      for (ssize_t n; (n = ::read(c, buffer, sizeof buffer)) > 0;) {
        const bool fresh = in.empty();
        in.append(buffer, static_cast<size_t>(n));
        bool first = true;
        for (size_t end; (end = in.find("\r\n\r\n")) != std::string::npos; first = false) {
          const bool stats = in.rfind("GET /stats ", 0) == 0;
          if (stats && first && fresh) ++stats_alone_;
          in.erase(0, end + 4);
          const std::string out = stats ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
                                        : "HTTP/1.1 204 No Content\r\n\r\n";
          if (::write(c, out.data(), out.size()) < 0) break;
        }
      }
      ::close(c);
    }
  }

  int fd_;
  std::thread thread_;
  std::atomic<int> stats_alone_{0};
};

TEST(HealthPoller, AHungNodeDelaysNoOtherNodesProbes) {
  const auto folder = std::filesystem::temp_directory_path() /
                      ("chorus-health-poller-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  const std::string good = (folder / "good.sock").string();
  const std::string hung = (folder / "hung.sock").string();
  AnsweringNode answering(good);
  const int hung_fd = listen_unix(hung);  // connects succeed (backlog), nothing is ever answered

  std::mutex mutex;
  std::vector<HealthPoller::Report> reports;
  std::atomic<int> targets_of_stopped{0};
  HealthPoller::Settings settings;
  settings.interval_ms = 50;
  settings.timeout_ms = 400;
  settings.stats_refresh_ms = 200;
  HealthPoller poller(
      {"good", "hung", "stopped"}, settings,
      [&](const std::string& name) -> std::optional<HealthPoller::Target> {
        if (name == "stopped") {
          ++targets_of_stopped;
          return std::nullopt;
        }
        return HealthPoller::Target{name == "good" ? 11 : 12, name == "good" ? good : hung};
      },
      [&](const HealthPoller::Report& r) {
        std::lock_guard lock(mutex);
        reports.push_back(r);
      });
  poller.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  poller.stop();

  int good_ok = 0, good_stats = 0, hung_answered = 0, hung_failed = 0, stopped = 0;
  for (const auto& r : reports) {
    if (r.name == "good") {
      EXPECT_EQ(r.pid, 11);
      good_ok += r.answered && r.status == 204;
      good_stats += r.stats.has_value() && *r.stats == "{}";
    } else if (r.name == "hung") {
      hung_answered += r.answered;
      hung_failed += !r.answered;
    } else {
      ++stopped;
    }
  }
  // 1.3 s at a 50 ms interval: about 26 probes of the healthy node although every probe of the
  // hung one waits 400 ms (probed one after the other, it would get 3); /stats on every fourth.
  EXPECT_GE(good_ok, 10);
  EXPECT_GE(good_stats, 3);
  EXPECT_LT(good_stats, good_ok);
  EXPECT_EQ(answering.stats_alone(), 0);
  EXPECT_EQ(hung_answered, 0);
  EXPECT_GE(hung_failed, 2);
  EXPECT_LE(hung_failed, 4);
  EXPECT_EQ(stopped, 0);  // no process: nothing probed, nothing reported
  EXPECT_GE(targets_of_stopped.load(), 15);
  ::close(hung_fd);
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace chorus::manager
