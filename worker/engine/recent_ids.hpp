// RecentIds: the event ids of the newest records in the log, for idempotent retries (EventStore's
// `_committedEvents` cache in its IndexWriter). Bounded by bytes: the oldest ids are forgotten
// once the entries (a fixed-size slot, two index cells and the stream name's bytes) exceed
// kRecentIdsBytesMax. Records must be added in log order. Its storage is a ring of slots, an
// open-addressing index and one buffer of stream names, all grown by doubling: once grown, adding
// an id allocates nothing (the unordered_map it replaced allocated a node, and a heap copy of any
// stream name longer than 15 bytes, for every event). Not thread-safe: one owner thread.
#pragma once

#include "common/guid.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

// What the remembered ids may occupy. EventStore bounds its cache at 8 MiB counting
// 28 + 2 × (stream name length) bytes per id; one id here counts 56 + (name length) bytes, so 16
// MiB keeps at least as many ids as EventStore for any stream name (≈ 250,000 for 10-byte names).
// While the ring and the name buffer grow by doubling they may hold up to twice this.
inline constexpr size_t kRecentIdsBytesMax = 16u << 20;

class RecentIds {
 public:
  struct Hit {
    int64_t number = 0;
    int64_t position = 0;  // the record's log position
    int64_t end = 0;       // the log position after it
  };

  explicit RecentIds(size_t bytes_max = kRecentIdsBytesMax);

  // Remembers a record; its position must not be below any remembered record's. An id already
  // remembered points at the newer record from now on.
  void add(const Guid& id, std::string_view stream, int64_t number, int64_t position, int64_t end);
  // The newest remembered record with this id, if it is in `stream`.
  const Hit* find(const Guid& id, std::string_view stream) const;
  // Forgets every record at or after `position` (a truncated suffix of the log).
  void truncate(int64_t position);

  size_t size() const { return static_cast<size_t>(tail_ - head_); }
  // Counted bytes of what is remembered (kept at or below bytes_max).
  size_t bytes() const { return size() * kSlotCost + name_bytes_; }
  // The cost one id counts besides its stream name.
  static constexpr size_t kSlotCost = 56;

 private:
  struct Slot {
    Guid id;
    Hit hit;
    uint32_t name_at = 0;  // absolute offset in the name buffer, modulo 2^32
    uint32_t name_size = 0;
  };
  static_assert(sizeof(Slot) + 2 * sizeof(uint32_t) <= kSlotCost);

  static size_t hash(const Guid& id);
  size_t ring_index(uint64_t seq) const { return static_cast<size_t>(seq) & (ring_.size() - 1); }
  std::string_view name_of(const Slot& s) const;
  // The index cell holding this ring index, or npos.
  size_t cell_of(const Guid& id, size_t ring_at) const;
  void index_insert(size_t ring_at);
  void index_erase(size_t cell);
  void pop_front();
  void grow();

  size_t bytes_max_;
  std::vector<Slot> ring_;  // power-of-two size; live slots are the seqs [head_, tail_)
  uint64_t head_ = 0, tail_ = 0;
  std::vector<uint32_t> index_;  // ring index + 1 (0: empty); twice the ring's size
  std::string names_;            // names_[0] is at absolute offset names_base_
  uint64_t names_base_ = 0;
  size_t name_bytes_ = 0;  // names of live slots
};

}  // namespace chorus
