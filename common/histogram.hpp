// Histogram: a thread-safe Prometheus-style histogram (fixed upper bounds, counts, sum), for
// request and flush durations and sizes. observe() from any thread; snapshot() copies it.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace chorus {

struct HistogramSnapshot {
  std::vector<double> upper_bounds;  // ascending; +Inf is implied after the last
  std::vector<int64_t> counts;       // per bucket, not cumulative; size = bounds + 1 (+Inf)
  double sum = 0;
  int64_t count = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  HistogramSnapshot snapshot() const;

  // Buckets for durations in seconds (100 us .. 10 s) and for sizes in items or bytes.
  static std::vector<double> seconds_buckets();
  static std::vector<double> size_buckets();

 private:
  mutable std::mutex mutex_;
  HistogramSnapshot data_;
};

}  // namespace chorus
