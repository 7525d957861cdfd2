// run_phase: the sessions that drive each client (writer, stream reader, $all reader), the start
// barrier, the work budget shared by the writers, and a watchdog that aborts a stuck phase.
//
// Threading: each session's client runs its handlers on its own strand; a session's state is
// touched only there. The shared state between sessions is atomics only; the start time and
// deadline are written before any session is told to begin (the post that begins them orders
// those writes), and results are merged after io_context::run returns.
#include "cli/bench_phase.hpp"

#include <chorus/client.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "client/transport.hpp"
#include "common/guid.hpp"

namespace chorus::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace asio = client::asio;

// How often the watchdog looks at progress.
constexpr int kWatchdogPeriodMs = 1000;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// By default a benchmark measures the server: the client must not hide failures behind resends,
// so every timeout, NotReady or lost connection counts as an error at once.
client::Settings bench_settings(const PhaseConfig& config, int index) {
  client::Settings s = config.settings;
  s.tcp_endpoint = config.endpoint;
  s.connection_name = "chorus-bench-" + std::to_string(index);
  s.require_leader = false;
  s.max_retries = config.max_retries;
  s.max_reconnections = config.max_reconnections;
  if (config.max_retries == 0) s.operation_timeout_ms = kStallTimeoutMs;
  s.max_queue_size = kInflightMax + 1;
  s.max_concurrent_items = kInflightMax;
  s.connect_timeout_ms = std::max(s.connect_timeout_ms, 5000);
  return s;
}

// The event bytes (data and metadata) of a page, for the MB/s figure of reads.
int64_t event_bytes(const std::vector<client::ResolvedEvent>& events) {
  int64_t bytes = 0;
  for (const client::ResolvedEvent& e : events) {
    if (e.event) bytes += std::ssize(e.event->data) + std::ssize(e.event->metadata);
  }
  return bytes;
}

class Session;

class PhaseShared {
 public:
  PhaseShared(asio::io_context& io, const PhaseConfig& config, PhaseProgress* progress)
      : config_(config),
        progress_(progress),
        watchdog_strand_(asio::make_strand(io)),
        watchdog_(watchdog_strand_),
        budget_events_(config.events_total),
        last_progress_ns_(now_ns()) {}

  const PhaseConfig& config() const { return config_; }
  PhaseProgress* progress_counters() const { return progress_; }
  std::vector<std::shared_ptr<Session>>& sessions() { return sessions_; }
  Clock::time_point start() const { return start_; }

  void start_watchdog() {
    asio::post(watchdog_strand_, [this] { arm_watchdog(); });
  }
  // Called once per session when it is connected (or failed before that).
  void on_session_ready();
  // Called once per session when it has finished its work or failed.
  void on_session_done();
  void progress() { last_progress_ns_.store(now_ns(), std::memory_order_relaxed); }
  // How many events the next write may carry: 0 when the budget or the time is used up.
  int claim_events(int batch_events);
  const std::string& next_stream() {
    const uint64_t index = next_stream_.fetch_add(1, std::memory_order_relaxed);
    return config_.streams[index % config_.streams.size()];
  }

 private:
  void arm_watchdog();
  void on_watchdog();
  void abort_all(const std::string& reason);

  const PhaseConfig& config_;
  PhaseProgress* progress_;
  std::vector<std::shared_ptr<Session>> sessions_;
  asio::strand<asio::io_context::executor_type> watchdog_strand_;
  asio::steady_timer watchdog_;
  std::atomic<int> ready_count_{0};
  std::atomic<int> done_count_{0};
  std::atomic<bool> started_{false};
  std::atomic<bool> all_done_{false};
  std::atomic<int64_t> budget_events_;
  std::atomic<uint64_t> next_stream_{0};
  std::atomic<int64_t> last_progress_ns_;
  Clock::time_point start_{};
  Clock::time_point deadline_{};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::io_context& io, PhaseShared& shared, int index)
      : shared_(shared),
        config_(shared.config()),
        strand_(asio::make_strand(io)),
        client_(std::make_unique<client::Client>(io, bench_settings(shared.config(), index))) {}
  virtual ~Session() = default;

  void start() {
    auto self = shared_from_this();
    client_->connect([self](client::Result<client::Endpoint> r) {
      asio::post(self->strand_, [self, r = std::move(r)] {
        if (!r.ok()) self->on_failure("connect: " + r.error().message);
        self->report_ready();
      });
    });
  }
  void begin() {
    asio::post(strand_, [self = shared_from_this()] {
      if (!self->finished_) self->on_begin();
    });
  }
  void abort(const std::string& reason) {
    asio::post(strand_, [self = shared_from_this(), reason] { self->on_failure(reason); });
  }
  // Only after the io_context has stopped.
  PhaseResult& result() { return result_; }
  Clock::time_point finished_at() const { return finished_at_; }
  bool began() const { return began_; }
  void release() { client_.reset(); }

 protected:
  virtual void on_begin() = 0;

  // Runs `fn` on this session's strand, unless the session has finished.
  template <class F>
  void on_strand(F&& fn) {
    asio::post(strand_, [self = shared_from_this(), fn = std::forward<F>(fn)]() mutable {
      if (!self->finished_) fn();
    });
  }
  void finish() {
    if (finished_) return;
    finished_ = true;
    finished_at_ = Clock::now();
    client_->close();
    shared_.on_session_done();
  }
  void count_error(const std::string& name) {
    ++result_.non_success[name];
    if (auto* p = shared_.progress_counters()) p->errors.fetch_add(1, std::memory_order_relaxed);
  }
  void record_reply(Clock::time_point sent, int64_t events) {
    ++result_.requests;
    result_.events += events;
    shared_.progress();
    if (auto* p = shared_.progress_counters()) {
      p->requests.fetch_add(1, std::memory_order_relaxed);
      p->events.fetch_add(events, std::memory_order_relaxed);
    }
    if (result_.latencies_us.size() >= kLatencySamplesPerConnectionMax) return;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent);
    result_.latencies_us.push_back(static_cast<uint32_t>(us.count()));
  }
  void mark_began() { began_ = true; }
  bool finished() const { return finished_; }

  PhaseShared& shared_;
  const PhaseConfig& config_;
  asio::strand<asio::io_context::executor_type> strand_;
  std::unique_ptr<client::Client> client_;
  PhaseResult result_;

 private:
  void report_ready() {
    if (ready_reported_) return;
    ready_reported_ = true;
    shared_.on_session_ready();
  }
  void on_failure(const std::string& reason) {
    if (finished_) return;
    result_.failures.push_back(reason);
    report_ready();
    finish();
  }

  bool ready_reported_ = false;
  bool finished_ = false;
  bool began_ = false;
  Clock::time_point finished_at_{};
};

// K writes in flight on one connection, each of `batch_events` events to the next stream.
class WriteSession : public Session {
 public:
  WriteSession(asio::io_context& io, PhaseShared& shared, int index)
      : Session(io, shared, index), data_(static_cast<size_t>(shared.config().event_bytes), 'x') {
    for (size_t i = 0; i < data_.size(); ++i) data_[i] = static_cast<char>('a' + i % 26);
  }

 private:
  void on_begin() override {
    mark_began();
    for (int i = 0; i < config_.inflight; ++i) {
      if (!issue()) break;
    }
    if (in_flight_ == 0) finish();
  }

  bool issue() {
    const int count = shared_.claim_events(config_.batch_events);
    if (count == 0) return false;
    std::vector<client::EventData> events;
    events.reserve(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
      events.push_back(client::EventData{random_guid(), "bench-event", false, data_, ""});
    }
    ++in_flight_;
    const Clock::time_point sent = Clock::now();
    auto self = std::static_pointer_cast<WriteSession>(shared_from_this());
    client_->append(shared_.next_stream(), client::kExpectedVersionAny, std::move(events),
                    [self, sent, count](client::Result<client::WriteResult> r) {
                      self->on_strand([self, sent, count, r = std::move(r)] {
                        self->on_written(r, sent, count);
                      });
                    });
    return true;
  }

  void on_written(const client::Result<client::WriteResult>& r, Clock::time_point sent, int count) {
    --in_flight_;
    record_reply(sent, r.ok() ? count : 0);
    if (!r.ok()) count_error(client::to_string(r.error().kind));
    issue();
    if (in_flight_ == 0) finish();
  }

  std::string data_;
  int in_flight_ = 0;
};

// Reads one stream forward from 0 to its end, one page in flight.
class ReadStreamSession : public Session {
 public:
  using Session::Session;

 private:
  void on_begin() override {
    mark_began();
    request(0);
  }

  void request(int64_t from_event_number) {
    const Clock::time_point sent = Clock::now();
    auto self = std::static_pointer_cast<ReadStreamSession>(shared_from_this());
    client_->read_stream(
        config_.read_stream, from_event_number, config_.page_events, client::ReadDirection::Forward,
        false, [self, sent](client::Result<client::StreamSlice> r) {
          self->on_strand([self, sent, r = std::move(r)] { self->on_page(r, sent); });
        });
  }

  void on_page(const client::Result<client::StreamSlice>& r, Clock::time_point sent) {
    if (!r.ok()) {
      record_reply(sent, 0);
      count_error(client::to_string(r.error().kind));
      return finish();
    }
    const client::StreamSlice& slice = r.value();
    record_reply(sent, std::ssize(slice.events));
    result_.reply_bytes += event_bytes(slice.events);
    if (slice.status != client::ReadStatus::Success) {
      count_error(client::to_string(slice.status));
      return finish();
    }
    const bool enough = config_.read_events_max > 0 && result_.events >= config_.read_events_max;
    if (slice.is_end_of_stream || slice.events.empty() || enough) return finish();
    request(slice.next_event_number);
  }
};

// Reads $all forward from the start until a page comes back empty, one page in flight.
class ReadAllSession : public Session {
 public:
  using Session::Session;

 private:
  void on_begin() override {
    mark_began();
    request(client::Position::start());
  }

  void request(client::Position from) {
    const Clock::time_point sent = Clock::now();
    auto self = std::static_pointer_cast<ReadAllSession>(shared_from_this());
    client_->read_all(from, config_.page_events, client::ReadDirection::Forward, false,
                      [self, sent](client::Result<client::AllSlice> r) {
                        self->on_strand([self, sent, r = std::move(r)] { self->on_page(r, sent); });
                      });
  }

  void on_page(const client::Result<client::AllSlice>& r, Clock::time_point sent) {
    if (!r.ok()) {
      record_reply(sent, 0);
      count_error(client::to_string(r.error().kind));
      return finish();
    }
    const client::AllSlice& slice = r.value();
    record_reply(sent, std::ssize(slice.events));
    result_.reply_bytes += event_bytes(slice.events);
    const bool enough = config_.read_events_max > 0 && result_.events >= config_.read_events_max;
    if (slice.events.empty() || enough) return finish();
    request(slice.next);
  }
};

void PhaseShared::arm_watchdog() {
  watchdog_.expires_after(std::chrono::milliseconds(kWatchdogPeriodMs));
  watchdog_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_watchdog();
  });
}

void PhaseShared::on_watchdog() {
  if (all_done_.load()) return;
  const int64_t idle_ms = (now_ns() - last_progress_ns_.load()) / 1000000;
  const bool started = started_.load(std::memory_order_acquire);
  if (idle_ms > kStallTimeoutMs) {
    abort_all("no progress for " + std::to_string(idle_ms) + " ms");
  } else if (started && Clock::now() - start_ > std::chrono::seconds(kPhaseSecondsMax)) {
    abort_all("phase exceeded " + std::to_string(kPhaseSecondsMax) + " s");
  }
  arm_watchdog();
}

void PhaseShared::abort_all(const std::string& reason) {
  for (const auto& session : sessions_) session->abort(reason);
}

void PhaseShared::on_session_ready() {
  if (ready_count_.fetch_add(1) + 1 != config_.connections) return;
  start_ = Clock::now();
  const auto duration = std::chrono::duration<double>(config_.duration_s);
  deadline_ = start_ + std::chrono::duration_cast<Clock::duration>(duration);
  started_.store(true, std::memory_order_release);  // publishes start_ to the watchdog
  if (progress_) progress_->started.store(true);
  progress();
  for (const auto& session : sessions_) session->begin();
}

void PhaseShared::on_session_done() {
  if (done_count_.fetch_add(1) + 1 != config_.connections) return;
  all_done_.store(true);
  asio::post(watchdog_strand_, [this] { watchdog_.cancel(); });
}

int PhaseShared::claim_events(int batch_events) {
  if (config_.events_total <= 0) return Clock::now() < deadline_ ? batch_events : 0;
  const int64_t before = budget_events_.fetch_sub(batch_events);
  if (before <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(batch_events, before));
}

std::shared_ptr<Session> make_session(asio::io_context& io, PhaseShared& shared, int index) {
  switch (shared.config().kind) {
    case PhaseKind::Write:
      return std::make_shared<WriteSession>(io, shared, index);
    case PhaseKind::ReadStream:
      return std::make_shared<ReadStreamSession>(io, shared, index);
    case PhaseKind::ReadAll:
      return std::make_shared<ReadAllSession>(io, shared, index);
  }
  throw std::logic_error("unknown phase kind");
}

PhaseResult merge_results(PhaseShared& shared) {
  PhaseResult total;
  Clock::time_point end = shared.start();
  for (const auto& session : shared.sessions()) {
    PhaseResult& r = session->result();
    total.events += r.events;
    total.requests += r.requests;
    total.reply_bytes += r.reply_bytes;
    total.latencies_us.insert(total.latencies_us.end(), r.latencies_us.begin(),
                              r.latencies_us.end());
    for (const auto& [name, count] : r.non_success) total.non_success[name] += count;
    total.failures.insert(total.failures.end(), r.failures.begin(), r.failures.end());
    if (session->began()) end = std::max(end, session->finished_at());
  }
  total.elapsed_s = std::chrono::duration<double>(end - shared.start()).count();
  return total;
}

}  // namespace

PhaseResult run_phase(const PhaseConfig& config, PhaseProgress* progress) {
  asio::io_context io;
  PhaseShared shared(io, config, progress);
  for (int i = 0; i < config.connections; ++i) {
    shared.sessions().push_back(make_session(io, shared, i));
  }
  for (const auto& session : shared.sessions()) session->start();
  shared.start_watchdog();
  std::vector<std::thread> extra_threads;
  for (int i = 1; i < config.threads; ++i) extra_threads.emplace_back([&io] { io.run(); });
  io.run();
  for (std::thread& t : extra_threads) t.join();
  PhaseResult result = merge_results(shared);
  // The clients are closed; they go before the io_context they were made on.
  for (const auto& session : shared.sessions()) session->release();
  return result;
}

}  // namespace chorus::bench
