// Goal: prove the space monitor's check interval keeps its guarantee (issue 16): near or below
// --min-free-disk-bytes the volume is read every kDiskCheckIntervalMs as before, far above it less
// often but never later than the headroom lasts at kDiskFillBytesPerSecondMax, and never more
// than kDiskCheckIntervalMaxMs apart.
#include "worker/engine/space_monitor.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace chorus
