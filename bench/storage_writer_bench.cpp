// storage-writer-bench: the storage writer alone (no network, no engine), so that a change to
// the SQLite layout or the writer shows its CPU per event without the rest of the node's noise.
// Appends `--events` 256-byte events round-robin to `--streams` streams, `--batch` events per
// stream write, `--commit` events per group-commit transaction (what the writer takes in one
// go: about 21 events at 64 writers x 1, about 100+ at 64 x 10), waiting for each commit's fsync
// before the next, on a fresh file in `--db`. Prints one JSON line: events/s, the process's CPU
// (user + system, so the fsync's kernel work counts) per event in µs, and the file size.
// Usage: storage-writer-bench --db DIR [--events N] [--streams S] [--batch B] [--commit C]
//        [--index sqlite|none|bulk] [--flush-every COMMITS]
#include "worker/engine/storage.hpp"

#include <sqlite3.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  std::string folder;
  int64_t events = 200000;
  int64_t streams = 64;
  int64_t batch = 1;
  int64_t commit = 21;
  int64_t event_bytes = 256;
  // Ceiling experiment for issue 16 (the stream index's write amplification): "sqlite" = the
  // layout as is; "none" = the events_by_stream index dropped (what the index costs per commit);
  // "bulk" = index dropped, entries written to a narrow (stream, number, pos) table every
  // `--flush-every` commits in one transaction of their own (no fsync: folded into a log commit
  // in a real design).
  std::string index_mode = "sqlite";
  int64_t flush_every = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--db") {
      folder = v;
    } else if (k == "--events") {
      events = std::atoll(v);
    } else if (k == "--streams") {
      streams = std::atoll(v);
    } else if (k == "--batch") {
      batch = std::atoll(v);
    } else if (k == "--commit") {
      commit = std::atoll(v);
    } else if (k == "--index") {
      index_mode = v;
    } else if (k == "--flush-every") {
      flush_every = std::atoll(v);
    } else if (k == "--event-size") {
      event_bytes = std::atoll(v);
    } else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (folder.empty() || events < 1 || streams < 1 || batch < 1 || commit < batch ||
      flush_every < 1 || (index_mode != "sqlite" && index_mode != "none" && index_mode != "bulk")) {
    std::cerr << "usage: storage-writer-bench --db DIR [--events N] [--streams S] [--batch B]"
                 " [--commit C >= B] [--event-size BYTES] [--index sqlite|none|bulk]"
                 " [--flush-every COMMITS]\n";
    return 2;
  }
  std::filesystem::remove_all(folder);
  chorus::Database db(chorus::StorageLocation{folder, false});
  sqlite3* side = nullptr;
  sqlite3_stmt* index_insert = nullptr;
  // Any SQLite failure on the side connection ends the run: a silently skipped step would
  // measure another layout than the one named.
  auto must = [&](int rc, const char* what) {
    if (rc == SQLITE_OK || rc == SQLITE_DONE) return;
    std::cerr << what << ": " << sqlite3_errmsg(side) << "\n";
    std::exit(1);
  };
  if (index_mode != "sqlite") {
    side = db.open_connection(true);
    must(sqlite3_exec(side, "DROP INDEX events_by_stream", nullptr, nullptr, nullptr), "drop");
    if (index_mode == "bulk") {
      must(sqlite3_exec(side, "PRAGMA synchronous=OFF", nullptr, nullptr, nullptr), "pragma");
      must(sqlite3_exec(side,
                        "CREATE TABLE stream_index(stream TEXT NOT NULL, number INTEGER NOT NULL,"
                        " pos INTEGER NOT NULL, PRIMARY KEY(stream, number)) WITHOUT ROWID",
                        nullptr, nullptr, nullptr),
           "create");
      must(sqlite3_prepare_v2(side, "INSERT INTO stream_index VALUES(?1,?2,?3)", -1, &index_insert,
                              nullptr),
           "prepare");
    }
  }
  struct Pending {
    std::string stream;
    int64_t number;
    int64_t pos;
  };
  std::vector<Pending> pending;
  int64_t commits = 0;
  auto flush_index = [&] {
    if (!index_insert || pending.empty()) return;
    std::sort(pending.begin(), pending.end(), [](const Pending& a, const Pending& b) {
      return a.stream != b.stream ? a.stream < b.stream : a.number < b.number;
    });
    must(sqlite3_exec(side, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), "begin");
    for (const auto& p : pending) {
      sqlite3_bind_text(index_insert, 1, p.stream.data(), static_cast<int>(p.stream.size()),
                        SQLITE_STATIC);
      sqlite3_bind_int64(index_insert, 2, p.number);
      sqlite3_bind_int64(index_insert, 3, p.pos);
      const int rc = sqlite3_step(index_insert);
      sqlite3_reset(index_insert);
      must(rc, "index insert");
    }
    must(sqlite3_exec(side, "COMMIT", nullptr, nullptr, nullptr), "commit");
    pending.clear();
  };
  std::mutex mutex;
  std::condition_variable durable;
  int64_t durable_end = 0;
  std::string failure;
  chorus::StorageWriter writer(
      db,
      [&](int64_t end, uint64_t, const chorus::FlushStats&) {
        std::lock_guard lock(mutex);
        durable_end = end;
        durable.notify_all();
      },
      [&](const std::string& message) {
        std::lock_guard lock(mutex);
        failure = message;
        durable.notify_all();
      });
  const std::string data(static_cast<size_t>(event_bytes), 'x');
  std::vector<int64_t> next_number(static_cast<size_t>(streams), 0);
  int64_t position = 0;
  int64_t written = 0;
  int64_t stream = 0;
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  while (written < events) {
    // One transaction's worth of stream writes of `batch` events, queued as one LogBatch so
    // that the writer takes them in one group commit.
    chorus::LogBatch all;
    int64_t in_group = 0;
    while (in_group + batch <= commit && written + in_group < events) {
      const std::string name = "bench-0123abcd-" + std::to_string(stream);
      for (int64_t k = 0; k < batch; ++k) {
        chorus::EventRecord r;
        r.stream = name;
        r.number = next_number[static_cast<size_t>(stream)]++;
        // A counter, not random_guid(): getrandom() would be a tenth of this benchmark's CPU.
        std::memcpy(r.event_id.data, &position, sizeof position);
        r.event_type = "bench";
        r.data = data;
        r.created_ms = 1764633600000 + written + in_group;
        r.position.prepare = position;
        position += event_bytes + 100;
        r.log_end = position;
        r.position.commit = r.log_end;
        if (index_insert) pending.push_back(Pending{r.stream, r.number, r.position.prepare});
        all.entries.emplace_back(std::move(r));
        ++in_group;
      }
      stream = (stream + 1) % streams;
    }
    if (!writer.submit(std::move(all))) {
      std::cerr << "submit refused\n";
      return 1;
    }
    written += in_group;
    std::unique_lock lock(mutex);
    durable.wait(lock, [&] { return durable_end >= position || !failure.empty(); });
    if (!failure.empty()) {
      std::cerr << "storage failed: " << failure << "\n";
      return 1;
    }
    lock.unlock();
    if (++commits % flush_every == 0) flush_index();
  }
  flush_index();
  const double cpu = cpu_seconds() - cpu0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  writer.stop();
  sqlite3_finalize(index_insert);
  sqlite3_close(side);
  std::error_code ec;
  const auto size = std::filesystem::file_size(std::filesystem::path(folder) / "chorus.db", ec);
  std::printf(
      "{\"index\":\"%s\",\"events\":%lld,\"streams\":%lld,\"batch\":%lld,\"commit\":%lld,\"events_"
      "per_s\":%.0f,"
      "\"cpu_us_per_event\":%.2f,\"file_mb\":%.1f}\n",
      index_mode.c_str(), static_cast<long long>(written), static_cast<long long>(streams),
      static_cast<long long>(batch), static_cast<long long>(commit), written / wall,
      cpu * 1e6 / static_cast<double>(written), static_cast<double>(size) / 1e6);
  return 0;
}
