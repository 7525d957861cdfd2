// Proves the storage writer's fail-stop rule (issue 11 defect 1) on a real SQLite database: once
// a batch fails, no later batch is written or reported durable, so a hole can never be hidden
// behind a later durable position; and the log's end is found after a reopen.
#include "worker/engine/storage.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>

namespace chorus {
namespace {

EventRecord record(const std::string& stream, int64_t number, int64_t position) {
  EventRecord r;
  r.stream = stream;
  r.number = number;
  r.event_id = random_guid();
  r.event_type = "t";
  r.data = "{}";
  r.position = Position{position + 10, position};
  r.log_end = position + 10;
  return r;
}

class Notices {
 public:
  void durable(int64_t end) {
    std::lock_guard lock(mutex_);
    durable_end_ = std::max(durable_end_, end);
    changed_.notify_all();
  }
  void failed(const std::string& message) {
    std::lock_guard lock(mutex_);
    failure_ = message;
    changed_.notify_all();
  }
  // Wait (with a deadline) until everything below `end` is durable, or until a failure.
  bool wait_durable(int64_t end) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return durable_end_ >= end; });
  }
  bool wait_failed() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return !failure_.empty(); });
  }
  int64_t durable_end() {
    std::lock_guard lock(mutex_);
    return durable_end_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t durable_end_ = 0;
  std::string failure_;
};

LogBatch batch_of(EventRecord r) {
  LogBatch b;
  b.entries.push_back(std::move(r));
  return b;
}

TEST(StorageWriter, AFailedBatchStopsEveryLaterOne) {
  Database db(StorageLocation{"", true});
  Notices notices;
  StorageWriter writer(
      db, [&](int64_t end, uint64_t, const FlushStats&) { notices.durable(end); },
      [&](const std::string& m) { notices.failed(m); });
  ASSERT_TRUE(writer.submit(batch_of(record("s", 0, 0))));
  ASSERT_TRUE(notices.wait_durable(10));
  // The same (stream, number) again violates the stream index: the write fails.
  ASSERT_TRUE(writer.submit(batch_of(record("s", 0, 10))));
  ASSERT_TRUE(notices.wait_failed());
  // Nothing after the failure is taken or reported durable.
  EXPECT_FALSE(writer.submit(batch_of(record("s", 1, 20))));
  writer.stop();
  EXPECT_EQ(notices.durable_end(), 10);
}

TEST(StorageWriter, LogEndIsFoundAfterReopen) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-storage-" + to_string(random_guid()));
  {
    Database db(StorageLocation{dir.string(), false});
    Notices notices;
    StorageWriter writer(
        db, [&](int64_t end, uint64_t, const FlushStats&) { notices.durable(end); },
        [&](const std::string& m) { notices.failed(m); });
    LogBatch b;
    for (int i = 0; i < 100; ++i) b.entries.push_back(record("s", i, i * 10));
    ASSERT_TRUE(writer.submit(std::move(b)));
    ASSERT_TRUE(notices.wait_durable(1000));
    writer.stop();
  }
  {
    Database db(StorageLocation{dir.string(), false});
    ReadConnection c(db);
    EXPECT_EQ(c.log_end(), 1000);
  }
  std::filesystem::remove_all(dir);
}

// The writer's connection gathers its WAL writes into one write per commit (storage_vfs.hpp):
// every commit must still be in the file, for other connections, once it is reported durable;
// so must the frames of a transaction too large to gather (and to cache) in one piece, and those
// of a maintenance transaction; and the file must be whole after a reopen.
TEST(StorageWriter, OnDiskEveryDurableCommitIsReadableAtOnceByAnotherConnection) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-storage-" + to_string(random_guid()));
  {
    Database db(StorageLocation{dir.string(), false});
    ReadConnection reader(db);
    Notices notices;
    StorageWriter writer(
        db, [&](int64_t end, uint64_t, const FlushStats&) { notices.durable(end); },
        [&](const std::string& m) { notices.failed(m); });
    int64_t position = 0;
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(writer.submit(batch_of(record("s" + std::to_string(i % 7), i / 7, position))));
      position += 10;
      ASSERT_TRUE(notices.wait_durable(position));
      const auto last = reader.last_record("s" + std::to_string(i % 7), position);
      ASSERT_TRUE(last.has_value()) << i;
      EXPECT_EQ(last->number, i / 7);
    }
    // 12 MiB in one transaction: more than the writer gathers at once and than its page cache
    // holds, so SQLite writes frames before the commit and reads some back.
    LogBatch big;
    const std::string data(4096, 'd');
    for (int i = 0; i < 3000; ++i) {
      auto r = record("big", i, position);
      r.data = data + std::to_string(i);
      r.log_end = r.position.commit = position += 5000;
      big.entries.push_back(std::move(r));
    }
    ASSERT_TRUE(writer.submit(std::move(big)));
    ASSERT_TRUE(notices.wait_durable(position));
    const auto read = reader.range("big", 0, 2999, true, position, 4096);
    ASSERT_EQ(read.size(), 3000u);
    EXPECT_EQ(read[2999].data, data + "2999");
    // A maintenance transaction (a deletion), then a checkpoint.
    std::mutex m;
    std::condition_variable cv;
    std::optional<MaintenanceResult> result;
    MaintenanceJob job;
    job.remove_positions = {0};
    job.checkpoint = true;
    job.done = [&](const MaintenanceResult& r) {
      std::lock_guard lock(m);
      result = r;
      cv.notify_all();
    };
    ASSERT_TRUE(writer.submit(std::move(job)));
    {
      std::unique_lock lock(m);
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return result.has_value(); }));
    }
    EXPECT_TRUE(result->ok) << result->error;
    EXPECT_EQ(result->removed, 1);
    EXPECT_FALSE(reader.record("s0", 0, position).has_value());
    EXPECT_TRUE(reader.record("s1", 0, position).has_value());
    writer.stop();
  }
  {
    Database db(StorageLocation{dir.string(), false});
    ReadConnection c(db);
    EXPECT_EQ(c.log_end(), 3000 + 3000 * 5000);
    EXPECT_EQ(c.range("big", 0, 2999, true, c.log_end(), 4096).size(), 3000u);
    EXPECT_EQ(c.range("s6", 0, 100, true, c.log_end(), 4096).size(), 42u);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chorus
