// Goal: prove that the manager's chart history keeps at most an hour of one-second samples and a
// day of one-minute samples (counters: the minute's last reading, gauges: its highest), that
// write-latency quantiles come from the histogram's change between two samples, and that a
// node's /stats and its leader's follower list are read into figures.
#include "manager/metrics_history.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace chorus::manager {
namespace {

NodeFigures figures(double written, double lag_ms) {
  NodeFigures f;
  f[Figure::kEventsWritten] = written;
  f[Figure::kLagMs] = lag_ms;
  return f;
}

TEST(MetricsHistory, KeepsTheLastHourOfSecondsAndOrdersBySince) {
  MetricsHistory h({"n1"});
  const int64_t start = 1'700'000'000'000;
  for (size_t i = 0; i < kSecondSamplesMax + 10; ++i) {
    h.add(start + static_cast<int64_t>(i) * 1000, {figures(static_cast<double>(i), 0)});
  }
  const auto all = h.since(Resolution::kSecond, 0);
  ASSERT_EQ(all.size(), kSecondSamplesMax);
  EXPECT_EQ(all.front().at_ms, start + 10'000);
  EXPECT_EQ(all.back().nodes.size(), 1u);
  const auto recent = h.since(Resolution::kSecond, all.back().at_ms - 3000);
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent.front().nodes[0][Figure::kEventsWritten],
            static_cast<double>(kSecondSamplesMax + 7));
  // A sample not later than the last is dropped (the ring stays ordered).
  h.add(all.back().at_ms, {figures(-1, 0)});
  EXPECT_EQ(h.since(Resolution::kSecond, all.back().at_ms - 1).size(), 1u);
}

TEST(MetricsHistory, MinutesKeepTheLastCounterAndTheHighestGauge) {
  MetricsHistory h({"n1", "n2"});
  const int64_t minute0 = int64_t{28'000'000} * kMinuteMs;
  h.add(minute0 + 1000, {figures(10, 5), NodeFigures{}});
  h.add(minute0 + 2000, {figures(20, 90), NodeFigures{}});
  h.add(minute0 + 3000, {figures(30, 7), figures(1, kFigureUnknown)});
  h.add(minute0 + kMinuteMs + 1000, {figures(40, 1), NodeFigures{}});
  const auto minutes = h.since(Resolution::kMinute, 0);
  ASSERT_EQ(minutes.size(), 2u);  // the finished minute and the one in progress
  EXPECT_EQ(minutes[0].at_ms, minute0 + 3000);
  EXPECT_EQ(minutes[0].nodes[0][Figure::kEventsWritten], 30);
  EXPECT_EQ(minutes[0].nodes[0][Figure::kLagMs], 90);
  EXPECT_EQ(minutes[0].nodes[1][Figure::kEventsWritten], 1);
  EXPECT_TRUE(std::isnan(minutes[0].nodes[1][Figure::kLagMs]));
  EXPECT_EQ(minutes[1].nodes[0][Figure::kEventsWritten], 40);
}

TEST(MetricsHistory, KeepsTheLastDayOfMinutes) {
  MetricsHistory h({"n1"});
  const int64_t start = int64_t{28'000'000} * kMinuteMs;
  for (size_t i = 0; i < kMinuteSamplesMax + 5; ++i) {
    h.add(start + static_cast<int64_t>(i) * kMinuteMs, {figures(static_cast<double>(i), 0)});
  }
  const auto minutes = h.since(Resolution::kMinute, 0);
  EXPECT_EQ(minutes.size(), kMinuteSamplesMax + 1);  // plus the minute in progress
  EXPECT_EQ(minutes.back().nodes[0][Figure::kEventsWritten],
            static_cast<double>(kMinuteSamplesMax + 4));
}

HistogramSnapshot histogram(std::vector<int64_t> counts) {
  HistogramSnapshot h;
  h.upper_bounds = {0.001, 0.01, 0.1};
  h.counts = std::move(counts);
  for (int64_t c : h.counts) h.count += c;
  return h;
}

TEST(QuantileMs, ComesFromTheChangeBetweenTwoSnapshots) {
  const auto before = histogram({1000, 0, 0, 0});
  // 100 new writes: 98 below 1 ms, 2 between 10 and 100 ms; p99 is in the 10-100 ms bucket.
  const auto after = histogram({1098, 0, 2, 0});
  const double p99 = quantile_ms(before, after, 0.99);
  EXPECT_GT(p99, 10.0);
  EXPECT_LE(p99, 100.0);
  EXPECT_NEAR(quantile_ms(before, after, 0.5), 0.5 * 100.0 / 98.0, 1e-9);
  EXPECT_TRUE(std::isnan(quantile_ms(after, after, 0.99))) << "no writes: unknown";
  EXPECT_TRUE(std::isnan(quantile_ms(after, before, 0.99))) << "restarted: unknown";
  EXPECT_EQ(quantile_ms(HistogramSnapshot{}, histogram({0, 0, 0, 3}), 0.99), 100.0);
}

TEST(StatsFigures, ReadsANodesStatsAndItsLeadersFollowerList) {
  const std::string stats = R"({"process":{"cpuSeconds":1.5,"rssBytes":1000},
    "storage":{"eventsWritten":42,"eventsRead":7,"dbSizeBytes":4096},
    "connections":{"tcp":3},
    "latency":{"writes":{"upperBounds":[0.001,0.01],"counts":[4,1,0],"count":5,
                         "sumSeconds":0.01}}})";
  NodeFigures f;
  HistogramSnapshot writes;
  ASSERT_TRUE(figures_from_stats(stats, &f, &writes));
  EXPECT_EQ(f[Figure::kEventsWritten], 42);
  EXPECT_EQ(f[Figure::kEventsRead], 7);
  EXPECT_EQ(f[Figure::kDataBytes], 4096);
  EXPECT_EQ(f[Figure::kTcpConnections], 3);
  EXPECT_EQ(f[Figure::kCpuSeconds], 1.5);
  EXPECT_EQ(writes.count, 5);
  ASSERT_EQ(writes.counts.size(), 3u);
  EXPECT_FALSE(figures_from_stats("not json", &f, &writes));

  const std::string leader = R"({"cluster":{"followers":[
    {"node":"127.0.0.1:1112","lagBytes":0,"lagEvents":0,"lagMs":0},
    {"node":"127.0.0.2:1112","lagBytes":512,"lagEvents":4,"lagMs":250}]}})";
  NodeFigures lag;
  ASSERT_TRUE(lag_from_leader_stats(leader, "127.0.0.2:1112", &lag));
  EXPECT_EQ(lag[Figure::kLagBytes], 512);
  EXPECT_EQ(lag[Figure::kLagEvents], 4);
  EXPECT_EQ(lag[Figure::kLagMs], 250);
  EXPECT_FALSE(lag_from_leader_stats(leader, "127.0.0.3:1112", &lag));

  // Parsed once, looked up per follower (the sampler's way): the same figures.
  const FollowerLags lags = follower_lags(leader);
  ASSERT_EQ(lags.size(), 2u);
  NodeFigures once;
  ASSERT_TRUE(lag_of(lags, "127.0.0.2:1112", &once));
  EXPECT_EQ(once[Figure::kLagBytes], 512);
  EXPECT_EQ(once[Figure::kLagEvents], 4);
  EXPECT_EQ(once[Figure::kLagMs], 250);
  EXPECT_FALSE(lag_of(lags, "127.0.0.3:1112", &once));
  EXPECT_TRUE(follower_lags("not json").empty());
  EXPECT_TRUE(follower_lags("").empty());
}

TEST(HistoryJson, IsColumnsWithNullForUnknown) {
  MetricsHistory h({"n\"1"});
  h.add(5000, {figures(1, kFigureUnknown)});
  const std::string doc = history_json(h, Resolution::kSecond, 0);
  EXPECT_NE(doc.find(R"("resolution":"1s","intervalMs":1000,"nodes":["n\"1"])"), std::string::npos)
      << doc;
  EXPECT_NE(doc.find(R"("times":[5000])"), std::string::npos) << doc;
  EXPECT_NE(doc.find(R"("eventsWritten":{"n\"1":[1]})"), std::string::npos) << doc;
  EXPECT_NE(doc.find(R"("lagMs":{"n\"1":[null]})"), std::string::npos) << doc;
}

}  // namespace
}  // namespace chorus::manager
