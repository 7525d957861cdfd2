// Proves the persistent-subscription dispatch core's rules with fake time and no I/O: reading in
// pages then going live, strategies (round robin, dispatch to single, pinned), retries on nak and
// timeout, parking after maxRetryCount, checkpoint cadence (max count, time with min count), the
// subscriber limit, extraStatistics (EventStore's delivery-to-ack time statistics), and what a
// group loaded after a leader change reports about possible redeliveries.
#include "worker/subscriptions/persistent_core.hpp"

#include <gtest/gtest.h>

#include <map>

namespace chorus {
namespace {

using persistent::Action;

PersistentMessage message(int64_t number, const std::string& source = "s") {
  PersistentMessage m;
  m.number = number;
  m.id = random_guid();
  m.source_stream = source;
  auto e = std::make_shared<ResolvedEvent>();
  e->event = EventRecord{};
  e->event->stream = source;
  e->event->number = number;
  e->event->event_id = m.id;
  m.event = e;
  return m;
}

std::vector<PersistentMessage> page(int64_t from, int64_t count, const std::string& s = "s") {
  std::vector<PersistentMessage> out;
  for (int64_t n = from; n < from + count; ++n) out.push_back(message(n, s));
  return out;
}

template <class T>
std::vector<T> only(const std::vector<Action>& actions) {
  std::vector<T> out;
  for (const auto& a : actions) {
    if (const auto* t = std::get_if<T>(&a)) out.push_back(*t);
  }
  return out;
}

PersistentSettings small_settings() {
  PersistentSettings s;
  s.read_batch_size = 5;
  s.buffer_size = 20;
  s.live_buffer_size = 10;
  s.message_timeout_ms = 1000;
  s.max_retry_count = 2;
  s.checkpoint_after_ms = 500;
  s.min_checkpoint_count = 2;
  s.max_checkpoint_count = 10;
  return s;
}

// Feeds reads until the core stops asking (the stream holds `last` + 1 events).
void serve_reads(PersistentCore& core, std::vector<Action>& seen, int64_t last, int64_t now) {
  for (int guard = 0; guard < 1000; ++guard) {
    auto actions = core.take_actions();
    seen.insert(seen.end(), actions.begin(), actions.end());
    auto reads = only<persistent::Read>(actions);
    if (reads.empty()) return;
    const auto& r = reads.front();
    const int64_t count = std::max<int64_t>(0, std::min<int64_t>(r.count, last + 1 - r.from));
    core.on_read(r.from, page(r.from, count), r.from + count, r.from + count > last, now);
  }
  FAIL() << "reads never stopped";
}

TEST(PersistentCore, ReadsHistoryInPagesOfReadBatchSizeWithinBufferSize) {
  PersistentCore core(small_settings(), std::nullopt, 99, 0);
  auto reads = only<persistent::Read>(core.take_actions());
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].from, 0);
  EXPECT_EQ(reads[0].count, 5);
  // No consumer: pages fill the buffer up to bufferSize (20), then reading waits.
  int64_t from = 0;
  for (int i = 0; i < 10; ++i) {
    core.on_read(from, page(from, 5), from + 5, false, 0);
    from += 5;
    if (only<persistent::Read>(core.take_actions()).empty()) break;
  }
  EXPECT_EQ(core.buffered(), 20u);
  EXPECT_EQ(core.state(), GroupState::Behind);
}

TEST(PersistentCore, RoundRobinSplitsAndGoesLive) {
  PersistentCore core(small_settings(), std::nullopt, 3, 0);
  ASSERT_TRUE(core.connect(1, 10, 0));
  ASSERT_TRUE(core.connect(2, 10, 0));
  std::vector<Action> seen;
  serve_reads(core, seen, 3, 0);
  EXPECT_EQ(core.state(), GroupState::Live);
  core.on_live(4, message(4), 0);
  core.on_live(5, message(5), 0);
  auto more = core.take_actions();
  seen.insert(seen.end(), more.begin(), more.end());
  std::map<uint64_t, std::vector<int64_t>> got;
  for (const auto& d : only<persistent::Deliver>(seen)) got[d.consumer].push_back(d.message.number);
  EXPECT_EQ(got[1], (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(got[2], (std::vector<int64_t>{1, 3, 5}));
}

TEST(PersistentCore, DispatchToSingleFillsTheFirstConsumerFirst) {
  std::vector<Action> seen;
  auto settings = small_settings();
  settings.strategy = ConsumerStrategy::DispatchToSingle;
  PersistentCore single(settings, std::nullopt, 5, 0);
  single.connect(1, 4, 0);
  single.connect(2, 10, 0);
  serve_reads(single, seen, 5, 0);
  std::map<uint64_t, int> count;
  for (const auto& d : only<persistent::Deliver>(seen)) count[d.consumer]++;
  EXPECT_EQ(count[1], 4);
  EXPECT_EQ(count[2], 2);
}

TEST(PersistentCore, PinnedKeepsEachSourceStreamOnOneConsumer) {
  auto settings = small_settings();
  settings.strategy = ConsumerStrategy::Pinned;
  PersistentCore core(settings, std::nullopt, -1, 0);
  core.connect(1, 100, 0);
  core.connect(2, 100, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, -1, 0);
  ASSERT_EQ(core.state(), GroupState::Live);
  for (int64_t n = 0; n < 10; ++n) {
    core.on_live(n, message(n, "source-" + std::to_string(n % 4)), 0);
  }
  std::map<std::string, std::set<uint64_t>> owners;
  std::set<uint64_t> used;
  for (const auto& d : only<persistent::Deliver>(core.take_actions())) {
    owners[d.message.source_stream].insert(d.consumer);
    used.insert(d.consumer);
  }
  ASSERT_EQ(owners.size(), 4u);
  for (const auto& [source, consumers] : owners) EXPECT_EQ(consumers.size(), 1u) << source;
}

TEST(PersistentCore, NakRetriesWithCountThenParksAfterMaxRetryCount) {
  PersistentCore core(small_settings(), std::nullopt, 0, 0);
  core.connect(1, 10, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, 0, 0);
  auto first = only<persistent::Deliver>(seen);
  ASSERT_EQ(first.size(), 1u);
  const Guid id = first[0].message.id;
  std::vector<int32_t> retry_counts{first[0].message.retry_count};
  std::vector<persistent::Park> parks;
  for (int i = 0; i < 5 && parks.empty(); ++i) {
    core.nak(1, {id}, NakAction::Retry, "try again", 0);
    auto actions = core.take_actions();
    for (const auto& d : only<persistent::Deliver>(actions)) {
      retry_counts.push_back(d.message.retry_count);
    }
    parks = only<persistent::Park>(actions);
  }
  EXPECT_EQ(retry_counts, (std::vector<int32_t>{0, 1, 2}));
  ASSERT_EQ(parks.size(), 1u);
  EXPECT_EQ(parks[0].message.id, id);
  // Parked messages are done once written: the checkpoint may pass them.
  core.on_parked(parks[0].message);
  EXPECT_EQ(core.last_processed_number(), 0);
}

TEST(PersistentCore, NakParkSkipAndStop) {
  PersistentCore core(small_settings(), std::nullopt, 2, 0);
  core.connect(1, 10, 0);
  core.connect(2, 10, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, 2, 0);
  auto delivered = only<persistent::Deliver>(seen);
  ASSERT_EQ(delivered.size(), 3u);
  core.nak(1, {delivered[0].message.id}, NakAction::Park, "bad", 0);
  EXPECT_EQ(only<persistent::Park>(core.take_actions()).size(), 1u);
  core.nak(2, {delivered[1].message.id}, NakAction::Skip, "", 0);
  EXPECT_TRUE(core.take_actions().empty());
  // Stop: the consumer leaves; what it held goes to the other one.
  core.nak(1, {delivered[2].message.id}, NakAction::Stop, "", 0);
  auto actions = core.take_actions();
  auto drops = only<persistent::Drop>(actions);
  ASSERT_EQ(drops.size(), 1u);
  EXPECT_EQ(drops[0].consumer, 1u);
  auto again = only<persistent::Deliver>(actions);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].consumer, 2u);
  EXPECT_EQ(again[0].message.number, 2);
  EXPECT_EQ(core.consumer_count(), 1u);
}

TEST(PersistentCore, MessageTimeoutRedeliversWithRetryCount) {
  PersistentCore core(small_settings(), std::nullopt, 0, 0);
  core.connect(1, 1, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, 0, 0);
  core.tick(999);
  EXPECT_TRUE(only<persistent::Deliver>(core.take_actions()).empty());
  core.tick(1000);  // messageTimeout (1000 ms) passed
  auto again = only<persistent::Deliver>(core.take_actions());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].message.number, 0);
  EXPECT_EQ(again[0].message.retry_count, 1);
  // The late ack of the first delivery still counts: the message is done once.
  core.ack({again[0].message.id}, 1001);
  EXPECT_EQ(core.in_flight(), 0u);
}

TEST(PersistentCore, DisconnectHandsInFlightMessagesToOthers) {
  PersistentCore core(small_settings(), std::nullopt, 3, 0);
  core.connect(1, 2, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, 3, 0);
  core.connect(2, 10, 0);
  auto to_two = only<persistent::Deliver>(core.take_actions());
  EXPECT_EQ(to_two.size(), 2u);  // 2 and 3
  core.disconnect(1, 0);
  auto moved = only<persistent::Deliver>(core.take_actions());
  ASSERT_EQ(moved.size(), 2u);
  EXPECT_EQ(moved[0].message.number, 0);
  EXPECT_EQ(moved[1].message.number, 1);
  EXPECT_EQ(moved[0].consumer, 2u);
}

TEST(PersistentCore, CheckpointAtMaxCountAndByTimeAfterMinCount) {
  PersistentCore core(small_settings(), std::nullopt, 29, 0);
  core.connect(1, 100, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, 29, 0);
  auto delivered = only<persistent::Deliver>(seen);
  ASSERT_EQ(delivered.size(), 30u);
  // 10 acks (maxCheckPointCount) force a checkpoint of the contiguous prefix.
  std::vector<Guid> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(delivered[static_cast<size_t>(i)].message.id);
  core.ack(ids, 10);
  auto checkpoints = only<persistent::Checkpoint>(core.take_actions());
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].number, 9);
  // One ack: fewer than minCheckPointCount (2), so time alone does not checkpoint.
  core.ack({delivered[10].message.id}, 20);
  core.tick(2000);
  EXPECT_TRUE(only<persistent::Checkpoint>(core.take_actions()).empty());
  // A second ack reaches the minimum; the next tick after checkPointAfter writes it.
  core.ack({delivered[11].message.id}, 2100);
  EXPECT_TRUE(only<persistent::Checkpoint>(core.take_actions()).empty());
  core.tick(2100);
  checkpoints = only<persistent::Checkpoint>(core.take_actions());
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].number, 11);
}

TEST(PersistentCore, CheckpointStopsAtTheLowestUnackedMessage) {
  PersistentCore core(small_settings(), std::nullopt, 19, 0);
  core.connect(1, 100, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, 19, 0);
  auto delivered = only<persistent::Deliver>(seen);
  std::vector<Guid> ids;
  for (size_t i = 0; i < delivered.size(); ++i) {
    if (delivered[i].message.number != 3) ids.push_back(delivered[i].message.id);
  }
  core.ack(ids, 0);
  auto checkpoints = only<persistent::Checkpoint>(core.take_actions());
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].number, 2);
}

TEST(PersistentCore, ResumesAfterTheCheckpointAndStartFromEndIsFixedByACheckpoint) {
  PersistentCore resumed(small_settings(), 41, 50, 0);
  auto reads = only<persistent::Read>(resumed.take_actions());
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].from, 42);

  auto settings = small_settings();
  settings.start_from = -1;
  PersistentCore from_end(settings, std::nullopt, 50, 0);
  auto actions = from_end.take_actions();
  auto checkpoints = only<persistent::Checkpoint>(actions);
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].number, 50);
  EXPECT_EQ(only<persistent::Read>(actions).at(0).from, 51);
}

TEST(PersistentCore, ResumedGroupCountsEventsAfterTheCheckpointThatExistedAtLoadOnce) {
  // Loaded by a new leader: checkpoint 41, the stream ends at 50, so 42..50 (9 events) may have
  // been handed out by the previous leader.
  PersistentCore core(small_settings(), 41, 50, 0);
  core.mark_resumed();
  ASSERT_TRUE(core.resume_stats().has_value());
  EXPECT_EQ(core.resume_stats()->checkpoint, 41);
  EXPECT_EQ(core.resume_stats()->bound, 9);
  EXPECT_EQ(core.resume_stats()->delivered, 0);
  core.connect(1, 4, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, 50, 0);
  EXPECT_EQ(core.resume_stats()->delivered, 4);  // only 4 slots: 42..45 handed out
  // A timeout hands 42..45 out again: a retry on this leader, not counted a second time.
  core.tick(5000);
  EXPECT_EQ(only<persistent::Deliver>(core.take_actions()).size(), 4u);
  EXPECT_EQ(core.resume_stats()->delivered, 4);
  core.disconnect(1, 5000);
  core.connect(2, 100, 5000);
  serve_reads(core, seen, 50, 5000);
  EXPECT_EQ(core.resume_stats()->delivered, 9);
  // Events written after the load are new to every consumer.
  core.on_live(51, message(51), 5000);
  EXPECT_EQ(only<persistent::Deliver>(core.take_actions()).size(), 1u);
  EXPECT_EQ(core.resume_stats()->delivered, 9);
  EXPECT_EQ(core.resume_stats()->bound, 9);

  // Created or updated on this leader: nothing to report.
  PersistentCore created(small_settings(), std::nullopt, 50, 0);
  EXPECT_FALSE(created.resume_stats().has_value());
  // Loaded without a checkpoint: everything from startFrom may have been handed out before.
  PersistentCore unchecked(small_settings(), std::nullopt, 50, 0);
  unchecked.mark_resumed();
  EXPECT_EQ(unchecked.resume_stats()->checkpoint, -1);
  EXPECT_EQ(unchecked.resume_stats()->bound, 51);
  // startFrom -1 without a checkpoint starts after the end: nothing can be delivered again.
  auto settings = small_settings();
  settings.start_from = -1;
  PersistentCore from_end(settings, std::nullopt, 50, 0);
  from_end.mark_resumed();
  EXPECT_EQ(from_end.resume_stats()->checkpoint, 50);
  EXPECT_EQ(from_end.resume_stats()->bound, 0);
}

TEST(PersistentCore, LiveGapOrFullLiveBufferFallsBackToReading) {
  PersistentCore core(small_settings(), std::nullopt, -1, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, -1, 0);
  ASSERT_EQ(core.state(), GroupState::Live);
  core.on_live(1, message(1), 0);  // 0 was missed: read from 0
  EXPECT_EQ(core.state(), GroupState::Behind);
  auto reads = only<persistent::Read>(core.take_actions());
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].from, 0);
  // A read that does not yet see event 1 does not go live: the core reads again.
  core.on_read(0, page(0, 1), 1, true, 0);
  reads = only<persistent::Read>(core.take_actions());
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].from, 1);
  core.on_read(1, page(1, 1), 2, true, 0);
  EXPECT_EQ(core.state(), GroupState::Live);
  // liveBufferSize 10, no consumer, 2 events buffered: the 9th live record goes back to reading.
  for (int64_t n = 2; n < 10; ++n) core.on_live(n, message(n), 0);
  EXPECT_EQ(core.state(), GroupState::Live);
  core.on_live(10, message(10), 0);
  EXPECT_EQ(core.state(), GroupState::Behind);
  // A read that finds nothing new waits for the next tick instead of reading again at once.
  reads = only<persistent::Read>(core.take_actions());
  ASSERT_EQ(reads.size(), 1u);
  core.on_read(reads[0].from, {}, reads[0].from, true, 0);
  EXPECT_TRUE(only<persistent::Read>(core.take_actions()).empty());
  core.tick(100);
  EXPECT_EQ(only<persistent::Read>(core.take_actions()).size(), 1u);
}

TEST(PersistentCore, MaxSubscriberCountRefusesWithTheReason) {
  auto settings = small_settings();
  settings.max_subscriber_count = 1;
  PersistentCore core(settings, std::nullopt, -1, 0);
  EXPECT_TRUE(core.connect(1, 10, 0));
  EXPECT_FALSE(core.connect(2, 10, 0));
  auto drops = only<persistent::Drop>(core.take_actions());
  ASSERT_EQ(drops.size(), 1u);
  EXPECT_EQ(drops[0].consumer, 2u);
  EXPECT_EQ(drops[0].reason, DropReason::SubscriberMaxCountReached);
}

TEST(PersistentCore, ReplayedParkedMessagesAreDeliveredOutsideTheSequence) {
  PersistentCore core(small_settings(), 9, 9, 0);
  core.connect(1, 10, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, 9, 0);
  core.replay({message(3), message(5)}, 0);
  auto delivered = only<persistent::Deliver>(core.take_actions());
  ASSERT_EQ(delivered.size(), 2u);
  EXPECT_TRUE(delivered[0].message.replayed);
  core.ack({delivered[0].message.id, delivered[1].message.id}, 0);
  EXPECT_EQ(core.last_processed_number(), 9);
}

TEST(PersistentCore, ValidationFollowsEventStore) {
  PersistentSettings s;
  EXPECT_FALSE(validate(s));
  s.buffer_size = s.read_batch_size;
  EXPECT_TRUE(validate(s));
  s = PersistentSettings{};
  s.live_buffer_size = 0;
  EXPECT_TRUE(validate(s));
  EXPECT_FALSE(parse_strategy("Nope"));
  EXPECT_EQ(parse_strategy("Pinned"), ConsumerStrategy::Pinned);
}

TEST(PersistentCore, LatencyStatisticsUseEventStoresKeysAndIndexes) {
  EXPECT_TRUE(latency_statistics({}).empty());
  std::vector<int64_t> samples;
  for (int64_t ms = 100; ms >= 1; --ms) samples.push_back(ms);  // 1..100 ms, unsorted
  const std::vector<LatencyMeasurement> expected = {
      {"Mean", 50},       {"Median", 51},     {"Fastest", 1},     {"Quintile 1", 1},
      {"Quintile 2", 21}, {"Quintile 3", 41}, {"Quintile 4", 61}, {"Quintile 5", 81},
      {"90%", 91},        {"95%", 96},        {"99%", 100},       {"99.5%", 100},
      {"99.9%", 100},     {"Highest", 100}};
  EXPECT_EQ(latency_statistics(samples), expected);
  const auto one = latency_statistics({7});
  ASSERT_EQ(one.size(), 14u);
  for (const auto& m : one) EXPECT_EQ(m.value, 7) << m.key;
}

TEST(PersistentCore, ExtraStatisticsMeasureDeliveryToAckPerConsumerOnlyWhenEnabled) {
  for (const bool enabled : {false, true}) {
    PersistentSettings settings = small_settings();
    settings.extra_statistics = enabled;
    PersistentCore core(settings, std::nullopt, 3, 0);
    core.connect(1, 10, 0);
    std::vector<Action> seen;
    serve_reads(core, seen, 3, 0);
    auto delivered = only<persistent::Deliver>(seen);
    ASSERT_EQ(delivered.size(), 4u);
    core.ack({delivered[0].message.id}, 10);                          // 10 ms
    core.ack({delivered[1].message.id}, 30);                          // 30 ms
    core.nak(1, {delivered[2].message.id}, NakAction::Skip, "", 50);  // a nak counts: 50 ms
    core.tick(5'000);  // delivery 3 times out: no answer, no measurement
    EXPECT_TRUE(core.consumers(false)[0].extra_statistics.empty()) << "only computed for detail";
    const auto stats = core.consumers(true);
    ASSERT_EQ(stats.size(), 1u);
    if (!enabled) {
      EXPECT_TRUE(stats[0].extra_statistics.empty());
      continue;
    }
    std::map<std::string, int64_t> by_key;
    for (const auto& m : stats[0].extra_statistics) by_key[m.key] = m.value;
    EXPECT_EQ(by_key.size(), 14u);
    EXPECT_EQ(by_key["Mean"], 30);
    EXPECT_EQ(by_key["Median"], 30);
    EXPECT_EQ(by_key["Fastest"], 10);
    EXPECT_EQ(by_key["Highest"], 50);
  }
}

TEST(PersistentCore, ExtraStatisticsKeepTheLatestWindowOfAnswers) {
  PersistentSettings settings = small_settings();
  settings.extra_statistics = true;
  settings.buffer_size = 2'000;
  settings.read_batch_size = 500;
  settings.max_checkpoint_count = 5'000;
  const auto total = static_cast<int64_t>(kLatencyWindow) + 10;
  PersistentCore core(settings, std::nullopt, total - 1, 0);
  core.connect(1, kPersistentInFlightMax, 0);
  std::vector<Action> seen;
  serve_reads(core, seen, total - 1, 0);
  auto delivered = only<persistent::Deliver>(seen);
  ASSERT_EQ(delivered.size(), static_cast<size_t>(total));
  // The first 10 answers take 1 s each; the window keeps only the latest kLatencyWindow (1 ms).
  for (size_t i = 0; i < delivered.size(); ++i) {
    core.ack({delivered[i].message.id}, i < 10 ? 1'000 : 1);
  }
  const auto stats = core.consumers(true);
  ASSERT_EQ(stats[0].extra_statistics.size(), 14u);
  for (const auto& m : stats[0].extra_statistics) EXPECT_EQ(m.value, 1) << m.key;
}

}  // namespace
}  // namespace chorus
