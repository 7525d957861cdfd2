// Proves the log/derived split that scavenging needs, on real SQLite: records a scavenge removed
// come back to replication as gaps (the log stays contiguous for a catching-up follower), a gap
// received from a leader is stored and counts for the log's end (and a follower ending inside it
// gets its rest), any other hole stops the read;
// and a whole scavenge removes exactly what the retention rules allow, writes $scavengeStarted
// and $scavengeCompleted to $scavenges and $scavenges-<id>, and gives the pages back; a stopped
// one ends after the job in hand as Stopped.
#include "worker/engine/log_codec.hpp"
#include "worker/engine/scavenger.hpp"
#include "worker/engine/storage.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace chorus {
namespace {

constexpr int64_t kSize = 10;  // every test record spans 10 positions

EventRecord record(const std::string& stream, int64_t number, int64_t position,
                   std::string data = "{}") {
  EventRecord r;
  r.stream = stream;
  r.number = number;
  r.event_id = random_guid();
  r.event_type = "t";
  r.data = std::move(data);
  r.created_ms = 1;
  r.position = Position{position + kSize, position};
  r.log_end = position + kSize;
  return r;
}

class Durable {
 public:
  void at(int64_t end) {
    std::lock_guard lock(mutex_);
    end_ = std::max(end_, end);
    changed_.notify_all();
  }
  bool wait(int64_t end) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return end_ >= end; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t end_ = 0;
};

struct Node {
  explicit Node(const StorageLocation& where = StorageLocation{"", true})
      : db(where),
        writer(
            db, [this](int64_t end, uint64_t, const FlushStats&) { durable.at(end); },
            [](const std::string&) {}) {}
  void write(std::vector<StoredEntry> entries) {
    LogBatch b;
    b.entries = std::move(entries);
    const int64_t end = entry_end(b.entries.back());
    ASSERT_TRUE(writer.submit(std::move(b)));
    ASSERT_TRUE(durable.wait(end));
  }
  MaintenanceResult maintain(MaintenanceJob job) {
    std::promise<MaintenanceResult> done;
    job.done = [&done](const MaintenanceResult& r) { done.set_value(r); };
    EXPECT_TRUE(writer.submit(std::move(job)));
    return done.get_future().get();
  }
  Database db;
  Durable durable;
  StorageWriter writer;
};

// "E<pos>" for an event, "G<pos>-<end>" for a gap, "P<pos>" for an epoch record.
std::string describe(const std::vector<StoredEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    if (const auto* g = std::get_if<GapRow>(&e)) {
      out += "G" + std::to_string(g->position) + "-" + std::to_string(g->end) + " ";
    } else if (std::holds_alternative<EpochRow>(e)) {
      out += "P" + std::to_string(entry_position(e)) + " ";
    } else {
      out += "E" + std::to_string(entry_position(e)) + " ";
    }
  }
  return out;
}

TEST(LogGaps, ScavengedRecordsReplicateAsGapsAndTheLogStaysContiguous) {
  Node n;
  std::vector<StoredEntry> entries;
  EpochRow epoch;
  epoch.position = 0;
  epoch.end = kSize;
  entries.emplace_back(epoch);
  for (int i = 1; i < 10; ++i) entries.emplace_back(record("s", i - 1, i * kSize));
  n.write(std::move(entries));
  const auto result = n.maintain(MaintenanceJob{{20, 30, 60}, 0, false, nullptr});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.removed, 3);
  ReadConnection c(n.db);
  EXPECT_EQ(describe(c.entries(0, 1 << 20)), "P0 E10 G20-40 E40 E50 G60-70 E70 E80 E90 ");
  EXPECT_EQ(describe(c.entries(20, 1 << 20)), "G20-40 E40 E50 G60-70 E70 E80 E90 ");
  // Each entry survives the replication codec.
  for (const auto& e : c.entries(0, 1 << 20)) {
    const auto decoded = decode_entry(encode_entry(e));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(entry_position(*decoded), entry_position(e));
    EXPECT_EQ(entry_end(*decoded), entry_end(e));
    EXPECT_EQ(decoded->index(), e.index());
  }
  EXPECT_EQ(c.log_end(), 100);
}

TEST(LogGaps, AHoleNoScavengeMadeEndsTheRead) {
  Node n;
  std::vector<StoredEntry> entries;
  for (int i = 0; i < 10; ++i) entries.emplace_back(record("s", i, i * kSize));
  n.write(std::move(entries));
  ASSERT_TRUE(n.maintain(MaintenanceJob{{20}, 0, false, nullptr}).ok);  // scavenged end 30
  sqlite3* raw = n.db.open_connection(true);
  ASSERT_EQ(sqlite3_exec(raw, "DELETE FROM events WHERE pos=60", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  ReadConnection c(n.db);
  EXPECT_EQ(describe(c.entries(0, 1 << 20)), "E0 E10 G20-30 E30 E40 E50 ");
}

TEST(LogGaps, AFollowerStoresReceivedGapsAndFindsItsEndAfterARestart) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-gaps-" + to_string(random_guid()));
  {
    Node n(StorageLocation{dir.string(), false});
    n.write({record("s", 0, 0), GapRow{10, 500}, record("s", 7, 500), GapRow{510, 900}});
    ReadConnection c(n.db);
    EXPECT_EQ(describe(c.entries(0, 1 << 20)), "E0 G10-500 E500 G510-900 ");
    // A follower that ended inside a stored gap (it had whole events there) gets its rest.
    EXPECT_EQ(describe(c.entries(250, 1 << 20)), "G250-500 E500 G510-900 ");
    EXPECT_EQ(c.log_end(), 900);
    // A truncation takes gaps with it.
    LogBatch cut;
    cut.truncate_to = 510;
    cut.entries.emplace_back(record("s", 8, 510));
    ASSERT_TRUE(n.writer.submit(std::move(cut)));
    n.write({GapRow{520, 1000}});  // durable at 1000: the truncation before it is done
    EXPECT_EQ(describe(c.entries(0, 1 << 20)), "E0 G10-500 E500 E510 G520-1000 ");
  }
  {
    Database db(StorageLocation{dir.string(), false});
    ReadConnection c(db);
    EXPECT_EQ(c.log_end(), 1000);
  }
  std::filesystem::remove_all(dir);
}

std::string json_of(const std::string& key, int64_t value) {
  return "{\"" + key + "\":" + std::to_string(value) + "}";
}

TEST(Scavenger, RemovesWhatRetentionAllowsLogsItAndFreesPages) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("chorus-scavenger-" + to_string(random_guid()));
  Node n(StorageLocation{dir.string(), false});
  const std::string fat(4000, 'x');
  std::vector<StoredEntry> entries;
  int64_t pos = 0;
  auto add = [&](EventRecord r) {
    r.position = Position{pos + kSize, pos};
    r.log_end = pos + kSize;
    pos += kSize;
    entries.emplace_back(std::move(r));
  };
  for (int i = 0; i < 100; ++i) add(record("gone", i, 0, fat));  // hard-deleted below
  for (int i = 0; i < 100; ++i) add(record("capped", i, 0, fat));
  for (int i = 0; i < 100; ++i) add(record("kept", i, 0, fat));
  add(record("$$capped", 0, 0, json_of("$maxCount", 10)));
  add(record("gone", kDeletedStreamNumber, 0));
  n.write(std::move(entries));
  const int64_t end = pos;

  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> logged;  // stream, type
  ScavengeHooks hooks;
  hooks.committed_end = [end] { return end; };
  hooks.run = [&n](MaintenanceJob job) { return n.writer.submit(std::move(job)); };
  hooks.node_endpoint = "127.0.0.1:1112";
  Scavenger scavenger(n.db, hooks);
  const auto started = scavenger.start(
      0, [&](std::string stream, std::vector<NewEvent> events, std::function<void(bool)> done) {
        std::lock_guard lock(mutex);
        for (const auto& e : events) logged.emplace_back(stream, e.event_type);
        done(true);
      });
  ASSERT_TRUE(started.started);
  EXPECT_FALSE(scavenger.start(0, nullptr).started);  // one at a time
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::optional<ScavengeState> state;
  while ((state = scavenger.find(started.id)) && state->result == "InProgress" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(state.has_value());
  ASSERT_EQ(state->result, "Success") << state->error;
  EXPECT_EQ(state->events_examined, 302);
  EXPECT_EQ(state->events_removed, 100 + 90);
  EXPECT_GT(state->space_saved_bytes, 190 * 4000 / 2);
  EXPECT_FALSE(scavenger.current().has_value());

  ReadConnection c(n.db);
  const auto all = c.all(0, true, end, 1000);
  std::map<std::string, std::vector<int64_t>> left;
  for (const auto& r : all) left[r.stream].push_back(r.number);
  EXPECT_EQ(left["gone"], std::vector<int64_t>{kDeletedStreamNumber});
  EXPECT_EQ(left["capped"].size(), 10u);
  EXPECT_EQ(left["capped"].front(), 90);
  EXPECT_EQ(left["kept"].size(), 100u);
  // The log still replicates whole: gaps where records went.
  int64_t expected = 0;
  for (const auto& e : c.entries(0, size_t{1} << 30)) {
    EXPECT_EQ(entry_position(e), expected);
    expected = entry_end(e);
  }
  EXPECT_EQ(expected, end);

  const std::string own = "$scavenges-" + started.id;
  // EventStore's 30-day $maxAge on the history streams comes first.
  const std::vector<std::pair<std::string, std::string>> want = {
      {"$$$scavenges", "$metadata"},       {"$$" + own, "$metadata"},
      {own, "$scavengeStarted"},           {"$scavenges", "$scavengeStarted"},
      {own, "$scavengeChunksCompleted"},   {own, "$scavengeCompleted"},
      {"$scavenges", "$scavengeCompleted"}};
  EXPECT_EQ(logged, want);
  std::filesystem::remove_all(dir);
}

TEST(Scavenger, AStoppedScavengeEndsAfterTheJobInHandAsStopped) {
  Node n;
  std::vector<StoredEntry> entries;
  for (int i = 0; i < 2000; ++i) entries.emplace_back(record("gone", i, i * kSize));
  entries.emplace_back(record("gone", kDeletedStreamNumber, 2000 * kSize));
  n.write(std::move(entries));
  const int64_t end = 2001 * kSize;
  Scavenger* self = nullptr;
  std::string id;
  std::mutex mutex;
  int jobs = 0;
  ScavengeHooks hooks;
  hooks.committed_end = [end] { return end; };
  hooks.run = [&](MaintenanceJob job) {
    {
      std::lock_guard lock(mutex);
      if (++jobs == 1) {
        EXPECT_TRUE(self->stop(id));  // DELETE /admin/scavenge/{id} meanwhile
      }
    }
    return n.writer.submit(std::move(job));
  };
  Scavenger scavenger(n.db, hooks);
  self = &scavenger;
  {
    std::lock_guard lock(mutex);  // the first job waits until the id is known
    const auto started = scavenger.start(0, nullptr);
    ASSERT_TRUE(started.started);
    id = started.id;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::optional<ScavengeState> state;
  while ((state = scavenger.find(id)) && state->result == "InProgress" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->result, "Stopped");
  EXPECT_EQ(state->events_removed, static_cast<int64_t>(kScavengeJobRecordsMax));  // one job
  EXPECT_EQ(jobs, 1);                // no vacuum after a stop
  EXPECT_FALSE(scavenger.stop(id));  // no longer running
}

}  // namespace
}  // namespace chorus
