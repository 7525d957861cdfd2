// RecentIds implementation: a FIFO ring in log order (the oldest is forgotten first, a truncation
// pops the newest), an index with linear probing and backward-shift deletion, stream names in
// one buffer in the same order.
#include "worker/engine/recent_ids.hpp"

#include <cstring>

namespace chorus {
namespace {

constexpr size_t kInitialSlots = 1024;
constexpr size_t kNpos = static_cast<size_t>(-1);
// The name buffer drops its dead prefix once that is at least half of it and this long.
constexpr size_t kNameCompactBytesMin = 64u << 10;

}  // namespace

RecentIds::RecentIds(size_t bytes_max) : bytes_max_(bytes_max) {}

size_t RecentIds::hash(const Guid& id) {
  // Clients choose their ids (not always random): mix all 16 bytes (murmur3's finalizer).
  uint64_t a = 0, b = 0;
  std::memcpy(&a, id.data, 8);
  std::memcpy(&b, id.data + 8, 8);
  uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull);
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return static_cast<size_t>(h);
}

std::string_view RecentIds::name_of(const Slot& s) const {
  const auto at = static_cast<uint32_t>(s.name_at - static_cast<uint32_t>(names_base_));
  return std::string_view(names_).substr(at, s.name_size);
}

size_t RecentIds::cell_of(const Guid& id, size_t ring_at) const {
  if (index_.empty()) return kNpos;
  const size_t mask = index_.size() - 1;
  for (size_t c = hash(id) & mask; index_[c] != 0; c = (c + 1) & mask) {
    if (index_[c] - 1 == ring_at) return c;
  }
  return kNpos;
}

void RecentIds::index_insert(size_t ring_at) {
  const size_t mask = index_.size() - 1;
  const Guid& id = ring_[ring_at].id;
  size_t c = hash(id) & mask;
  for (; index_[c] != 0; c = (c + 1) & mask) {
    if (ring_[index_[c] - 1].id == id) break;  // the newer record replaces the older one
  }
  index_[c] = static_cast<uint32_t>(ring_at + 1);
}

void RecentIds::index_erase(size_t cell) {
  // Backward-shift deletion: later entries of the probe run move up, so no tombstones build up.
  const size_t mask = index_.size() - 1;
  size_t hole = cell;
  for (size_t c = (cell + 1) & mask; index_[c] != 0; c = (c + 1) & mask) {
    const size_t home = hash(ring_[index_[c] - 1].id) & mask;
    // Move the entry at c into the hole unless its home lies cyclically in (hole, c].
    const bool home_after_hole =
        hole <= c ? (home > hole && home <= c) : (home > hole || home <= c);
    if (!home_after_hole) {
      index_[hole] = index_[c];
      hole = c;
    }
  }
  index_[hole] = 0;
}

void RecentIds::grow() {
  const size_t old_size = ring_.size();
  const size_t new_size = old_size == 0 ? kInitialSlots : old_size * 2;
  std::vector<Slot> ring(new_size);
  for (uint64_t s = head_; s < tail_; ++s) {
    ring[static_cast<size_t>(s) & (new_size - 1)] = ring_[static_cast<size_t>(s) & (old_size - 1)];
  }
  ring_ = std::move(ring);
  index_.assign(new_size * 2, 0);
  for (uint64_t s = head_; s < tail_; ++s) index_insert(ring_index(s));  // oldest first
}

void RecentIds::add(const Guid& id, std::string_view stream, int64_t number, int64_t position,
                    int64_t end) {
  // Forget first, then grow only if still full: the ring stays within twice what the bytes allow.
  while (size() > 0 && bytes() + kSlotCost + stream.size() > bytes_max_) pop_front();
  if (size() == ring_.size()) grow();
  // Names go to the end of the buffer; its dead prefix (forgotten names) is dropped now and then.
  if (head_ < tail_) {
    const Slot& oldest = ring_[ring_index(head_)];
    const auto dead = static_cast<uint32_t>(oldest.name_at - static_cast<uint32_t>(names_base_));
    if (dead >= kNameCompactBytesMin && dead >= names_.size() / 2) {
      names_.erase(0, dead);
      names_base_ += dead;
    }
  } else {
    names_base_ += names_.size();
    names_.clear();
  }
  const size_t at = ring_index(tail_);
  Slot& s = ring_[at];
  s.id = id;
  s.hit = Hit{number, position, end};
  s.name_at = static_cast<uint32_t>(names_base_ + names_.size());
  s.name_size = static_cast<uint32_t>(stream.size());
  names_.append(stream);
  name_bytes_ += stream.size();
  ++tail_;
  index_insert(at);
}

void RecentIds::pop_front() {
  const size_t at = ring_index(head_);
  const Slot& s = ring_[at];
  if (const size_t c = cell_of(s.id, at); c != kNpos) index_erase(c);
  name_bytes_ -= s.name_size;
  ++head_;
}

const RecentIds::Hit* RecentIds::find(const Guid& id, std::string_view stream) const {
  if (index_.empty()) return nullptr;
  const size_t mask = index_.size() - 1;
  for (size_t c = hash(id) & mask; index_[c] != 0; c = (c + 1) & mask) {
    const Slot& s = ring_[index_[c] - 1];
    if (s.id != id) continue;
    return name_of(s) == stream ? &s.hit : nullptr;
  }
  return nullptr;
}

void RecentIds::truncate(int64_t position) {
  while (tail_ > head_) {
    const size_t at = ring_index(tail_ - 1);
    const Slot& s = ring_[at];
    if (s.hit.position < position) break;
    if (const size_t c = cell_of(s.id, at); c != kNpos) index_erase(c);
    name_bytes_ -= s.name_size;
    names_.resize(static_cast<uint32_t>(s.name_at - static_cast<uint32_t>(names_base_)));
    --tail_;
  }
}

}  // namespace chorus
