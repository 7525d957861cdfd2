// StatsStream: see stats_stream.hpp. The metadata is written until it lands (Success, or
// WrongExpectedVersion: the stream exists already); statistics follow from the next period on.
#include "worker/http/stats_stream.hpp"

#include "common/thread_name.hpp"

#include <chrono>
#include <memory>

namespace chorus::http {

std::string stats_stream_of(const std::string& endpoint) { return kStatsStreamPrefix + endpoint; }

std::string stats_stream_metadata() {
  return "{\"$maxAge\":" + std::to_string(kStatsMaxAgeSeconds) + "}";
}

StatsStream::StatsStream(std::string endpoint, int64_t period_ms,
                         std::function<std::string()> collect, Write write)
    : stream_(stats_stream_of(endpoint)),
      period_ms_(period_ms),
      collect_(std::move(collect)),
      write_(std::move(write)),
      thread_([this] { run(); }) {}

StatsStream::~StatsStream() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  thread_.join();
}

std::optional<WriteResult> StatsStream::write_and_wait(const std::string& stream, int64_t expected,
                                                       NewEvent event) {
  uint64_t id = 0;
  {
    std::lock_guard lock(state_->mutex);
    id = ++state_->write_id;
    state_->answer.reset();
  }
  write_(stream, expected, std::move(event), [state = state_, id](WriteResult w) {
    {
      std::lock_guard lock(state->mutex);
      if (state->write_id != id) return;  // given up on
      state->answer = std::move(w);
    }
    state->wake.notify_all();
  });
  std::unique_lock lock(state_->mutex);
  state_->wake.wait_for(lock, std::chrono::milliseconds(kStatsWriteWaitMs),
                        [this] { return state_->stopping || state_->answer.has_value(); });
  auto answer = std::move(state_->answer);
  state_->answer.reset();
  state_->write_id += 1;  // a late answer is dropped
  return answer;
}

void StatsStream::run() {
  set_thread_name("stats");
  bool metadata_set = false;
  std::unique_lock lock(state_->mutex);
  while (!state_->wake.wait_for(lock, std::chrono::milliseconds(period_ms_),
                                [this] { return state_->stopping; })) {
    lock.unlock();
    if (!metadata_set) {
      NewEvent metadata{random_guid(), "$metadata", true, false, stats_stream_metadata(), ""};
      const auto w = write_and_wait("$$" + stream_, kExpectedNoStream, std::move(metadata));
      metadata_set = w && w->not_handled == NotHandledReason::None &&
                     (w->result == OperationResult::Success ||
                      w->result == OperationResult::WrongExpectedVersion);
    }
    if (metadata_set) {
      NewEvent stats{random_guid(), kStatsEventType, true, false, collect_(), ""};
      write_and_wait(stream_, kExpectedAny, std::move(stats));
    }
    lock.lock();
  }
}

}  // namespace chorus::http
