// Chart history rings, minute folding, latency quantiles and /stats parsing (see the header).
#include "manager/metrics_history.hpp"
#include "manager/http_client.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace chorus::manager {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

Object::Ptr child(const Object::Ptr& o, const char* key) {
  return o && o->has(key) && o->isObject(key) ? o->getObject(key) : nullptr;
}

double number(const Object::Ptr& o, const char* key) {
  if (!o || !o->has(key)) return kFigureUnknown;
  try {
    return o->getValue<double>(key);
  } catch (const std::exception&) {
    return kFigureUnknown;
  }
}

HistogramSnapshot histogram_of(const Object::Ptr& o) {
  HistogramSnapshot h;
  const Array::Ptr bounds = o && o->has("upperBounds") ? o->getArray("upperBounds") : nullptr;
  const Array::Ptr counts = o && o->has("counts") ? o->getArray("counts") : nullptr;
  if (!bounds || !counts || counts->size() != bounds->size() + 1) return h;
  try {
    for (size_t i = 0; i < bounds->size(); ++i) {
      h.upper_bounds.push_back(bounds->getElement<double>(static_cast<unsigned>(i)));
    }
    for (size_t i = 0; i < counts->size(); ++i) {
      h.counts.push_back(counts->getElement<int64_t>(static_cast<unsigned>(i)));
    }
    h.count = o->getValue<int64_t>("count");
    h.sum = number(o, "sumSeconds");
  } catch (const std::exception&) {
    return HistogramSnapshot{};
  }
  return h;
}

}  // namespace

std::string_view figure_name(Figure figure) {
  switch (figure) {
    case Figure::kEventsWritten:
      return "eventsWritten";
    case Figure::kEventsRead:
      return "eventsRead";
    case Figure::kCpuSeconds:
      return "cpuSeconds";
    case Figure::kWriteP99Ms:
      return "writeP99Ms";
    case Figure::kLagBytes:
      return "lagBytes";
    case Figure::kLagEvents:
      return "lagEvents";
    case Figure::kLagMs:
      return "lagMs";
    case Figure::kTcpConnections:
      return "tcpConnections";
    case Figure::kDataBytes:
      return "dataBytes";
    case Figure::kRssBytes:
      return "rssBytes";
  }
  return "unknown";
}

bool is_counter(Figure figure) {
  return figure == Figure::kEventsWritten || figure == Figure::kEventsRead ||
         figure == Figure::kCpuSeconds;
}

MetricsHistory::MetricsHistory(std::vector<std::string> node_names)
    : node_names_(std::move(node_names)) {}

void MetricsHistory::add(int64_t at_ms, std::vector<NodeFigures> nodes) {
  nodes.resize(node_names_.size());
  std::lock_guard lock(mutex_);
  if (!seconds_.empty() && at_ms <= seconds_.back().at_ms) return;
  seconds_.push_back(HistorySample{at_ms, std::move(nodes)});
  while (seconds_.size() > kSecondSamplesMax) seconds_.pop_front();
  fold_into_minute(seconds_.back());
}

// Counters keep the minute's last reading (rates over minutes stay right); gauges its highest
// (a one-second spike of lag or latency stays visible in the day view).
void MetricsHistory::fold_into_minute(const HistorySample& sample) {
  if (minute_ && minute_->at_ms / kMinuteMs != sample.at_ms / kMinuteMs) {
    minutes_.push_back(*minute_);
    while (minutes_.size() > kMinuteSamplesMax) minutes_.pop_front();
    minute_.reset();
  }
  if (!minute_) {
    minute_ = sample;
    return;
  }
  minute_->at_ms = sample.at_ms;
  for (size_t n = 0; n < sample.nodes.size(); ++n) {
    for (size_t f = 0; f < kFigureCount; ++f) {
      const double v = sample.nodes[n].values[f];
      double& into = minute_->nodes[n].values[f];
      if (std::isnan(v)) continue;
      into = is_counter(static_cast<Figure>(f)) || std::isnan(into) ? v : std::max(into, v);
    }
  }
}

std::vector<HistorySample> MetricsHistory::since(Resolution resolution, int64_t since_ms) const {
  std::lock_guard lock(mutex_);
  const auto& ring = resolution == Resolution::kSecond ? seconds_ : minutes_;
  auto first = std::upper_bound(ring.begin(), ring.end(), since_ms,
                                [](int64_t t, const HistorySample& s) { return t < s.at_ms; });
  std::vector<HistorySample> out(first, ring.end());
  if (resolution == Resolution::kMinute && minute_ && minute_->at_ms > since_ms) {
    out.push_back(*minute_);
  }
  return out;
}

double quantile_ms(const HistogramSnapshot& before, const HistogramSnapshot& after, double q) {
  const bool same_shape =
      before.upper_bounds == after.upper_bounds && before.counts.size() == after.counts.size();
  std::vector<int64_t> delta = after.counts;
  if (same_shape) {
    for (size_t i = 0; i < delta.size(); ++i) delta[i] -= before.counts[i];
  }
  int64_t total = 0;
  for (int64_t d : delta) {
    if (d < 0) return kFigureUnknown;  // restarted: counts went down
    total += d;
  }
  if (total == 0 || after.upper_bounds.empty()) return kFigureUnknown;
  const double rank = q * static_cast<double>(total);
  double below = 0;
  for (size_t i = 0; i < delta.size(); ++i) {
    const auto in_bucket = static_cast<double>(delta[i]);
    if (below + in_bucket >= rank && in_bucket > 0) {
      if (i >= after.upper_bounds.size()) return after.upper_bounds.back() * 1000.0;  // +Inf
      const double low = i == 0 ? 0.0 : after.upper_bounds[i - 1];
      const double high = after.upper_bounds[i];
      return (low + (high - low) * (rank - below) / in_bucket) * 1000.0;
    }
    below += in_bucket;
  }
  return after.upper_bounds.back() * 1000.0;
}

bool figures_from_stats(const std::string& stats_json, NodeFigures* figures,
                        HistogramSnapshot* writes) {
  const Object::Ptr root = parse_json_object(stats_json);
  if (!root) return false;
  const Object::Ptr storage = child(root, "storage");
  const Object::Ptr process = child(root, "process");
  const Object::Ptr connections = child(root, "connections");
  NodeFigures& f = *figures;
  f[Figure::kEventsWritten] = number(storage, "eventsWritten");
  f[Figure::kEventsRead] = number(storage, "eventsRead");
  f[Figure::kDataBytes] = number(storage, "dbSizeBytes");
  f[Figure::kCpuSeconds] = number(process, "cpuSeconds");
  f[Figure::kRssBytes] = number(process, "rssBytes");
  f[Figure::kTcpConnections] = number(connections, "tcp");
  *writes = histogram_of(child(child(root, "latency"), "writes"));
  return true;
}

std::string history_json(const MetricsHistory& history, Resolution resolution, int64_t since_ms) {
  const std::vector<HistorySample> samples = history.since(resolution, since_ms);
  const auto& names = history.node_names();
  std::ostringstream out;
  out.precision(15);
  auto quoted = [&](const std::string& text) {
    out << '"';
    for (char c : text) {
      if (c == '"' || c == '\\') out << '\\';
      if (static_cast<unsigned char>(c) >= 0x20) out << c;
    }
    out << '"';
  };
  const bool seconds = resolution == Resolution::kSecond;
  out << "{\"resolution\":\"" << (seconds ? "1s" : "1m")
      << "\",\"intervalMs\":" << (seconds ? kSampleIntervalMs : kMinuteMs) << ",\"nodes\":[";
  for (size_t n = 0; n < names.size(); ++n) {
    if (n) out << ',';
    quoted(names[n]);
  }
  out << "],\"times\":[";
  for (size_t i = 0; i < samples.size(); ++i) out << (i ? "," : "") << samples[i].at_ms;
  out << "],\"series\":{";
  for (size_t f = 0; f < kFigureCount; ++f) {
    out << (f ? "," : "") << '"' << figure_name(static_cast<Figure>(f)) << "\":{";
    for (size_t n = 0; n < names.size(); ++n) {
      if (n) out << ',';
      quoted(names[n]);
      out << ":[";
      for (size_t i = 0; i < samples.size(); ++i) {
        const double v = samples[i].nodes[n].values[f];
        if (i) out << ',';
        if (std::isnan(v)) {
          out << "null";
        } else {
          out << v;
        }
      }
      out << ']';
    }
    out << '}';
  }
  out << "}}";
  return out.str();
}

FollowerLags follower_lags(const std::string& leader_stats_json) {
  FollowerLags lags;
  const Object::Ptr cluster = child(parse_json_object(leader_stats_json), "cluster");
  const Array::Ptr followers =
      cluster && cluster->has("followers") ? cluster->getArray("followers") : nullptr;
  for (size_t i = 0; followers && i < followers->size(); ++i) {
    const Object::Ptr f = followers->getObject(static_cast<unsigned>(i));
    if (!f || !f->has("node")) continue;
    std::string node;
    try {
      node = f->getValue<std::string>("node");
    } catch (const std::exception&) {
      continue;
    }
    lags[node] = FollowerLag{number(f, "lagBytes"), number(f, "lagEvents"), number(f, "lagMs")};
  }
  return lags;
}

bool lag_of(const FollowerLags& lags, const std::string& node_id, NodeFigures* figures) {
  const auto it = lags.find(node_id);
  if (it == lags.end()) return false;
  (*figures)[Figure::kLagBytes] = it->second.bytes;
  (*figures)[Figure::kLagEvents] = it->second.events;
  (*figures)[Figure::kLagMs] = it->second.ms;
  return true;
}

bool lag_from_leader_stats(const std::string& leader_stats_json, const std::string& node_id,
                           NodeFigures* figures) {
  return lag_of(follower_lags(leader_stats_json), node_id, figures);
}

}  // namespace chorus::manager
