// MetricsHistory: the dashboard's chart history, kept in memory by the manager: one sample of
// every local node's figures a second for the last hour, and one a minute (counters: the
// minute's last reading; gauges: its highest) for the last day, so a page that opens shows the
// past. Bounded rings (named limits below); lost when the manager restarts. Also the pure
// helpers that turn a node's /stats into figures. Thread-safe (one mutex): the sampler thread
// adds, HTTP threads read.
#pragma once

#include "common/histogram.hpp"

#include <array>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::manager {

// One sample a second: the dashboard's finest resolution, and the nodes' /stats are polled
// about as often (HealthIntervalMs).
inline constexpr int64_t kSampleIntervalMs = 1000;
// The last hour at one second (3600 samples of a few nodes: well under a few MB).
inline constexpr size_t kSecondSamplesMax = 3600;
// The last day at one minute.
inline constexpr size_t kMinuteSamplesMax = 1440;
inline constexpr int64_t kMinuteMs = 60000;

// The figures of one node in one sample. Counters only grow while the process lives (rates are
// taken by the reader); the others are gauges.
enum class Figure : size_t {
  kEventsWritten,   // counter: events this process wrote to storage
  kEventsRead,      // counter: events this process read
  kCpuSeconds,      // counter: CPU time of the process
  kWriteP99Ms,      // gauge: 99th percentile of client write latency in the last interval
  kLagBytes,        // gauge: log bytes behind the leader
  kLagEvents,       // gauge: committed events the node lacks (leader's count)
  kLagMs,           // gauge: age of the oldest event the node lacks
  kTcpConnections,  // gauge: external TCP client connections
  kDataBytes,       // gauge: database files on disk
  kRssBytes,        // gauge: resident memory
};
inline constexpr size_t kFigureCount = 10;
std::string_view figure_name(Figure figure);  // camelCase, as the API names it
bool is_counter(Figure figure);

inline constexpr double kFigureUnknown = std::numeric_limits<double>::quiet_NaN();

struct NodeFigures {
  std::array<double, kFigureCount> values;
  NodeFigures() { values.fill(kFigureUnknown); }
  double& operator[](Figure f) { return values[static_cast<size_t>(f)]; }
  double operator[](Figure f) const { return values[static_cast<size_t>(f)]; }
};

struct HistorySample {
  int64_t at_ms = 0;               // Unix milliseconds
  std::vector<NodeFigures> nodes;  // in node_names() order
};

enum class Resolution { kSecond, kMinute };

class MetricsHistory {
 public:
  explicit MetricsHistory(std::vector<std::string> node_names);

  const std::vector<std::string>& node_names() const { return node_names_; }
  // A sample at `at_ms` (later than the last one; an earlier one is dropped); `nodes` in
  // node_names() order.
  void add(int64_t at_ms, std::vector<NodeFigures> nodes);
  // Samples after `since_ms`, oldest first. Minutes end with the minute in progress.
  std::vector<HistorySample> since(Resolution resolution, int64_t since_ms) const;

 private:
  void fold_into_minute(const HistorySample& sample);  // REQUIRES mutex_

  const std::vector<std::string> node_names_;
  mutable std::mutex mutex_;
  std::deque<HistorySample> seconds_;    // GUARDED_BY(mutex_)
  std::deque<HistorySample> minutes_;    // GUARDED_BY(mutex_)
  std::optional<HistorySample> minute_;  // GUARDED_BY(mutex_): the minute in progress
};

// The q-quantile (0..1) of what was observed between two snapshots of one histogram, in
// milliseconds, interpolated within its bucket; NaN when nothing was observed (or the process
// restarted: the counts went down).
double quantile_ms(const HistogramSnapshot& before, const HistogramSnapshot& after, double q);

// A node's /stats document: its figures (lag and latency left unknown) and its write-latency
// histogram; false when the text is not a /stats document.
bool figures_from_stats(const std::string& stats_json, NodeFigures* figures,
                        HistogramSnapshot* writes);

// The API's document of samples after `since_ms` (GET /api/metrics-history): column layout,
// {"resolution", "intervalMs", "nodes", "times": [unix ms], "series": {figure: {node: [value or
// null]}}}.
std::string history_json(const MetricsHistory& history, Resolution resolution, int64_t since_ms);

// The followers' lag as a leader's /stats reports it ("cluster.followers"), by the name the
// leader gives each ("node": its instance id; a leader of an older version: its internal TCP
// "ip:port"). Empty when the text lists none. Parsed once per leader and sample: the sampler
// looks up each follower of the cluster in it.
struct FollowerLag {
  double bytes = kFigureUnknown;
  double events = kFigureUnknown;
  double ms = kFigureUnknown;
};
using FollowerLags = std::map<std::string, FollowerLag, std::less<>>;
FollowerLags follower_lags(const std::string& leader_stats_json);
// The lag of `node_id` in `lags` into `figures`; false when the leader does not list it.
bool lag_of(const FollowerLags& lags, const std::string& node_id, NodeFigures* figures);
// Both in one step (one parse per call).
bool lag_from_leader_stats(const std::string& leader_stats_json, const std::string& node_id,
                           NodeFigures* figures);

}  // namespace chorus::manager
