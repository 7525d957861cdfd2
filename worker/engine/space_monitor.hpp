// SpaceMonitor: how much disk a node's database takes and how much its volume has left. A thread
// of its own reads the volume's free space (statvfs) and the files' sizes every
// kDiskCheckIntervalMs while the free space is within reach of --min-free-disk-bytes, and less
// often (up to kDiskCheckIntervalMaxMs) the farther above it it is (disk_check_interval_ms),
// SQLite's page and freelist counts every kPageCountIntervalMs and the bytes
// of each table and index (the dbstat virtual table, which reads every page) every
// kSpaceBreakdownIntervalMs, on a read-only connection of its own. Below --min-free-disk-bytes it
// raises writes_refused(), which the engine checks before taking a write, so that SQLite never
// meets a full disk; the flag drops again as soon as space returns.
// Threading: start()/stop() by the owner; writes_refused() and report() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace chorus {

// Limits (one place, with their reasons).
// The volume is checked this often while its free space is near --min-free-disk-bytes (or below):
// writes stop within this long of the threshold being crossed, and start again within this long
// of space returning. statvfs is a cheap system call; the wake-up around it is what costs an idle
// node (issue 16).
inline constexpr int kDiskCheckIntervalMs = 250;
// The fastest a volume is taken to fill (by this node and anything else on it): far above what a
// node's fsynced writes reach. The next check comes before the headroom above the threshold could
// be used up at this rate, so the guarantee above holds for any volume filling at most this fast.
inline constexpr int64_t kDiskFillBytesPerSecondMax = int64_t{1} << 30;  // 1 GiB/s
// ...and at most this long apart, however much space is free (the figures in /stats stay fresh).
inline constexpr int kDiskCheckIntervalMaxMs = 5000;
// SQLite's page_count and freelist_count are two cheap pragmas, but each sample opens a connection
// (files, locks, the WAL index): a sample is skipped while the database and WAL files keep their
// size and modification time, at most until kPageCountRefreshMaxMs have passed (issue 16).
inline constexpr int kPageCountIntervalMs = 5000;
inline constexpr int kPageCountRefreshMaxMs = 60'000;
// dbstat reads every page of the file (and holds a read snapshot meanwhile, so the WAL cannot be
// checkpointed past it): once a minute keeps that cost small next to the node's own work.
inline constexpr int64_t kSpaceBreakdownIntervalMs = 60'000;

// The wait before the next check of a volume with `free_bytes` available: kDiskCheckIntervalMs
// within kDiskFillBytesPerSecondMax x kDiskCheckIntervalMs of the threshold (or below it), the
// time the headroom lasts at that rate above it, at most kDiskCheckIntervalMaxMs (also when
// min_free_disk_bytes is 0: the check then only feeds the figures).
int disk_check_interval_ms(int64_t free_bytes, int64_t min_free_disk_bytes);

struct SpaceReport {
  bool in_memory = false;
  int64_t database_bytes = 0;  // chorus.db plus its -wal and -shm files
  int64_t wal_bytes = 0;       // chorus.db-wal alone
  int64_t page_size = 0;
  int64_t page_count = 0;
  // Free pages inside the file: space SQLite reuses before growing the file, and what a vacuum
  // (or a scavenge's incremental vacuum) would give back to the file system.
  int64_t reclaimable_bytes = 0;
  // From dbstat: pages of the log's tables (events, epochs, log*), of every index, and of the
  // other tables (users' state, schema, hard state). Zero until the first breakdown.
  int64_t log_bytes = 0;
  int64_t index_bytes = 0;
  int64_t other_bytes = 0;
  std::map<std::string, int64_t> table_bytes;  // by table or index name
  bool breakdown_known = false;
  int64_t breakdown_unix_ms = 0;  // when the breakdown was taken
  int64_t disk_free_bytes = 0;    // available to this (unprivileged) process
  int64_t disk_total_bytes = 0;
  int64_t min_free_disk_bytes = 0;
  bool writes_refused = false;
};

class SpaceMonitor {
 public:
  // min_free_disk_bytes 0 never refuses. An in-memory node reports nothing and never refuses.
  SpaceMonitor(std::string db_folder, bool in_memory, int64_t min_free_disk_bytes);
  ~SpaceMonitor();
  SpaceMonitor(const SpaceMonitor&) = delete;
  SpaceMonitor& operator=(const SpaceMonitor&) = delete;

  // Takes a first sample (so a node that starts on a full disk refuses its first write), then
  // starts the thread. Call after the database exists.
  void start();
  void stop();

  bool writes_refused() const { return refused_.load(std::memory_order_relaxed); }
  SpaceReport report() const;
  // The refusal's text for clients and logs ("" while writes are accepted).
  std::string refusal_message() const;

 private:
  void run();
  int64_t sample_disk();  // the volume's free bytes
  // Samples the page counts, unless the files are as at the last sample and it is recent.
  void sample_pages();
  void sample_breakdown();

  // Size and modification time of the database file and its WAL: any write changes one of them.
  struct FilesStamp {
    int64_t db_size = -1, db_mtime_ns = -1, wal_size = -1, wal_mtime_ns = -1;
    bool operator==(const FilesStamp&) const = default;
  };
  FilesStamp files_stamp() const;

  const std::string db_folder_;
  const std::string db_file_;
  const bool in_memory_;
  const int64_t min_free_disk_bytes_;
  std::atomic<bool> refused_{false};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  SpaceReport report_;     // GUARDED_BY(mutex_)
  // The space thread's (start() takes the first sample before the thread runs).
  FilesStamp pages_stamp_;
  std::chrono::steady_clock::time_point pages_sampled_at_{};
  std::thread thread_;
};

}  // namespace chorus
