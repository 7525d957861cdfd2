// Goal: prove that gossip rounds keep their connection to a member (issue 16: a new connection
// every round cost the member an accept and a request thread's start every second), and that a
// kept connection the member closed meanwhile is not taken for a dead member: the round is tried
// once more on a new connection, so every round still reaches the member. Connections to a
// manager are not kept (it serves all its nodes' gossip with a few request threads).
#include "worker/cluster/gossip_service.hpp"

#include "common/gossip.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace chorus::cluster {
namespace {

constexpr char kCluster[] = "keep";

// A member's internal HTTP port that answers every POST /gossip with its view (its own entry: a
// follower node, or a manager). With `close_after_answer` it closes each connection after one
// answer, without saying so (as a keep-alive timeout on the other side would).
class GossipPeer {
 public:
  GossipPeer(bool close_after_answer, std::string state)
      : close_(close_after_answer), state_(std::move(state)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~GossipPeer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  int answers() const { return answers_.load(); }

 private:
  std::string view_json() const {
    MemberInfo me;
    me.state = state_;
    me.instance_id = state_ == "Manager" ? "00000000-0000-0000-0000-000000000000"
                                         : "22222222-2222-2222-2222-222222222222";
    me.internal_tcp_ip = "127.0.0.1";
    me.internal_tcp_port = 2;
    me.time_stamp = "2026-12-03T00:00:00.000000Z";
    me.internal_http_ip = "127.0.0.1";
    me.internal_http_port = port_;
    ClusterInfo view;
    view.members.push_back(me);
    view.server_ip = "127.0.0.1";
    view.server_port = port_;
    view.cluster_name = kCluster;
    return to_json(view);
  }

  void run() {
    for (;;) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      serve(c);
      ::close(c);
    }
  }

  // Answers requests on `c` until the client closes it (or after one, with close_).
  void serve(int c) {
    std::string in;
    char buffer[4096];
    for (;;) {
      const size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) {
        const ssize_t n = ::read(c, buffer, sizeof buffer);
        if (n <= 0) return;
        in.append(buffer, static_cast<size_t>(n));
        continue;
      }
      const auto length_at = in.find("Content-Length: ");
      const size_t body = length_at < end ? std::stoul(in.substr(length_at + 16)) : 0;
      while (in.size() < end + 4 + body) {
        const ssize_t n = ::read(c, buffer, sizeof buffer);
        if (n <= 0) return;
        in.append(buffer, static_cast<size_t>(n));
      }
      in.erase(0, end + 4 + body);
      const std::string answer = view_json();
      const std::string out =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(answer.size()) + "\r\n\r\n" + answer;
      if (::write(c, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return;
      ++answers_;
      if (close_) return;
    }
  }

  const bool close_;
  const std::string state_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> connections_{0};
  std::atomic<int> answers_{0};
};

// Runs a gossip service whose only member is `peer`, with 20 ms rounds, until it has started
// kRoundsWanted rounds (or 10 s passed: a loaded machine may stretch rounds, never fail them);
// returns the rounds started (each asks for our own entry once).
int gossip_rounds_with(const GossipPeer& peer) {
  GossipConfig config;
  config.cluster_name = kCluster;
  config.seeds = {{"127.0.0.1", peer.port()}};
  config.fast_interval_ms = 20;
  config.fast_rounds = 1000;
  config.timeout_ms = 500;
  std::atomic<int> rounds{0};
  GossipService gossip(
      config,
      [&] {
        ++rounds;
        MemberInfo me;
        me.state = "Follower";
        me.instance_id = "11111111-1111-1111-1111-111111111111";
        me.time_stamp = "2026-12-03T00:00:00.000000Z";
        me.internal_http_ip = "127.0.0.1";
        me.internal_http_port = 1;  // not the peer's: our own entry
        return me;
      },
      [](NodeIdentities) {});
  gossip.start();
  constexpr int kRoundsWanted = 12;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (rounds.load() - 1 < kRoundsWanted && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  gossip.stop();
  return rounds.load() - 1;  // start() asks once before the first round
}

TEST(GossipService, RoundsKeepTheirConnection) {
  GossipPeer peer(false, "Follower");
  const int rounds = gossip_rounds_with(peer);
  EXPECT_GE(rounds, 10);
  EXPECT_GE(peer.answers(), rounds - 1);  // the last round may have been cut by stop()
  // The first round goes to the seed, not yet known as a node: a connection of its own.
  EXPECT_LE(peer.connections(), 2);
}

TEST(GossipService, RoundsToAManagerOpenANewConnectionEachTime) {
  GossipPeer peer(false, "Manager");
  const int rounds = gossip_rounds_with(peer);
  EXPECT_GE(rounds, 10);
  EXPECT_GE(peer.answers(), rounds - 1);
  // A connection per answered round; stop() may cut the last round between accept and answer.
  EXPECT_GE(peer.connections(), peer.answers());
  EXPECT_LE(peer.connections(), peer.answers() + 1);
}

TEST(GossipService, AKeptConnectionTheMemberClosedIsRetriedOnANewOne) {
  GossipPeer peer(true, "Follower");
  const int rounds = gossip_rounds_with(peer);
  EXPECT_GE(rounds, 10);
  // Every round reached the peer (without the retry, every other round would fail on the
  // connection the peer had closed), each on a connection of its own.
  EXPECT_GE(peer.answers(), rounds - 1);
  EXPECT_GE(peer.connections(), rounds - 1);
}

// The start times (ms after start()) of the rounds of a gossip service with 1 s rounds whose
// only member is `peer`, over `run_ms`; with `carry`, a carrier thread carries the coalescer
// every 5 ms, as the core thread does on its wake-ups.
std::vector<int64_t> round_times_with(const GossipPeer& peer, bool carry, int run_ms) {
  using Clock = std::chrono::steady_clock;
  WakeCoalescer coalescer;
  GossipConfig config;
  config.cluster_name = kCluster;
  config.seeds = {{"127.0.0.1", peer.port()}};
  config.interval_ms = 1000;
  config.fast_rounds = 0;
  config.timeout_ms = 500;
  config.coalescer = &coalescer;
  std::mutex mutex;
  std::vector<Clock::time_point> asked;
  GossipService gossip(
      config,
      [&] {
        {
          std::lock_guard lock(mutex);
          asked.push_back(Clock::now());
        }
        MemberInfo me;
        me.state = "Follower";
        me.instance_id = "11111111-1111-1111-1111-111111111111";
        me.time_stamp = "2026-12-03T00:00:00.000000Z";
        me.internal_http_ip = "127.0.0.1";
        me.internal_http_port = 1;
        return me;
      },
      [](NodeIdentities) {});
  std::atomic<bool> stop{false};
  std::thread carrier([&] {
    while (!stop) {
      if (carry) coalescer.carry();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  gossip.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(run_ms));
  gossip.stop();
  stop = true;
  carrier.join();
  std::lock_guard lock(mutex);
  std::vector<int64_t> out;
  // asked[0] is start()'s; each round asks once more.
  for (size_t i = 1; i < asked.size(); ++i) {
    out.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(asked[i] - asked[0]).count());
  }
  return out;
}

// Goal: a round may run on a carried wake-up up to 200 ms before it is due, never before that
// window, and the rounds keep their rate (issue 16: gossip rounds ride on the core thread's
// wake-ups instead of waking the process by themselves).
TEST(GossipService, CarriedRoundsRunInTheirWindowAndKeepTheirRate) {
  GossipPeer peer(false, "Follower");
  const std::vector<int64_t> times = round_times_with(peer, true, 2500);
  // Rounds due at 0, 1000 and 2000 ms; the last two may start from 800 and 1800 ms.
  ASSERT_EQ(times.size(), 3u);
  EXPECT_LT(times[0], 200);
  EXPECT_GE(times[1], 800);
  EXPECT_GE(times[2], 1800);
  // Carried: the two later rounds ran before they were due (a scheduling stall of 150 ms on
  // both would be needed for this to fail).
  EXPECT_TRUE(times[1] < 1000 || times[2] < 2000) << times[1] << " " << times[2];
}

TEST(GossipService, UncarriedRoundsRunWhenDue) {
  GossipPeer peer(false, "Follower");
  const std::vector<int64_t> times = round_times_with(peer, false, 2500);
  ASSERT_EQ(times.size(), 3u);
  EXPECT_GE(times[1], 1000);
  EXPECT_GE(times[2], 2000);
}

}  // namespace
}  // namespace chorus::cluster
