// PrometheusText: writes Prometheus' text exposition format (version 0.0.4): one "# HELP" and
// "# TYPE" per family, then its samples; histograms as cumulative _bucket{le}, _sum, _count.
// Build one per /metrics request; single thread.
#pragma once

#include "common/histogram.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chorus::http {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

class PrometheusText {
 public:
  // `labels` is the inside of the braces, e.g. `server="external"`, or empty.
  void counter(std::string_view name, std::string_view help, double value,
               std::string_view labels = "");
  void gauge(std::string_view name, std::string_view help, double value,
             std::string_view labels = "");
  // A family with several labelled samples: {labels, value}.
  void samples(std::string_view name, std::string_view help, std::string_view type,
               const std::vector<std::pair<std::string, double>>& values);
  void histogram(std::string_view name, std::string_view help, const HistogramSnapshot& snapshot);
  const std::string& text() const { return text_; }

 private:
  void family(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, std::string_view labels, double value);
  std::string text_;
};

// A number as Prometheus writes it (integers without a fraction, +Inf).
std::string prometheus_number(double value);

}  // namespace chorus::http
