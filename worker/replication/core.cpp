// Core implementation. See core.hpp for the model; the comments here explain the safety rules.
#include "worker/replication/core.hpp"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <tuple>

namespace chorus::replication {
namespace {

// Always-on invariant check: a broken invariant in the core is a programmer error.
#define CHORUS_CORE_ASSERT(cond, what)                                             \
  do {                                                                             \
    if (!(cond)) throw std::logic_error(std::string("replication core: ") + what); \
  } while (0)

size_t entry_bytes(const Entry& e) { return static_cast<size_t>(e.end - e.position); }

// Ticks between the campaigns of followers that lost their leader's connection (by rank).
constexpr int kLeaderLostStaggerTicks = 3;
// After the leader's connection closed, a refused pre-vote may only mean that a peer has not
// seen its own connection close yet: so many pre-votes are asked again this soon (a pre-vote
// changes nobody's epoch), then the election timeout applies again.
constexpr int kLeaderLostQuickPreVotes = 3;
constexpr int kLeaderLostRetryTicks = 5;

}  // namespace

std::ostream& operator<<(std::ostream& out, const Payload& p) { return out << p.view(); }

const char* role_name(Role role) {
  switch (role) {
    case Role::Follower:
      return "Follower";
    case Role::Candidate:
      return "Candidate";
    case Role::Leader:
      return "Leader";
  }
  return "?";
}

int64_t message_epoch(const Body& body) {
  return std::visit([](const auto& m) { return m.epoch; }, body);
}

bool is_pre_vote(const Body& body) {
  if (const auto* r = std::get_if<VoteRequest>(&body)) return r->pre;
  if (const auto* r = std::get_if<VoteResponse>(&body)) return r->pre;
  return false;
}

std::string Core::epoch_payload(const EpochRecord& e, const NodeId& leader) {
  return "epoch " + std::to_string(e.number) + " " + std::to_string(e.position) + " " +
         to_string(e.id) + " " + leader;
}

std::optional<EpochRecord> Core::parse_epoch_payload(std::string_view payload) {
  std::istringstream in{std::string(payload)};
  std::string word, id;
  EpochRecord e;
  if (!(in >> word >> e.number >> e.position >> id) || word != "epoch") return std::nullopt;
  const auto g = parse_guid(id);
  if (!g) return std::nullopt;
  e.id = *g;
  return e;
}

Core::Core(Config config, InitialState initial, LogReader& log)
    : config_(std::move(config)),
      log_(log),
      rng_(config_.seed),
      hard_(std::move(initial.hard_state)),
      epochs_(std::move(initial.epochs)),
      log_end_(initial.log_end),
      durable_end_(initial.log_end) {
  CHORUS_CORE_ASSERT(config_.cluster_size >= 1, "cluster size must be at least 1");
  CHORUS_CORE_ASSERT(config_.election_ticks_max > config_.election_ticks_min, "election ticks");
  reset_election_timer();
  // A single-node cluster need not wait for anybody: it elects itself at once.
  if (quorum() == 1) {
    become_candidate();
    return;
  }
  // A node that (re)starts first listens for a full maximum timeout more, so that a restarted
  // node joins the leader its peers elected meanwhile instead of racing them for leadership.
  election_timeout_ += config_.election_ticks_max;
}

// ------------------------------------------------------------------ time

void Core::tick() {
  ++now_tick_;
  if (role_ == Role::Leader) {
    update_relaxed();
    if (++heartbeat_elapsed_ >= config_.heartbeat_ticks) {
      heartbeat_elapsed_ = 0;
      for (const auto& peer : peers_) send_appends(peer, true);
      ++heartbeat_rounds_;
    }
    check_quorum();
    return;
  }
  if (role_ == Role::Follower && synced_ &&
      now_tick_ - matched_tick_ > config_.heartbeat_ticks * 3) {
    // The leader no longer sends in our session (it answered an older Subscribe): sync again.
    synced_ = false;
    session_ = 0;
  }
  if (role_ == Role::Follower && leader_ && !synced_ &&
      now_tick_ - subscribe_sent_tick_ >= config_.heartbeat_ticks * 2) {
    send_subscribe();
  }
  if (++election_elapsed_ >= election_timeout_) start_pre_vote();
}

int Core::ticks_until_due() const {
  // Each bound is the k >= 1 at which tick() number k from now first meets its condition.
  int due = kNothingDue;
  const auto at = [&due](int k) { due = std::min(due, std::max(1, k)); };
  if (role_ == Role::Leader) {
    if (!peers_.empty()) at(config_.heartbeat_ticks - heartbeat_elapsed_);
    if (quorum() > 1) {
      // check_quorum: the earliest peer to fall silent (conservative: a step-down needs more).
      if (static_cast<int>(progress_.size()) + 1 < quorum()) at(1);
      for (const auto& [id, p] : progress_) {
        at(p.last_heard_tick + config_.election_ticks_max - now_tick_);
      }
    }
    return due;
  }
  if (role_ == Role::Follower && synced_)
    at(matched_tick_ + config_.heartbeat_ticks * 3 + 1 - now_tick_);
  if (role_ == Role::Follower && leader_ && !synced_) {
    at(subscribe_sent_tick_ + config_.heartbeat_ticks * 2 - now_tick_);
  }
  at(election_timeout_ - election_elapsed_);
  return due;
}

void Core::start_pre_vote() {
  if (quorum() == 1) {
    become_candidate();
    return;
  }
  pre_voting_ = true;
  pre_votes_ = {config_.self};
  reset_election_timer();  // a failed pre-vote is tried again after another timeout
  if (quick_pre_votes_ > 0) {
    --quick_pre_votes_;
    election_timeout_ =
        std::min(election_timeout_, kLeaderLostRetryTicks + leader_lost_delay_ticks());
  }
  for (const auto& peer : peers_) {
    send(peer, VoteRequest{hard_.epoch + 1, last_epoch(), log_end_, config_.priority, true});
  }
}

void Core::reset_election_timer() {
  election_elapsed_ = 0;
  std::uniform_int_distribution<int> d(config_.election_ticks_min, config_.election_ticks_max - 1);
  election_timeout_ = d(rng_);
}

void Core::check_quorum() {
  // A leader that has not heard from a majority within an election timeout steps down, so a
  // partitioned leader stops taking writes that can never commit.
  if (quorum() == 1) return;
  int heard = 1;
  for (const auto& [id, p] : progress_) {
    if (now_tick_ - p.last_heard_tick < config_.election_ticks_max) ++heard;
  }
  if (heard < quorum()) become_follower(hard_.epoch, std::nullopt);
}

// ------------------------------------------------------------------ roles

void Core::persist_hard_state() { ready_.hard_state = hard_; }

void Core::become_follower(int64_t epoch, std::optional<NodeId> leader) {
  const bool changed = role_ != Role::Follower || leader_ != leader || epoch != hard_.epoch;
  if (epoch > hard_.epoch) {
    hard_.epoch = epoch;
    hard_.voted_for.clear();
    persist_hard_state();
  }
  pre_voting_ = false;
  if (leader_ != leader) {
    leader_commit_end_ = 0;
    relaxed_ = false;
    synced_ = false;
    session_ = 0;
  }
  role_ = Role::Follower;
  if (leader) quick_pre_votes_ = 0;
  leader_ = std::move(leader);
  progress_.clear();
  votes_.clear();
  reset_election_timer();
  if (changed) ready_.role_changed = true;
}

void Core::become_candidate() {
  pre_voting_ = false;
  quick_pre_votes_ = 0;
  role_ = Role::Candidate;
  leader_.reset();
  synced_ = false;
  hard_.epoch += 1;
  hard_.voted_for = config_.self;
  persist_hard_state();
  votes_ = {config_.self};
  elections_started_ += 1;
  reset_election_timer();
  ready_.role_changed = true;
  if (static_cast<int>(votes_.size()) >= quorum()) {
    become_leader();
    return;
  }
  for (const auto& peer : peers_) {
    send(peer, VoteRequest{hard_.epoch, last_epoch(), log_end_, config_.priority});
  }
}

void Core::become_leader() {
  pre_voting_ = false;
  role_ = Role::Leader;
  leader_ = config_.self;
  synced_ = true;
  votes_.clear();
  heartbeat_elapsed_ = 0;
  ready_.role_changed = true;
  progress_.clear();
  for (const auto& peer : peers_) progress_[peer].last_heard_tick = now_tick_;
  pace_mark_tick_ = now_tick_;
  pace_mark_end_ = log_end_;
  // The epoch record opens the epoch; nothing of earlier epochs counts as committed by this
  // leader until the epoch record itself is on a majority.
  EpochRecord record{hard_.epoch, log_end_, random_guid()};
  std::uniform_int_distribution<uint64_t> bits;
  // The id comes from the seeded source so that a simulation replays exactly.
  Guid id{};
  const uint64_t a = bits(rng_), b = bits(rng_);
  for (int i = 0; i < 8; ++i) {
    id.data[i] = static_cast<uint8_t>(a >> (8 * i));
    id.data[8 + i] = static_cast<uint8_t>(b >> (8 * i));
  }
  record.id = id;
  Entry e;
  e.position = log_end_;
  e.epoch = hard_.epoch;
  e.is_epoch_record = true;
  e.payload = epoch_payload(record, config_.self);
  e.end = e.position + kEntryOverheadBytes + static_cast<int64_t>(e.payload.size());
  epochs_.push_back(record);
  append_local({e});
  for (const auto& peer : peers_) send_appends(peer, true);
  maybe_commit();
}

void Core::resign() {
  if (role_ != Role::Leader) return;
  become_follower(hard_.epoch, std::nullopt);
  // Give the others a head start: this node waits a full maximum timeout before campaigning.
  election_timeout_ = config_.election_ticks_max * 2;
}

// ------------------------------------------------------------------ messages

void Core::send(const NodeId& to, Body body) {
  if (const auto* a = std::get_if<Append>(&body); a != nullptr && role_ == Role::Leader) {
    if (auto it = progress_.find(to); it != progress_.end()) {
      it->second.commit_sent = std::max(it->second.commit_sent, a->commit_end);
    }
  }
  ready_.messages.push_back(Message{config_.self, to, std::move(body)});
}

void Core::set_voters(const std::vector<NodeId>& voters) {
  std::set<NodeId> next;
  for (const auto& v : voters) {
    if (v != config_.self) next.insert(v);
  }
  for (const auto& gone : peers_) {
    if (next.count(gone)) continue;
    progress_.erase(gone);
    votes_.erase(gone);
    pre_votes_.erase(gone);
  }
  std::vector<NodeId> added;
  std::set_difference(next.begin(), next.end(), peers_.begin(), peers_.end(),
                      std::back_inserter(added));
  peers_ = std::move(next);
  if (role_ != Role::Leader) return;
  for (const auto& p : added) {
    progress_[p].last_heard_tick = now_tick_;
    send_appends(p, true);
  }
}

void Core::peer_lost(const NodeId& peer) {
  if (role_ != Role::Follower || leader_ != peer) return;
  become_follower(hard_.epoch, std::nullopt);
  quick_pre_votes_ = kLeaderLostQuickPreVotes;
  election_elapsed_ = std::max(0, election_timeout_ - leader_lost_delay_ticks());
}

void Core::leader_progress(const NodeId& peer, int64_t epoch) {
  if (role_ != Role::Follower || leader_ != peer || epoch != hard_.epoch) return;
  // As a heartbeat would: the election timer restarts, and a synced follower stays synced (it
  // would otherwise resubscribe after heartbeat_ticks * 3 and drop the very Append that is
  // arriving, which the leader would then send again). A frame of another session is still
  // refused when it is complete, and the follower resyncs then.
  reset_election_timer();
  if (synced_) matched_tick_ = now_tick_;
  if (now_tick_ - progress_acked_tick_ < config_.heartbeat_ticks) return;
  progress_acked_tick_ = now_tick_;
  // Session 0 matches no sync, so the leader counts it only as contact (its quorum check), never
  // as a position: the follower has not got the Append yet.
  send(peer, AppendAck{hard_.epoch, log_end_, durable_end_, 0});
}

// The other followers lose the leader at the same moment; pre-votes that start in the same tick
// both win and then split the vote. So each waits by its rank among the members: the first
// campaigns at the next tick, the next one a few ticks later, by which time the first one's
// vote request has usually arrived and reset its timer.
int Core::leader_lost_delay_ticks() const {
  int rank = 0;
  for (const auto& p : peers_) rank += p < config_.self;
  return 1 + rank * kLeaderLostStaggerTicks;
}

void Core::step(Message message) {
  if (message.to != config_.self || message.from == config_.self) return;
  if (peers_.count(message.from) == 0) {
    // Not a configured member: it neither votes, nor acks, nor subscribes, nor leads here.
    ++messages_from_non_voters_;
    return;
  }
  const int64_t epoch = message_epoch(message.body);
  if (epoch > hard_.epoch && !is_pre_vote(message.body)) {
    // A newer epoch: follow it. Its leader is known only from an Append.
    const bool from_leader = std::holds_alternative<Append>(message.body);
    become_follower(epoch, from_leader ? std::optional<NodeId>(message.from) : std::nullopt);
  }
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, VoteRequest>) on_vote_request(message.from, m);
        if constexpr (std::is_same_v<T, VoteResponse>) on_vote_response(message.from, m);
        if constexpr (std::is_same_v<T, Subscribe>) on_subscribe(message.from, m);
        if constexpr (std::is_same_v<T, Append>) on_append(message.from, m);
        if constexpr (std::is_same_v<T, AppendAck>) on_ack(message.from, m);
      },
      message.body);
}

bool Core::log_up_to_date(int64_t last_epoch_of_candidate, int64_t log_end_of_candidate) const {
  if (last_epoch_of_candidate != last_epoch()) return last_epoch_of_candidate > last_epoch();
  return log_end_of_candidate >= log_end_;
}

void Core::on_vote_request(const NodeId& from, const VoteRequest& m) {
  if (m.pre) {
    // Grant only if a real election in that epoch could get our vote, and we have not heard
    // from a leader recently (a leader in contact keeps its followers).
    const bool leader_in_contact =
        role_ == Role::Leader ||
        (role_ == Role::Follower && leader_ && election_elapsed_ < config_.election_ticks_min);
    const bool granted =
        m.epoch > hard_.epoch && !leader_in_contact && log_up_to_date(m.last_epoch, m.log_end);
    send(from, VoteResponse{m.epoch, granted, true});
    return;
  }
  bool granted = false;
  if (m.epoch == hard_.epoch && (hard_.voted_for.empty() || hard_.voted_for == from) &&
      role_ != Role::Leader && log_up_to_date(m.last_epoch, m.log_end)) {
    const bool same_log = m.last_epoch == last_epoch() && m.log_end == log_end_;
    if (same_log && m.priority < config_.priority && hard_.voted_for.empty()) {
      // Equally up to date and we rank higher: campaign ourselves soon instead.
      election_elapsed_ = std::max(election_elapsed_, election_timeout_ - 1);
    } else {
      granted = true;
      hard_.voted_for = from;
      persist_hard_state();
      reset_election_timer();
    }
  }
  send(from, VoteResponse{hard_.epoch, granted});
}

void Core::on_vote_response(const NodeId& from, const VoteResponse& m) {
  if (m.pre) {
    if (!pre_voting_ || role_ == Role::Leader || m.epoch != hard_.epoch + 1 || !m.granted) return;
    pre_votes_.insert(from);
    if (static_cast<int>(pre_votes_.size()) >= quorum()) become_candidate();
    return;
  }
  if (role_ != Role::Candidate || m.epoch != hard_.epoch || !m.granted) return;
  votes_.insert(from);
  if (static_cast<int>(votes_.size()) >= quorum()) become_leader();
}

void Core::send_subscribe() {
  if (!leader_) return;
  subscribe_sent_tick_ = now_tick_;
  if (session_ == 0) session_ = rng_() | 1;
  send(*leader_, Subscribe{hard_.epoch, log_end_, epochs_, session_});
}

int64_t Core::common_point(const Subscribe& m) const {
  // The newest epoch both logs hold (same number and id): the logs agree up to the end of that
  // epoch in the leader's log, as far as the follower's log reaches.
  for (auto f = m.epochs.rbegin(); f != m.epochs.rend(); ++f) {
    const auto mine = std::find_if(epochs_.begin(), epochs_.end(),
                                   [&](const EpochRecord& e) { return e.number == f->number; });
    if (mine == epochs_.end() || !(*mine == *f)) continue;
    const auto next = std::next(mine);
    const int64_t epoch_end = next == epochs_.end() ? log_end_ : next->position;
    const auto follower_next = f.base();  // the follower's epoch after this one
    const int64_t follower_end =
        follower_next == m.epochs.end() ? m.log_end : follower_next->position;
    return std::min(follower_end, epoch_end);
  }
  return 0;
}

void Core::on_subscribe(const NodeId& from, const Subscribe& m) {
  if (role_ != Role::Leader || m.epoch != hard_.epoch) return;
  auto& p = progress_[from];
  p.synced = true;
  p.session = m.session;
  p.next = common_point(m);
  p.acked_log_end = p.next;
  p.durable_end = std::min(p.durable_end, p.next);
  p.last_heard_tick = now_tick_;
  Append a{hard_.epoch, p.next,   true, entries_from(p.next, config_.append_bytes_max),
           commit_end_, p.session};
  if (!a.entries.empty()) p.next = a.entries.back().end;
  send(from, std::move(a));
}

void Core::send_appends(const NodeId& to, bool heartbeat) {
  auto it = progress_.find(to);
  if (it == progress_.end() || !it->second.synced) {
    // Not synced yet: an empty Append tells the follower who leads; it answers with Subscribe.
    if (heartbeat) send(to, Append{hard_.epoch, log_end_, false, {}, commit_end_});
    return;
  }
  auto& p = it->second;
  bool sent = false;
  // The window counts from what the follower has made durable, not what it has received: a
  // follower on a slow disk must slow the leader down instead of piling up its writer queue.
  while (p.next < log_end_ &&
         static_cast<size_t>(p.next - p.durable_end) < config_.inflight_bytes_max) {
    auto entries = entries_from(p.next, config_.append_bytes_max);
    if (entries.empty()) break;
    const int64_t start = p.next;
    p.next = entries.back().end;
    send(to, Append{hard_.epoch, start, false, std::move(entries), commit_end_, p.session, false,
                    p.relaxed});
    sent = true;
  }
  if (!sent && heartbeat) {
    // Idle cost: a follower that holds all of our log durably has nothing to tell us but that
    // it is alive, so it is asked for an answer only on its turn (the other heartbeats go as
    // commit_only, which followers never answer), and the followers' turns fall on different
    // heartbeats: each answer wakes this leader's thread once, and two followers' answers to
    // one heartbeat arrive apart and wake it twice. A follower whose answer is overdue (lost,
    // or it was busy) is asked at every heartbeat until it answers.
    const bool caught_up = p.next == log_end_ && p.durable_end == log_end_;
    const bool overdue =
        now_tick_ - p.last_heard_tick > idle_ask_period() * config_.heartbeat_ticks;
    const bool ask = !caught_up || overdue || idle_ask_turn(to);
    send(to, Append{hard_.epoch, p.next, false, {}, commit_end_, p.session, !ask, p.relaxed});
  }
}

void Core::update_relaxed() {
  // Ticks that the runtime skipped come in a row: the mark then stays as old as it is, so a
  // row of them measures pace once, against the log of at least kPaceTicks ago.
  if (now_tick_ - pace_mark_tick_ < kPaceTicks) return;
  const int64_t bar = pace_mark_end_;
  pace_mark_tick_ = now_tick_;
  pace_mark_end_ = log_end_;
  std::vector<std::pair<std::tuple<bool, bool, int64_t, NodeId>, Progress*>> ranked;
  for (auto& [id, p] : progress_) {
    if (!p.synced || !peers_.contains(id)) {
      p.relaxed = false;
      continue;
    }
    ranked.push_back({{p.durable_end >= bar, !p.relaxed, p.durable_end, id}, &p});
  }
  std::sort(ranked.begin(), ranked.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  int strict = durable_end_ >= bar ? 1 : 0;  // this node, when it keeps pace
  size_t i = 0;
  for (; i < ranked.size() && strict < quorum(); ++i) {
    if (!std::get<0>(ranked[i].first)) break;  // the rest do not keep pace either
    ranked[i].second->relaxed = false;
    ++strict;
  }
  // Too few keep pace for a majority: every follower answers at once again.
  const bool majority = strict >= quorum();
  for (; i < ranked.size(); ++i) ranked[i].second->relaxed = majority;
}

// Each caught-up follower answers once per period: two heartbeats per follower (three nodes: each
// follower every 4 heartbeats, the leader hears one of them every 2), at most two thirds of the
// longest election timeout, the quorum check's window (a leader steps down after
// election_ticks_max without a majority). A lost answer is overdue one heartbeat after the
// period and asked again then, so it still arrives within the window.
int Core::idle_ask_period() const {
  const int fits = config_.election_ticks_max * 2 / 3 / std::max(1, config_.heartbeat_ticks);
  const int wanted = 2 * std::max<int>(1, static_cast<int>(peers_.size()));
  return std::max(1, std::min(wanted, fits));
}

bool Core::idle_ask_turn(const NodeId& peer) const {
  const int period = idle_ask_period();
  const auto rank = std::distance(peers_.begin(), peers_.find(peer));
  const int64_t offset = rank * period / std::max<int64_t>(1, std::ssize(peers_));
  return (heartbeat_rounds_ + offset) % period == 0;
}

void Core::on_append(const NodeId& from, Append& m) {
  if (m.epoch < hard_.epoch) {
    // A stale leader: tell it about the newer epoch so it steps down.
    send(from, AppendAck{hard_.epoch, log_end_, durable_end_});
    return;
  }
  if (role_ != Role::Follower || leader_ != from) become_follower(m.epoch, from);
  reset_election_timer();
  if (m.sync && (synced_ || m.session != session_)) return;  // answers another Subscribe
  if (!m.sync && synced_ && m.session != session_) return;   // stale: another session
  if (synced_ || m.sync) matched_tick_ = now_tick_;
  if (m.sync) {
    // A leader answers our Subscribe from a point within the log we reported and at or above
    // what we committed. A sync Append outside that range comes from a peer that does not know
    // our log (or is faulty): it is a peer's input, not our bug, so ignore it and sync again.
    if (m.start < std::min(commit_end_, log_end_) || m.start > log_end_) {
      ++sync_appends_refused_;
      session_ = 0;
      send_subscribe();
      return;
    }
    if (m.start < log_end_) truncate_local(m.start);
    synced_ = true;
  }
  if (!synced_) {
    if (now_tick_ - subscribe_sent_tick_ >= config_.heartbeat_ticks) send_subscribe();
    return;
  }
  std::vector<Entry> entries = std::move(m.entries);
  if (m.start < log_end_) {
    // Overlap (a duplicated or late message). Within one epoch the leader's log and ours agree,
    // so the entries we already hold are the same: keep only what lies beyond our log.
    const size_t received = entries.size();
    std::erase_if(entries, [&](const Entry& e) { return e.position < log_end_; });
    // A follower's payloads are slices of the message's frame (cluster/append_frame.hpp): the
    // entries kept would hold all of it, the dropped ones' bytes too, in the buffer that counts
    // only theirs. Copied out, the buffer's byte count bounds the memory it holds.
    if (entries.size() != received) {
      for (auto& e : entries) e.payload = Payload(std::string(e.payload.view()));
    }
  }
  const int64_t first = entries.empty() ? m.start : entries.front().position;
  if (first > log_end_) {
    // A gap (a lost message): only a resync repairs it.
    synced_ = false;
    session_ = 0;
    send_subscribe();
    return;
  }
  leader_commit_end_ = std::max(leader_commit_end_, m.commit_end);
  relaxed_ = m.relaxed;
  set_commit(std::min(m.commit_end, durable_end_));
  if (!entries.empty()) {
    // New entries are acknowledged once they are durable (durable() sends the ack).
    append_local(std::move(entries));
    return;
  }
  // A heartbeat (or a duplicate): answer, so the leader knows we are here and how far we are.
  // A commit announcement (or a heartbeat the leader sends as one) needs no answer: durable()
  // acks new entries, and the next answered heartbeat repairs an ack that was lost.
  if (m.commit_only) return;
  send(from, AppendAck{hard_.epoch, log_end_, durable_end_, session_});
}

void Core::on_ack(const NodeId& from, const AppendAck& m) {
  if (role_ != Role::Leader || m.epoch != hard_.epoch) return;
  auto it = progress_.find(from);
  if (it == progress_.end()) return;
  auto& p = it->second;
  p.last_heard_tick = now_tick_;
  // An ack of session 0 (leader_progress) is contact only.
  if (!p.synced || m.session != p.session) return;
  // Acks may arrive out of order; positions only move forward within one sync.
  p.acked_log_end = std::max(p.acked_log_end, std::min(m.log_end, p.next));
  p.durable_end = std::max(p.durable_end, std::min(m.durable_end, p.next));
  maybe_commit();
  send_appends(from, false);
}

// ------------------------------------------------------------------ log

void Core::append_local(std::vector<Entry> entries) {
  for (auto& e : entries) {
    CHORUS_CORE_ASSERT(e.position == log_end_, "entries must be contiguous");
    CHORUS_CORE_ASSERT(e.end > e.position, "entry without size");
    if (e.is_epoch_record && role_ != Role::Leader) {
      if (auto record = parse_epoch_payload(e.payload)) epochs_.push_back(*record);
    }
    log_end_ = e.end;
    buffer_bytes_ += entry_bytes(e);
    buffer_.push_back(e);
    ready_.append.push_back(std::move(e));
  }
  trim_buffer();
}

void Core::truncate_local(int64_t position) {
  CHORUS_CORE_ASSERT(position >= commit_end_, "truncation below the commit position");
  while (!buffer_.empty() && buffer_.back().position >= position) {
    buffer_bytes_ -= entry_bytes(buffer_.back());
    buffer_.pop_back();
  }
  if (!buffer_.empty() && buffer_.back().end != position) {
    buffer_.clear();
    buffer_bytes_ = 0;
  }
  while (!epochs_.empty() && epochs_.back().position >= position) epochs_.pop_back();
  log_end_ = position;
  durable_end_ = std::min(durable_end_, position);
  // Entries appended in this same Ready that are now gone must not reach storage.
  std::erase_if(ready_.append, [&](const Entry& e) { return e.position >= position; });
  ready_.truncate_to = ready_.truncate_to ? std::min(*ready_.truncate_to, position) : position;
}

std::vector<Entry> Core::entries_from(int64_t from, size_t bytes_max) {
  if (from >= log_end_) return {};
  if (!buffer_.empty() && from >= buffer_.front().position) {
    std::vector<Entry> out;
    size_t bytes = 0;
    auto it = std::lower_bound(buffer_.begin(), buffer_.end(), from,
                               [](const Entry& e, int64_t pos) { return e.position < pos; });
    for (; it != buffer_.end() && (out.empty() || bytes + entry_bytes(*it) <= bytes_max); ++it) {
      bytes += entry_bytes(*it);
      out.push_back(*it);
    }
    return out;
  }
  auto out = log_.read(from, bytes_max);
  // Only what is durable is read from storage; the buffer holds the rest. Storage may hold more
  // (a commit not reported durable yet) or other entries (a truncation still in the storage
  // writer's queue: the suffix the core dropped is still in the file), which must not reach a
  // follower as this log's.
  while (!out.empty() && out.back().end > durable_end_) out.pop_back();
  return out;
}

void Core::trim_buffer() {
  // Keep every entry that is not durable yet; beyond that keep recent entries up to the cap.
  while (buffer_bytes_ > config_.buffer_bytes_max && !buffer_.empty() &&
         buffer_.front().end <= durable_end_) {
    buffer_bytes_ -= entry_bytes(buffer_.front());
    buffer_.pop_front();
  }
}

std::optional<Core::AckRoute> Core::ack_route() const {
  if (role_ != Role::Follower || !leader_ || !synced_) return std::nullopt;
  return AckRoute{*leader_, hard_.epoch, session_};
}

void Core::durable(int64_t end, const std::optional<AckRoute>& acked) {
  end = std::min(end, log_end_);
  if (end <= durable_end_) return;
  durable_end_ = end;
  trim_buffer();
  if (role_ == Role::Leader) {
    maybe_commit();
  } else if (role_ == Role::Follower && leader_ && synced_) {
    // The leader may have announced a commit position beyond what was durable here then.
    set_commit(std::min(leader_commit_end_, durable_end_));
    if (acked && *acked == ack_route()) return;  // the storage told the leader already
    send(*leader_, AppendAck{hard_.epoch, log_end_, durable_end_, session_});
  }
}

int64_t Core::current_epoch_start() const { return epochs_.empty() ? 0 : epochs_.back().position; }

std::optional<int64_t> Core::majority_end(int64_t own_end) const {
  std::vector<int64_t> ends{own_end};
  for (const auto& [id, p] : progress_) {
    if (p.synced) ends.push_back(p.durable_end);
  }
  if (static_cast<int>(ends.size()) < quorum()) return std::nullopt;
  std::sort(ends.begin(), ends.end(), std::greater<>());
  return ends[static_cast<size_t>(quorum() - 1)];
}

void Core::maybe_commit() {
  if (role_ != Role::Leader) return;
  const auto candidate = majority_end(durable_end_);
  // Only a prefix that includes this epoch's record may be committed by counting replicas.
  if (candidate && *candidate > current_epoch_start()) set_commit(*candidate);
}

bool Core::waits_on_own_disk() const {
  if (role_ != Role::Leader || log_end_ <= durable_end_) return false;
  // Committed by the followers' copies alone: what is visible here waits on this disk.
  if (commit_end_ > durable_end_) return true;
  // What a majority would hold were this node's whole log durable.
  const auto candidate = majority_end(log_end_);
  return candidate && *candidate > durable_end_ && *candidate > commit_end_ &&
         *candidate > current_epoch_start();
}

void Core::set_commit(int64_t end) {
  if (end <= commit_end_) return;
  commit_end_ = end;
  ready_.commit_end = end;
  if (role_ == Role::Leader) commit_to_announce_ = true;
}

// Leader: a synced follower hears a new commit position without waiting for a heartbeat, so it
// can show a write it forwarded as soon as the write is acknowledged. An Append of this Ready
// that carries the position is enough (Progress::commit_sent); otherwise an empty one starts
// where the follower acknowledged its log (never a gap for it). A follower that was sent entries
// past the new commit end needs none: the Append of the next write carries the position, and if
// no write follows, those entries' own commit is announced (the heartbeat carries it anyway).
// Under a stream of writes that spares each follower a message, and a wake-up, per commit. A
// write forwarded through a follower does not wait for that: announce_commit_now.
void Core::announce_commit() {
  commit_to_announce_ = false;
  send_commit_notices(false);
}

void Core::announce_commit_now() { send_commit_notices(true); }

void Core::send_commit_notices(bool also_with_later_entries_sent) {
  if (role_ != Role::Leader) return;
  for (const auto& [id, p] : progress_) {
    if (!p.synced || p.commit_sent >= commit_end_) continue;
    if (!also_with_later_entries_sent && p.next > commit_end_) continue;
    send(id,
         Append{hard_.epoch, p.acked_log_end, false, {}, commit_end_, p.session, true, p.relaxed});
  }
}

std::optional<std::vector<Core::Span>> Core::propose_spans(std::vector<Payload> payloads,
                                                           bool send_now) {
  if (role_ != Role::Leader) return std::nullopt;
  std::vector<Entry> entries;
  std::vector<Span> spans;
  entries.reserve(payloads.size());
  spans.reserve(payloads.size());
  int64_t position = log_end_;
  for (auto& payload : payloads) {
    Entry e;
    e.position = position;
    e.epoch = hard_.epoch;
    e.end = position + kEntryOverheadBytes + static_cast<int64_t>(payload.size());
    e.payload = std::move(payload);
    spans.push_back(Span{e.position, e.end});
    position = e.end;
    entries.push_back(std::move(e));
  }
  append_local(std::move(entries));
  if (send_now) send_pending_appends();
  return spans;
}

std::optional<std::vector<Entry>> Core::propose(std::vector<std::string> payloads, bool send_now) {
  if (role_ != Role::Leader) return std::nullopt;
  std::vector<Entry> entries;
  int64_t position = log_end_;
  for (auto& payload : payloads) {
    Entry e;
    e.position = position;
    e.epoch = hard_.epoch;
    e.payload = std::move(payload);
    e.end = position + kEntryOverheadBytes + static_cast<int64_t>(e.payload.size());
    position = e.end;
    entries.push_back(std::move(e));
  }
  append_local(entries);
  if (send_now) send_pending_appends();
  return entries;
}

void Core::send_pending_appends() {
  if (role_ != Role::Leader) return;
  for (const auto& peer : peers_) send_appends(peer, false);
}

std::map<NodeId, int64_t> Core::follower_durable_ends() const {
  std::map<NodeId, int64_t> out;
  for (const auto& [id, p] : progress_) out[id] = p.durable_end;
  return out;
}

Ready Core::ready() {
  if (commit_to_announce_) announce_commit();
  Ready out = std::move(ready_);
  ready_ = Ready{};
  return out;
}

}  // namespace chorus::replication
