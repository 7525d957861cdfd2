// SpaceMonitor: how much disk a node's database takes and how much its volume has left. A thread
// of its own reads the volume's free space (statvfs) and the files' sizes every
// kDiskCheckIntervalMs, SQLite's page and freelist counts every kPageCountIntervalMs and the bytes
// of each table and index (the dbstat virtual table, which reads every page) every
// kSpaceBreakdownIntervalMs, on a read-only connection of its own. Below --min-free-disk-bytes it
// raises writes_refused(), which the engine checks before taking a write, so that SQLite never
// meets a full disk; the flag drops again as soon as space returns.
// Threading: start()/stop() by the owner; writes_refused() and report() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace chorus {

// Limits (one place, with their reasons).
// The volume is checked this often: writes stop within this long of the threshold being
// crossed. statvfs is a cheap system call.
inline constexpr int kDiskCheckIntervalMs = 250;
// SQLite's page_count and freelist_count are two cheap pragmas.
inline constexpr int kPageCountIntervalMs = 5000;
// dbstat reads every page of the file (and holds a read snapshot meanwhile, so the WAL cannot be
// checkpointed past it): once a minute keeps that cost small next to the node's own work.
inline constexpr int64_t kSpaceBreakdownIntervalMs = 60'000;

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
  void sample_disk();
  void sample_pages();
  void sample_breakdown();

  const std::string db_folder_;
  const std::string db_file_;
  const bool in_memory_;
  const int64_t min_free_disk_bytes_;
  std::atomic<bool> refused_{false};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mutex_)
  SpaceReport report_;     // GUARDED_BY(mutex_)
  std::thread thread_;
};

}  // namespace chorus
