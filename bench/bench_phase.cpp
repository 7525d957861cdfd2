// run_phase: the sessions that drive each connection (writer, stream reader, $all reader), the
// start barrier, the work budget shared by the writers, and a watchdog that aborts a stuck phase.
//
// Threading: each session lives on its connection's strand. The shared state between sessions is
// atomics only; the start time and deadline are written before any session is told to begin (the
// post that begins them orders those writes), and results are merged after io_context::run returns.
#include "bench/bench_phase.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "bench/bench_connection.hpp"
#include "messages.pb.h"

namespace chorus::bench {
namespace {

namespace msg = EventStore::Client::Messages;
using Clock = std::chrono::steady_clock;

// How often the watchdog looks at progress.
constexpr int kWatchdogPeriodMs = 1000;
// EventStore's "Any" expected version: no concurrency check, as a logging workload would use.
constexpr int64_t kExpectedVersionAny = -2;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

class Session;

class PhaseShared {
 public:
  PhaseShared(asio::io_context& io, const PhaseConfig& config)
      : config_(config),
        watchdog_strand_(asio::make_strand(io)),
        watchdog_(watchdog_strand_),
        budget_events_(config.events_total),
        last_progress_ns_(now_ns()) {}

  const PhaseConfig& config() const { return config_; }
  std::vector<std::shared_ptr<Session>>& sessions() { return sessions_; }
  Clock::time_point start() const { return start_; }

  // Starts the watchdog on its strand.
  void start_watchdog() {
    asio::post(watchdog_strand_, [this] { arm_watchdog(); });
  }
  // Called once per session when it has identified (or failed before that).
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
        connection_(std::make_shared<BenchConnection>(io, "chorus-bench-" + std::to_string(index),
                                                      shared.config().credentials)) {}
  virtual ~Session() = default;

  void start(const tcp::endpoint& endpoint) {
    auto self = shared_from_this();
    connection_->start(
        endpoint, [self] { self->report_ready(); },
        [self](wire::Package&& package, size_t frame_bytes) {
          if (!self->finished_) self->on_reply(std::move(package), frame_bytes);
        },
        [self](const std::string& reason) { self->on_failure(reason); });
  }
  void begin() {
    auto self = shared_from_this();
    connection_->post([self] {
      if (!self->finished_) self->on_begin();
    });
  }
  void abort(const std::string& reason) {
    auto self = shared_from_this();
    connection_->post([self, reason] { self->on_failure(reason); });
  }
  // Only after the io_context has stopped.
  PhaseResult& result() { return result_; }
  Clock::time_point finished_at() const { return finished_at_; }
  bool began() const { return began_; }

 protected:
  virtual void on_begin() = 0;
  virtual void on_reply(wire::Package&& package, size_t frame_bytes) = 0;

  void finish() {
    if (finished_) return;
    finished_ = true;
    finished_at_ = Clock::now();
    connection_->close();
    shared_.on_session_done();
  }
  void count_non_success(const std::string& name) { ++result_.non_success[name]; }
  void record_reply(Clock::time_point sent) {
    ++result_.requests;
    shared_.progress();
    if (result_.latencies_us.size() >= kLatencySamplesPerConnectionMax) return;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent);
    result_.latencies_us.push_back(static_cast<uint32_t>(us.count()));
  }
  void mark_began() { began_ = true; }

  PhaseShared& shared_;
  const PhaseConfig& config_;
  std::shared_ptr<BenchConnection> connection_;
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
  struct Pending {
    Guid correlation_id;
    Clock::time_point sent;
    int events;
  };

  void on_begin() override {
    mark_began();
    for (int i = 0; i < config_.inflight; ++i) {
      if (!issue()) break;
    }
    if (pending_.empty()) finish();
  }

  bool issue() {
    const int events = shared_.claim_events(config_.batch_events);
    if (events == 0) return false;
    msg::WriteEvents write;
    write.set_event_stream_id(shared_.next_stream());
    write.set_expected_version(kExpectedVersionAny);
    write.set_require_master(false);
    for (int i = 0; i < events; ++i) {
      msg::NewEvent* event = write.add_events();
      event->set_event_id(to_dotnet_bytes(random_guid()));
      event->set_event_type("bench-event");
      event->set_data_content_type(0);
      event->set_metadata_content_type(0);
      event->set_data(data_);
    }
    const Guid id = random_guid();
    pending_.push_back(Pending{id, Clock::now(), events});
    connection_->send(wire::Command::WriteEvents, id, write.SerializeAsString());
    return true;
  }

  void on_reply(wire::Package&& package, size_t) override {
    auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) {
      return p.correlation_id == package.correlation_id;
    });
    if (it == pending_.end()) return count_non_success("UnmatchedReply");
    const Pending done = *it;
    pending_.erase(it);
    record_reply(done.sent);
    msg::WriteEventsCompleted completed;
    if (package.command != static_cast<uint8_t>(wire::Command::WriteEventsCompleted)) {
      count_non_success(wire::command_name(package.command));
    } else if (!completed.ParseFromString(package.payload)) {
      count_non_success("UnparseableWriteEventsCompleted");
    } else if (completed.result() != msg::Success) {
      count_non_success(msg::OperationResult_Name(completed.result()));
    } else {
      result_.events += done.events;
    }
    issue();
    if (pending_.empty()) finish();
  }

  std::string data_;
  std::vector<Pending> pending_;
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
    msg::ReadStreamEvents read;
    read.set_event_stream_id(config_.read_stream);
    read.set_from_event_number(from_event_number);
    read.set_max_count(config_.page_events);
    read.set_resolve_link_tos(false);
    read.set_require_master(false);
    request_id_ = random_guid();
    sent_ = Clock::now();
    connection_->send(wire::Command::ReadStreamEventsForward, request_id_,
                      read.SerializeAsString());
  }

  void on_reply(wire::Package&& package, size_t frame_bytes) override {
    if (package.correlation_id != request_id_) return count_non_success("UnmatchedReply");
    record_reply(sent_);
    if (package.command != static_cast<uint8_t>(wire::Command::ReadStreamEventsForwardCompleted)) {
      count_non_success(wire::command_name(package.command));
      return finish();
    }
    msg::ReadStreamEventsCompleted completed;
    if (!completed.ParseFromString(package.payload)) {
      count_non_success("UnparseableReadStreamEventsCompleted");
      return finish();
    }
    if (completed.result() != msg::ReadStreamEventsCompleted::Success) {
      count_non_success(msg::ReadStreamEventsCompleted::ReadStreamResult_Name(completed.result()));
      return finish();
    }
    result_.events += completed.events_size();
    result_.reply_bytes += static_cast<int64_t>(frame_bytes);
    const bool enough = config_.read_events_max > 0 && result_.events >= config_.read_events_max;
    if (completed.is_end_of_stream() || completed.events_size() == 0 || enough) return finish();
    request(completed.next_event_number());
  }

  Guid request_id_{};
  Clock::time_point sent_{};
};

// Reads $all forward from the start until a page comes back empty, one page in flight.
class ReadAllSession : public Session {
 public:
  using Session::Session;

 private:
  void on_begin() override {
    mark_began();
    request(0, 0);
  }

  void request(int64_t commit_position, int64_t prepare_position) {
    msg::ReadAllEvents read;
    read.set_commit_position(commit_position);
    read.set_prepare_position(prepare_position);
    read.set_max_count(config_.page_events);
    read.set_resolve_link_tos(false);
    read.set_require_master(false);
    request_id_ = random_guid();
    sent_ = Clock::now();
    connection_->send(wire::Command::ReadAllEventsForward, request_id_, read.SerializeAsString());
  }

  void on_reply(wire::Package&& package, size_t frame_bytes) override {
    if (package.correlation_id != request_id_) return count_non_success("UnmatchedReply");
    record_reply(sent_);
    if (package.command != static_cast<uint8_t>(wire::Command::ReadAllEventsForwardCompleted)) {
      count_non_success(wire::command_name(package.command));
      return finish();
    }
    msg::ReadAllEventsCompleted completed;
    if (!completed.ParseFromString(package.payload)) {
      count_non_success("UnparseableReadAllEventsCompleted");
      return finish();
    }
    if (completed.result() != msg::ReadAllEventsCompleted::Success) {
      count_non_success(msg::ReadAllEventsCompleted::ReadAllResult_Name(completed.result()));
      return finish();
    }
    result_.events += completed.events_size();
    result_.reply_bytes += static_cast<int64_t>(frame_bytes);
    const bool enough = config_.read_events_max > 0 && result_.events >= config_.read_events_max;
    if (completed.events_size() == 0 || enough) return finish();
    request(completed.next_commit_position(), completed.next_prepare_position());
  }

  Guid request_id_{};
  Clock::time_point sent_{};
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

PhaseResult run_phase(const PhaseConfig& config) {
  asio::io_context io;
  tcp::resolver resolver(io);
  const tcp::endpoint endpoint =
      *resolver.resolve(config.host, std::to_string(config.port)).begin();
  PhaseShared shared(io, config);
  for (int i = 0; i < config.connections; ++i) {
    shared.sessions().push_back(make_session(io, shared, i));
  }
  for (const auto& session : shared.sessions()) session->start(endpoint);
  shared.start_watchdog();
  std::vector<std::thread> extra_threads;
  for (int i = 1; i < config.threads; ++i) extra_threads.emplace_back([&io] { io.run(); });
  io.run();
  for (std::thread& t : extra_threads) t.join();
  return merge_results(shared);
}

}  // namespace chorus::bench
