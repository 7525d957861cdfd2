#include "worker/engine/recent_ids.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace chorus {
namespace {

Guid id_of(uint64_t n) {
  Guid g{};
  for (int i = 0; i < 8; ++i) g.data[i] = static_cast<uint8_t>(n >> (8 * i));
  return g;
}

TEST(RecentIds, FindsAnIdOnlyInItsOwnStream) {
  RecentIds ids;
  ids.add(id_of(1), "orders-1", 0, 100, 164);
  ids.add(id_of(2), "a-stream-name-longer-than-fifteen-bytes", 7, 164, 300);
  const auto* hit = ids.find(id_of(1), "orders-1");
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->number, 0);
  EXPECT_EQ(hit->position, 100);
  EXPECT_EQ(hit->end, 164);
  EXPECT_EQ(ids.find(id_of(1), "orders-2"), nullptr);
  EXPECT_EQ(ids.find(id_of(3), "orders-1"), nullptr);
  ASSERT_NE(ids.find(id_of(2), "a-stream-name-longer-than-fifteen-bytes"), nullptr);
  EXPECT_EQ(ids.find(id_of(2), "a-stream-name-longer-than-fifteen-bytes")->number, 7);
}

TEST(RecentIds, ForgetsTheOldestBeyondItsBytes) {
  const std::string stream = "s-123456";  // 8 bytes
  const size_t per_id = RecentIds::kSlotCost + stream.size();
  RecentIds ids(100 * per_id);
  for (uint64_t i = 0; i < 1000; ++i) {
    ids.add(id_of(i), stream, static_cast<int64_t>(i), static_cast<int64_t>(i) * 10,
            static_cast<int64_t>(i) * 10 + 10);
    ASSERT_LE(ids.bytes(), 100 * per_id);
  }
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_EQ(ids.find(id_of(899), stream), nullptr);
  for (uint64_t i = 900; i < 1000; ++i) {
    const auto* hit = ids.find(id_of(i), stream);
    ASSERT_NE(hit, nullptr) << i;
    EXPECT_EQ(hit->number, static_cast<int64_t>(i));
  }
}

TEST(RecentIds, TruncationForgetsTheSuffixAndAnIdNamesItsNewestRecord) {
  RecentIds ids;
  ids.add(id_of(1), "a", 0, 0, 10);
  ids.add(id_of(2), "a", 1, 10, 20);
  ids.add(id_of(3), "b", 0, 20, 30);
  ids.truncate(10);
  EXPECT_NE(ids.find(id_of(1), "a"), nullptr);
  EXPECT_EQ(ids.find(id_of(2), "a"), nullptr);
  EXPECT_EQ(ids.find(id_of(3), "b"), nullptr);
  EXPECT_EQ(ids.size(), 1u);
  // The log goes on after the truncation point; the same id written again (another stream)
  // is found where it was written last.
  ids.add(id_of(2), "c", 0, 10, 20);
  ids.add(id_of(1), "d", 0, 20, 30);
  EXPECT_EQ(ids.find(id_of(1), "a"), nullptr);
  ASSERT_NE(ids.find(id_of(1), "d"), nullptr);
  ASSERT_NE(ids.find(id_of(2), "c"), nullptr);
  ids.truncate(0);
  EXPECT_EQ(ids.size(), 0u);
  EXPECT_EQ(ids.bytes(), 0u);
  EXPECT_EQ(ids.find(id_of(2), "c"), nullptr);
}

// Random adds, truncations and lookups against a plain map of the same rule.
TEST(RecentIds, AgreesWithASimpleModel) {
  std::mt19937_64 rng(42);
  const size_t bytes_max = 3000 * (RecentIds::kSlotCost + 12);
  RecentIds ids(bytes_max);
  struct Rec {
    uint64_t id;
    std::string stream;
    int64_t number, position, end;
  };
  std::deque<Rec> log;  // what the model remembers, oldest first
  size_t model_bytes = 0;
  int64_t position = 0;
  for (int step = 0; step < 100'000; ++step) {
    const int op = static_cast<int>(rng() % 100);
    if (op < 70) {
      const uint64_t id = rng() % 20'000;  // ids repeat now and then
      std::string stream = "stream-" + std::to_string(rng() % 50);
      if (rng() % 10 == 0) stream += std::string(40, 'x');
      const int64_t end = position + 64 + static_cast<int64_t>(rng() % 100);
      // The model: forget the oldest until the new id fits.
      while (!log.empty() && model_bytes + RecentIds::kSlotCost + stream.size() > bytes_max) {
        model_bytes -= RecentIds::kSlotCost + log.front().stream.size();
        log.pop_front();
      }
      model_bytes += RecentIds::kSlotCost + stream.size();
      log.push_back({id, stream, step, position, end});
      ids.add(id_of(id), stream, step, position, end);
      position = end;
    } else if (op < 72 && !log.empty()) {
      const size_t keep = log.size() - std::min<size_t>(log.size(), rng() % 50);
      position = keep < log.size() ? log[keep].position : position;
      ids.truncate(position);
      // The model forgets the suffix; an id that named a truncated record is forgotten even if
      // an older record of it remains (as the map this replaced did).
      std::vector<uint64_t> gone;
      for (size_t i = keep; i < log.size(); ++i) gone.push_back(log[i].id);
      while (log.size() > keep) {
        model_bytes -= RecentIds::kSlotCost + log.back().stream.size();
        log.pop_back();
      }
      for (auto& r : log) {
        if (std::find(gone.begin(), gone.end(), r.id) != gone.end()) r.id = UINT64_MAX;
      }
    } else {
      const uint64_t id = rng() % 20'000;
      const Rec* newest = nullptr;
      for (auto it = log.rbegin(); it != log.rend(); ++it) {
        if (it->id == id) {
          newest = &*it;
          break;
        }
      }
      const std::string stream = newest ? newest->stream : "stream-1";
      const auto* hit = ids.find(id_of(id), stream);
      if (newest == nullptr) {
        ASSERT_EQ(hit, nullptr) << "step " << step;
      } else {
        ASSERT_NE(hit, nullptr) << "step " << step;
        EXPECT_EQ(hit->number, newest->number);
        EXPECT_EQ(hit->position, newest->position);
        EXPECT_EQ(hit->end, newest->end);
      }
    }
    ASSERT_EQ(ids.size(), log.size());
    ASSERT_EQ(ids.bytes(), model_bytes);
  }
}

}  // namespace
}  // namespace chorus
