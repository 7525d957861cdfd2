// replication::Core: elections, epochs and quorum replication of one node's log as a pure,
// deterministic state machine (as etcd's raft package). It is fed ticks, received messages,
// proposals and "durable up to" notices; it hands back, through ready(), what to persist, what to
// append or truncate locally, what to send and the new commit position. It owns no socket,
// thread, clock or file; randomness comes from a seed. Not thread-safe: one owner thread.
//
// The log is a sequence of entries at byte-like positions. Every leader starts its epoch by
// appending an epoch record; an entry's epoch is the epoch of the last epoch record before it.
// Followers sync with a new leader by sending their epoch history (Subscribe); the leader answers
// with entries from the last common point and the follower truncates its divergent suffix (which
// is never committed). The commit position is the highest end position durable on a majority of
// the configured cluster size, counted only once the current epoch's record is included; the
// leader announces each new one to its followers in the Ready that commits it. Only the voters
// (set_voters) are heard: a message from any other node is dropped before it can vote, ack,
// subscribe or lead, so nobody outside the configured members counts toward a quorum.
#pragma once

#include "common/guid.hpp"

#include <cstdint>
#include <cstring>
#include <deque>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace chorus::replication {

// A member's stable identity: its instance id (GUID text, persisted with its data), never its
// address. Opaque to the core (the simulator uses short names).
using NodeId = std::string;

// Fixed cost of an entry on top of its payload, so positions advance like byte offsets.
inline constexpr int64_t kEntryOverheadBytes = 64;

struct EpochRecord {
  int64_t number = 0;
  int64_t position = 0;  // where the epoch record sits in the log
  Guid id{};
  friend bool operator==(const EpochRecord&, const EpochRecord&) = default;
};

// An entry's bytes: immutable and shared. The core's buffer of recent entries and every
// follower's Append hold the same bytes (a reference each), not copies. They are a slice of a
// buffer, or a Source that writes them on demand: a leader proposes its own records as they are,
// and their bytes are written only into the Appends that carry them to a follower.
class Payload {
 public:
  // Takes a payload's bytes in parts, in order (write_parts): a frame to a follower is written
  // as a gather list, so a large payload goes out from where it is, not copied into the frame.
  class PartSink {
   public:
    virtual ~PartSink() = default;
    // Bytes valid only during the call (the small parts a source builds on its stack).
    virtual void copy(std::string_view bytes) = 0;
    // Bytes valid as long as the payload lives: the sink may refer to them in place.
    virtual void refer(std::string_view bytes) = 0;
  };
  // Writes a payload's bytes on demand. Immutable once proposed; any thread.
  class Source {
   public:
    virtual ~Source() = default;
    // Writes exactly the payload's size() bytes at `out`.
    virtual void write_to(char* out) const = 0;
    // The bytes in one piece, written once on first use (thread-safe); write_to() spares that
    // copy where the bytes go into a larger buffer anyway.
    virtual std::string_view bytes() const = 0;
    // The size() bytes in parts; by default bytes() in one.
    virtual void write_parts(PartSink& out) const { out.refer(bytes()); }
  };

  Payload() = default;
  // A payload of its own (implicit: tests and the simulator write strings).
  Payload(std::string bytes)  // NOLINT(google-explicit-constructor)
      : size_(bytes.size()) {
    if (!bytes.empty()) buffer_ = std::make_shared<const std::string>(std::move(bytes));
  }
  Payload(const char* text) : Payload(std::string(text)) {}  // NOLINT(google-explicit-constructor)
  // `size` bytes at `offset` of a shared buffer.
  Payload(std::shared_ptr<const std::string> buffer, size_t offset, size_t size)
      : buffer_(std::move(buffer)), offset_(offset), size_(size) {}
  // `size` bytes that `source` writes on demand.
  Payload(std::shared_ptr<const Source> source, size_t size)
      : source_(std::move(source)), size_(size) {}

  std::string_view view() const {
    if (source_) return source_->bytes();
    return buffer_ ? std::string_view(buffer_->data() + offset_, size_) : std::string_view();
  }
  // Writes the size() bytes at `out` (a source writes them there directly).
  void copy_to(char* out) const {
    if (source_) return source_->write_to(out);
    if (size_ != 0) std::memcpy(out, buffer_->data() + offset_, size_);
  }
  // The size() bytes in parts (a slice of a buffer in one part, referred to in place).
  void write_parts(PartSink& out) const {
    if (source_) return source_->write_parts(out);
    if (size_ != 0) out.refer(view());
  }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  const char* data() const { return view().data(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string str() const { return std::string(view()); }

  friend bool operator==(const Payload& a, const Payload& b) { return a.view() == b.view(); }
  friend bool operator==(const Payload& a, const std::string& b) { return a.view() == b; }
  friend bool operator==(const Payload& a, const char* b) { return a.view() == b; }
  friend std::ostream& operator<<(std::ostream& out, const Payload& p);

 private:
  std::shared_ptr<const std::string> buffer_;
  std::shared_ptr<const Source> source_;
  size_t offset_ = 0;
  size_t size_ = 0;
};

struct Entry {
  int64_t position = 0;
  int64_t end = 0;    // position of the next entry
  int64_t epoch = 0;  // epoch number it was written in
  bool is_epoch_record = false;
  Payload payload;  // opaque to the core (an event record, or the epoch record's data)
  // A range whose records a scavenge removed: no payload, any size (storage's GapRow).
  bool is_gap = false;
  friend bool operator==(const Entry&, const Entry&) = default;
};

// Reads entries that are durable in local storage (positions below the durable end).
class LogReader {
 public:
  virtual ~LogReader() = default;
  // Entries starting exactly at `from` (a record boundary), in order, up to about bytes_max
  // (at least one entry if any exists).
  virtual std::vector<Entry> read(int64_t from, size_t bytes_max) = 0;
};

enum class Role { Follower, Candidate, Leader };
const char* role_name(Role role);

// A pre-vote (pre = true) asks "would you vote for me in epoch `epoch`?" without anybody
// changing epoch: a node that cannot win (partitioned, or restarted while a leader is in
// contact with the others) then never disrupts the cluster with a higher epoch.
struct VoteRequest {
  int64_t epoch = 0;
  int64_t last_epoch = 0;  // epoch of the candidate's last entry
  int64_t log_end = 0;
  int32_t priority = 0;
  bool pre = false;
};
struct VoteResponse {
  int64_t epoch = 0;
  bool granted = false;
  bool pre = false;
};
struct Subscribe {  // follower -> leader: "here is my log; where do we agree?"
  int64_t epoch = 0;
  int64_t log_end = 0;
  std::vector<EpochRecord> epochs;
  uint64_t session = 0;
};
struct Append {  // leader -> follower; no entries = heartbeat
  int64_t epoch = 0;
  int64_t start = 0;  // position of the first entry (the follower's expected log end)
  bool sync = false;  // answer to Subscribe: truncate to `start` first if longer
  std::vector<Entry> entries;
  int64_t commit_end = 0;
  uint64_t session = 0;
  // Only announces commit_end (announce_commit), or a heartbeat to a follower that holds the
  // whole log durably and whose turn to answer it is not (Core::idle_ask_period): the follower
  // has nothing to tell the leader that its own acks and its turns' answers do not, so it does
  // not answer. Answering cost a message each way per commit, and woke an idle leader once per
  // follower and heartbeat.
  bool commit_only = false;
  // The leader holds a majority without this follower's copy (Core::update_relaxed): its
  // acks decide no commit now, so it may write what it is sent in larger, later batches.
  bool relaxed = false;
};
struct AppendAck {
  int64_t epoch = 0;
  int64_t log_end = 0;
  int64_t durable_end = 0;
  uint64_t session = 0;  // 0 (no session; a Subscribe's is never 0): only "I am here"
};

using Body = std::variant<VoteRequest, VoteResponse, Subscribe, Append, AppendAck>;
struct Message {
  NodeId from;
  NodeId to;
  Body body;
};
int64_t message_epoch(const Body& body);
bool is_pre_vote(const Body& body);

struct HardState {
  int64_t epoch = 0;
  NodeId voted_for;  // empty: none in this epoch
  friend bool operator==(const HardState&, const HardState&) = default;
};

struct Config {
  NodeId self;
  int cluster_size = 1;
  int32_t priority = 0;
  int heartbeat_ticks = 5;
  int election_ticks_min = 30;  // randomized in [min, max)
  int election_ticks_max = 60;
  size_t append_bytes_max = 1u << 20;    // one Append message
  size_t inflight_bytes_max = 8u << 20;  // sent but not acknowledged, per follower
  size_t buffer_bytes_max = 64u << 20;   // recent entries kept in memory for followers
  uint64_t seed = 1;
};

// What a node knows of its own log when it starts.
struct InitialState {
  HardState hard_state;
  std::vector<EpochRecord> epochs;  // ascending
  int64_t log_end = 0;              // everything below is durable
};

struct Ready {
  std::optional<HardState> hard_state;  // persist before sending `messages`
  std::optional<int64_t> truncate_to;   // drop local entries at positions >= this, first
  std::vector<Entry> append;            // then append these locally (in order)
  std::vector<Message> messages;
  std::optional<int64_t> commit_end;  // the committed prefix grew to here
  bool role_changed = false;
  bool empty() const {
    return !hard_state && !truncate_to && append.empty() && messages.empty() && !commit_end &&
           !role_changed;
  }
};

class Core {
 public:
  Core(Config config, InitialState initial, LogReader& log);

  void tick();
  // How many ticks from now the first tick() falls that does more than count: a heartbeat, a
  // resync, a quorum check that may step down, an election. Ticks before it change nothing
  // anybody sees, so an idle runtime may sleep until then and tick the skipped ticks in a row.
  // kNothingDue when no tick will ever act by itself (a single-node leader).
  int ticks_until_due() const;
  static constexpr int kNothingDue = 1 << 30;
  // By value: an Append's entries move into the log instead of being copied.
  void step(Message message);
  // Where a follower's acknowledgement of the entries appended now goes: its storage may send
  // AppendAck{epoch, end, end, session} to `leader` itself as soon as they are durable (up to
  // `end`), instead of waiting for durable() to hand the ack out (etcd's async storage writes
  // answer the same way). The ack is true when sent, whatever the core learned meanwhile: an
  // ack of an older epoch or session is ignored by the leader, and a later truncation always
  // starts a new session.
  struct AckRoute {
    NodeId leader;
    int64_t epoch = 0;
    uint64_t session = 0;
    friend bool operator==(const AckRoute&, const AckRoute&) = default;
  };
  // Follower synced with a leader: the route of the ack for entries appended now; else nullopt.
  std::optional<AckRoute> ack_route() const;
  // Local storage made every entry below `end` durable. It must describe the log as it is
  // after the latest truncate_to handed out (drop notices about writes made before it).
  // `acked`: the storage already sent the leader an ack of `end` along this route; the core
  // sends none if that is the ack it would send now.
  void durable(int64_t end, const std::optional<AckRoute>& acked = std::nullopt);
  // The other voting members (self is always one), replacing the previous set: only they are
  // sent to, and only their messages count. A member left out loses its progress and votes.
  // The adapter keeps the set within cluster_size; the quorum is always cluster_size / 2 + 1.
  void set_voters(const std::vector<NodeId>& voters);
  // The connection that carried `peer`'s messages closed (its process died, or the link broke).
  // A follower of `peer` stops counting on it and campaigns within a few ticks instead of after
  // the election timeout. The pre-vote still asks the others, who refuse while a leader reaches
  // them, so a broken link alone never deposes a live leader.
  void peer_lost(const NodeId& peer);
  // Bytes of a message from `peer` are arriving on a connection whose last message was an Append
  // of `epoch` from it: a large Append is being read, a piece at a time. The heartbeats queued
  // behind it on that connection cannot arrive before it does, so a follower of `peer` in
  // `epoch` takes the bytes as the heartbeat they hold up: it stays in contact (no campaign, no
  // resync) and says it is here (an AppendAck of no session, which the leader takes only as a
  // sign of life), at most once a heartbeat. From any other node or epoch it changes nothing.
  // A leader that dies or freezes mid-frame stops sending bytes, and is noticed as before.
  void leader_progress(const NodeId& peer, int64_t epoch);
  // Leader only: appends payloads as entries of the current epoch. Returns them (with positions)
  // or nullopt when not leader.
  // With send_now false the entries go to the followers at the next send_pending_appends() (or
  // heartbeat), so that a burst of proposals travels in few messages.
  std::optional<std::vector<Entry>> propose(std::vector<std::string> payloads,
                                            bool send_now = true);
  // As propose, but returns only each entry's (position, end): the payloads move into the log
  // instead of being copied for the caller (the runtime needs only the positions).
  struct Span {
    int64_t position = 0;
    int64_t end = 0;
  };
  std::optional<std::vector<Span>> propose_spans(std::vector<Payload> payloads,
                                                 bool send_now = true);
  // Leader: sends every follower what it has not been sent yet (within its in-flight window).
  void send_pending_appends();
  // Leader: tells each synced follower that has not heard it the commit position now, also one
  // that announce_commit left to the next Append (a request forwarded through a follower was
  // just answered, and the follower answers its client once it shows the write).
  void announce_commit_now();
  // Leader only: step down and let another node win the next election (admin resign).
  void resign();

  Ready ready();

  Role role() const { return role_; }
  int64_t epoch() const { return hard_.epoch; }
  const std::optional<NodeId>& leader() const { return leader_; }
  int64_t log_end() const { return log_end_; }
  int64_t durable_end() const { return durable_end_; }
  int64_t commit_end() const { return commit_end_; }
  const std::vector<EpochRecord>& epochs() const { return epochs_; }
  const NodeId& self() const { return config_.self; }
  // Follower: its log agrees with the current leader's (it answered our Subscribe).
  bool synced() const { return synced_; }
  // Follower: the highest commit position the current leader has announced (not clamped to
  // what is durable here), to tell a caught-up follower from one that is catching up.
  int64_t leader_commit_end() const { return leader_commit_end_; }
  // Follower: its leader's latest Append said the commit does not wait on this node's copy
  // (Append::relaxed).
  bool relaxed() const { return role_ == Role::Follower && synced_ && relaxed_; }
  // Leader: whether its own durable end holds anything back: a commit (its followers' acks
  // would commit more were its whole log durable here; a single node: whenever anything is
  // pending), or a commit its followers' copies made that is not durable here yet, which reads
  // and answers here wait for.
  bool waits_on_own_disk() const;
  int64_t last_epoch() const { return epochs_.empty() ? 0 : epochs_.back().number; }
  // Leader: how far each follower has acknowledged (durable end), for lag reports.
  std::map<NodeId, int64_t> follower_durable_ends() const;
  int64_t elections_started() const { return elections_started_; }
  // Sync Appends refused because they started outside this follower's log: a correct leader
  // never sends one, so the simulator treats any as a protocol bug.
  int64_t sync_appends_refused() const { return sync_appends_refused_; }
  // Messages dropped because their sender is not a voter.
  int64_t messages_from_non_voters() const { return messages_from_non_voters_; }
  const std::set<NodeId>& voters() const { return peers_; }
  int quorum() const { return config_.cluster_size / 2 + 1; }

  // The payload of an epoch record (what followers and storage see).
  static std::string epoch_payload(const EpochRecord& e, const NodeId& leader);
  // The record back from an epoch record entry's payload (nullopt if malformed).
  static std::optional<EpochRecord> parse_epoch_payload(std::string_view payload);

 private:
  struct Progress {
    bool synced = false;  // answered a Subscribe in this epoch
    uint64_t session = 0;
    int64_t next = 0;  // next position to send
    int64_t acked_log_end = 0;
    int64_t durable_end = 0;
    int last_heard_tick = 0;
    int64_t commit_sent = 0;  // the newest commit position an Append to it carried
    bool relaxed = false;     // its Appends say Append::relaxed (update_relaxed)
  };

  void become_follower(int64_t epoch, std::optional<NodeId> leader);
  void start_pre_vote();
  void become_candidate();
  void become_leader();
  void reset_election_timer();
  void persist_hard_state();
  void send(const NodeId& to, Body body);
  void on_vote_request(const NodeId& from, const VoteRequest& m);
  void on_vote_response(const NodeId& from, const VoteResponse& m);
  void on_subscribe(const NodeId& from, const Subscribe& m);
  void on_append(const NodeId& from, Append& m);
  void on_ack(const NodeId& from, const AppendAck& m);
  // Heartbeats between two answers asked of one caught-up follower while idle, and whether
  // this heartbeat round is the turn of `peer` (see send_appends).
  int idle_ask_period() const;
  bool idle_ask_turn(const NodeId& peer) const;
  void send_subscribe();
  void send_appends(const NodeId& to, bool heartbeat);
  // Leader, every kPaceTicks: which followers' acks no commit needs (Append::relaxed). A voter
  // keeps pace when it holds durably the whole log as it was kPaceTicks ago. While this node
  // and enough strict followers keep pace to form a majority, the other followers are relaxed;
  // the followers that stay strict are those that keep pace, strict ones first (a relaxed one
  // is not made strict only because it has just caught up), then by durable end and id.
  void update_relaxed();
  // Leader: the end a majority holds durably, counting this node at `own_end` and each synced
  // follower at its acknowledged durable end; nullopt while too few are synced for a majority.
  std::optional<int64_t> majority_end(int64_t own_end) const;
  void maybe_commit();
  void set_commit(int64_t end);
  void announce_commit();
  // An empty Append with the commit position to each synced follower no Append carried it to
  // (Progress::commit_sent); with `also_with_later_entries_sent` false, not to one that was sent
  // entries past it either (the next Append, or those entries' own commit, tells it).
  void send_commit_notices(bool also_with_later_entries_sent);
  void append_local(std::vector<Entry> entries);
  void truncate_local(int64_t position);
  std::vector<Entry> entries_from(int64_t from, size_t bytes_max);
  int64_t common_point(const Subscribe& m) const;
  void trim_buffer();
  void check_quorum();
  int leader_lost_delay_ticks() const;
  bool log_up_to_date(int64_t last_epoch, int64_t log_end) const;
  int64_t current_epoch_start() const;

  Config config_;
  LogReader& log_;
  std::mt19937_64 rng_;
  HardState hard_;
  Role role_ = Role::Follower;
  std::optional<NodeId> leader_;
  std::vector<EpochRecord> epochs_;
  int64_t log_end_ = 0;
  int64_t durable_end_ = 0;
  int64_t commit_end_ = 0;
  int64_t leader_commit_end_ = 0;
  bool relaxed_ = false;  // follower: as the leader's latest Append said
  // Leader: the log end at the tick update_relaxed last ran (what keeping pace is measured by).
  static constexpr int kPaceTicks = 2;
  int pace_mark_tick_ = 0;
  int64_t pace_mark_end_ = 0;
  std::deque<Entry> buffer_;  // recent entries, contiguous, ending at log_end_
  size_t buffer_bytes_ = 0;
  std::set<NodeId> peers_;  // the other voters
  std::map<NodeId, Progress> progress_;
  std::set<NodeId> votes_;
  std::set<NodeId> pre_votes_;
  bool pre_voting_ = false;
  int quick_pre_votes_ = 0;          // pre-votes left that are retried soon (see peer_lost)
  bool synced_ = false;              // follower: synced with the current leader's log
  bool commit_to_announce_ = false;  // leader: commit_end_ grew since the last ready()
  uint64_t session_ = 0;
  int matched_tick_ = 0;
  int subscribe_sent_tick_ = -1000000;
  int progress_acked_tick_ = -1000000;  // follower: the last answer to leader_progress
  int now_tick_ = 0;
  int election_elapsed_ = 0;
  int election_timeout_ = 0;
  int heartbeat_elapsed_ = 0;
  int64_t heartbeat_rounds_ = 0;  // heartbeats sent to all peers while leading (their turns)
  int64_t elections_started_ = 0;
  int64_t sync_appends_refused_ = 0;
  int64_t messages_from_non_voters_ = 0;
  Ready ready_;
};

}  // namespace chorus::replication
