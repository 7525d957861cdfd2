// storage-writer-bench: the storage writer alone (no network, no engine), so that a change to
// the SQLite layout or the writer shows its CPU per event without the rest of the node's noise.
// Appends `--events` 256-byte events round-robin to `--streams` streams, `--batch` events per
// stream write, `--commit` events per group-commit transaction (what the writer takes in one
// go: about 21 events at 64 writers x 1, about 100+ at 64 x 10), waiting for each commit's fsync
// before the next, on a fresh file in `--db`. Prints one JSON line: events/s, the process's CPU
// (user + system, so the fsync's kernel work counts) per event in µs, the writer thread's alone,
// and the file size. `--read N` then reads the whole log forward ($all) and N streams forward
// and reports the reading thread's CPU per event read.
// Usage: storage-writer-bench --db DIR [--events N] [--streams S] [--batch B] [--commit C]
//        [--layout rows|batch|events] [--index MODE] [--read STREAMS]
//        [--memstatus 0|1]
//
// Layouts (issue 16's ceiling experiments; only "rows" is what the server writes):
// - rows: the server's StorageWriter, one events row per event, the stream index's entries
//   added in bulk every kStreamIndexDeferredMax events (--index sqlite, the only mode; the
//   "none" and "bulk" experiments that led to it are in bench/results/2026-12-02-s3/index.md).
// - batch: one row per group commit holding the commit's records as the leader encodes them for
//   replication (LogRecord bytes, each behind varints of its position's distance from the row's
//   and its length), plus a narrow stream index: --index text = (stream name, number) -> (row,
//   offset); int = the same keyed by an integer stream id (a streams table maps names); runs =
//   one entry per run of consecutive events of a stream in the row, (stream id, first number) ->
//   (row, offset, count); none = no stream index (the ceiling of the row alone). Same
//   durability: the same connection setup (synchronous=FULL, the WAL-gathering VFS), one
//   transaction and fsync per commit, on a writer thread of its own.
// - events: the server's events rows (written by that thread), the stream index replaced by one
//   index entry per run: --index runs = (stream name, first number) -> (position, count).
#include "worker/engine/log_codec.hpp"
#include "worker/engine/storage.hpp"

#include <sqlite3.h>

#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

[[noreturn]] void die(sqlite3* db, const std::string& what) {
  std::cerr << what << ": " << (db ? sqlite3_errmsg(db) : "?") << "\n";
  std::exit(1);
}

void exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) die(db, sql);
}

sqlite3_stmt* prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    die(db, sql);
  }
  return s;
}

void step_done(sqlite3* db, sqlite3_stmt* s, const char* what) {
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) die(db, what);
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

uint64_t get_varint(const uint8_t*& p) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return v;
  }
}

// A LogRecord's fields as views into its bytes (the bench reads only what it wrote).
chorus::RecordView view_record(const uint8_t* p, const uint8_t* end) {
  chorus::RecordView r;
  while (p < end) {
    const uint32_t tag = static_cast<uint32_t>(get_varint(p));
    if ((tag & 7) == 0) {
      const uint64_t v = get_varint(p);
      if (tag >> 3 == 2) r.number = static_cast<int64_t>(v);
      if (tag >> 3 == 5) {
        r.data_is_json = (v & 1) != 0;
        r.metadata_is_json = (v & 2) != 0;
      }
      if (tag >> 3 == 6) r.created_ms = static_cast<int64_t>(v);
      continue;
    }
    const auto size = static_cast<size_t>(get_varint(p));
    const std::string_view bytes(reinterpret_cast<const char*>(p), size);
    switch (tag >> 3) {
      case 1:
        r.stream = bytes;
        break;
      case 3:
        r.event_id = bytes;
        break;
      case 4:
        r.event_type = bytes;
        break;
      case 7:
        r.data = bytes;
        break;
      case 8:
        r.metadata = bytes;
        break;
      default:
        break;
    }
    p += size;
  }
  return r;
}

// One record of a batch row at `offset`: its position and view; returns the next offset.
size_t row_record(const std::string_view row, int64_t row_pos, size_t offset,
                  chorus::RecordView& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(row.data()) + offset;
  const int64_t pos = row_pos + static_cast<int64_t>(get_varint(p));
  const auto size = static_cast<size_t>(get_varint(p));
  out = view_record(p, p + size);
  out.position.prepare = pos;
  out.log_end = pos + 64 + static_cast<int64_t>(size);
  out.position.commit = out.log_end;
  return static_cast<size_t>(p + size - reinterpret_cast<const uint8_t*>(row.data()));
}

// A group commit for the batch layout: the records (stream, number, positions) and their bytes
// as the leader encoded them (one buffer, one payload each).
struct Commit {
  std::vector<chorus::EventRecord> records;
  std::vector<chorus::replication::Payload> payloads;
};

// The batch layout's writer: a thread of its own fed like StorageWriter (a queue under a mutex),
// one transaction per commit.
class BatchWriter {
 public:
  BatchWriter(const chorus::Database& db, bool events_rows, std::string index_mode,
              std::function<void(int64_t, double)> on_durable)
      : db_(db.open_connection(true, true)),
        events_rows_(events_rows),
        mode_(std::move(index_mode)),
        on_durable_(std::move(on_durable)) {
    begin_ = prepare(db_, "BEGIN IMMEDIATE");
    commit_ = prepare(db_, "COMMIT");
    insert_row_ =
        events_rows_
            ? prepare(db_,
                      "INSERT INTO events(pos, end_pos, stream, number, event_id, type, flags,"
                      " created_ms, data, metadata) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)")
            : prepare(db_, "INSERT INTO log_batches(pos, end_pos, records) VALUES(?1,?2,?3)");
    if (events_rows_) {
      // Today's events rows, the stream index as one entry per run: (stream, first) -> (pos,
      // count); the events of a run are consecutive rows.
      insert_index_ =
          prepare(db_, "INSERT INTO stream_runs(stream, first, pos, count) VALUES(?1,?2,?3,?4)");
    } else if (mode_ == "text" || mode_ == "int") {
      insert_index_ = prepare(
          db_, "INSERT INTO stream_index(stream, number, batch, offset) VALUES(?1,?2,?3,?4)");
    } else if (mode_ == "runs") {
      insert_index_ = prepare(db_,
                              "INSERT INTO stream_runs(stream, first, batch, offset, count)"
                              " VALUES(?1,?2,?3,?4,?5)");
    }
    if (!events_rows_ && (mode_ == "int" || mode_ == "runs")) {
      insert_stream_ = prepare(db_, "INSERT INTO streams(name) VALUES(?1)");
    }
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "writer");
      run();
    });
  }
  ~BatchWriter() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    for (auto* s : {begin_, commit_, insert_row_, insert_index_, insert_stream_}) {
      sqlite3_finalize(s);
    }
    sqlite3_close(db_);
  }
  void submit(Commit c) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(c));
    }
    wake_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      Commit c;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return;
        c = std::move(queue_.front());
        queue_.pop_front();
      }
      write(c);
      on_durable_(c.records.back().log_end, thread_cpu_seconds());
    }
  }

  int64_t stream_id(const std::string& name) {
    const auto found = ids_.find(name);
    if (found != ids_.end()) return found->second;
    sqlite3_bind_text(insert_stream_, 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
    step_done(db_, insert_stream_, "insert stream");
    const int64_t id = sqlite3_last_insert_rowid(db_);
    ids_.emplace(name, id);
    return id;
  }

  void write_events(const Commit& c) {
    step_done(db_, begin_, "BEGIN");
    for (size_t i = 0; i < c.records.size();) {
      size_t j = i + 1;
      while (j < c.records.size() && c.records[j].stream == c.records[i].stream &&
             c.records[j].number == c.records[j - 1].number + 1) {
        ++j;
      }
      for (size_t k = i; k < j; ++k) {
        const auto& r = c.records[k];
        sqlite3_bind_int64(insert_row_, 1, r.position.prepare);
        sqlite3_bind_int64(insert_row_, 2, r.log_end);
        sqlite3_bind_text(insert_row_, 3, r.stream.data(), static_cast<int>(r.stream.size()),
                          SQLITE_STATIC);
        sqlite3_bind_int64(insert_row_, 4, r.number);
        sqlite3_bind_blob(insert_row_, 5, r.event_id.data, 16, SQLITE_STATIC);
        sqlite3_bind_text(insert_row_, 6, r.event_type.data(),
                          static_cast<int>(r.event_type.size()), SQLITE_STATIC);
        sqlite3_bind_int(insert_row_, 7, 0);
        sqlite3_bind_int64(insert_row_, 8, r.created_ms);
        sqlite3_bind_blob64(insert_row_, 9, r.data.data(), r.data.size(), SQLITE_STATIC);
        sqlite3_bind_blob64(insert_row_, 10, r.metadata.data(), r.metadata.size(), SQLITE_STATIC);
        step_done(db_, insert_row_, "insert event");
      }
      sqlite3_bind_text(insert_index_, 1, c.records[i].stream.data(),
                        static_cast<int>(c.records[i].stream.size()), SQLITE_STATIC);
      sqlite3_bind_int64(insert_index_, 2, c.records[i].number);
      sqlite3_bind_int64(insert_index_, 3, c.records[i].position.prepare);
      sqlite3_bind_int64(insert_index_, 4, static_cast<int64_t>(j - i));
      step_done(db_, insert_index_, "insert run");
      i = j;
    }
    step_done(db_, commit_, "COMMIT");
  }

  void write(const Commit& c) {
    if (events_rows_) return write_events(c);
    step_done(db_, begin_, "BEGIN");
    const int64_t row_pos = c.records.front().position.prepare;
    row_.clear();
    offsets_.clear();
    for (size_t i = 0; i < c.records.size(); ++i) {
      offsets_.push_back(row_.size());
      put_varint(row_, static_cast<uint64_t>(c.records[i].position.prepare - row_pos));
      put_varint(row_, c.payloads[i].size());
      row_.append(c.payloads[i].view());
    }
    sqlite3_bind_int64(insert_row_, 1, row_pos);
    sqlite3_bind_int64(insert_row_, 2, c.records.back().log_end);
    sqlite3_bind_blob64(insert_row_, 3, row_.data(), row_.size(), SQLITE_STATIC);
    step_done(db_, insert_row_, "insert row");
    if (mode_ == "text" || mode_ == "int") {
      for (size_t i = 0; i < c.records.size(); ++i) {
        const auto& r = c.records[i];
        if (mode_ == "text") {
          sqlite3_bind_text(insert_index_, 1, r.stream.data(), static_cast<int>(r.stream.size()),
                            SQLITE_STATIC);
        } else {
          sqlite3_bind_int64(insert_index_, 1, stream_id(r.stream));
        }
        sqlite3_bind_int64(insert_index_, 2, r.number);
        sqlite3_bind_int64(insert_index_, 3, row_pos);
        sqlite3_bind_int64(insert_index_, 4, static_cast<int64_t>(offsets_[i]));
        step_done(db_, insert_index_, "insert index");
      }
    } else if (mode_ == "runs") {
      for (size_t i = 0; i < c.records.size();) {
        size_t j = i + 1;
        while (j < c.records.size() && c.records[j].stream == c.records[i].stream &&
               c.records[j].number == c.records[j - 1].number + 1) {
          ++j;
        }
        sqlite3_bind_int64(insert_index_, 1, stream_id(c.records[i].stream));
        sqlite3_bind_int64(insert_index_, 2, c.records[i].number);
        sqlite3_bind_int64(insert_index_, 3, row_pos);
        sqlite3_bind_int64(insert_index_, 4, static_cast<int64_t>(offsets_[i]));
        sqlite3_bind_int64(insert_index_, 5, static_cast<int64_t>(j - i));
        step_done(db_, insert_index_, "insert run");
        i = j;
      }
    }
    step_done(db_, commit_, "COMMIT");
  }

  sqlite3* db_;
  bool events_rows_;
  std::string mode_;
  std::function<void(int64_t, double)> on_durable_;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* insert_row_ = nullptr;
  sqlite3_stmt* insert_index_ = nullptr;
  sqlite3_stmt* insert_stream_ = nullptr;
  std::unordered_map<std::string, int64_t> ids_;
  std::string row_;
  std::vector<size_t> offsets_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Commit> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

constexpr int kReadPage = 500;  // events per read call, as a client's page

// What a read does with each event: touch it (so nothing is optimized away).
struct Sink {
  uint64_t sum = 0;
  int64_t events = 0;
  void operator()(const chorus::RecordView& r) {
    sum += r.data.size() + r.stream.size() + static_cast<uint64_t>(r.number);
    ++events;
  }
};

// $all forward through the server's ReadConnection, in pages: µs of this thread's CPU per event
// read; `all` counts the events.
double read_all_rows(chorus::ReadConnection& c, Sink& all) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const double t0 = thread_cpu_seconds();
  int64_t from = 0;
  for (;;) {
    int64_t last = -1;
    const int n = c.all_rows(from, true, kMax, kReadPage, [&](const chorus::RecordView& r) {
      all(r);
      last = r.position.prepare;
    });
    if (n < kReadPage) break;
    from = last + 1;
  }
  return (thread_cpu_seconds() - t0) * 1e6 / static_cast<double>(all.events);
}

// Reads of today's layout through the server's ReadConnection. Returns µs of this thread's CPU
// per event read for $all forward and for `streams` streams forward.
std::pair<double, double> read_rows(const chorus::Database& db, int64_t streams) {
  chorus::ReadConnection c(db);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  Sink all;
  const double all_us = read_all_rows(c, all);
  Sink one;
  double t0 = thread_cpu_seconds();
  for (int64_t s = 0; s < streams; ++s) {
    const std::string name = "bench-0123abcd-" + std::to_string(s);
    int64_t first = 0;
    for (;;) {
      const int n = c.range_rows(name, first, kMax, true, kMax, kReadPage,
                                 [&one](const chorus::RecordView& r) { one(r); });
      first += n;
      if (n < kReadPage) break;
    }
  }
  const double stream_us = (thread_cpu_seconds() - t0) * 1e6 / static_cast<double>(one.events);
  std::cerr << "read rows: $all " << all.events << " events, streams " << one.events << "\n";
  return {all_us, stream_us};
}

// The events layout (rows, runs index): $all as today; a stream reads its runs, then each run's
// consecutive rows by position.
std::pair<double, double> read_events_runs(const chorus::Database& db, int64_t streams) {
  chorus::ReadConnection rc(db);
  Sink all;
  const double all_us = read_all_rows(rc, all);
  sqlite3* c = db.open_connection(false);
  Sink one;
  double t0 = thread_cpu_seconds();
  sqlite3_stmt* runs = prepare(c,
                               "SELECT first, pos, count FROM stream_runs WHERE stream=?1 AND"
                               " first>=?2 ORDER BY first LIMIT ?3");
  sqlite3_stmt* rows = prepare(c,
                               "SELECT pos, end_pos, stream, number, event_id, type, flags,"
                               " created_ms, data, metadata FROM events WHERE pos>=?1 ORDER BY pos"
                               " LIMIT ?2");
  for (int64_t s = 0; s < streams; ++s) {
    const std::string name = "bench-0123abcd-" + std::to_string(s);
    sqlite3_bind_text(runs, 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
    int64_t first = 0;
    for (;;) {
      sqlite3_bind_int64(runs, 2, first);
      sqlite3_bind_int(runs, 3, kReadPage);
      int n = 0;
      while (n < kReadPage && sqlite3_step(runs) == SQLITE_ROW) {
        sqlite3_bind_int64(rows, 1, sqlite3_column_int64(runs, 1));
        sqlite3_bind_int64(rows, 2, sqlite3_column_int64(runs, 2));
        while (sqlite3_step(rows) == SQLITE_ROW) {
          chorus::RecordView v;
          v.position.prepare = sqlite3_column_int64(rows, 0);
          v.stream = std::string_view(static_cast<const char*>(sqlite3_column_blob(rows, 2)),
                                      static_cast<size_t>(sqlite3_column_bytes(rows, 2)));
          v.number = sqlite3_column_int64(rows, 3);
          v.data = std::string_view(static_cast<const char*>(sqlite3_column_blob(rows, 8)),
                                    static_cast<size_t>(sqlite3_column_bytes(rows, 8)));
          one(v);
          ++n;
        }
        sqlite3_reset(rows);
      }
      sqlite3_reset(runs);
      first += n;
      if (n < kReadPage) break;
    }
  }
  sqlite3_finalize(runs);
  sqlite3_finalize(rows);
  const double stream_us = (thread_cpu_seconds() - t0) * 1e6 / static_cast<double>(one.events);
  std::cerr << "read events/runs: $all " << all.events << " events, streams " << one.events << "\n";
  sqlite3_close(c);
  return {all_us, stream_us};
}

// The same reads of the batch layout: $all decodes whole rows; a stream reads its index entries
// and decodes each event at its offset, fetching a row only when it changes.
std::pair<double, double> read_batches(const chorus::Database& db, const std::string& mode,
                                       int64_t streams) {
  sqlite3* c = db.open_connection(false);
  Sink all;
  double t0 = thread_cpu_seconds();
  {
    // Rows hold ~commit events each: a page of rows is about a client's page of events.
    sqlite3_stmt* s = prepare(c,
                              "SELECT pos, records FROM log_batches WHERE pos>=?1 ORDER BY pos"
                              " LIMIT ?2");
    int64_t from = 0;
    for (;;) {
      sqlite3_bind_int64(s, 1, from);
      sqlite3_bind_int(s, 2, 16);
      int rows = 0;
      while (sqlite3_step(s) == SQLITE_ROW) {
        ++rows;
        const int64_t pos = sqlite3_column_int64(s, 0);
        const std::string_view row(static_cast<const char*>(sqlite3_column_blob(s, 1)),
                                   static_cast<size_t>(sqlite3_column_bytes(s, 1)));
        chorus::RecordView v;
        for (size_t off = 0; off < row.size();) {
          off = row_record(row, pos, off, v);
          all(v);
        }
        from = pos + 1;
      }
      sqlite3_reset(s);
      if (rows < 16) break;
    }
    sqlite3_finalize(s);
  }
  const double all_us = (thread_cpu_seconds() - t0) * 1e6 / static_cast<double>(all.events);
  Sink one;
  if (mode == "none") {
    sqlite3_close(c);
    return {all_us, 0};
  }
  t0 = thread_cpu_seconds();
  {
    sqlite3_stmt* id =
        mode == "text" ? nullptr : prepare(c, "SELECT id FROM streams WHERE name=?1");
    sqlite3_stmt* index =
        mode == "runs"
            ? prepare(c,
                      "SELECT first, batch, offset, count FROM stream_runs WHERE stream=?1 AND"
                      " first>=?2 ORDER BY first LIMIT ?3")
            : prepare(c,
                      "SELECT number, batch, offset, 1 FROM stream_index WHERE stream=?1 AND"
                      " number>=?2 ORDER BY number LIMIT ?3");
    sqlite3_stmt* row = prepare(c, "SELECT records FROM log_batches WHERE pos=?1");
    for (int64_t s = 0; s < streams; ++s) {
      const std::string name = "bench-0123abcd-" + std::to_string(s);
      if (mode == "text") {
        sqlite3_bind_text(index, 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
      } else {
        sqlite3_bind_text(id, 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
        if (sqlite3_step(id) != SQLITE_ROW) die(c, "stream id");
        sqlite3_bind_int64(index, 1, sqlite3_column_int64(id, 0));
        sqlite3_reset(id);
      }
      int64_t first = 0;
      for (;;) {
        sqlite3_bind_int64(index, 2, first);
        sqlite3_bind_int(index, 3, kReadPage);
        int64_t current = -1;
        std::string_view blob;
        int n = 0;
        while (n < kReadPage && sqlite3_step(index) == SQLITE_ROW) {
          const int64_t batch = sqlite3_column_int64(index, 1);
          auto offset = static_cast<size_t>(sqlite3_column_int64(index, 2));
          const int64_t count = sqlite3_column_int64(index, 3);
          if (batch != current) {
            sqlite3_reset(row);
            sqlite3_bind_int64(row, 1, batch);
            if (sqlite3_step(row) != SQLITE_ROW) die(c, "row");
            blob = std::string_view(static_cast<const char*>(sqlite3_column_blob(row, 0)),
                                    static_cast<size_t>(sqlite3_column_bytes(row, 0)));
            current = batch;
          }
          chorus::RecordView v;
          for (int64_t k = 0; k < count && n < kReadPage; ++k, ++n) {
            offset = row_record(blob, batch, offset, v);
            one(v);
          }
        }
        sqlite3_reset(index);
        sqlite3_reset(row);
        first += n;
        if (n < kReadPage) break;
      }
    }
    for (auto* st : {id, index, row}) sqlite3_finalize(st);
  }
  const double stream_us = (thread_cpu_seconds() - t0) * 1e6 / static_cast<double>(one.events);
  std::cerr << "read batches: $all " << all.events << " events, streams " << one.events << "\n";
  sqlite3_close(c);
  return {all_us, stream_us};
}

}  // namespace

int main(int argc, char** argv) {
  std::string folder;
  int64_t events = 200000;
  int64_t streams = 64;
  int64_t batch = 1;
  int64_t commit = 21;
  int64_t event_bytes = 256;
  std::string layout = "rows";
  std::string index_mode;
  int64_t read_streams = 0;
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
    } else if (k == "--layout") {
      layout = v;
    } else if (k == "--index") {
      index_mode = v;
    } else if (k == "--event-size") {
      event_bytes = std::atoll(v);
    } else if (k == "--read") {
      read_streams = std::atoll(v);
    } else if (k == "--memstatus") {
      // Before SQLite initializes: its allocation statistics (a global mutex per allocation).
      if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, std::atoi(v)) != SQLITE_OK)
        die(nullptr, "config");
    } else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (index_mode.empty())
    index_mode = layout == "rows" ? "sqlite" : layout == "events" ? "runs" : "text";
  const bool rows_ok = layout == "rows" && index_mode == "sqlite";
  const bool events_ok = layout == "events" && index_mode == "runs";
  const bool batch_ok = layout == "batch" && (index_mode == "text" || index_mode == "int" ||
                                              index_mode == "runs" || index_mode == "none");
  if (folder.empty() || events < 1 || streams < 1 || batch < 1 || commit < batch ||
      read_streams < 0 || read_streams > streams || !(rows_ok || batch_ok || events_ok)) {
    std::cerr << "usage: storage-writer-bench --db DIR [--events N] [--streams S] [--batch B]"
                 " [--commit C >= B] [--event-size BYTES] [--layout rows|batch|events]"
                 " [--index sqlite (rows), text|int|runs|none (batch), runs (events)]"
                 " [--read STREAMS]\n";
    return 2;
  }
  std::filesystem::remove_all(folder);
  chorus::Database db(chorus::StorageLocation{folder, false});
  sqlite3* side = nullptr;
  // Any SQLite failure on the side connection ends the run: a silently skipped step would
  // measure another layout than the one named.
  if (layout == "events") {
    side = db.open_connection(true);
    exec(side,
         "CREATE TABLE stream_runs(stream TEXT NOT NULL, first INTEGER NOT NULL,"
         " pos INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY(stream, first))"
         " WITHOUT ROWID");
  } else if (layout == "batch") {
    side = db.open_connection(true);
    exec(side, "DROP TABLE stream_index");  // the server's; this layout has its own
    exec(side,
         "CREATE TABLE log_batches(pos INTEGER PRIMARY KEY, end_pos INTEGER NOT NULL,"
         " records BLOB NOT NULL)");
    if (index_mode == "text") {
      exec(side,
           "CREATE TABLE stream_index(stream TEXT NOT NULL, number INTEGER NOT NULL,"
           " batch INTEGER NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY(stream, number))"
           " WITHOUT ROWID");
    } else if (index_mode == "int" || index_mode == "runs") {
      exec(side, "CREATE TABLE streams(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)");
      exec(side, index_mode == "int"
                     ? "CREATE TABLE stream_index(stream INTEGER NOT NULL, number INTEGER NOT NULL,"
                       " batch INTEGER NOT NULL, offset INTEGER NOT NULL,"
                       " PRIMARY KEY(stream, number)) WITHOUT ROWID"
                     : "CREATE TABLE stream_runs(stream INTEGER NOT NULL, first INTEGER NOT NULL,"
                       " batch INTEGER NOT NULL, offset INTEGER NOT NULL, count INTEGER NOT NULL,"
                       " PRIMARY KEY(stream, first)) WITHOUT ROWID");
    }
  }
  int64_t commits = 0;
  std::mutex mutex;
  std::condition_variable durable;
  int64_t durable_end = 0;
  double writer_cpu = 0;  // the writer thread's CPU seconds at its last commit
  std::string failure;
  auto on_durable = [&](int64_t end, double thread_cpu) {
    std::lock_guard lock(mutex);
    durable_end = end;
    writer_cpu = thread_cpu;
    durable.notify_all();
  };
  std::unique_ptr<chorus::StorageWriter> writer;
  std::unique_ptr<BatchWriter> batch_writer;
  if (layout == "rows") {
    writer = std::make_unique<chorus::StorageWriter>(
        db,
        [&](int64_t end, uint64_t, const chorus::FlushStats&) {
          on_durable(end, thread_cpu_seconds());
        },
        [&](const std::string& message) {
          std::lock_guard lock(mutex);
          failure = message;
          durable.notify_all();
        });
  } else {
    batch_writer = std::make_unique<BatchWriter>(db, layout == "events", index_mode, on_durable);
  }
  const std::string data(static_cast<size_t>(event_bytes), 'x');
  std::vector<int64_t> next_number(static_cast<size_t>(streams), 0);
  int64_t position = 0;
  int64_t written = 0;
  int64_t stream = 0;
  const double cpu0 = cpu_seconds();
  double writer_cpu0 = -1;
  const auto t0 = std::chrono::steady_clock::now();
  while (written < events) {
    // One transaction's worth of stream writes of `batch` events, queued as one LogBatch so
    // that the writer takes them in one group commit. Encoded as the leader does for
    // replication (the batch layout stores those bytes; positions advance by them).
    std::vector<chorus::EventRecord> records;
    int64_t in_group = 0;
    while (in_group + batch <= commit && written + in_group < events) {
      const std::string name = "bench-0123abcd-" + std::to_string(stream);
      for (int64_t k = 0; k < batch; ++k) {
        chorus::EventRecord r;
        r.stream = name;
        r.number = next_number[static_cast<size_t>(stream)]++;
        // A counter, not random_guid(): getrandom() would be a tenth of this benchmark's CPU.
        std::memcpy(r.event_id.data, &written, sizeof written);
        std::memcpy(r.event_id.data + 8, &in_group, sizeof in_group);
        r.event_type = "bench";
        r.data = data;
        r.created_ms = 1764633600000 + written + in_group;
        records.push_back(std::move(r));
        ++in_group;
      }
      stream = (stream + 1) % streams;
    }
    auto payloads = chorus::encode_records(records);
    for (size_t i = 0; i < records.size(); ++i) {
      auto& r = records[i];
      r.position.prepare = position;
      position += 64 + static_cast<int64_t>(payloads[i].size());
      r.log_end = position;
      r.position.commit = r.log_end;
    }
    if (writer) {
      chorus::LogBatch all;
      for (auto& r : records) all.entries.emplace_back(std::move(r));
      if (!writer->submit(std::move(all))) {
        std::cerr << "submit refused\n";
        return 1;
      }
    } else {
      batch_writer->submit(Commit{std::move(records), std::move(payloads)});
    }
    written += in_group;
    std::unique_lock lock(mutex);
    durable.wait(lock, [&] { return durable_end >= position || !failure.empty(); });
    if (!failure.empty()) {
      std::cerr << "storage failed: " << failure << "\n";
      return 1;
    }
    // The writer thread's CPU counts from the end of its first commit (its start-up aside).
    if (writer_cpu0 < 0) writer_cpu0 = writer_cpu;
    lock.unlock();
    ++commits;
  }
  const double cpu = cpu_seconds() - cpu0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double writer_us = (writer_cpu - writer_cpu0) * 1e6 /
                           static_cast<double>(std::max<int64_t>(1, commits - 1)) *
                           static_cast<double>(commits) / static_cast<double>(written);
  writer.reset();
  batch_writer.reset();
  sqlite3_close(side);
  double read_all_us = 0;
  double read_stream_us = 0;
  if (read_streams > 0) {
    std::tie(read_all_us, read_stream_us) = layout == "rows" ? read_rows(db, read_streams)
                                            : layout == "events"
                                                ? read_events_runs(db, read_streams)
                                                : read_batches(db, index_mode, read_streams);
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(std::filesystem::path(folder) / "chorus.db", ec);
  std::printf(
      "{\"layout\":\"%s\",\"index\":\"%s\",\"events\":%lld,\"streams\":%lld,\"batch\":%lld,"
      "\"commit\":%lld,\"events_per_s\":%.0f,\"cpu_us_per_event\":%.2f,"
      "\"writer_us_per_event\":%.2f,\"read_all_us_per_event\":%.3f,"
      "\"read_stream_us_per_event\":%.3f,\"file_mb\":%.1f}\n",
      layout.c_str(), index_mode.c_str(), static_cast<long long>(written),
      static_cast<long long>(streams), static_cast<long long>(batch),
      static_cast<long long>(commit), written / wall, cpu * 1e6 / static_cast<double>(written),
      writer_us, read_all_us, read_stream_us, static_cast<double>(size) / 1e6);
  return 0;
}
