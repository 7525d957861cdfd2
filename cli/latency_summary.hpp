// Latency percentiles over recorded samples (microseconds). Pure; any thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace chorus::bench {

struct LatencySummary {
  double p50_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  double max_ms = 0;
  int64_t samples = 0;
};

// Sorts `samples_us` in place and picks the nearest-rank percentiles.
inline LatencySummary summarize_latency(std::vector<uint32_t>& samples_us) {
  LatencySummary summary;
  if (samples_us.empty()) return summary;
  std::sort(samples_us.begin(), samples_us.end());
  const auto at = [&](double quantile) {
    auto index = static_cast<size_t>(quantile * static_cast<double>(samples_us.size()));
    index = std::min(index, samples_us.size() - 1);
    return static_cast<double>(samples_us[index]) / 1000.0;
  };
  summary.p50_ms = at(0.50);
  summary.p99_ms = at(0.99);
  summary.p999_ms = at(0.999);
  summary.max_ms = static_cast<double>(samples_us.back()) / 1000.0;
  summary.samples = static_cast<int64_t>(samples_us.size());
  return summary;
}

}  // namespace chorus::bench
