// Goal: prove the space monitor's check interval keeps its guarantee (issue 16): near or below
// --min-free-disk-bytes the volume is read every kDiskCheckIntervalMs as before, far above it less
// often but never later than the headroom lasts at kDiskFillBytesPerSecondMax, and never more
// than kDiskCheckIntervalMaxMs apart; and that the page counts, which an idle node no longer
// samples while its files are unchanged, still follow a write within a sampling interval.
#include "worker/engine/space_monitor.hpp"

#include "common/guid.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace chorus {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

TEST(DiskCheckInterval, NearOrBelowTheThresholdAsOften) {
  const int64_t min_free = 64 * kMiB;
  EXPECT_EQ(disk_check_interval_ms(0, min_free), kDiskCheckIntervalMs);  // unreadable or full
  EXPECT_EQ(disk_check_interval_ms(min_free - 1, min_free), kDiskCheckIntervalMs);
  EXPECT_EQ(disk_check_interval_ms(min_free, min_free), kDiskCheckIntervalMs);
  EXPECT_EQ(disk_check_interval_ms(min_free + 200 * kMiB, min_free), kDiskCheckIntervalMs);
}

TEST(DiskCheckInterval, FarAboveNoLaterThanTheHeadroomLasts) {
  const int64_t min_free = 64 * kMiB;
  for (const int64_t headroom : {kGiB / 2, kGiB, 2 * kGiB, 4 * kGiB, 100 * kGiB}) {
    const int ms = disk_check_interval_ms(min_free + headroom, min_free);
    EXPECT_GE(ms, kDiskCheckIntervalMs);
    EXPECT_LE(ms, kDiskCheckIntervalMaxMs);
    // At the assumed fill rate, the headroom is not used up before the next check.
    EXPECT_LE(kDiskFillBytesPerSecondMax / 1000 * ms, headroom) << headroom;
  }
  EXPECT_EQ(disk_check_interval_ms(min_free + 100 * kGiB, min_free), kDiskCheckIntervalMaxMs);
  EXPECT_GT(disk_check_interval_ms(min_free + kGiB, min_free), kDiskCheckIntervalMs);
}

TEST(DiskCheckInterval, NoThresholdOnlyFeedsTheFigures) {
  EXPECT_EQ(disk_check_interval_ms(0, 0), kDiskCheckIntervalMaxMs);
  EXPECT_EQ(disk_check_interval_ms(10 * kGiB, 0), kDiskCheckIntervalMaxMs);
}

void exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "") << " in " << sql;
}

TEST(SpaceMonitor, PageCountsFollowAWriteToAnIdleDatabase) {
  namespace fs = std::filesystem;
  const fs::path folder = fs::temp_directory_path() / ("chorus-space-" + to_string(random_guid()));
  fs::create_directories(folder);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((folder / "chorus.db").c_str(), &db), SQLITE_OK);
  exec(db, "PRAGMA journal_mode=WAL");
  exec(db, "CREATE TABLE t(x BLOB)");
  {
    SpaceMonitor monitor(folder.string(), false, 0);
    monitor.start();
    const int64_t pages_before = monitor.report().page_count;
    ASSERT_GT(pages_before, 0);
    exec(db,
         "INSERT INTO t SELECT zeroblob(4000) FROM (WITH RECURSIVE c(n) AS (SELECT 1 UNION "
         "ALL SELECT n + 1 FROM c WHERE n < 64) SELECT n FROM c)");
    // The write is in the WAL only (no checkpoint yet): seen at the next sample.
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(2 * kPageCountIntervalMs + 1000);
    while (monitor.report().page_count <= pages_before &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_GT(monitor.report().page_count, pages_before + 60);
    monitor.stop();
  }
  sqlite3_close(db);
  fs::remove_all(folder);
}

}  // namespace
}  // namespace chorus
