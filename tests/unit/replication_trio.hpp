// Trio: three replication cores wired to each other in memory, for the leader-loss and
// leader-progress tests. Delivery is in order and storage is durable at once; a held link
// (from, to) keeps its messages (a connection busy with one large message) until released.
#pragma once

#include "worker/replication/core.hpp"

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace chorus::replication::test_support {

class Trio : public LogReader {
 public:
  // Core i's random seed is (i + 1) * seed_step: each test file keeps the elections its
  // expectations were written for.
  explicit Trio(uint64_t seed_step) {
    for (int i = 0; i < 3; ++i) ids_.push_back("n" + std::to_string(i));
    for (int i = 0; i < 3; ++i) {
      Config c;
      c.self = ids_[static_cast<size_t>(i)];
      c.cluster_size = 3;
      c.seed = static_cast<uint64_t>(i + 1) * seed_step;
      cores_[i] = std::make_unique<Core>(c, InitialState{}, *this);
      cores_[i]->set_voters(ids_);
    }
  }
  std::vector<Entry> read(int64_t, size_t) override { return {}; }  // everything is buffered

  void process(int i) {
    for (auto r = cores_[i]->ready(); !r.empty(); r = cores_[i]->ready()) {
      if (!r.append.empty()) cores_[i]->durable(r.append.back().end);
      for (auto& m : r.messages) {
        if (std::holds_alternative<Subscribe>(m.body)) ++subscribes_;
        inflight_.push_back(m);
      }
    }
  }
  // Delivers everything but what waits on a held link; messages to a stopped core are lost.
  void deliver() {
    std::deque<Message> later;
    while (!inflight_.empty()) {
      const Message m = inflight_.front();
      inflight_.pop_front();
      const int to = index(m.to);
      if (!cores_[to]) continue;
      if (held_.count({index(m.from), to}) != 0) {
        later.push_back(m);
        continue;
      }
      cores_[to]->step(m);
      process(to);
    }
    inflight_ = std::move(later);
  }
  void tick() {
    for (auto& [i, core] : cores_) {
      if (!core) continue;
      core->tick();
      process(i);
    }
    deliver();
  }
  // Ticks until exactly one live core leads; the ticks it took, or -1 after `ticks_max`.
  int ticks_until_leader(int ticks_max) {
    for (int t = 1; t <= ticks_max; ++t) {
      tick();
      if (leader() >= 0) return t;
    }
    return -1;
  }
  int leader() {
    int found = -1, count = 0;
    for (auto& [i, core] : cores_) {
      if (core && core->role() == Role::Leader) found = i, ++count;
    }
    return count == 1 ? found : -1;
  }

  // The process dies: what was on its way to it is lost.
  void kill(int i) {
    cores_[i].reset();
    std::erase_if(inflight_, [&](const Message& m) { return m.to == id(i); });
  }
  // Neither ticks nor answers any more, and what it was still sending never arrives.
  void freeze(int i) {
    cores_[i].reset();
    std::erase_if(inflight_, [&](const Message& m) { return m.from == id(i); });
  }
  // `at` is told that its connection to `peer` closed.
  void lost(int at, int peer) {
    cores_[at]->peer_lost(id(peer));
    process(at);
    deliver();
  }
  void hold(int from, int to) { held_.insert({from, to}); }
  void release(int from, int to) {
    held_.erase({from, to});
    deliver();
  }
  // `at` reads more bytes of a message from `from` whose connection last carried an Append of
  // `epoch`.
  void progress(int at, int from, int64_t epoch) {
    cores_[at]->leader_progress(id(from), epoch);
    process(at);
    deliver();
  }

  int64_t campaigns() const {
    int64_t n = 0;
    for (const auto& [i, core] : cores_) n += core ? core->elections_started() : 0;
    return n;
  }
  int subscribes() const { return subscribes_; }
  Core& core(int i) { return *cores_[i]; }
  const NodeId& id(int i) const { return ids_[static_cast<size_t>(i)]; }
  int index(const NodeId& node) const {
    for (int i = 0; i < 3; ++i)
      if (ids_[static_cast<size_t>(i)] == node) return i;
    return -1;
  }

 private:
  std::vector<NodeId> ids_;
  std::map<int, std::unique_ptr<Core>> cores_;
  std::deque<Message> inflight_;
  std::set<std::pair<int, int>> held_;
  int subscribes_ = 0;
};

}  // namespace chorus::replication::test_support
