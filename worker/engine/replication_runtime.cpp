// ReplicationRuntime: the replication core's adapter to SQLite, the network and the clock. A
// proposal's entries go to storage at once and to the followers once the burst of writes queued
// on the core thread is proposed; what is visible advances with min(majority commit, local
// durable end), so acknowledgements and reads never see data a new leader could truncate.
#include "worker/engine/replication_runtime.hpp"

#include "common/thread_slice.hpp"

#include "worker/engine/log_codec.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <iostream>
#include <random>
#include <utility>

namespace chorus {
namespace {

namespace asio = boost::asio;

// The largest Append the leader sends, and how much it sends a follower ahead of its acks.
constexpr size_t kAppendBytesMax = 1u << 20;
constexpr size_t kReplicationInflightBytesMax = 4u << 20;
// Recent entries the core keeps in memory for followers besides those not yet durable here: a
// follower less than this behind is served from memory, one further behind from storage. The
// core's default (64 MiB) grew the heap through the first ~160,000 events of a load (sysmalloc
// and page faults were a sixth of a follower's core thread) and stayed resident afterwards.
constexpr size_t kReplicationBufferBytesMax = 2 * kReplicationInflightBytesMax;
// A follower this close to the leader's commit position counts as caught up (Follower).
constexpr int64_t kCaughtUpSlackBytes = 4 << 20;
// An armed wake is moved later only by at least this fraction of the idle wake (see
// arm_tick_timer): bounds the timer syscalls of a busy core thread to a few a second.
constexpr int kIdleRearmMinDivisor = 2;
// A follower's writer holds back at most this many durable notices before it wakes the core.
constexpr size_t kHeldDurableNoticesMax = 16;

// The replication core reads older entries (for followers catching up) from SQLite.
class StorageLogReader final : public replication::LogReader {
 public:
  explicit StorageLogReader(ReadConnection& c) : c_(c) {}
  std::vector<replication::Entry> read(int64_t from, size_t bytes_max) override {
    std::vector<replication::Entry> out;
    for (auto& stored : c_.entries(from, bytes_max)) {
      auto* record = std::get_if<EventRecord>(&stored);
      if (record == nullptr) {
        out.push_back(encode_entry(stored));
        continue;
      }
      // A record read back is sent as it is (as a leader's own proposals are): its bytes go from
      // the record into the Appends, not encoded into one more copy on this thread first.
      replication::Entry e;
      e.position = record->position.prepare;
      e.end = record->log_end;
      auto payload = std::make_shared<RecordPayload>(std::move(*record));
      e.payload = replication::Payload(payload, payload->size());
      out.push_back(std::move(e));
    }
    return out;
  }

 private:
  ReadConnection& c_;
};

int64_t steady_ms(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

ReplicationRuntime::ReplicationRuntime(const EngineConfig& config, const Database& db,
                                       asio::io_context& core, RuntimeListener& listener)
    : config_(config), io_(core), listener_(listener), tick_timer_(core), relaxed_timer_(core) {
  hard_state_store_ = std::make_unique<HardStateStore>(db);
  writer_ = std::make_unique<StorageWriter>(
      db,
      [this](int64_t end, uint64_t generation, const FlushStats& flush) {
        last_flush_us_.store(flush.duration_us, std::memory_order_relaxed);
        auto acked = std::exchange(storage_acked_, std::nullopt);
        const bool self_acked = acked.has_value();
        size_t held = 0;
        {
          std::lock_guard lock(held_mutex_);
          held_notices_.push_back(HeldNotice{end, generation, flush, std::move(acked)});
          held = held_notices_.size();
        }
        // Read after the push (the core stores the flag before it takes the queue): a notice
        // the core wants is never left waiting for its next input.
        const NoticeWanted wanted = notice_wanted_.load();
        if (held < kHeldDurableNoticesMax &&
            (wanted == kNoticeHeld || (wanted == kNoticeHeldIfSelfAcked && self_acked))) {
          return;
        }
        asio::post(io_, [this] { take_held_notices(); });
      },
      [this](const std::string& message) {
        asio::post(io_, [this, message] { on_storage_failure(message); });
      });
}

ReplicationRuntime::~ReplicationRuntime() = default;

void ReplicationRuntime::start(ReplicationTransport* transport, ReadConnection& log) {
  transport_ = transport;
  replication::InitialState init;
  const auto [epoch, voted_for] = log.hard_state();
  init.hard_state = replication::HardState{epoch, voted_for};
  for (const auto& e : log.epochs()) {
    init.epochs.push_back(replication::EpochRecord{e.number, e.position, e.id});
  }
  init.log_end = log.log_end();
  durable_end_ = init.log_end;
  const auto& cc = config_.cluster;
  replication::Config rc;
  rc.self = cc.node_id;
  rc.cluster_size = cc.cluster_size;
  rc.priority = cc.node_priority;
  const int tick = std::max(1, cc.tick_ms);
  rc.heartbeat_ticks = std::max(1, cc.heartbeat_ms / tick);
  rc.election_ticks_min = std::max(2, cc.election_timeout_ms_min / tick);
  rc.election_ticks_max = std::max(rc.election_ticks_min + 1, cc.election_timeout_ms_max / tick);
  rc.append_bytes_max = kAppendBytesMax;
  rc.inflight_bytes_max = kReplicationInflightBytesMax;
  rc.buffer_bytes_max = kReplicationBufferBytesMax;
  rc.seed = cc.seed != 0 ? cc.seed : std::random_device{}();
  log_reader_ = std::make_unique<StorageLogReader>(log);
  core_ = std::make_unique<replication::Core>(rc, init, *log_reader_);
  tick_base_ = Clock::now();
  last_tick_steady_ms_.store(steady_ms(tick_base_));
  process_ready();
  update_status();
}

void ReplicationRuntime::stop_writer() {
  if (writer_) writer_->stop();  // writes what is queued; its last notices reach the core
}

void ReplicationRuntime::stop() {
  if (stopped_) return;
  if (core_) take_held_notices();  // the stopped writer's last notices
  stopped_ = true;
  tick_timer_.cancel();
  relaxed_timer_.cancel();
  fail_waiters();
}

// ---------------------------------------------------------------- inputs

void ReplicationRuntime::receive(replication::Message message) {
  if (!core_ || stopped_) return;
  if (config_.coalescer) config_.coalescer->carry();
  take_held_notices();  // the storage's news first, as if the writer had posted them
  catch_up_ticks();
  core_->step(std::move(message));
  process_ready();
  take_held_notices();  // and whether the message (a commit announced) now wants them at once
  follow_relaxed();
  // The leader waits on our copy now (or leads no more): what is held back goes at once.
  if (relaxed_write_armed_ && !core_->relaxed()) schedule_write_here();
}

void ReplicationRuntime::set_voters(const std::vector<std::string>& node_ids) {
  if (!core_ || stopped_) return;
  take_held_notices();
  catch_up_ticks();
  core_->set_voters(node_ids);
  process_ready();
  take_held_notices();
}

void ReplicationRuntime::peer_lost(const std::string& node_id) {
  if (!core_ || stopped_) return;
  take_held_notices();
  catch_up_ticks();
  core_->peer_lost(node_id);
  process_ready();
  take_held_notices();
}

void ReplicationRuntime::leader_progress(const std::string& node_id, int64_t epoch) {
  if (!core_ || stopped_) return;
  take_held_notices();
  catch_up_ticks();
  core_->leader_progress(node_id, epoch);
  process_ready();
  take_held_notices();
}

void ReplicationRuntime::resign() {
  if (!core_) return;
  take_held_notices();
  catch_up_ticks();
  core_->resign();
  process_ready();
  take_held_notices();
  update_status();
}

void ReplicationRuntime::announce_commit_now() {
  if (!core_ || stopped_) return;
  core_->announce_commit_now();
  process_ready();
}

// Idle cost: the core counts a tick every tick_ms of wall time, but the thread wakes only when
// a tick is due to act (Core::ticks_until_due) or kIdleWakeMs passed; every input first ticks
// the ticks that passed since, so the core sees the same clock as if it were ticked each time.
void ReplicationRuntime::catch_up_ticks() {
  const auto now = Clock::now();
  const auto tick = std::chrono::milliseconds(std::max(1, config_.cluster.tick_ms));
  int64_t n = (now - tick_base_) / tick;
  if (n <= 0) return;
  tick_base_ += n * tick;
  last_tick_steady_ms_.store(steady_ms(now));
  // After a stall (SIGSTOP, a swapped-out process) tick no more than one idle wake's worth:
  // a paused leader resumes as a late tick would have found it, not an election timeout later.
  n = std::min<int64_t>(n, idle_wake_ticks() + 1);
  while (n > 0) {
    const int64_t k = std::min<int64_t>(n, core_->ticks_until_due());
    for (int64_t i = 0; i < k; ++i) core_->tick();
    n -= k;
    apply_ready();  // at most one acting tick per round: no doubled heartbeats
  }
}

int ReplicationRuntime::idle_wake_ticks() const {
  return std::max(1, config_.cluster.idle_wake_ms / std::max(1, config_.cluster.tick_ms));
}

void ReplicationRuntime::arm_tick_timer() {
  if (stopped_ || !core_) return;
  const int due = std::min(core_->ticks_until_due(), idle_wake_ticks());
  const auto at =
      tick_base_ + due * std::chrono::milliseconds(std::max(1, config_.cluster.tick_ms));
  // Already wakes in time: no timer syscall. But a wake well before the one due now is moved
  // later: an idle follower's heartbeats (every heartbeat_ms, below kIdleWakeMs) then keep
  // pushing its idle wake ahead instead of the thread waking for it 4 times a second, at one
  // timer syscall per half an idle wake instead of a context switch per kIdleWakeMs.
  const bool moved_later = tick_armed_ && at >= tick_wake_at_;
  const auto rearm_min =
      std::chrono::milliseconds(config_.cluster.idle_wake_ms / kIdleRearmMinDivisor);
  if (moved_later && at - tick_wake_at_ < rearm_min) return;
  tick_armed_ = true;
  tick_wake_at_ = at;
  tick_timer_.expires_at(at);  // cancels an earlier wait, whose handler sees operation_aborted
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    tick_armed_ = false;
    if (ec || stopped_) return;
    on_tick();
  });
  if (moved_later) {
    // What the skipped wake would have done (the status, e.g. a follower becoming caught up,
    // and the write timeouts), now: they stay as fresh as with the wake.
    check_timeouts();
    update_status();
  }
}

void ReplicationRuntime::on_tick() {
  if (config_.coalescer) config_.coalescer->carry();
  take_held_notices();
  catch_up_ticks();
  take_held_notices();  // a tick may have made this node a candidate
  check_timeouts();
  update_status();
  arm_tick_timer();
}

// ---------------------------------------------------------------- the core's output

void ReplicationRuntime::process_ready() {
  apply_ready();
  arm_tick_timer();
}

void ReplicationRuntime::apply_ready() {
  auto ready = core_->ready();
  if (ready.empty()) return;
  if (ready.hard_state) {
    try {
      hard_state_store_->save(ready.hard_state->epoch, ready.hard_state->voted_for);
    } catch (const std::exception& e) {
      // A vote that cannot be made durable must not be sent.
      on_storage_failure(e.what());
      return;
    }
  }
  if (ready.truncate_to) apply_truncation(*ready.truncate_to);
  if (!ready.append.empty()) apply_entries(std::move(ready.append));
  if (ready.role_changed) on_role_change();
  // The leader answers its waiters before the messages go out: a commit's Ready carries its
  // notice to every follower, and on loopback each send wakes that follower, which may take the
  // CPU from this thread before the client's reply is written (traced: up to 0.2 ms at C = 1).
  // A follower sends first: its acknowledgement is what the leader's waiters wait for.
  const bool answer_first = core_->role() == replication::Role::Leader;
  const bool answered = answer_first && ready.commit_end && advance_commit();
  if (transport_ && answered && !ready.messages.empty()) {
    // The answers only queue their replies (each client session writes in a handler of its
    // own); the commit notices wait behind them. Sent now, each notice wakes its follower,
    // which on loopback takes this thread's CPU before the replies are written (traced at
    // C = 1: the reply 0.2-2.8 ms late when another process then got the CPU).
    asio::post(io_, [this, messages = std::move(ready.messages)]() mutable {
      if (stopped_ || !transport_) return;
      for (auto& m : messages) transport_->send(std::move(m));
    });
  } else if (transport_) {
    for (auto& m : ready.messages) transport_->send(std::move(m));
  }
  if (!answer_first && ready.commit_end) advance_commit();
}

void ReplicationRuntime::apply_truncation(int64_t position) {
  generation_ += 1;
  LogBatch batch;
  batch.truncate_to = position;
  batch.generation = generation_;
  if (!writer_->submit(std::move(batch))) {
    on_storage_failure("the storage writer refused a truncation");
    return;
  }
  durable_end_ = std::min(durable_end_, position);
  while (!uncommitted_.empty() && uncommitted_.back()->position.prepare >= position) {
    uncommitted_.pop_back();
  }
  listener_.on_truncated(position);
}

void ReplicationRuntime::apply_entries(std::vector<replication::Entry> entries) {
  LogBatch batch;
  batch.generation = generation_;
  batch.entries.reserve(entries.size());
  // Storage and the commit notices share the one record (no copy of it).
  const auto append_record = [&](std::shared_ptr<const EventRecord> shared) {
    listener_.on_record_appended(*shared);
    events_written_ += 1;
    bytes_written_ += static_cast<int64_t>(shared->data.size() + shared->metadata.size());
    uncommitted_.push_back(shared);
    batch.entries.emplace_back(std::move(shared));
  };
  for (auto& entry : entries) {
    // Our own proposals are at hand as records (storage shares them: the write path reads only
    // positions after propose); only entries from a leader need decoding.
    std::optional<StoredEntry> stored;
    if (proposing_ != nullptr && proposing_next_ < proposing_->size() &&
        (*proposing_)[proposing_next_]->record.position.prepare == entry.position) {
      const std::shared_ptr<RecordPayload>& own = (*proposing_)[proposing_next_++];
      append_record(std::shared_ptr<const EventRecord>(own, &own->record));
      continue;
    }
    stored = decode_entry(entry);
    if (!stored) {
      on_storage_failure("undecodable log entry at position " + std::to_string(entry.position));
      return;
    }
    if (auto* r = std::get_if<EventRecord>(&*stored)) {
      append_record(std::make_shared<const EventRecord>(std::move(*r)));
      continue;
    }
    batch.entries.push_back(std::move(*stored));
  }
  // A follower's storage acknowledges the batch itself once it is durable: the ack then leaves
  // without waiting for this thread to wake (one wake-up fewer on the path of a write).
  bool here = false;
  if (transport_ && !batch.entries.empty()) {
    if (auto route = core_->ack_route()) {
      batch.on_written = [this, route = std::move(*route), generation = batch.generation](
                             int64_t end) { storage_ack(route, generation, end); };
      // A follower on a fast disk writes the leader's entries on this thread, once the
      // Appends already read are applied too (one transaction for them all): no wake-up of
      // the writer's thread on the path of each write, and at C = 64 10 % less server CPU
      // per write. A commit slower than kWriteHereFlushUsMax (a slow or stalling disk)
      // hands the next ones back to the writer's thread, so that this thread goes on
      // serving reads and ticks while the disk is slow.
      here = last_flush_us_.load(std::memory_order_relaxed) < kWriteHereFlushUsMax;
    }
  }
  if (!writer_->submit(std::move(batch), !here)) {
    on_storage_failure("the storage writer queue is full or failed");
    return;
  }
  if (!here) return;
  // The leader holds a majority without this node's copy (Append::relaxed): our acks decide
  // no commit now, so what it sends is written every kRelaxedWriteDelayUs, not as it comes:
  // fewer, larger transactions (fewer fsyncs on a disk the other nodes share too) while the
  // other follower keeps the pace. Should that one fall behind us, the leader's next Append
  // says so and we write at once; until then at most kRelaxedWriteDelayUs is added.
  // Not while a client here waits to see a write (one this follower forwarded).
  const bool relaxed = core_->relaxed() && waiters_.empty();
  if (relaxed && relaxed_bytes_ < kRelaxedWriteBytesMax) {
    relaxed_bytes_ += entries.back().end - entries.front().position;
    if (!relaxed_write_armed_) {
      relaxed_write_armed_ = true;
      relaxed_timer_.expires_after(std::chrono::microseconds(kRelaxedWriteDelayUs));
      relaxed_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec == boost::asio::error::operation_aborted) return;
        relaxed_write_armed_ = false;
        if (ec || !core_ || stopped_ || !writer_) return;
        if (write_here_now()) relaxed_flushes_.fetch_add(1, std::memory_order_relaxed);
      });
    }
    return;
  }
  schedule_write_here();
}

void ReplicationRuntime::schedule_write_here() {
  if (write_here_scheduled_) return;
  write_here_scheduled_ = true;
  asio::post(io_, [this] {
    write_here_scheduled_ = false;
    if (!core_ || stopped_ || !writer_) return;
    write_here_now();
  });
}

bool ReplicationRuntime::write_here_now() {
  // Whatever is held back goes with this transaction: the hold ends here.
  if (relaxed_write_armed_) {
    relaxed_timer_.cancel();
    relaxed_write_armed_ = false;
  }
  relaxed_bytes_ = 0;
  // The disk turned slow since these were queued (held back, or posted here): the writer's
  // thread writes them, not this one (see apply_entries).
  if (last_flush_us_.load(std::memory_order_relaxed) >= kWriteHereFlushUsMax) {
    writer_->wake();
    return false;
  }
  if (!writer_->write_queued_here()) return false;
  take_held_notices();
  return true;
}

void ReplicationRuntime::storage_ack(const replication::Core::AckRoute& route, uint64_t generation,
                                     int64_t end) {
  // As on_durable: no ack for writes made before a truncation, nor after a storage failure (a
  // later batch may sit behind a hole).
  if (generation != generation_.load() || storage_failed_flag_.load()) return;
  transport_->send_now(
      replication::Message{config_.cluster.node_id, route.leader,
                           replication::AppendAck{route.epoch, end, end, route.session}});
  storage_acked_ = route;
}

void ReplicationRuntime::take_held_notices() {
  // Not again from inside (an input handled inline by a listener): the outer call goes on.
  if (taking_notices_) return;
  taking_notices_ = true;
  struct Done {
    bool& flag;
    ~Done() { flag = false; }
  } done{taking_notices_};
  for (;;) {
    std::vector<HeldNotice>& held = taken_notices_;  // swapped, not reallocated, each time
    held.clear();
    {
      std::lock_guard lock(held_mutex_);
      held.swap(held_notices_);
    }
    // In order, each transaction counted; the core needs only the newest of a generation.
    for (size_t i = 0; i < held.size(); ++i) {
      const HeldNotice& n = held[i];
      count_flush(n.flush);
      const bool superseded = i + 1 < held.size() && held[i + 1].generation == n.generation;
      if (!superseded) on_durable(n.end, n.generation, n.acked);
    }
    // Wanted unless this is a follower whose core knows every announced commit it can apply,
    // or a leader whose own durable end holds back neither a commit nor what it shows:
    // then a notice can wait for the next input (an Append or an ack, a heartbeat, a tick).
    NoticeWanted wanted = kNoticeWanted;
    if (core_ && core_->role() == replication::Role::Follower &&
        core_->leader_commit_end() <= core_->commit_end()) {
      wanted = kNoticeHeldIfSelfAcked;
    } else if (core_ && core_->role() == replication::Role::Leader && core_->quorum() > 1 &&
               !core_->waits_on_own_disk()) {
      wanted = kNoticeHeld;
    }
    notice_wanted_.store(wanted);
    if (wanted != kNoticeWanted) return;
    std::lock_guard lock(held_mutex_);
    if (held_notices_.empty()) return;  // else held while the flag was down: take them too
  }
}

void ReplicationRuntime::count_flush(const FlushStats& flush) {
  flushes_ += 1;
  flush_duration_.observe(static_cast<double>(flush.duration_us) / 1e6);
  flush_size_.observe(static_cast<double>(flush.records));
  checkpoint_failures_ = flush.checkpoint_failures;
}

void ReplicationRuntime::on_durable(int64_t end, uint64_t generation,
                                    const std::optional<replication::Core::AckRoute>& acked) {
  // A notice about writes made before the latest truncation says nothing about the log now.
  // After a storage failure nothing more counts as durable: a later batch may sit behind a hole.
  if (generation != generation_ || !core_ || !storage_failure_.empty()) return;
  durable_end_ = std::max(durable_end_, end);
  catch_up_ticks();
  core_->durable(end, acked);  // no second ack when the writer's went where the core's would
  process_ready();
  advance_commit();
}

bool ReplicationRuntime::advance_commit() {
  const int64_t visible = std::min(core_->commit_end(), durable_end_);
  if (visible <= visible_end_) return false;
  bool answered = false;
  visible_end_ = visible;
  listener_.on_visible(visible_end_);
  // Publish committed records in log order, then answer the waiters.
  while (!uncommitted_.empty() && uncommitted_.front()->log_end <= visible_end_) {
    auto record = std::move(uncommitted_.front());
    uncommitted_.pop_front();
    listener_.on_record_committed(record);
  }
  while (!waiters_.empty() && waiters_.begin()->first <= visible_end_) {
    auto waiter = std::move(waiters_.begin()->second);
    waiters_.erase(waiters_.begin());
    waiter.done(true);
    answered = true;
  }
  if (core_->role() == replication::Role::Leader && !leader_ready_ && !core_->epochs().empty() &&
      visible_end_ > core_->epochs().back().position) {
    leader_ready_ = true;
    std::cerr << "chorus-worker: leading epoch " << core_->epoch() << " at position "
              << core_->epochs().back().position << std::endl;
    listener_.on_leader_ready();
    update_status();
  }
  return answered;
}

void ReplicationRuntime::on_role_change() {
  if (core_->role() != replication::Role::Leader) {
    const bool was_ready = leader_ready_;
    if (was_ready) {
      std::cerr << "chorus-worker: no longer leader (epoch " << core_->epoch() << ")" << std::endl;
    }
    leader_ready_ = false;
    // A deposed leader cannot know whether its pending writes will commit: they time out, and
    // the clients retry with the same event ids (idempotent on the new leader).
    fail_waiters();
    listener_.on_leadership_lost();
  }
  update_status();
}

void ReplicationRuntime::on_storage_failure(const std::string& message) {
  // A failed write or fsync stops all later writes: what is on disk is no longer known.
  if (!storage_failure_.empty()) return;
  storage_failure_ = message;
  storage_failed_flag_.store(true);
  std::cerr << "chorus-worker: storage failure, writes stopped: " << message << std::endl;
  fail_waiters();
  if (config_.on_storage_failure) config_.on_storage_failure(message);
}

void ReplicationRuntime::fail_waiters() {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& [end, waiter] : waiters) waiter.done(false);
}

void ReplicationRuntime::check_timeouts() {
  const auto now = Clock::now();
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.deadline <= now) {
      auto waiter = std::move(it->second);
      it = waiters_.erase(it);
      waiter.done(false);
    } else {
      ++it;
    }
  }
}

// ---------------------------------------------------------------- proposals

NotHandledReason ReplicationRuntime::refusal() const {
  if (core_ && core_->role() == replication::Role::Leader && leader_ready_) {
    // Low on disk: refused as "too busy" (clients retry later), never half-written.
    if (!low_disk_text().empty()) return NotHandledReason::TooBusy;
    return NotHandledReason::None;
  }
  if (core_ && core_->role() == replication::Role::Follower && core_->leader()) {
    return NotHandledReason::NotLeader;
  }
  return NotHandledReason::NotReady;
}

std::string ReplicationRuntime::low_disk_text() const {
  return config_.low_disk_refusal ? config_.low_disk_refusal() : std::string();
}

std::string ReplicationRuntime::refusal_message() const {
  return refusal() == NotHandledReason::TooBusy ? low_disk_text() : std::string();
}

bool ReplicationRuntime::propose(std::vector<EventRecord>& records) {
  if (core_ && !stopped_) catch_up_ticks();
  if (!storage_failure_.empty() || refusal() != NotHandledReason::None) return false;
  // The records are proposed as they are, not encoded: their bytes are written only into the
  // Appends that carry them to followers (never on a single node), so a large write is not
  // copied once more on this thread, and storage shares the very records.
  std::vector<std::shared_ptr<RecordPayload>> proposed;
  std::vector<replication::Payload> payloads;
  proposed.reserve(records.size());
  payloads.reserve(records.size());
  for (EventRecord& r : records) {
    auto payload = std::make_shared<RecordPayload>(std::move(r));
    payloads.emplace_back(payload, payload->size());
    proposed.push_back(std::move(payload));
  }
  const auto spans = core_->propose_spans(std::move(payloads), false);
  if (!spans) {
    for (size_t i = 0; i < records.size(); ++i) records[i] = std::move(proposed[i]->record);
    return false;
  }
  for (size_t i = 0; i < records.size(); ++i) {
    const Position position{(*spans)[i].end, (*spans)[i].position};
    records[i].position = proposed[i]->record.position = position;
    records[i].log_end = proposed[i]->record.log_end = (*spans)[i].end;
  }
  proposing_ = &proposed;
  proposing_next_ = 0;
  process_ready();  // hands the entries to storage
  proposing_ = nullptr;
  // The followers get the entries once the writes already queued on the core thread are
  // proposed too: one Append per burst instead of one per client write.
  if (!appends_scheduled_) {
    appends_scheduled_ = true;
    asio::post(io_, [this] {
      appends_scheduled_ = false;
      if (!core_ || stopped_) return;
      catch_up_ticks();
      core_->send_pending_appends();
      process_ready();
    });
  }
  return storage_failure_.empty();
}

void ReplicationRuntime::await_visible(int64_t end, std::function<void(bool visible)> done) {
  if (end <= visible_end_) return done(true);
  if (stopped_ || !storage_failure_.empty()) return done(false);
  const auto deadline = Clock::now() + std::chrono::milliseconds(config_.commit_timeout_ms);
  waiters_.emplace(end, Waiter{deadline, std::move(done)});
  // A client here waits to see it (a write this follower forwarded): nothing is held back.
  if (relaxed_write_armed_) schedule_write_here();
}

// ---------------------------------------------------------------- status

int64_t ReplicationRuntime::epoch() const { return core_ ? core_->epoch() : -1; }

std::optional<int64_t> ReplicationRuntime::announced_commit_end() const {
  if (!core_ || stopped_ || core_->role() != replication::Role::Follower || !core_->leader() ||
      !core_->synced()) {
    return std::nullopt;
  }
  return core_->leader_commit_end();
}

// After each input and status change: the flag for stats(), and the core thread's policy. A
// relaxed follower's work waits up to kRelaxedWriteDelayUs anyway; on a machine shared with
// other nodes (the leader, a strict follower) its core thread should not preempt theirs, which
// every write waits on. SCHED_BATCH while relaxed and serving no TCP client (its clients' reads
// and subscriptions run through this thread too: they would wait; see set_batch_policy); one
// syscall per change.
void ReplicationRuntime::follow_relaxed() {
  const bool relaxed = core_->relaxed();
  relaxed_flag_.store(relaxed, std::memory_order_relaxed);
  const bool batch = relaxed && !(config_.client_connections && config_.client_connections() > 0);
  if (batch == batch_policy_) return;
  batch_policy_ = batch;
  set_batch_policy(batch);
}

void ReplicationRuntime::update_status() {
  follow_relaxed();
  NodeStatus s;
  const auto role = core_->role();
  if (role == replication::Role::Leader) {
    s.state = leader_ready_ ? "Leader" : "PreLeader";
    s.is_leader = leader_ready_;
    s.leader_id = core_->self();
    s.follower_durable = core_->follower_durable_ends();
  } else if (role == replication::Role::Candidate || !core_->leader()) {
    s.state = "Unknown";
  } else {
    s.leader_id = core_->leader();
    // Caught up: synced with the leader and holding (nearly) all it has committed. Under load
    // a follower is always a few writes behind the commit position; that is not catching up.
    const bool caught_up =
        core_->synced() && core_->leader_commit_end() - durable_end_ <= kCaughtUpSlackBytes;
    s.state = caught_up ? "Follower" : "CatchingUp";
  }
  if (!core_->epochs().empty()) {
    s.epoch_number = core_->epochs().back().number;
    s.epoch_position = core_->epochs().back().position;
    s.epoch_id = core_->epochs().back().id;
  }
  s.writer_checkpoint = durable_end_;
  s.chaser_checkpoint = durable_end_;
  s.commit_checkpoint = visible_end_;
  s.elections = core_->elections_started();
  bool changed = false;
  {
    std::lock_guard lock(status_mutex_);
    changed = s.state != status_.state || s.leader_id != status_.leader_id ||
              s.epoch_number != status_.epoch_number;
    is_leader_flag_.store(s.is_leader, std::memory_order_relaxed);
    status_ = std::move(s);
  }
  if (changed && config_.on_status_change) config_.on_status_change();
}

NodeStatus ReplicationRuntime::status() const {
  std::lock_guard lock(status_mutex_);
  return status_;
}

RuntimeStats ReplicationRuntime::stats() const {
  RuntimeStats s;
  s.events_written = events_written_.load();
  s.bytes_written = bytes_written_.load();
  s.flushes = flushes_.load();
  s.flush_duration_seconds = flush_duration_.snapshot();
  s.flush_size_events = flush_size_.snapshot();
  s.checkpoint_failures = checkpoint_failures_.load();
  s.relaxed = relaxed_flag_.load(std::memory_order_relaxed);
  s.relaxed_flushes = relaxed_flushes_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace chorus
