// BuiltinUserGate (see builtin_user_gate.hpp).
#include "worker/engine/builtin_user_gate.hpp"

#include <algorithm>
#include <utility>

namespace chorus {
namespace {

constexpr std::array<std::string_view, BuiltinUserGate::kLogins> kBuiltinLogins{"admin", "ops"};

}  // namespace

std::optional<size_t> BuiltinUserGate::index_of(std::string_view login) {
  for (size_t i = 0; i < kBuiltinLogins.size(); ++i) {
    if (kBuiltinLogins[i] == login) return i;
  }
  return std::nullopt;
}

std::string_view BuiltinUserGate::login_at(size_t index) { return kBuiltinLogins.at(index); }

bool BuiltinUserGate::open(std::string_view login) const {
  const std::optional<size_t> index = index_of(login);
  return !index || is_open(*index);
}

bool BuiltinUserGate::hold(size_t index, int64_t now_ms, Resume resume) {
  if (held_count_ >= kBuiltinUserWaitersMax) return false;
  held_.at(index).push_back(Held{now_ms + kBuiltinUserWaitMs, std::move(resume)});
  held_count_ += 1;
  return true;
}

std::vector<BuiltinUserGate::Resume> BuiltinUserGate::open_now(size_t index) {
  open_.at(index).store(true, std::memory_order_release);
  std::vector<Resume> resumed;
  for (Held& h : held_[index]) resumed.push_back(std::move(h.resume));
  held_count_ -= held_[index].size();
  held_[index].clear();
  return resumed;
}

std::vector<BuiltinUserGate::Resume> BuiltinUserGate::expire(int64_t now_ms) {
  std::vector<Resume> expired;
  for (std::vector<Held>& held : held_) {
    const auto first_live = std::find_if(held.begin(), held.end(),
                                         [&](const Held& h) { return h.deadline_ms > now_ms; });
    for (auto it = held.begin(); it != first_live; ++it) expired.push_back(std::move(it->resume));
    held_count_ -= static_cast<size_t>(first_live - held.begin());
    held.erase(held.begin(), first_live);
  }
  return expired;
}

std::vector<BuiltinUserGate::Resume> BuiltinUserGate::take_all() {
  std::vector<Resume> all;
  for (std::vector<Held>& held : held_) {
    for (Held& h : held) all.push_back(std::move(h.resume));
    held.clear();
  }
  held_count_ = 0;
  return all;
}

std::optional<int64_t> BuiltinUserGate::next_deadline_ms() const {
  std::optional<int64_t> next;
  for (const std::vector<Held>& held : held_) {
    if (!held.empty() && (!next || held.front().deadline_ms < *next)) {
      next = held.front().deadline_ms;
    }
  }
  return next;
}

}  // namespace chorus
