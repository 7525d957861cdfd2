// Disk use and free space of a node (see space_monitor.hpp).
#include "worker/engine/space_monitor.hpp"

#include "common/thread_name.hpp"
#include "worker/engine/storage_vfs.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

namespace chorus {
namespace {

namespace fs = std::filesystem;

constexpr int kBusyTimeoutMs = 1000;

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t file_bytes(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

// A query-only connection to the node's file, or null.
sqlite3* open_reader(const std::string& file) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      kDatabaseVfs) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA query_only=1", nullptr, nullptr, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  return db;
}

int64_t scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  int64_t v = 0;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
    v = sqlite3_column_int64(s, 0);
  }
  sqlite3_finalize(s);
  return v;
}

bool is_log_table(const std::string& name) {
  return name == "events" || name == "epochs" || name.rfind("log", 0) == 0;
}

}  // namespace

int disk_check_interval_ms(int64_t free_bytes, int64_t min_free_disk_bytes) {
  if (min_free_disk_bytes <= 0) return kDiskCheckIntervalMaxMs;
  const int64_t headroom = free_bytes - min_free_disk_bytes;
  if (headroom <= 0) return kDiskCheckIntervalMs;
  const int64_t lasts_ms = headroom / (kDiskFillBytesPerSecondMax / 1000);
  return static_cast<int>(
      std::clamp<int64_t>(lasts_ms, kDiskCheckIntervalMs, kDiskCheckIntervalMaxMs));
}

SpaceMonitor::SpaceMonitor(std::string db_folder, bool in_memory, int64_t min_free_disk_bytes)
    : db_folder_(std::move(db_folder)),
      db_file_((fs::path(db_folder_) / "chorus.db").string()),
      in_memory_(in_memory),
      min_free_disk_bytes_(in_memory ? 0 : min_free_disk_bytes) {
  report_.in_memory = in_memory_;
  report_.min_free_disk_bytes = min_free_disk_bytes_;
}

SpaceMonitor::~SpaceMonitor() { stop(); }

void SpaceMonitor::start() {
  if (in_memory_) return;
  sample_disk();
  sample_pages();
  thread_ = std::thread([this] {
    set_thread_name("space");
    run();
  });
}

void SpaceMonitor::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SpaceReport SpaceMonitor::report() const {
  std::lock_guard lock(mutex_);
  return report_;
}

std::string SpaceMonitor::refusal_message() const {
  if (!writes_refused()) return "";
  const SpaceReport r = report();
  return "Not enough free disk space: " + std::to_string(r.disk_free_bytes) +
         " bytes free on the data volume, below --min-free-disk-bytes " +
         std::to_string(r.min_free_disk_bytes) + "; writes resume when space is freed.";
}

// Sleeps until the earliest of the three samples is due (or stop()). The next times count from
// the moment of the wake, not from the end of each sample: the disk check and the page counts,
// both every 5 s on a volume with room, then stay due together and take one wake-up of this
// thread instead of two a few milliseconds apart (issue 16: on an idle node the wake-up is the
// cost).
void SpaceMonitor::run() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto after = [](Clock::time_point from, int64_t ms) {
    return from + std::chrono::milliseconds(ms);
  };
  Clock::time_point next_disk =
      after(start, disk_check_interval_ms(report().disk_free_bytes, min_free_disk_bytes_));
  Clock::time_point next_pages = after(start, kPageCountIntervalMs);
  // The first breakdown soon after start, when the node's own start-up reads are done.
  Clock::time_point next_breakdown = after(start, 1000);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_until(lock, std::min({next_disk, next_pages, next_breakdown}),
                     [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    const auto now = Clock::now();
    if (now >= next_disk) {
      next_disk = after(now, disk_check_interval_ms(sample_disk(), min_free_disk_bytes_));
    }
    if (now >= next_pages) {
      sample_pages();
      next_pages = after(now, kPageCountIntervalMs);
    }
    if (now >= next_breakdown) {
      sample_breakdown();
      next_breakdown = after(now, kSpaceBreakdownIntervalMs);
    }
    lock.lock();
  }
}

int64_t SpaceMonitor::sample_disk() {
  struct statvfs volume {};
  const bool known = ::statvfs(db_folder_.c_str(), &volume) == 0;
  const int64_t free_bytes =
      known ? static_cast<int64_t>(volume.f_bavail) * static_cast<int64_t>(volume.f_frsize) : 0;
  const int64_t total_bytes =
      known ? static_cast<int64_t>(volume.f_blocks) * static_cast<int64_t>(volume.f_frsize) : 0;
  const int64_t wal = file_bytes(db_file_ + "-wal");
  const int64_t database = file_bytes(db_file_) + wal + file_bytes(db_file_ + "-shm");
  // An unreadable volume is not taken for a full one: the writes themselves will tell.
  const bool refuse = known && min_free_disk_bytes_ > 0 && free_bytes < min_free_disk_bytes_;
  {
    std::lock_guard lock(mutex_);
    report_.disk_free_bytes = free_bytes;
    report_.disk_total_bytes = total_bytes;
    report_.wal_bytes = wal;
    report_.database_bytes = database;
    report_.writes_refused = refuse;
  }
  if (refused_.exchange(refuse) != refuse) {
    std::cerr << "chorus-worker: "
              << (refuse ? "refusing writes: " + std::to_string(free_bytes) +
                               " bytes free on the data volume, below --min-free-disk-bytes " +
                               std::to_string(min_free_disk_bytes_)
                         : "accepting writes again: " + std::to_string(free_bytes) +
                               " bytes free on the data volume")
              << std::endl;
  }
  return free_bytes;
}

SpaceMonitor::FilesStamp SpaceMonitor::files_stamp() const {
  FilesStamp stamp;
  const auto read = [](const std::string& path, int64_t& size, int64_t& mtime_ns) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;
    size = static_cast<int64_t>(st.st_size);
    mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  };
  read(db_file_, stamp.db_size, stamp.db_mtime_ns);
  read(db_file_ + "-wal", stamp.wal_size, stamp.wal_mtime_ns);
  return stamp;
}

void SpaceMonitor::sample_pages() {
  // An idle node's counts do not change: no connection is opened for them. A write (or a
  // checkpoint) changes the WAL's or the database file's modification time, and a sample at
  // least every kPageCountRefreshMaxMs bounds what a write within the file system's timestamp
  // granularity could leave unseen.
  const auto now = std::chrono::steady_clock::now();
  const FilesStamp stamp = files_stamp();
  if (stamp == pages_stamp_ &&
      now - pages_sampled_at_ < std::chrono::milliseconds(kPageCountRefreshMaxMs)) {
    return;
  }
  sqlite3* db = open_reader(db_file_);
  if (!db) return;
  const int64_t page_size = scalar(db, "PRAGMA page_size");
  const int64_t pages = scalar(db, "PRAGMA page_count");
  const int64_t free_pages = scalar(db, "PRAGMA freelist_count");
  sqlite3_close(db);
  pages_stamp_ = stamp;
  pages_sampled_at_ = now;
  std::lock_guard lock(mutex_);
  report_.page_size = page_size;
  report_.page_count = pages;
  report_.reclaimable_bytes = free_pages * page_size;
}

void SpaceMonitor::sample_breakdown() {
  sqlite3* db = open_reader(db_file_);
  if (!db) return;
  sqlite3_stmt* s = nullptr;
  // One row per table or index (aggregate mode), with its kind from the schema.
  const char* sql =
      "SELECT d.name, COALESCE(s.type, 'table'), d.pgsize FROM dbstat('main', 1) d "
      "LEFT JOIN sqlite_schema s ON s.name = d.name";
  std::map<std::string, int64_t> tables;
  int64_t log = 0;
  int64_t index = 0;
  int64_t other = 0;
  bool ok = sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK;
  while (ok && sqlite3_step(s) == SQLITE_ROW) {
    const auto* name = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    const auto* type = reinterpret_cast<const char*>(sqlite3_column_text(s, 1));
    const int64_t bytes = sqlite3_column_int64(s, 2);
    const std::string table = name ? name : "";
    tables[table] += bytes;
    // stream_index is a table that the storage writer fills in bulk, but it is an index.
    if ((type && std::string(type) == "index") || table == "stream_index") {
      index += bytes;
    } else if (is_log_table(table)) {
      log += bytes;
    } else {
      other += bytes;
    }
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  if (!ok) return;  // SQLite built without dbstat: the page counts alone are reported
  std::lock_guard lock(mutex_);
  report_.log_bytes = log;
  report_.index_bytes = index;
  report_.other_bytes = other;
  report_.table_bytes = std::move(tables);
  report_.breakdown_known = true;
  report_.breakdown_unix_ms = now_unix_ms();
}

}  // namespace chorus
