// Proves the storage writer's fail-stop rule (issue 11 defect 1) on a real SQLite database: once
// a batch fails, no later batch is written or reported durable, so a hole can never be hidden
// behind a later durable position; and the log's end is found after a reopen.
#include "worker/engine/storage.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>

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

}  // namespace
}  // namespace chorus
