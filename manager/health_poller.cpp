// HealthPoller (see health_poller.hpp): one Session per node, each a small callback chain on the
// poller's io_context: timer -> (connect) -> write /health/live, and /stats behind it when due, in
// one write -> read the answers -> report -> timer. Beast's basic_stream puts the deadline on every
// step; a reused connection that the node closed meanwhile (its keep-alive limits) is tried once
// more on a new one, a timeout is not, so a silent node still fails within the deadline.
#include "manager/health_poller.hpp"

#include "common/thread_name.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <string_view>
#include <thread>

namespace chorus::manager {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Stream = beast::basic_stream<asio::local::stream_protocol>;
using boost::system::error_code;

constexpr std::string_view kLiveRequest = "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n";
constexpr std::string_view kStatsRequest = "GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n";

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct HealthPoller::Impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  Settings settings;
  std::function<std::optional<Target>(const std::string&)> target;
  std::function<void(const Report&)> report;
  class Session;
  std::vector<std::unique_ptr<Session>> sessions;
  std::chrono::steady_clock::time_point gathered_slot;  // the last slot whose answers were awaited
};

// One node's probes. Every step runs on the poller's thread; at most one operation is pending.
class HealthPoller::Impl::Session {
 public:
  Session(Impl& owner, std::string name)
      : owner_(owner), name_(std::move(name)), timer_(owner.io) {}

  // The probe at `at`: slot instants are the same time point for every node, so that one
  // wake-up of the thread starts them all.
  void schedule(std::chrono::steady_clock::time_point at) {
    slot_ = at;
    timer_.expires_at(at);
    timer_.async_wait([this](error_code ec) {
      if (!ec) tick();
    });
  }

 private:
  enum class Phase { kLive, kStats };

  void tick() {
    const auto t = owner_.target(name_);
    if (!t || t->socket.empty()) {
      close();
      return next_slot();
    }
    if (t->pid != pid_) {
      close();  // a new process: a new connection, and its figures fetched at once
      stats_fetched_ms_ = 0;
    }
    pid_ = t->pid;
    socket_path_ = t->socket;
    report_ = Report{name_, pid_, false, 0, "", std::nullopt};
    started_ms_ = steady_ms();
    stats_due_ = started_ms_ - stats_fetched_ms_ >= owner_.settings.stats_refresh_ms;
    phase_ = Phase::kLive;
    send();
  }

  void send() {
    retried_ = false;
    stream_ ? write() : connect();
  }

  void connect() {
    stream_.emplace(owner_.io);
    requests_ = 0;
    stream_->expires_after(std::chrono::milliseconds(owner_.settings.timeout_ms));
    stream_->async_connect(asio::local::stream_protocol::endpoint(socket_path_),
                           [this](error_code ec) { ec ? failed(ec) : write(); });
  }

  // The requests of the current phase in one write: /health/live, and /stats right behind it
  // when due (HTTP/1.1 pipelining, which Poco's server answers in order). The node's request
  // thread then wakes once for both instead of once for each (issue 16).
  void write() {
    requests_text_.clear();
    if (phase_ == Phase::kLive) requests_text_ += kLiveRequest;
    if (stats_due_) requests_text_ += kStatsRequest;
    stream_->expires_after(std::chrono::milliseconds(owner_.settings.timeout_ms));
    asio::async_write(*stream_, asio::buffer(requests_text_),
                      [this](error_code ec, size_t) { ec ? failed(ec) : gather(); });
  }

  // The answers are awaited together: the first probe of a slot to have been sent puts the
  // thread to sleep until kAnswerGatherMs after the slot, outside epoll_wait, so that the
  // answers arriving meanwhile (every node is probed at the same instant and answers within
  // a few milliseconds of the others) do not wake it one or a few at a time (issue 16: ~5
  // wake-ups a round with 12 nodes); one epoll_wait then returns all of them. A later answer
  // is read when it comes, within the same deadline.
  void gather() {
    if (owner_.gathered_slot != slot_) {
      owner_.gathered_slot = slot_;
      asio::post(owner_.io, [at = slot_ + std::chrono::milliseconds(kAnswerGatherMs)] {
        std::this_thread::sleep_until(at);
      });
    }
    read_answer();
  }

  void read_answer() {
    response_ = {};
    stream_->expires_after(std::chrono::milliseconds(owner_.settings.timeout_ms));
    http::async_read(*stream_, buffer_, response_,
                     [this](error_code ec, size_t) { ec ? failed(ec) : answered(); });
  }

  void answered() {
    ++requests_;
    const int status = response_.result_int();
    const bool keep = response_.keep_alive();
    if (phase_ == Phase::kStats) {
      if (status == 200) report_.stats = std::move(response_.body());
      if (!keep) close();
      return finish();
    }
    report_.answered = true;
    report_.status = status;
    report_.body = std::move(response_.body());
    if (!stats_due_) {
      if (!keep) close();
      return finish();
    }
    if (status < 200 || status >= 300) {
      close();  // a /stats answer may still come on it: the next probe starts on a new one
      return finish();
    }
    stats_fetched_ms_ = started_ms_;
    phase_ = Phase::kStats;
    if (keep) return read_answer();  // the /stats answer, already asked for
    close();  // the node closed after the health answer (its keep-alive limit): ask again
    send();
  }

  void failed(error_code ec) {
    const bool reused = requests_ > 0;
    close();
    if (reused && !retried_ && ec != beast::error::timeout) {
      retried_ = true;  // the node closed the kept connection: this phase again on a new one
      return connect();
    }
    finish();  // in the /stats phase, the health answer stands
  }

  void finish() {
    owner_.report(report_);
    next_slot();
  }

  // The next probe at the next multiple of the interval (of the steady clock), the same instant
  // for every node: the answers then arrive together and the thread wakes for them in fewer
  // rounds. A probe that waited out its deadline skips the slots it overran.
  void next_slot() {
    const int64_t interval = owner_.settings.interval_ms;
    const int64_t now = steady_ms();
    schedule(std::chrono::steady_clock::time_point(
        std::chrono::milliseconds((now / interval + 1) * interval)));
  }

  void close() {
    if (!stream_) return;
    error_code ignored;
    stream_->socket().shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
    stream_->close();
    stream_.reset();
    buffer_.clear();
  }

  Impl& owner_;
  const std::string name_;
  asio::steady_timer timer_;
  std::chrono::steady_clock::time_point slot_;  // when the current probe was due
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
  std::string requests_text_;
  http::response<http::string_body> response_;
  Report report_;
  Phase phase_ = Phase::kLive;
  bool stats_due_ = false;
  int64_t started_ms_ = 0;  // when the current probe started
  std::string socket_path_;
  int pid_ = 0;
  int64_t requests_ = 0;  // answered on the current connection
  bool retried_ = false;
  int64_t stats_fetched_ms_ = 0;
};

HealthPoller::HealthPoller(std::vector<std::string> names, Settings settings,
                           std::function<std::optional<Target>(const std::string&)> target,
                           std::function<void(const Report&)> report)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = settings;
  impl_->target = std::move(target);
  impl_->report = std::move(report);
  for (auto& name : names) {
    impl_->sessions.push_back(std::make_unique<Impl::Session>(*impl_, std::move(name)));
  }
}

HealthPoller::~HealthPoller() { stop(); }

void HealthPoller::start() {
  for (auto& session : impl_->sessions) session->schedule(std::chrono::steady_clock::now());
  thread_ = std::thread([this] {
    set_thread_name("health");
    impl_->io.run();
  });
}

void HealthPoller::stop() {
  if (!thread_.joinable()) return;
  impl_->io.stop();
  thread_.join();
}

}  // namespace chorus::manager
