// Simulation implementation. Design: one event queue ordered by (simulated time, scheduling
// order); a step is one tick (kTickMs) of simulated time in which every due event runs. Each
// node is a Core plus the adapter the worker will have: it persists hard state, truncates and
// appends its log (appends are volatile until the simulated disk syncs them), sends messages
// and records the commit position. Invariants are checked as each Ready is applied, so the
// first violation is reported at the exact event that caused it.
#include "tests/sim/sim.hpp"

#include <algorithm>
#include <iostream>
#include <sstream>
#include <type_traits>
#include <variant>

namespace chorus::sim {
namespace {

using replication::Role;

// A write proposed on a leader, waiting for that leader to see it committed in the same epoch.
struct Pending {
  int64_t position = 0;
  int64_t end = 0;
  int64_t epoch = 0;
  std::string payload;
};

std::string short_payload(const Entry& e) {
  if (e.is_epoch_record) return "epoch-record(" + std::to_string(e.epoch) + ")";
  const std::string_view payload = e.payload;
  return std::string(payload.substr(0, payload.find(':')));
}

std::string describe_entry(const Entry& e) {
  std::ostringstream out;
  out << "[" << e.position << "," << e.end << ") e" << e.epoch << " " << short_payload(e);
  return out.str();
}

std::string describe_body(const replication::Body& body) {
  std::ostringstream out;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, replication::VoteRequest>) {
          out << (m.pre ? "PreVoteRequest e" : "VoteRequest e") << m.epoch
              << " last_epoch=" << m.last_epoch << " log_end=" << m.log_end
              << " prio=" << m.priority;
        } else if constexpr (std::is_same_v<T, replication::VoteResponse>) {
          out << (m.pre ? "PreVoteResponse e" : "VoteResponse e") << m.epoch
              << (m.granted ? " granted" : " refused");
        } else if constexpr (std::is_same_v<T, replication::Subscribe>) {
          out << "Subscribe e" << m.epoch << " log_end=" << m.log_end << " epochs=";
          for (const auto& r : m.epochs) out << r.number << "@" << r.position << ",";
        } else if constexpr (std::is_same_v<T, replication::Append>) {
          out << "Append e" << m.epoch << " start=" << m.start << (m.sync ? " sync" : "")
              << " n=" << m.entries.size() << " commit=" << m.commit_end;
          if (!m.entries.empty()) out << " last_end=" << m.entries.back().end;
        } else {
          out << "AppendAck e" << m.epoch << " log_end=" << m.log_end
              << " durable=" << m.durable_end;
        }
      },
      body);
  return out.str();
}

}  // namespace

struct Simulation::Node : replication::LogReader {
  Simulation* sim = nullptr;
  int index = 0;
  NodeId id;
  bool up = false;
  uint64_t incarnation = 0;
  int64_t paused_until_ms = 0;
  std::unique_ptr<Core> core;
  HardState hard;          // as persisted
  std::vector<Entry> log;  // [0, durable_count) durable, the rest volatile
  // Per entry of `log` (storage acks on): where its ack goes once durable (Core::ack_route).
  std::vector<std::optional<replication::Core::AckRoute>> routes;
  size_t durable_count = 0;
  std::vector<size_t> record_indexes;  // indexes of epoch records in `log`
  std::unordered_set<std::string> payloads;
  bool sync_pending = false;
  bool storage_failed = false;  // nothing becomes durable until the node exits
  bool halted = false;          // a synchronous write failed: it does nothing until it exits
  int64_t commit_end = 0;       // as reported by this incarnation's Ready
  int64_t truncations = 0;
  std::deque<Pending> pending;

  int64_t log_end() const { return log.empty() ? 0 : log.back().end; }
  int64_t durable_end() const { return durable_count == 0 ? 0 : log[durable_count - 1].end; }
  // The index of the first entry at or after `position`.
  size_t index_of(int64_t position) const {
    auto it = std::lower_bound(log.begin(), log.end(), position,
                               [](const Entry& e, int64_t p) { return e.position < p; });
    return static_cast<size_t>(it - log.begin());
  }
  bool boundary(int64_t position) const {
    const size_t k = index_of(position);
    return k < log.size() ? log[k].position == position : position == log_end();
  }
  void forget_from(size_t k) {
    for (size_t i = k; i < log.size(); ++i) payloads.erase(log[i].payload.str());
    log.resize(std::min(k, log.size()));
    routes.resize(log.size());
    durable_count = std::min(durable_count, log.size());
    while (!record_indexes.empty() && record_indexes.back() >= log.size()) {
      record_indexes.pop_back();
    }
  }

  std::vector<Entry> read(int64_t from, size_t bytes_max) override {
    ++sim->result_.stats.reader_reads;
    const size_t k = index_of(from);
    std::vector<Entry> out;
    if (k >= durable_count) {
      if (from < durable_end()) sim->fail(id + ": LogReader asked for a non-boundary position");
      return out;
    }
    if (log[k].position != from) {
      sim->fail(id + ": LogReader asked for position " + std::to_string(from) +
                ", not an entry boundary");
      return out;
    }
    size_t bytes = 0;
    for (size_t i = k; i < durable_count; ++i) {
      const auto size = static_cast<size_t>(log[i].end - log[i].position);
      if (!out.empty() && bytes + size > bytes_max) break;
      bytes += size;
      out.push_back(log[i]);
    }
    return out;
  }
};

void Stats::add(const Stats& o) {
  events += o.events;
  messages_sent += o.messages_sent;
  messages_dropped += o.messages_dropped;
  proposed += o.proposed;
  acked += o.acked;
  committed_entries += o.committed_entries;
  leaders_elected += o.leaders_elected;
  max_epoch = std::max(max_epoch, o.max_epoch);
  crashes += o.crashes;
  pauses += o.pauses;
  partitions += o.partitions;
  truncations += o.truncations;
  reader_reads += o.reader_reads;
  storage_failures += o.storage_failures;
  slow_disks += o.slow_disks;
  storage_acks += o.storage_acks;
}

std::string replay_command(const Options& options) {
  std::ostringstream out;
  out << "chorus-sim --seed " << options.seed << " --nodes " << options.nodes << " --steps "
      << options.steps << " --mode " << (options.mode == Mode::Liveness ? "liveness" : "safety");
  if (options.storage_acks >= 0) out << " --storage-acks " << options.storage_acks;
  return out.str();
}

// ------------------------------------------------------------------ setup

Simulation::Simulation(Options options)
    : options_(options),
      rng_(options.seed),
      disk_rng_(options.seed ^ 0x5eedd15cULL),
      ack_rng_(options.seed ^ 0xacc5ULL) {
  storage_acks_ = options_.storage_acks < 0 ? std::bernoulli_distribution(0.5)(ack_rng_)
                                            : options_.storage_acks > 0;
  const int n = options_.nodes;
  for (int i = 0; i < n; ++i) {
    ids_.push_back("n" + std::to_string(i));
    index_by_id_[ids_.back()] = i;
  }
  blocked_.assign(static_cast<size_t>(n), std::vector<bool>(static_cast<size_t>(n), false));
  // Small message, in-flight and buffer limits make the core split Appends and read old
  // entries back from storage (LogReader), paths a roomy configuration never takes.
  const size_t append_max[] = {300, 4096, 1u << 20};
  const size_t inflight_max[] = {1024, 65536, 8u << 20};
  const size_t buffer_max[] = {512, 32768, 64u << 20};
  config_template_.cluster_size = n;
  const bool small = options_.small_buffers;
  config_template_.append_bytes_max = append_max[small ? 0 : uniform(0, 2)];
  config_template_.inflight_bytes_max = inflight_max[small ? 0 : uniform(0, 2)];
  config_template_.buffer_bytes_max = buffer_max[small ? 0 : uniform(0, 2)];
  config_template_.election_ticks_max = kElectionTicksMax;
  const bool ranked = chance(0.3);
  for (int i = 0; i < n; ++i)
    priorities_.push_back(ranked ? static_cast<int32_t>(uniform(0, 2)) : 0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (options_.faults) {
    drop_rate_ = 0.2 * unit(rng_);
    duplicate_rate_ = 0.05 * unit(rng_);
    long_delay_rate_ = chance(0.5) ? 0.01 * unit(rng_) : 0.0;
    delay_ms_max_ = uniform(1, 50);
    sync_ms_max_ = uniform(1, 40);
    crash_rate_ = 0.004 * unit(rng_);
    pause_rate_ = 0.004 * unit(rng_);
    partition_rate_ = 0.006 * unit(rng_);
    propose_rate_ = 0.2 + 0.5 * unit(rng_);
    if (std::bernoulli_distribution(0.5)(disk_rng_)) storage_fail_rate_ = 0.002 * unit(disk_rng_);
    if (std::bernoulli_distribution(0.3)(disk_rng_)) {
      set_slow_disk(
          std::uniform_int_distribution<int>(0, n - 1)(disk_rng_),
          std::uniform_int_distribution<int64_t>(kSlowSyncMsMin, kSlowSyncMsMax)(disk_rng_));
    }
  } else {
    delay_ms_max_ = 5;
    sync_ms_max_ = 5;
  }
  for (int i = 0; i < n; ++i) {
    auto node = std::make_unique<Node>();
    node->sim = this;
    node->index = i;
    node->id = ids_[static_cast<size_t>(i)];
    nodes_.push_back(std::move(node));
  }
  for (auto& node : nodes_) start(*node);
}

Simulation::~Simulation() = default;

void Simulation::start(Node& node) {
  replication::InitialState init;
  init.hard_state = node.hard;
  for (size_t k : node.record_indexes) {
    const auto record = Core::parse_epoch_payload(node.log[k].payload);
    if (!record) return fail(node.id + ": durable epoch record does not parse");
    init.epochs.push_back(*record);
  }
  init.log_end = node.durable_end();
  replication::Config config = config_template_;
  config.self = node.id;
  config.priority = priorities_[static_cast<size_t>(node.index)];
  config.seed = rng_();
  node.up = true;
  node.commit_end = 0;
  node.paused_until_ms = 0;
  node.storage_failed = false;
  node.halted = false;
  guarded(node, "constructor", [&] {
    node.core = std::make_unique<Core>(config, init, node);
    node.core->set_voters(ids_);
  });
  if (!node.core) return;
  trace(node.id + " starts: epoch " + std::to_string(node.hard.epoch) + " voted_for '" +
        node.hard.voted_for + "' log_end " + std::to_string(init.log_end));
  schedule(Event{now_ms_ + uniform(1, kTickMs), 0, EventKind::Tick, node.index, node.incarnation,
                 nullptr});
  drain(node);
}

// ------------------------------------------------------------------ event loop

Result Simulation::run() {
  faults_active_ = options_.faults;
  while (result_.ok && step_count_ < options_.steps) step();
  if (result_.ok && options_.mode == Mode::Liveness) liveness_phase();
  result_.stats.leaders_elected = static_cast<int64_t>(epoch_leader_.size());
  result_.stats.committed_entries = static_cast<int64_t>(committed_.size());
  result_.trace_tail.assign(trace_lines_.begin(), trace_lines_.end());
  return result_;
}

void Simulation::step() {
  if (faults_active_) inject_faults();
  // After healing the client writes for a while, then stops, so that "every acknowledged write
  // reaches every node" has a fixed target rather than one the writes keep moving.
  if (options_.faults && (!healed_ || step_count_ < client_stop_step_)) client_step();
  const int64_t end_ms = now_ms_ + kTickMs;
  while (result_.ok && !events_.empty() && events_.top().time_ms < end_ms) {
    Event event = events_.top();
    events_.pop();
    now_ms_ = event.time_ms;
    process(event);
  }
  now_ms_ = end_ms;
  ++step_count_;
}

bool Simulation::run_ticks(int ticks) {
  for (int i = 0; i < ticks && result_.ok; ++i) step();
  return result_.ok;
}

bool Simulation::run_until(int ticks_max, const std::function<bool()>& done) {
  for (int i = 0; i < ticks_max && result_.ok; ++i) {
    if (done()) return true;
    step();
  }
  return result_.ok && done();
}

void Simulation::schedule(Event event) {
  event.seq = next_seq_++;
  events_.push(std::move(event));
}

void Simulation::process(const Event& event) {
  ++result_.stats.events;
  if (event.kind == EventKind::HealPartition) {
    if (event.incarnation == partition_generation_) heal();
    return;
  }
  Node& node = *nodes_[static_cast<size_t>(event.node)];
  if (event.kind == EventKind::Restart) {
    if (!node.up && node.incarnation == event.incarnation) restart(event.node);
    return;
  }
  if (event.kind == EventKind::StorageExit) {
    if (node.up && node.incarnation == event.incarnation) storage_exit(node);
    return;
  }
  // A halted node (a write of its hard state or truncation failed) handles nothing more; what
  // reaches it is lost with the process.
  if (node.halted) return;
  // A message is addressed to a node, not to an incarnation; ticks and syncs die with theirs.
  if (!node.up || (event.kind != EventKind::Deliver && event.incarnation != node.incarnation)) {
    return;
  }
  if (defer_if_paused(event, node)) return;
  switch (event.kind) {
    case EventKind::Tick:
      guarded(node, "tick", [&] { node.core->tick(); });
      drain(node);
      schedule(Event{event.time_ms + kTickMs, 0, EventKind::Tick, node.index, node.incarnation,
                     nullptr});
      break;
    case EventKind::Deliver: {
      const int from = index_by_id_.at(event.message->from);
      if (blocked(from, node.index)) {
        ++result_.stats.messages_dropped;
        return;
      }
      if (tracing())
        trace(event.message->from + " -> " + node.id + ": " + describe_body(event.message->body));
      guarded(node, "step", [&] { node.core->step(*event.message); });
      if (node.core && node.core->sync_appends_refused() > 0) {
        return fail(node.id + " refused a sync Append from " + event.message->from +
                    " outside its log: no leader may send one");
      }
      drain(node);
      break;
    }
    case EventKind::Sync:
      node.sync_pending = false;
      sync_disk(node);
      break;
    default:
      break;
  }
}

bool Simulation::defer_if_paused(const Event& event, Node& node) {
  if (now_ms_ >= node.paused_until_ms) return false;
  // A paused process does nothing; what arrived meanwhile is handled, in order, once it wakes.
  Event later = event;
  later.time_ms = node.paused_until_ms;
  schedule(std::move(later));
  return true;
}

// ------------------------------------------------------------------ node adapter

template <class F>
void Simulation::guarded(Node& node, const char* what, F&& call) {
  try {
    call();
  } catch (const std::exception& e) {
    fail("core of " + node.id + " threw in " + what + ": " + e.what());
  }
}

void Simulation::drain(Node& node) {
  for (int round = 0; round < 8 && result_.ok && node.core && !node.halted; ++round) {
    replication::Ready ready = node.core->ready();
    if (ready.empty()) break;
    apply(node, ready);
  }
  if (result_.ok) check_roles(node);
}

void Simulation::apply(Node& node, replication::Ready& ready) {
  if (node.storage_failed && (ready.hard_state || ready.truncate_to)) {
    // The write of the hard state or the truncation fails: the whole Ready is dropped (no vote
    // leaves, nothing is acknowledged) and the node stops at once, then exits.
    node.halted = true;
    trace(node.id + " halts: a synchronous write failed on its failed disk");
    schedule(Event{now_ms_, 0, EventKind::StorageExit, node.index, node.incarnation, nullptr});
    return;
  }
  if (ready.hard_state) {
    const HardState& next = *ready.hard_state;
    if (next.epoch < node.hard.epoch) return fail(node.id + ": persisted epoch went backwards");
    if (next.epoch == node.hard.epoch && !node.hard.voted_for.empty() &&
        next.voted_for != node.hard.voted_for) {
      return fail(node.id + ": changed its vote within epoch " + std::to_string(next.epoch));
    }
    if (!next.voted_for.empty()) {
      auto [it, inserted] = votes_.emplace(std::pair{node.index, next.epoch}, next.voted_for);
      if (!inserted && it->second != next.voted_for) {
        return fail(node.id + " voted for " + it->second + " and " + next.voted_for + " in epoch " +
                    std::to_string(next.epoch));
      }
    }
    node.hard = next;
  }
  if (ready.truncate_to) apply_truncate(node, *ready.truncate_to);
  // Taken with the Ready that appends the entries, as the worker's runtime does.
  const auto route = storage_acks_ && node.core ? node.core->ack_route() : std::nullopt;
  for (auto& entry : ready.append) {
    if (!result_.ok) return;
    apply_append(node, std::move(entry), route);
  }
  for (auto& message : ready.messages) {
    if (!result_.ok) return;
    check_vote(node, message);
    send(node, std::move(message));
  }
  if (result_.ok && ready.commit_end) apply_commit(node, *ready.commit_end);
  if (ready.role_changed && node.core && tracing()) {
    trace(node.id + " is " + replication::role_name(node.core->role()) + " in epoch " +
          std::to_string(node.core->epoch()));
  }
}

void Simulation::apply_truncate(Node& node, int64_t to) {
  ++node.truncations;
  ++result_.stats.truncations;
  trace(node.id + " truncates to " + std::to_string(to) + " (log_end " +
        std::to_string(node.log_end()) + ", durable " + std::to_string(node.durable_end()) +
        ", commit " + std::to_string(node.commit_end) + ")");
  if (to < node.commit_end) {
    return fail(node.id + " truncates to " + std::to_string(to) + ", below its commit position " +
                std::to_string(node.commit_end));
  }
  if (!node.boundary(to) && to < node.log_end()) {
    return fail(node.id + " truncates at " + std::to_string(to) + ", not an entry boundary");
  }
  if (storage_acks_ && node.durable_count < node.log.size() &&
      std::bernoulli_distribution(0.3)(ack_rng_)) {
    // The storage writer finished the transaction of entries about to be dropped before it
    // took the truncation from its queue, and acknowledged them (its core already moved on).
    node.durable_count = node.log.size();
    storage_ack(node);
    if (!result_.ok) return;
  }
  const size_t k = node.index_of(to);
  // The last committed entry this node held durably before the truncation.
  const size_t held = std::min(node.durable_count, committed_.size());
  const bool drops_committed = k < held && node.log[held - 1] == committed_[held - 1];
  for (auto it = node.pending.begin(); it != node.pending.end();) {
    it = it->position >= to ? node.pending.erase(it) : std::next(it);
  }
  node.forget_from(k);
  if (drops_committed)
    check_majority_durable(held - 1, node.id + " truncated to " + std::to_string(to));
}

int Simulation::durable_copies(size_t index) const {
  int copies = 0;
  for (const auto& other : nodes_) {
    copies += other->durable_count > index && other->log[index] == committed_[index];
  }
  return copies;
}

void Simulation::check_majority_durable(size_t index, const std::string& after) {
  // Safety rests on this: a committed entry stays durable on a majority, so every future
  // leader (elected by a majority) holds it.
  const int copies = durable_copies(index);
  if (copies < options_.nodes / 2 + 1) {
    fail("after " + after + ", committed entry " + describe_entry(committed_[index]) +
         " is durable on only " + std::to_string(copies) + " node(s)");
  }
}

void Simulation::storage_ack(Node& node) {
  if (node.durable_count == 0) return;
  const auto& route = node.routes[node.durable_count - 1];
  if (!route) return;
  ++result_.stats.storage_acks;
  const int64_t end = node.durable_end();
  send(node, Message{node.id, route->leader,
                     replication::AppendAck{route->epoch, end, end, route->session}});
}

void Simulation::apply_append(Node& node, Entry entry,
                              const std::optional<replication::Core::AckRoute>& route) {
  if (entry.position != node.log_end() || entry.end <= entry.position) {
    return fail(node.id + " appends " + describe_entry(entry) + " but its log ends at " +
                std::to_string(node.log_end()));
  }
  const int64_t last_epoch =
      node.record_indexes.empty() ? 0 : node.log[node.record_indexes.back()].epoch;
  if (entry.is_epoch_record) {
    const auto record = Core::parse_epoch_payload(entry.payload);
    if (!record || record->number != entry.epoch || record->position != entry.position ||
        entry.epoch <= last_epoch) {
      return fail(node.id + " appends a bad epoch record " + describe_entry(entry));
    }
    // The payload names the leader that wrote it: that node led the epoch.
    const std::string_view payload = entry.payload;
    const NodeId leader(payload.substr(payload.rfind(' ') + 1));
    const auto known = index_by_id_.find(leader);
    if (known == index_by_id_.end()) return fail("epoch record names unknown leader " + leader);
    auto [it, inserted] = epoch_leader_.emplace(entry.epoch, known->second);
    if (!inserted && it->second != known->second) {
      return fail("two leaders in epoch " + std::to_string(entry.epoch) + ": " +
                  ids_[static_cast<size_t>(it->second)] + " and " + leader);
    }
    node.record_indexes.push_back(node.log.size());
  } else {
    if (entry.epoch != last_epoch) {
      return fail(node.id + " appends " + describe_entry(entry) + " after epoch record " +
                  std::to_string(last_epoch));
    }
    if (!node.payloads.insert(entry.payload.str()).second) {
      return fail(node.id + " holds payload " + short_payload(entry) + " twice");
    }
  }
  node.log.push_back(std::move(entry));
  node.routes.push_back(route);
  if (!node.sync_pending) {
    node.sync_pending = true;
    schedule(Event{now_ms_ + sync_delay_ms(node), 0, EventKind::Sync, node.index, node.incarnation,
                   nullptr});
  }
}

void Simulation::apply_commit(Node& node, int64_t commit_end) {
  if (commit_end <= node.commit_end) {
    return fail(node.id + " commit went from " + std::to_string(node.commit_end) + " to " +
                std::to_string(commit_end));
  }
  if (commit_end > node.log_end() || !node.boundary(commit_end)) {
    return fail(node.id + " commits to " + std::to_string(commit_end) +
                ", not an entry end in its log (log_end " + std::to_string(node.log_end()) + ")");
  }
  if (tracing()) trace(node.id + " commits to " + std::to_string(commit_end));
  extend_committed(node, node.index_of(node.commit_end), node.index_of(commit_end));
  node.commit_end = commit_end;
  if (result_.ok) acknowledge(node);
}

void Simulation::extend_committed(Node& node, size_t from_index, size_t to_index) {
  for (size_t i = from_index; i < to_index; ++i) {
    const Entry& entry = node.log[i];
    if (i < committed_.size()) {
      if (entry != committed_[i]) {
        return fail("committed prefixes diverge: " + node.id + " committed " +
                    describe_entry(entry) + " where the committed log has " +
                    describe_entry(committed_[i]));
      }
      continue;
    }
    if (!entry.is_epoch_record && !committed_payloads_.insert(entry.payload.str()).second) {
      return fail("payload " + short_payload(entry) + " committed twice");
    }
    committed_.push_back(entry);
    // Newly committed: it must be durable, identical, on a majority of the cluster.
    check_majority_durable(i, node.id + " committed to " + std::to_string(entry.end));
    if (!result_.ok) return;
  }
}

void Simulation::acknowledge(Node& node) {
  if (!node.core || node.core->role() != Role::Leader) return;
  while (!node.pending.empty() && node.pending.front().epoch == node.core->epoch() &&
         node.pending.front().end <= node.commit_end) {
    const Pending p = node.pending.front();
    node.pending.pop_front();
    auto it = std::lower_bound(committed_.begin(), committed_.end(), p.position,
                               [](const Entry& e, int64_t pos) { return e.position < pos; });
    if (it == committed_.end() || it->position != p.position || it->payload != p.payload) {
      return fail(node.id + " acknowledged " + p.payload.substr(0, p.payload.find(':')) +
                  " that is not in the committed log");
    }
    acked_positions_[p.payload] = p.position;
    acked_payloads_.push_back(p.payload);
    acked_end_max_ = std::max(acked_end_max_, p.end);
    ++result_.stats.acked;
    if (healed_) ++acked_after_heal_;
  }
}

void Simulation::check_roles(Node& node) {
  // A halted node's core ran ahead of what it could persist, but nothing of that leaves it.
  if (!node.core || node.halted) return;
  const Core& core = *node.core;
  if (core.epoch() != node.hard.epoch) {
    return fail(node.id + " is in epoch " + std::to_string(core.epoch()) + " but persisted epoch " +
                std::to_string(node.hard.epoch));
  }
  result_.stats.max_epoch = std::max(result_.stats.max_epoch, core.epoch());
  if (core.role() == Role::Leader) {
    auto [it, inserted] = epoch_leader_.emplace(core.epoch(), node.index);
    if (!inserted && it->second != node.index) {
      return fail("two leaders in epoch " + std::to_string(core.epoch()) + ": " +
                  ids_[static_cast<size_t>(it->second)] + " and " + node.id);
    }
  } else {
    node.pending.clear();  // a deposed leader fails its pending writes
  }
  std::erase_if(node.pending, [&](const Pending& p) { return p.epoch != core.epoch(); });
}

void Simulation::check_vote(Node& node, const Message& message) {
  const auto* vote = std::get_if<replication::VoteResponse>(&message.body);
  // A pre-vote promises nothing and changes no state, so there is nothing to persist.
  if (!vote || !vote->granted || vote->pre) return;
  if (node.hard.epoch != vote->epoch || node.hard.voted_for != message.to) {
    fail(node.id + " grants a vote to " + message.to + " in epoch " + std::to_string(vote->epoch) +
         " that it has not persisted");
  }
}

int64_t Simulation::sync_delay_ms(const Node& node) {
  return uniform(1, node.index == slow_disk_node_ ? slow_sync_ms_max_ : sync_ms_max_);
}

void Simulation::sync_disk(Node& node) {
  // A failed disk makes nothing durable: the core hears of no new durable end, so it neither
  // acknowledges nor (as a leader) counts anything written after the failure.
  if (node.storage_failed) return;
  const size_t volatile_count = node.log.size() - node.durable_count;
  if (volatile_count == 0) return;
  // Usually everything written so far; sometimes only a prefix (a sync racing more writes).
  const size_t count = chance(0.75)
                           ? volatile_count
                           : static_cast<size_t>(uniform(1, static_cast<int64_t>(volatile_count)));
  node.durable_count += count;
  if (storage_acks_) {
    storage_ack(node);
    const auto route = node.routes[node.durable_count - 1];
    guarded(node, "durable", [&] { node.core->durable(node.durable_end(), route); });
  } else {
    guarded(node, "durable", [&] { node.core->durable(node.durable_end()); });
  }
  drain(node);
  if (node.durable_count < node.log.size() && !node.sync_pending) {
    node.sync_pending = true;
    schedule(Event{now_ms_ + sync_delay_ms(node), 0, EventKind::Sync, node.index, node.incarnation,
                   nullptr});
  }
}

// ------------------------------------------------------------------ network

void Simulation::send(const Node& from, Message message) {
  ++result_.stats.messages_sent;
  const auto to = index_by_id_.find(message.to);
  if (to == index_by_id_.end()) return fail(from.id + " sends to unknown node " + message.to);
  if (message.from != from.id) return fail(from.id + " sends a message from " + message.from);
  if (blocked(from.index, to->second) || chance(drop_rate_)) {
    ++result_.stats.messages_dropped;
    return;
  }
  auto shared = std::make_shared<const Message>(std::move(message));
  const int copies = chance(duplicate_rate_) ? 2 : 1;
  for (int c = 0; c < copies; ++c) {
    int64_t delay_ms = uniform(1, delay_ms_max_);
    if (chance(long_delay_rate_)) {
      delay_ms = uniform(delay_ms_max_, 10 * kElectionTicksMax * kTickMs);
    }
    schedule(Event{now_ms_ + delay_ms, 0, EventKind::Deliver, to->second, 0, shared});
  }
}

bool Simulation::blocked(int from, int to) const {
  return blocked_[static_cast<size_t>(from)][static_cast<size_t>(to)];
}

void Simulation::cut(int from, int to) {
  blocked_[static_cast<size_t>(from)][static_cast<size_t>(to)] = true;
  lose_connection(from, to);
}

void Simulation::lose_connection(int from, int to) {
  Node& node = *nodes_[static_cast<size_t>(to)];
  // A paused process learns of it when it resumes, through silence like the rest; a halted one
  // does nothing more.
  if (!node.up || node.halted || !node.core || now_ms_ < node.paused_until_ms) return;
  guarded(node, "peer_lost", [&] { node.core->peer_lost(ids_[static_cast<size_t>(from)]); });
  drain(node);
}

void Simulation::isolate(int node) {
  for (int other = 0; other < options_.nodes; ++other) {
    if (other == node) continue;
    cut(node, other);
    cut(other, node);
  }
  trace(ids_[static_cast<size_t>(node)] + " isolated");
}

void Simulation::heal() {
  for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
  ++partition_generation_;
  trace("partitions healed");
}

// ------------------------------------------------------------------ faults

void Simulation::crash(int index) {
  Node& node = *nodes_[static_cast<size_t>(index)];
  if (!node.up) return;
  ++result_.stats.crashes;
  trace(node.id + " crashes: loses " + std::to_string(node.log.size() - node.durable_count) +
        " unsynced entries");
  node.up = false;
  ++node.incarnation;
  node.core.reset();
  node.forget_from(node.durable_count);
  node.pending.clear();
  node.sync_pending = false;
  node.paused_until_ms = 0;
  for (int other = 0; other < options_.nodes; ++other) {
    if (other != index) lose_connection(index, other);
  }
}

void Simulation::restart(int index) {
  Node& node = *nodes_[static_cast<size_t>(index)];
  if (node.up) return;
  start(node);
}

void Simulation::wipe(int index) {
  Node& node = *nodes_[static_cast<size_t>(index)];
  if (node.up) return fail("wipe needs a crashed node");
  node.forget_from(0);
  node.hard = HardState{};
  // A wiped node forgets its votes: voting again is the operator's doing, not the core's.
  std::erase_if(votes_, [&](const auto& v) { return v.first.first == index; });
  trace(node.id + " wiped");
}

void Simulation::fail_storage(int index, int64_t exit_after_ms) {
  Node& node = *nodes_[static_cast<size_t>(index)];
  if (!node.up || node.storage_failed) return;
  node.storage_failed = true;
  ++result_.stats.storage_failures;
  trace(node.id + " storage fails (" + std::to_string(node.log.size() - node.durable_count) +
        " entries not durable); exits in " + std::to_string(exit_after_ms) + " ms");
  schedule(
      Event{now_ms_ + exit_after_ms, 0, EventKind::StorageExit, index, node.incarnation, nullptr});
}

void Simulation::set_slow_disk(int index, int64_t sync_ms_max) {
  slow_disk_node_ = index;
  slow_sync_ms_max_ = sync_ms_max;
  result_.stats.slow_disks = index >= 0 ? 1 : 0;
}

void Simulation::storage_exit(Node& node) {
  trace(node.id + " exits after its storage failed");
  crash(node.index);
  // Its supervisor restarts it; the disk works again (a transient error, or a replaced disk).
  const int64_t delay_ms = std::uniform_int_distribution<int64_t>(20, 800)(disk_rng_) * kTickMs;
  schedule(Event{now_ms_ + delay_ms, 0, EventKind::Restart, node.index, node.incarnation, nullptr});
}

void Simulation::inject_faults() {
  const int n = options_.nodes;
  if (storage_fail_rate_ > 0 && std::bernoulli_distribution(storage_fail_rate_)(disk_rng_)) {
    const int i = std::uniform_int_distribution<int>(0, n - 1)(disk_rng_);
    fail_storage(i, std::uniform_int_distribution<int64_t>(0, kStorageExitMsMax)(disk_rng_));
  }
  if (chance(crash_rate_)) {
    const int i = static_cast<int>(uniform(0, n - 1));
    if (nodes_[static_cast<size_t>(i)]->up) {
      crash(i);
      schedule(Event{now_ms_ + uniform(20, 800) * kTickMs, 0, EventKind::Restart, i,
                     nodes_[static_cast<size_t>(i)]->incarnation, nullptr});
    }
  }
  if (chance(pause_rate_)) {
    Node& node = *nodes_[static_cast<size_t>(uniform(0, n - 1))];
    if (node.up && node.paused_until_ms <= now_ms_) {
      node.paused_until_ms = now_ms_ + uniform(kTickMs, kPauseMsMax);
      ++result_.stats.pauses;
      trace(node.id + " paused until " + std::to_string(node.paused_until_ms) + " ms");
    }
  }
  if (chance(partition_rate_)) start_partition();
}

void Simulation::start_partition() {
  heal();
  ++result_.stats.partitions;
  const int n = options_.nodes;
  const int x = static_cast<int>(uniform(0, n - 1));
  const int kind = static_cast<int>(uniform(0, 5));
  std::string what;
  if (kind == 0) {
    isolate(x);
    what = "isolate " + ids_[static_cast<size_t>(x)];
  } else if (kind == 1) {
    std::vector<int> side;
    for (int i = 0; i < n; ++i) side.push_back(static_cast<int>(uniform(0, 1)));
    for (int a = 0; a < n; ++a) {
      for (int b = 0; b < n; ++b) {
        if (side[static_cast<size_t>(a)] != side[static_cast<size_t>(b)]) cut(a, b);
      }
    }
    what = "random split";
  } else if (kind == 2 || kind == 3) {
    for (int other = 0; other < n; ++other) {
      if (other != x) kind == 2 ? cut(other, x) : cut(x, other);
    }
    what = (kind == 2 ? "one-way: nothing reaches " : "one-way: nothing leaves ") +
           ids_[static_cast<size_t>(x)];
  } else if (kind == 4) {
    const int y = (x + 1 + static_cast<int>(uniform(0, n - 2))) % n;
    cut(x, y);
    cut(y, x);
    what = "bridge: " + ids_[static_cast<size_t>(x)] + " and " + ids_[static_cast<size_t>(y)] +
           " cannot talk";
  } else {
    for (int a = 0; a < n; ++a) {
      for (int b = 0; b < n; ++b) {
        if (a != b && chance(0.3)) cut(a, b);
      }
    }
    what = "random one-way links";
  }
  trace("partition: " + what);
  schedule(Event{now_ms_ + uniform(20, 600) * kTickMs, 0, EventKind::HealPartition, 0,
                 partition_generation_, nullptr});
}

void Simulation::client_step() {
  if (!chance(propose_rate_)) return;
  std::vector<int> leaders;
  for (const auto& node : nodes_) {
    // Like real clients, a bounded number of writes waits for an answer at any time: an
    // unbounded offered load would outrun replication under the smallest Append limits.
    if (node->up && !node->halted && node->paused_until_ms <= now_ms_ &&
        node->core->role() == Role::Leader && node->pending.size() < kClientPendingMax) {
      leaders.push_back(node->index);
    }
  }
  if (leaders.empty()) return;
  const int target =
      leaders[static_cast<size_t>(uniform(0, static_cast<int64_t>(leaders.size()) - 1))];
  propose(target, static_cast<int>(uniform(1, 3)));
}

int64_t Simulation::propose(int index, int count) {
  Node& node = *nodes_[static_cast<size_t>(index)];
  if (!node.up || !node.core || node.halted) return -1;
  std::vector<std::string> payloads;
  for (int i = 0; i < count; ++i) {
    payloads.push_back("w" + std::to_string(++payload_counter_) + ":" +
                       std::string(static_cast<size_t>(uniform(0, 200)), 'x'));
  }
  std::optional<std::vector<Entry>> entries;
  guarded(node, "propose", [&] { entries = node.core->propose(payloads); });
  if (!entries || entries->empty()) return -1;
  for (const auto& e : *entries) {
    node.pending.push_back(Pending{e.position, e.end, node.core->epoch(), e.payload.str()});
    ++result_.stats.proposed;
  }
  if (tracing()) {
    trace(node.id + " proposes " + std::to_string(count) + " up to " +
          std::to_string(entries->back().end));
  }
  drain(node);
  return entries->back().end;
}

// ------------------------------------------------------------------ liveness

void Simulation::heal_all() {
  faults_active_ = false;
  drop_rate_ = 0;
  long_delay_rate_ = 0;
  heal();
  // A slow disk counts as a fault too: with the smallest in-flight window and 1.5 s syncs a
  // follower far behind needs minutes, beyond the convergence deadline.
  slow_disk_node_ = -1;
  for (auto& node : nodes_) {
    node->paused_until_ms = std::min(node->paused_until_ms, now_ms_);
    if (node->up && node->storage_failed) crash(node->index);  // it exits now, restarts below
    if (!node->up) restart(node->index);
  }
  trace("fault phase over: all nodes up on working disks, no partitions, no drops");
}

void Simulation::liveness_phase() {
  heal_all();
  healed_ = true;
  const int64_t healed_step = step_count_;
  client_stop_step_ = healed_step + kLivenessWriteTicks;
  bool leader_seen = false;
  while (result_.ok) {
    const int64_t elapsed = step_count_ - healed_step;
    if (!leader_seen) leader_seen = stable_leader();
    if (!leader_seen && elapsed >= kLeaderDeadlineTicks) {
      return fail("liveness: no leader within " + std::to_string(kLeaderDeadlineTicks) +
                  " ticks after healing; " + describe_nodes());
    }
    if (leader_seen && acked_after_heal_ > 0 && step_count_ >= client_stop_step_ && converged()) {
      return;
    }
    if (elapsed >= kConvergenceDeadlineTicks) {
      return fail("liveness: not converged " + std::to_string(kConvergenceDeadlineTicks) +
                  " ticks after healing (acked after heal: " + std::to_string(acked_after_heal_) +
                  ", acked end " + std::to_string(acked_end_max_) + "); " + describe_nodes());
    }
    step();
  }
}

bool Simulation::stable_leader() const {
  const int l = leader();
  if (l < 0) return false;
  const Core& lead = *nodes_[static_cast<size_t>(l)]->core;
  int followers = 0;
  for (const auto& node : nodes_) {
    if (node->up && node->core->epoch() == lead.epoch() && node->core->leader() == lead.self()) {
      ++followers;
    }
  }
  return followers >= lead.quorum();
}

bool Simulation::converged() const {
  for (const auto& node : nodes_) {
    if (!node->up || node->commit_end < acked_end_max_) return false;
  }
  return true;
}

std::string Simulation::describe_nodes() const {
  std::ostringstream out;
  for (const auto& node : nodes_) {
    out << node->id << "{";
    if (!node->up) {
      out << "down";
    } else {
      const Core& c = *node->core;
      out << replication::role_name(c.role()) << " e" << c.epoch()
          << " leader=" << c.leader().value_or("-") << " log_end=" << c.log_end()
          << " durable=" << c.durable_end() << " commit=" << node->commit_end;
    }
    out << "} ";
  }
  return out.str();
}

// ------------------------------------------------------------------ accessors and helpers

int Simulation::leader() const {
  int best = -1;
  for (const auto& node : nodes_) {
    if (!node->up || node->core->role() != Role::Leader) continue;
    if (best < 0 || node->core->epoch() > nodes_[static_cast<size_t>(best)]->core->epoch()) {
      best = node->index;
    }
  }
  return best;
}

int Simulation::leader_count() const {
  int count = 0;
  for (const auto& node : nodes_) count += node->up && node->core->role() == Role::Leader;
  return count;
}

bool Simulation::up(int node) const { return nodes_[static_cast<size_t>(node)]->up; }
const Core& Simulation::core(int node) const { return *nodes_[static_cast<size_t>(node)]->core; }
const std::vector<Entry>& Simulation::log(int node) const {
  return nodes_[static_cast<size_t>(node)]->log;
}
int64_t Simulation::commit_end(int node) const {
  return nodes_[static_cast<size_t>(node)]->commit_end;
}
int64_t Simulation::truncations(int node) const {
  return nodes_[static_cast<size_t>(node)]->truncations;
}

int64_t Simulation::uniform(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
}

bool Simulation::chance(double p) {
  if (p <= 0) return false;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
}

void Simulation::fail(const std::string& what) {
  if (!result_.ok) return;
  result_.ok = false;
  result_.failure =
      "step " + std::to_string(step_count_) + " (t=" + std::to_string(now_ms_) + " ms): " + what;
  trace("FAIL: " + what);
}

void Simulation::trace(const std::string& line) {
  if (!tracing()) return;
  std::string stamped = "[" + std::to_string(now_ms_) + " ms] " + line;
  if (options_.trace) std::cout << stamped << "\n";
  if (options_.trace_tail == 0) return;
  trace_lines_.push_back(std::move(stamped));
  if (trace_lines_.size() > options_.trace_tail) trace_lines_.pop_front();
}

}  // namespace chorus::sim
