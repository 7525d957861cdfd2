// StatsStream: every --stats-period-sec, this node's statistics (the document GET /stats answers)
// as a `$statsCollected` event in `$stats-<ext http ip:port>`, as EventStore's MonitoringService
// does. Before the first one it sets the stream's metadata to {"$maxAge":864000} (ten days, as
// EventStore), expected version NoStream, so an operator's later change is left alone. Writes
// go through `write`, which the worker wires to its engine (leader) or forwards to the leader.
// Threading: its own thread ("stats") collects and writes; the destructor stops and joins it.
#pragma once

#include "worker/engine/types.hpp"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace chorus::http {

// EventStore's names and the retention it sets on a stats stream.
inline constexpr const char* kStatsStreamPrefix = "$stats-";
inline constexpr const char* kStatsEventType = "$statsCollected";
inline constexpr int64_t kStatsMaxAgeSeconds = 864'000;
// A stats write not answered in this time is given up (the next period tries again); it keeps a
// node whose leader is gone from queueing writes.
inline constexpr int kStatsWriteWaitMs = 10'000;

// The stream a node whose external HTTP endpoint is `endpoint` ("ip:port") writes to.
std::string stats_stream_of(const std::string& endpoint);
// The metadata event's data: {"$maxAge":864000}.
std::string stats_stream_metadata();

class StatsStream {
 public:
  // Writes one event and calls `done` once (any thread).
  using Write = std::function<void(const std::string& stream, int64_t expected_version,
                                   NewEvent event, std::function<void(WriteResult)> done)>;
  // `period_ms` > 0. `collect` returns the statistics document (JSON).
  StatsStream(std::string endpoint, int64_t period_ms, std::function<std::string()> collect,
              Write write);
  ~StatsStream();
  StatsStream(const StatsStream&) = delete;
  StatsStream& operator=(const StatsStream&) = delete;

 private:
  // Shared with the write callbacks, which may answer after the stream is gone.
  struct State {
    std::mutex mutex;
    std::condition_variable wake;
    bool stopping = false;              // GUARDED_BY(mutex)
    uint64_t write_id = 0;              // GUARDED_BY(mutex): the write waited for
    std::optional<WriteResult> answer;  // GUARDED_BY(mutex): its answer
  };

  void run();
  // Writes and waits for the answer (at most kStatsWriteWaitMs, less when stopping); nullopt
  // when none came.
  std::optional<WriteResult> write_and_wait(const std::string& stream, int64_t expected,
                                            NewEvent event);

  const std::string stream_;
  const int64_t period_ms_;
  const std::function<std::string()> collect_;
  const Write write_;
  const std::shared_ptr<State> state_ = std::make_shared<State>();
  std::thread thread_;
};

}  // namespace chorus::http
