// Prometheus text format writer (see metrics_text.hpp).
#include "worker/http/metrics_text.hpp"

#include <cmath>
#include <cstdio>

namespace chorus::http {

std::string prometheus_number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  char text[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(text, sizeof text, "%lld", static_cast<long long>(value));
  } else {
    std::snprintf(text, sizeof text, "%.9g", value);
  }
  return text;
}

void PrometheusText::family(std::string_view name, std::string_view help, std::string_view type) {
  text_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  text_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void PrometheusText::sample(std::string_view name, std::string_view labels, double value) {
  text_.append(name);
  if (!labels.empty()) text_.append("{").append(labels).append("}");
  text_.append(" ").append(prometheus_number(value)).append("\n");
}

void PrometheusText::counter(std::string_view name, std::string_view help, double value,
                             std::string_view labels) {
  family(name, help, "counter");
  sample(name, labels, value);
}

void PrometheusText::gauge(std::string_view name, std::string_view help, double value,
                           std::string_view labels) {
  family(name, help, "gauge");
  sample(name, labels, value);
}

void PrometheusText::samples(std::string_view name, std::string_view help, std::string_view type,
                             const std::vector<std::pair<std::string, double>>& values) {
  family(name, help, type);
  for (const auto& [labels, value] : values) sample(name, labels, value);
}

void PrometheusText::histogram(std::string_view name, std::string_view help,
                               const HistogramSnapshot& snapshot) {
  family(name, help, "histogram");
  const std::string bucket = std::string(name) + "_bucket";
  int64_t cumulative = 0;
  for (size_t i = 0; i < snapshot.upper_bounds.size(); ++i) {
    cumulative += i < snapshot.counts.size() ? snapshot.counts[i] : 0;
    sample(bucket, "le=\"" + prometheus_number(snapshot.upper_bounds[i]) + "\"",
           static_cast<double>(cumulative));
  }
  sample(bucket, "le=\"+Inf\"", static_cast<double>(snapshot.count));
  sample(std::string(name) + "_sum", "", snapshot.sum);
  sample(std::string(name) + "_count", "", static_cast<double>(snapshot.count));
}

}  // namespace chorus::http
