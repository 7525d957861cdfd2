// Histogram implementation.
#include "common/histogram.hpp"

#include <algorithm>

namespace chorus {

Histogram::Histogram(std::vector<double> upper_bounds) {
  std::sort(upper_bounds.begin(), upper_bounds.end());
  data_.counts.assign(upper_bounds.size() + 1, 0);
  data_.upper_bounds = std::move(upper_bounds);
}

void Histogram::observe(double value) {
  const auto it = std::lower_bound(data_.upper_bounds.begin(), data_.upper_bounds.end(), value);
  const auto index = static_cast<size_t>(it - data_.upper_bounds.begin());
  std::lock_guard lock(mutex_);
  data_.counts[index] += 1;
  data_.sum += value;
  data_.count += 1;
}

HistogramSnapshot Histogram::snapshot() const {
  std::lock_guard lock(mutex_);
  return data_;
}

std::vector<double> Histogram::seconds_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

std::vector<double> Histogram::size_buckets() {
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000, 1000000};
}

}  // namespace chorus
