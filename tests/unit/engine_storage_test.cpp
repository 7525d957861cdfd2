// Proves the storage writer's fail-stop rule (issue 11 defect 1) on a real SQLite database: once
// a batch fails, no later batch is written or reported durable, so a hole can never be hidden
// behind a later durable position; and the log's end is found after a reopen. And the stream
// index written in bulk (stream_tail.hpp): every read sees every event whether its entry is in
// the table or still in memory, across bulk inserts, restarts, truncations and scavenges.
#include "worker/engine/storage.hpp"

#include "worker/engine/schema.hpp"

#include "tests/unit/event_record_checks.hpp"
#include "tests/unit/sqlite_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

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
    last_end_ = end;
    changed_.notify_all();
  }
  // Wait (with a deadline) until the latest transaction's end is `end` (after a truncation the
  // log's end goes down).
  bool wait_last_end(int64_t end) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return last_end_ == end; });
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
  bool wait_failed() { return wait_failed_for(std::chrono::seconds(10)); }
  bool wait_failed_for(std::chrono::milliseconds deadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, deadline, [&] { return !failure_.empty(); });
  }
  int64_t durable_end() {
    std::lock_guard lock(mutex_);
    return durable_end_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t durable_end_ = 0;
  int64_t last_end_ = 0;
  std::string failure_;
};

// A storage writer on a database, its notices recorded.
struct Writing {
  explicit Writing(const StorageLocation& where)
      : db(where),
        writer(
            db, [this](int64_t end, uint64_t, const FlushStats&) { notices.durable(end); },
            [this](const std::string& m) { notices.failed(m); }) {}
  Database db;
  Notices notices;
  StorageWriter writer;
};

LogBatch batch_of(EventRecord r) {
  LogBatch b;
  b.entries.push_back(std::move(r));
  return b;
}

TEST(StorageWriter, AFailedBatchStopsEveryLaterOne) {
  Writing w(StorageLocation{"", true});
  auto& [db, notices, writer] = w;
  ASSERT_TRUE(writer.submit(batch_of(record("s", 0, 0))));
  ASSERT_TRUE(notices.wait_durable(10));
  // The same position again violates the events' primary key: the write fails.
  ASSERT_TRUE(writer.submit(batch_of(record("s", 1, 0))));
  ASSERT_TRUE(notices.wait_failed());
  // Nothing after the failure is taken or reported durable.
  EXPECT_FALSE(writer.submit(batch_of(record("s", 1, 20))));
  writer.stop();
  EXPECT_EQ(notices.durable_end(), 10);
}

// A follower's core thread writes the leader's entries itself when the writer's thread is idle
// (StorageWriter::write_queued_here): the transaction, its ack callback and its durable notice
// run on the calling thread, and the batch is durable when the call returns.
TEST(StorageWriter, AnIdleWritersQueueIsWrittenOnTheCallingThread) {
  Writing w(StorageLocation{"", true});
  auto& [db, notices, writer] = w;
  std::atomic<bool> acked_here{false};
  auto b = batch_of(record("s", 0, 0));
  const auto caller = std::this_thread::get_id();
  b.on_written = [&](int64_t end) {
    acked_here = end == 10 && std::this_thread::get_id() == caller;
  };
  ASSERT_TRUE(writer.submit(std::move(b), /*wake=*/false));
  ASSERT_TRUE(writer.write_queued_here());
  EXPECT_TRUE(acked_here);
  EXPECT_EQ(notices.durable_end(), 10) << "durable before write_queued_here returned";
  EXPECT_FALSE(writer.write_queued_here()) << "nothing left to write";
  writer.stop();
}

// While the writer's thread is busy (here: a maintenance job it runs) the caller writes nothing:
// the thread, woken, writes the batch after its job, in order. A batch queued without a wake-up
// and never written by its caller is still written before stop() returns.
TEST(StorageWriter, ABusyWritersQueueIsLeftToItsThreadAndStopWritesWhatIsLeft) {
  Writing w(StorageLocation{"", true});
  auto& [db, notices, writer] = w;
  std::promise<void> release;
  std::promise<void> job_running;
  MaintenanceJob job;
  job.done = [&](const MaintenanceResult&) {
    job_running.set_value();
    release.get_future().wait();
  };
  ASSERT_TRUE(writer.submit(std::move(job)));
  ASSERT_EQ(job_running.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::thread::id wrote_on;
  auto b = batch_of(record("s", 0, 0));
  b.on_written = [&](int64_t) { wrote_on = std::this_thread::get_id(); };
  ASSERT_TRUE(writer.submit(std::move(b), /*wake=*/false));
  EXPECT_FALSE(writer.write_queued_here()) << "the writer's thread is busy";
  EXPECT_EQ(notices.durable_end(), 0);
  release.set_value();
  ASSERT_TRUE(notices.wait_durable(10));
  EXPECT_NE(wrote_on, std::this_thread::get_id());
  ASSERT_TRUE(writer.submit(batch_of(record("s", 1, 10)), /*wake=*/false));
  writer.stop();
  EXPECT_EQ(notices.durable_end(), 20) << "stop() wrote the batch queued without a wake-up";
}

// A transaction's event rows go to the database in multi-row INSERTs (runs of up to 16, cut by
// epochs and gaps): every entry comes back, in log order, with its own fields.
TEST(StorageWriter, EventRowsAroundEpochsAndGapsReadBackInLogOrder) {
  Writing w(StorageLocation{"", true});
  auto& [db, notices, writer] = w;
  LogBatch b;
  int64_t position = 0;
  std::vector<EventRecord> events;
  const auto add_events = [&](int n) {
    for (int i = 0; i < n; ++i) {
      EventRecord r = record("s-" + std::to_string(events.size() % 3), 0, position);
      r.number = static_cast<int64_t>(events.size() / 3);
      r.data = "data " + std::to_string(events.size());
      r.metadata = "meta " + std::to_string(events.size());
      r.data_is_json = events.size() % 2 == 0;
      events.push_back(r);
      b.entries.push_back(std::move(r));
      position += 10;
    }
  };
  add_events(20);  // a run of 16, then 4 cut by the epoch
  b.entries.push_back(EpochRow{1, position, position + 10, random_guid(), "leader"});
  position += 10;
  add_events(1);
  b.entries.push_back(GapRow{position, position + 30});
  position += 30;
  add_events(33);
  ASSERT_TRUE(writer.submit(std::move(b)));
  ASSERT_TRUE(notices.wait_durable(position));
  writer.stop();
  ReadConnection c(db);
  const auto stored = c.entries(0, std::numeric_limits<size_t>::max());
  ASSERT_EQ(stored.size(), events.size() + 2);
  size_t next_event = 0;
  int64_t at = 0;
  for (const auto& e : stored) {
    EXPECT_EQ(entry_position(e), at);
    at = entry_end(e);
    if (std::holds_alternative<EpochRow>(e) || std::holds_alternative<GapRow>(e)) continue;
    const EventRecord* r = event_record(e);
    ASSERT_NE(r, nullptr);
    const EventRecord& want = events[next_event++];
    test_support::expect_same_event(*r, want);
  }
  EXPECT_EQ(next_event, events.size());
  EXPECT_EQ(at, position);
}

// A bad row inside a run fails the whole transaction: none of its events is durable.
TEST(StorageWriter, AFailedRowInARunFailsItsWholeTransaction) {
  Writing w(StorageLocation{"", true});
  auto& [db, notices, writer] = w;
  ASSERT_TRUE(writer.submit(batch_of(record("s", 0, 0))));
  ASSERT_TRUE(notices.wait_durable(10));
  LogBatch b;
  for (int i = 0; i < 10; ++i) b.entries.push_back(record("t", i, 10 + 10 * i));
  b.entries.push_back(record("t", 10, 0));  // position 0 again: the events' primary key
  for (int i = 11; i < 14; ++i) b.entries.push_back(record("t", i, 10 + 10 * i));
  ASSERT_TRUE(writer.submit(std::move(b)));
  ASSERT_TRUE(notices.wait_failed());
  writer.stop();
  EXPECT_EQ(notices.durable_end(), 10);
  ReadConnection c(db);
  EXPECT_EQ(c.log_end(), 10);
}

TEST(StorageWriter, LogEndIsFoundAfterReopen) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-storage-" + to_string(random_guid()));
  {
    Writing w(StorageLocation{dir.string(), false});
    auto& [db, notices, writer] = w;
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

// A WAL checkpoint that fails (here the database file may not grow: RLIMIT_FSIZE) loses and
// stops nothing: every write is still durable and readable, the failures are counted (SQLite's
// own automatic checkpoint hides them), and once the file may grow the next checkpoint copies
// everything into it.
TEST(StorageWriter, AFailedCheckpointIsCountedAndRetriedWithNothingLost) {
  test_files::TempFolder dir;
  const auto file = dir.path() / "chorus.db";
  std::atomic<uint64_t> failures{0};
  Notices notices;
  int64_t end = 0;
  {
    Database db(StorageLocation{dir.path().string(), false});
    StorageWriter writer(
        db,
        [&](int64_t e, uint64_t, const FlushStats& f) {
          failures = f.checkpoint_failures;
          notices.durable(e);
        },
        [&](const std::string& m) { notices.failed(m); });
    const auto write = [&](int events, size_t bytes) {
      for (int i = 0; i < events; ++i) {
        EventRecord r = record("s", end / 10, end);
        r.data.assign(bytes, 'x');
        ASSERT_TRUE(writer.submit(batch_of(std::move(r))));
        end += 10;
        ASSERT_TRUE(notices.wait_durable(end));
      }
    };
    write(200, 32 * 1024);  // ~6.4 MB: the file grows through several checkpoints
    ASSERT_EQ(failures.load(), 0u);
    rlimit unlimited{};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &unlimited), 0);
    rlimit capped = unlimited;
    capped.rlim_cur = std::filesystem::file_size(file) + 64 * 1024;
    const auto xfsz = signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &capped), 0);
    // Up to the first checkpoint (at most kWalCheckpointFrames commits), then a few that retry
    // it; the WAL (a few MB) stays below the limit.
    for (int i = 0; i < kWalCheckpointFrames && failures.load() == 0; ++i) write(1, 1024);
    write(20, 1024);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &unlimited), 0);
    signal(SIGXFSZ, xfsz);
    EXPECT_GE(failures.load(), 10u);
    const uint64_t failed = failures.load();
    write(1, 16);  // the next commit's checkpoint succeeds
    EXPECT_EQ(failures.load(), failed);
    EXPECT_FALSE(notices.wait_failed_for(std::chrono::milliseconds(0)));
    ReadConnection c(db);
    EXPECT_EQ(c.log_end(), end);
    EXPECT_EQ(c.all(0, true, end, 2000).size(), static_cast<size_t>(end / 10));
    writer.stop();
  }
  // Everything reached the database file (the WAL is gone once the last connection closed).
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "chorus.db-wal"));
  EXPECT_EQ(test_files::query(file, "SELECT count(*) FROM events"), end / 10);
}

// Whether a process other than this one may take the read lock that SQLite's unix VFS takes on
// a database file before it reads (its "shared" byte range). A child process: POSIX locks are
// per process, and the child uses no SQLite (it inherits this process's view of the file's locks).
bool another_process_may_read_lock(const std::filesystem::path& file) {
  const pid_t child = fork();
  if (child == 0) {
    const int fd = open(file.c_str(), O_RDWR);
    struct flock lock {};
    lock.l_type = F_RDLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = 0x40000002;  // SQLite's PENDING_BYTE + 2: SHARED_FIRST
    lock.l_len = 510;           // SHARED_SIZE
    _exit(fd >= 0 && fcntl(fd, F_SETLK, &lock) == 0 ? 0 : 1);
  }
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, 0), child);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Every connection of a worker to its database uses SQLite's "unix-excl" VFS (kDatabaseVfs):
// they lock each other in memory, with no fcntl per transaction and no -shm file, and no other
// process may lock the file, so none can read or write it beside them; once they are all closed,
// another process may.
TEST(StorageWriter, WhileOpenTheDatabaseIsLockedAgainstOtherProcessesOnly) {
  test_files::TempFolder folder;
  const auto& dir = folder.path();
  const auto file = dir / "chorus.db";
  {
    Writing w(StorageLocation{dir.string(), false});
    ReadConnection reader(w.db);
    ASSERT_TRUE(w.writer.submit(batch_of(record("s", 0, 0))));
    ASSERT_TRUE(w.notices.wait_durable(10));
    EXPECT_TRUE(reader.record("s", 0, 10).has_value());
    EXPECT_FALSE(another_process_may_read_lock(file));
    EXPECT_FALSE(std::filesystem::exists(dir / "chorus.db-shm"));
    w.writer.stop();
  }
  EXPECT_TRUE(another_process_may_read_lock(file));
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

// ---------------------------------------------------------------- the stream index's tail

int64_t count_rows(const std::filesystem::path& folder, const std::string& sql) {
  return test_files::query(folder / "chorus.db", sql);
}

using test_files::TempFolder;

// What a stream holds, as the test wrote it: number -> position.
using Model = std::map<std::string, std::map<int64_t, int64_t>>;

// Every read of every stream in `model` against the model, at max_pos = `end` and at a
// position in the middle: last, each record, and ranges both ways with a small limit (so that
// a read crosses from the table to the tail and back).
// Every event row is in exactly one run of the stream index (counted by the runs' lengths).
void expect_index_covers_every_event(const std::filesystem::path& folder) {
  EXPECT_EQ(count_rows(folder, "SELECT sum(count) FROM stream_index"),
            count_rows(folder, "SELECT count(*) FROM events"));
}

void expect_reads_match(ReadConnection& c, const Model& model, int64_t end) {
  for (const auto& [stream, events] : model) {
    for (const int64_t max_pos : {end, end / 2}) {
      std::vector<std::pair<int64_t, int64_t>> visible;
      for (const auto& [number, pos] : events) {
        if (pos <= max_pos) visible.emplace_back(number, pos);
      }
      const auto last = c.last_record(stream, max_pos);
      ASSERT_EQ(last.has_value(), !visible.empty()) << stream << " at " << max_pos;
      if (last) {
        EXPECT_EQ(last->number, visible.back().first) << stream;
      }
      for (const auto& [number, pos] : visible) {
        const auto r = c.record(stream, number, max_pos);
        ASSERT_TRUE(r.has_value()) << stream << "@" << number;
        EXPECT_EQ(r->position.prepare, pos);
      }
      for (const bool ascending : {true, false}) {
        std::vector<int64_t> got;
        int64_t next = ascending ? 0 : std::numeric_limits<int64_t>::max();
        for (;;) {
          const auto page = ascending ? c.range(stream, next, std::numeric_limits<int64_t>::max(),
                                                true, max_pos, 7)
                                      : c.range(stream, 0, next, false, max_pos, 7);
          for (const auto& r : page) got.push_back(r.number);
          if (page.size() < 7) break;
          next = ascending ? page.back().number + 1 : page.back().number - 1;
          if (next < 0) break;
        }
        std::vector<int64_t> want;
        for (const auto& v : visible) want.push_back(v.first);
        if (!ascending) std::reverse(want.begin(), want.end());
        EXPECT_EQ(got, want) << stream << (ascending ? " forward" : " backward") << " at "
                             << max_pos;
      }
    }
  }
}

struct Node {
  explicit Node(const std::filesystem::path& folder)
      : db(StorageLocation{folder.string(), false}),
        reader(db),
        writer(
            db, [this](int64_t end, uint64_t, const FlushStats&) { notices.durable(end); },
            [this](const std::string& m) { notices.failed(m); }) {}
  Database db;
  ReadConnection reader;
  Notices notices;
  StorageWriter writer;
};

// Writes `count` events round-robin to `streams` streams from `position` on, `per_batch` a
// batch, waiting for each; returns the end.
int64_t write_events(Node& node, Model& model, int64_t position, int count, int streams,
                     int per_batch, const std::string& prefix = "s") {
  for (int i = 0; i < count;) {
    LogBatch b;
    for (int k = 0; k < per_batch && i < count; ++k, ++i) {
      const std::string stream = prefix + std::to_string(i % streams);
      auto& events = model[stream];
      const int64_t number = events.empty() ? 0 : events.rbegin()->first + 1;
      b.entries.push_back(record(stream, number, position));
      events[number] = position;
      position += 10;
    }
    EXPECT_TRUE(node.writer.submit(std::move(b)));
    EXPECT_TRUE(node.notices.wait_last_end(position));
  }
  return position;
}

TEST(StreamIndex, ReadsSeeEveryEventBeforeAndAfterTheBulkInsert) {
  TempFolder dir;
  Node node(dir.path());
  Model model;
  int64_t end = 0;
  // Short of the bulk insert: the table has none of them, the tail has them all.
  end = write_events(node, model, end, static_cast<int>(kStreamIndexDeferredMax) - 50, 5, 37);
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM stream_index"), 0);
  EXPECT_EQ(node.db.stream_tail().size(), kStreamIndexDeferredMax - 50);
  expect_reads_match(node.reader, model, end);
  // Past it twice: the table has what came before the last bulk insert.
  end = write_events(node, model, end, 2 * static_cast<int>(kStreamIndexDeferredMax), 5, 37);
  const int64_t indexed = count_rows(dir.path(), "SELECT sum(count) FROM stream_index");
  EXPECT_GE(indexed, 2 * static_cast<int64_t>(kStreamIndexDeferredMax));
  EXPECT_EQ(static_cast<size_t>(indexed) + node.db.stream_tail().size(),
            3 * kStreamIndexDeferredMax - 50);
  EXPECT_EQ(count_rows(dir.path(), "SELECT value FROM checkpoints WHERE name='stream_index_end'"),
            node.db.stream_tail().indexed_end());
  expect_reads_match(node.reader, model, end);
}

TEST(StreamIndex, AStartIndexesTheTailThatAStoppedWriterLeft) {
  TempFolder dir;
  Model model;
  int64_t end = 0;
  {
    Node node(dir.path());
    end = write_events(node, model, end, 300, 3, 10);
    node.writer.stop();
  }
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM stream_index"), 0);
  Node again(dir.path());
  EXPECT_EQ(count_rows(dir.path(), "SELECT sum(count) FROM stream_index"), 300);
  EXPECT_EQ(again.db.stream_tail().size(), 0u);
  EXPECT_EQ(again.db.stream_tail().indexed_end(), end);
  expect_reads_match(again.reader, model, end);
  end = write_events(again, model, end, 40, 4, 3);
  expect_reads_match(again.reader, model, end);
}

// A follower's log is truncated at a position below the table's end (its entries leave the
// table) and then continues with other events at the same positions.
TEST(StreamIndex, ATruncationBelowTheIndexedEndTakesItsEntriesOutOfTheTable) {
  TempFolder dir;
  Model model;
  int64_t end = 0;
  {
    Node node(dir.path());
    end = write_events(node, model, end, static_cast<int>(kStreamIndexDeferredMax) + 100, 4, 50);
    const int64_t indexed_end = node.db.stream_tail().indexed_end();
    ASSERT_GT(indexed_end, 2000);
    const int64_t cut = indexed_end - 2000;  // 200 indexed events and the tail go
    // The model again: everything below the cut.
    model.clear();
    {
      ReadConnection c(node.db);
      for (const auto& r : c.all(0, true, cut - 1, 1 << 20)) {
        model[r.stream][r.number] = r.position.prepare;
      }
    }
    LogBatch b;
    b.truncate_to = cut;
    int64_t position = cut;
    for (int i = 0; i < 30; ++i) {
      b.entries.push_back(record("other", i, position));
      model["other"][i] = position;
      position += 10;
    }
    ASSERT_TRUE(node.writer.submit(std::move(b)));
    ASSERT_TRUE(node.notices.wait_last_end(position));
    end = position;
    EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM stream_index WHERE last_pos>=" +
                                         std::to_string(cut)),
              0);
    expect_reads_match(node.reader, model, end);
    end = write_events(node, model, end, 60, 4, 7);
    expect_reads_match(node.reader, model, end);
    node.writer.stop();
  }
  Node again(dir.path());
  expect_index_covers_every_event(dir.path());
  expect_reads_match(again.reader, model, end);
}

TEST(StreamIndex, AScavengedEventLeavesTheTableAndTheTailSkipsIt) {
  TempFolder dir;
  Node node(dir.path());
  Model model;
  // Batches of 16: the last one of the first call crosses the bulk insert's size exactly.
  int64_t end = write_events(node, model, 0, static_cast<int>(kStreamIndexDeferredMax), 2, 16);
  ASSERT_EQ(node.db.stream_tail().size(), 0u);
  end = write_events(node, model, end, 30, 2, 16);
  ASSERT_EQ(node.db.stream_tail().size(), 30u);
  // s0@0 is in the table; s1's newest event is in the tail.
  const int64_t indexed_position = model["s0"][0];
  const int64_t tail_number = model["s1"].rbegin()->first;
  const int64_t tail_position = model["s1"].rbegin()->second;
  std::mutex m;
  std::condition_variable cv;
  std::optional<MaintenanceResult> result;
  MaintenanceJob job;
  job.remove_positions = {indexed_position, tail_position};
  job.done = [&](const MaintenanceResult& r) {
    std::lock_guard lock(m);
    result = r;
    cv.notify_all();
  };
  ASSERT_TRUE(node.writer.submit(std::move(job)));
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return result.has_value(); }));
  }
  ASSERT_TRUE(result->ok) << result->error;
  EXPECT_EQ(result->removed, 2);
  model["s0"].erase(0);
  model["s1"].erase(tail_number);
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM stream_index WHERE pos=" +
                                       std::to_string(indexed_position)),
            0);
  EXPECT_FALSE(node.reader.record("s1", tail_number, end).has_value());
  expect_reads_match(node.reader, model, end);
  // The next bulk insert indexes what is there, not what the tail remembered.
  end = write_events(node, model, end, static_cast<int>(kStreamIndexDeferredMax), 2, 20);
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM stream_index WHERE pos=" +
                                       std::to_string(tail_position)),
            0);
  expect_reads_match(node.reader, model, end);
}

// Writes `writes` writes of `per_write` consecutive events of one stream each, the streams
// taken in turn, one batch per write; returns the end.
int64_t write_runs(Node& node, Model& model, int64_t position, int writes, int streams,
                   int per_write, const std::string& prefix = "w") {
  for (int w = 0; w < writes; ++w) {
    const std::string stream = prefix + std::to_string(w % streams);
    auto& events = model[stream];
    LogBatch b;
    for (int k = 0; k < per_write; ++k) {
      const int64_t number = events.empty() ? 0 : events.rbegin()->first + 1;
      b.entries.push_back(record(stream, number, position));
      events[number] = position;
      position += 10;
    }
    EXPECT_TRUE(node.writer.submit(std::move(b)));
    EXPECT_TRUE(node.notices.wait_last_end(position));
  }
  return position;
}

// Runs `job` on the writer and waits (with a deadline) for its result.
MaintenanceResult maintain(Node& node, MaintenanceJob job) {
  std::mutex m;
  std::condition_variable cv;
  std::optional<MaintenanceResult> result;
  job.done = [&](const MaintenanceResult& r) {
    std::lock_guard lock(m);
    result = r;
    cv.notify_all();
  };
  EXPECT_TRUE(node.writer.submit(std::move(job)));
  std::unique_lock lock(m);
  EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return result.has_value(); }));
  return result.value_or(MaintenanceResult{false, "no answer", 0, 0});
}

TEST(StreamRuns, AWriteIsOneEntryAndALongOneIsSplitAtTheMost) {
  TempFolder dir;
  Node node(dir.path());
  Model model;
  int64_t end = write_runs(node, model, 0, 3, 1, 100, "long");  // 100 = 3 x 32 + 4
  // Up to the bulk insert exactly (its last write crosses kStreamIndexDeferredMax).
  const int writes = (static_cast<int>(kStreamIndexDeferredMax) - 300 + 9) / 10;
  end = write_runs(node, model, end, writes, 7, 10);
  ASSERT_EQ(node.db.stream_tail().size(), 0u);
  const std::string long_runs = "FROM stream_index WHERE stream='long0'";
  // The three writes of "long0" follow each other in the log: one sequence, split by the cap.
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) " + long_runs), 10);
  EXPECT_EQ(count_rows(dir.path(), "SELECT max(count) " + long_runs), kStreamRunEventsMax);
  EXPECT_EQ(count_rows(dir.path(), "SELECT sum(count) " + long_runs), 300);
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM stream_index WHERE stream<>'long0'"),
            writes);
  EXPECT_EQ(count_rows(dir.path(),
                       "SELECT count(*) FROM stream_index WHERE stream<>'long0' AND count<>10"),
            0);
  // Each entry covers exactly its events' positions.
  EXPECT_EQ(count_rows(dir.path(),
                       "SELECT count(*) FROM stream_index r WHERE r.count <> (SELECT count(*)"
                       " FROM events e WHERE e.pos BETWEEN r.pos AND r.last_pos AND"
                       " e.stream=r.stream AND e.number BETWEEN r.first AND r.first+r.count-1)"),
            0);
  expect_reads_match(node.reader, model, end);
  // A start indexes a stopped writer's tail in the same runs (from the events, in SQL).
  end = write_runs(node, model, end, 20, 4, 12);
  node.writer.stop();
  const int64_t runs_before = count_rows(dir.path(), "SELECT count(*) FROM stream_index");
  Node again(dir.path());
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM stream_index"), runs_before + 20);
  expect_index_covers_every_event(dir.path());
  expect_reads_match(again.reader, model, end);
}

// A follower's truncation lands inside an indexed run: the run keeps its events below the cut,
// and the stream goes on from the cut's number with other events.
TEST(StreamRuns, ATruncationInsideARunShortensIt) {
  TempFolder dir;
  Model model;
  int64_t end = 0;
  {
    Node node(dir.path());
    end = write_runs(node, model, end, static_cast<int>(kStreamIndexDeferredMax) / 20 + 5, 3, 20);
    const int64_t indexed_end = node.db.stream_tail().indexed_end();
    // The last indexed run of w1, cut after its 7th event.
    const std::string last_run =
        "FROM stream_index WHERE stream='w1' AND pos<" + std::to_string(indexed_end);
    const int64_t first = count_rows(dir.path(), "SELECT max(first) " + last_run);
    const int64_t run_pos = count_rows(dir.path(), "SELECT max(pos) " + last_run);
    ASSERT_EQ(count_rows(dir.path(),
                         "SELECT count FROM stream_index WHERE stream='w1' AND"
                         " first=" +
                             std::to_string(first)),
              20);
    const int64_t cut = run_pos + 7 * 10;
    ASSERT_LT(cut, indexed_end);
    model.clear();
    {
      ReadConnection c(node.db);
      for (const auto& r : c.all(0, true, cut - 1, 1 << 20)) {
        model[r.stream][r.number] = r.position.prepare;
      }
    }
    LogBatch b;
    b.truncate_to = cut;
    int64_t position = cut;
    for (int i = 0; i < 5; ++i) {  // w1 goes on from the cut's number, then another stream
      b.entries.push_back(record("w1", first + 7 + i, position));
      model["w1"][first + 7 + i] = position;
      position += 10;
    }
    b.entries.push_back(record("other", 0, position));
    model["other"][0] = position;
    position += 10;
    ASSERT_TRUE(node.writer.submit(std::move(b)));
    ASSERT_TRUE(node.notices.wait_last_end(position));
    end = position;
    const std::string run =
        "FROM stream_index WHERE stream='w1' AND first=" + std::to_string(first);
    EXPECT_EQ(count_rows(dir.path(), "SELECT count " + run), 7);
    EXPECT_EQ(count_rows(dir.path(), "SELECT last_pos " + run), cut - 10);
    EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM stream_index WHERE last_pos>=" +
                                         std::to_string(cut)),
              0);
    expect_reads_match(node.reader, model, end);
    // The next bulk insert indexes the new events after the shortened run.
    end = write_runs(node, model, end, static_cast<int>(kStreamIndexDeferredMax) / 20, 3, 20);
    EXPECT_EQ(count_rows(dir.path(), "SELECT count " + run), 7);
    expect_reads_match(node.reader, model, end);
    node.writer.stop();
  }
  Node again(dir.path());
  expect_index_covers_every_event(dir.path());
  expect_reads_match(again.reader, model, end);
}

// A scavenge removes some events of an indexed run (the run reads as the rest), then the rest
// (the run goes).
TEST(StreamRuns, AScavengedRunReadsAsItsRemainingEventsAndGoesWhenEmpty) {
  TempFolder dir;
  Node node(dir.path());
  Model model;
  int64_t end = write_runs(node, model, 0, static_cast<int>(kStreamIndexDeferredMax) / 8, 4, 8);
  ASSERT_EQ(node.db.stream_tail().size(), 0u);
  const int64_t run_pos =
      count_rows(dir.path(), "SELECT pos FROM stream_index WHERE stream='w2' AND first=16");
  const std::string run = "FROM stream_index WHERE stream='w2' AND first=16";
  MaintenanceJob some;
  some.remove_positions = {run_pos + 20, run_pos + 50};  // w2@18, w2@21
  auto result = maintain(node, std::move(some));
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.removed, 2);
  model["w2"].erase(18);
  model["w2"].erase(21);
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) " + run), 1);
  EXPECT_FALSE(node.reader.record("w2", 18, end).has_value());
  expect_reads_match(node.reader, model, end);
  MaintenanceJob rest;
  for (const int64_t n : {16, 17, 19, 20, 22, 23}) {
    rest.remove_positions.push_back(run_pos + (n - 16) * 10);
    model["w2"].erase(n);
  }
  result = maintain(node, std::move(rest));
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.removed, 6);
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) " + run), 0);
  EXPECT_EQ(count_rows(dir.path(), "SELECT count(*) FROM stream_index WHERE stream='w2'"),
            static_cast<int64_t>(kStreamIndexDeferredMax) / 32 - 1);
  expect_reads_match(node.reader, model, end);
}

}  // namespace
}  // namespace chorus
