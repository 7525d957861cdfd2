// The stream index's newest entries, kept in memory until the storage writer adds them to the
// table stream_index in bulk. Indexing each event as it is written makes every group commit
// rewrite one index leaf per stream it touches (a 4 KB WAL frame each: three quarters of the
// bytes a node wrote per event at 64 writers); indexed every kStreamIndexDeferredMax events,
// each leaf is written once for many events. The events themselves are durable at once, so the
// tail is rebuilt from them at start (Database indexes them before anything reads).
// A reader takes its view of the tail first and queries the table second: the table then holds
// at least every entry below the view's indexed_end, so the two together miss nothing.
// Threading: the storage writer changes it, reader threads copy from it; one mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace chorus {

// Events whose index entries may wait in memory: the bulk insert's size (and so the commit it
// lengthens), and the most a stream read's tail lookup copies.
inline constexpr size_t kStreamIndexDeferredMax = 4096;

struct TailEntry {
  int64_t number = 0;
  int64_t position = 0;
};

class StreamTail {
 public:
  explicit StreamTail(int64_t indexed_end) : indexed_end_(indexed_end) {}

  struct View {
    int64_t indexed_end = 0;         // every event at a position below it is in stream_index
    std::vector<TailEntry> entries;  // in the order asked for
  };
  // The entries of `stream` with first <= number <= last and position <= max_pos: the `limit`
  // lowest numbers in ascending order, or the `limit` highest in descending order. (A stream's
  // numbers grow with their positions.)
  View of(const std::string& stream, int64_t first, int64_t last, int64_t max_pos, size_t limit,
          bool ascending) const;

  // One committed transaction of the writer, applied at once: entries at positions >=
  // truncated_to are dropped, `added` (in log order) joins, and when `indexed_to` is set every
  // event below it is now in the table, so the entries below it are dropped.
  void apply(std::optional<int64_t> truncated_to,
             std::vector<std::pair<std::string, TailEntry>> added,
             std::optional<int64_t> indexed_to);

  // A scavenge removed the event: its entry goes (the writer's bulk insert would index it).
  void remove(const std::string& stream, int64_t number);

  int64_t indexed_end() const;
  size_t size() const;  // entries held (events not yet in the table)

 private:
  mutable std::mutex mutex_;
  int64_t indexed_end_;
  std::unordered_map<std::string, std::vector<TailEntry>> streams_;
  size_t size_ = 0;
};

}  // namespace chorus
