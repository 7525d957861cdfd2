#include "worker/engine/stream_tail.hpp"

#include <algorithm>

namespace chorus {

StreamTail::View StreamTail::of(const std::string& stream, int64_t first, int64_t last,
                                int64_t max_pos, size_t limit, bool ascending) const {
  View v;
  std::lock_guard lock(mutex_);
  v.indexed_end = indexed_end_;
  const auto it = streams_.find(stream);
  if (it == streams_.end() || limit == 0) return v;
  const auto& entries = it->second;
  const auto begin = std::lower_bound(entries.begin(), entries.end(), first,
                                      [](const TailEntry& e, int64_t n) { return e.number < n; });
  auto end = std::upper_bound(begin, entries.end(), last,
                              [](int64_t n, const TailEntry& e) { return n < e.number; });
  end = std::upper_bound(begin, end, max_pos,
                         [](int64_t p, const TailEntry& e) { return p < e.position; });
  const auto count = std::min(limit, static_cast<size_t>(end - begin));
  if (ascending) {
    v.entries.assign(begin, begin + static_cast<long>(count));
  } else {
    v.entries.assign(std::make_reverse_iterator(end),
                     std::make_reverse_iterator(end) + static_cast<long>(count));
  }
  return v;
}

void StreamTail::apply(std::optional<int64_t> truncated_to,
                       std::vector<std::pair<std::string, TailEntry>> added,
                       std::optional<int64_t> indexed_to) {
  std::lock_guard lock(mutex_);
  if (truncated_to) {
    indexed_end_ = std::min(indexed_end_, *truncated_to);
    for (auto it = streams_.begin(); it != streams_.end();) {
      auto& entries = it->second;
      const auto from = std::find_if(entries.begin(), entries.end(), [&](const TailEntry& e) {
        return e.position >= *truncated_to;
      });
      size_ -= static_cast<size_t>(entries.end() - from);
      entries.erase(from, entries.end());
      it = entries.empty() ? streams_.erase(it) : std::next(it);
    }
  }
  if (indexed_to) {
    // Everything committed so far is in the table: what was added here too.
    streams_.clear();
    size_ = 0;
    indexed_end_ = std::max(indexed_end_, *indexed_to);
    return;
  }
  for (auto& [stream, entry] : added) {
    streams_[stream].push_back(entry);
    ++size_;
  }
}

void StreamTail::remove(const std::string& stream, int64_t number) {
  std::lock_guard lock(mutex_);
  const auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  auto& entries = it->second;
  const auto at = std::lower_bound(entries.begin(), entries.end(), number,
                                   [](const TailEntry& e, int64_t n) { return e.number < n; });
  if (at == entries.end() || at->number != number) return;
  entries.erase(at);
  --size_;
  if (entries.empty()) streams_.erase(it);
}

int64_t StreamTail::indexed_end() const {
  std::lock_guard lock(mutex_);
  return indexed_end_;
}

size_t StreamTail::size() const {
  std::lock_guard lock(mutex_);
  return size_;
}

}  // namespace chorus
