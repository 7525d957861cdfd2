// WritePath: expected versions, idempotent retries, deletes and explicit transactions on the
// leader. Stream versions count writes in flight, so two writes to one stream in the same burst
// get consecutive numbers; a truncation forgets everything that may include truncated records.
// Transactions belong to the login (and client connection) that started them, carry ids unique
// in the cluster (the leader's epoch and a count), are re-checked against the stream's ACL at
// commit, are bounded in count and bytes, and are abandoned after the transaction timeout.
#include "worker/engine/write_path.hpp"

#include "worker/engine/reads.hpp"
#include "worker/engine/rules.hpp"

#include <limits>

namespace chorus {
namespace {

std::string describe_size(size_t bytes) { return std::to_string(bytes) + " bytes"; }

size_t event_bytes(const std::vector<NewEvent>& events) {
  size_t bytes = 0;
  for (const auto& e : events) bytes += e.data.size() + e.metadata.size();
  return bytes;
}

// One callback that owns the reply: a write's wait costs one allocation, not four.
template <class Result>
void answer_later(WriteLog& log, int64_t end, Result r, std::function<void(Result)> done) {
  log.await_visible(end, [done = std::move(done), r = std::move(r)](bool visible) mutable {
    if (!visible) {
      r.result = OperationResult::CommitTimeout;
      r.message = "Commit timeout.";
    }
    done(std::move(r));
  });
}

}  // namespace

WritePath::WritePath(WriteStore& store, WriteLog& log, NowMs now_ms, int64_t transaction_timeout_ms,
                     size_t recent_ids_bytes_max)
    : store_(store),
      log_(log),
      now_ms_(std::move(now_ms)),
      transaction_timeout_ms_(transaction_timeout_ms),
      recent_ids_(recent_ids_bytes_max) {}

// ---------------------------------------------------------------- stream state

WritePath::StreamState& WritePath::stream_state(const std::string& stream) {
  auto it = streams_.find(stream);
  if (it != streams_.end()) return it->second;
  StreamState s;
  if (const auto last = store_.last_record(stream)) s.last_number = last->number;
  return streams_.emplace(stream, s).first->second;
}

std::shared_ptr<const StreamMetadata> WritePath::metadata_of(const std::string& stream) {
  auto it = metadata_.find(stream);
  if (it != metadata_.end()) return it->second;
  const auto last = store_.last_record(metastream_of(stream));
  auto m = std::make_shared<StreamMetadata>(last ? parse_metadata(last->data) : StreamMetadata{});
  return metadata_.emplace(stream, std::move(m)).first->second;
}

StreamWriteState WritePath::write_state(const std::string& stream) {
  StreamWriteState w;
  const auto last = stream_state(stream).last_number;
  w.last_event_number = last;
  w.tombstoned = last == kDeletedStreamNumber;
  if (!is_metastream(stream)) {
    w.soft_deleted = metadata_of(stream)->soft_deleted();
    // The metastream's name is built in a reused buffer: no allocation per write.
    name_buffer_.assign("$$").append(stream);
    w.has_metadata = stream_state(name_buffer_).last_number >= 0;
  } else if (stream_state(std::string(original_stream(stream))).last_number ==
             kDeletedStreamNumber) {
    w.tombstoned = true;  // the metadata of a hard-deleted stream cannot change
  }
  return w;
}

bool WritePath::can_access(const std::string& stream, StreamAccess access, const Principal& who) {
  const auto metadata = is_metastream(stream) ? metadata_of(std::string(original_stream(stream)))
                                              : metadata_of(stream);
  return check_access(stream, access, who, *metadata, *settings_);
}

void WritePath::remember_id(const EventRecord& r) {
  recent_ids_.add(r.event_id, r.stream, r.number, r.position.prepare, r.log_end);
}

void WritePath::trim_stream_cache() {
  if (streams_.size() <= kStreamCacheMax && metadata_.size() <= kStreamCacheMax) return;
  for (auto it = streams_.begin(); it != streams_.end() && streams_.size() > kStreamCacheMax / 2;) {
    it = it->second.inflight == 0 ? streams_.erase(it) : std::next(it);
  }
  if (metadata_.size() > kStreamCacheMax) metadata_.clear();
}

EventRecord WritePath::make_record(const std::string& stream, int64_t number, NewEvent e) const {
  EventRecord r;
  r.stream = stream;
  r.number = number;
  r.event_id = e.event_id;
  r.event_type = std::move(e.event_type);
  r.data_is_json = e.data_is_json;
  r.metadata_is_json = e.metadata_is_json;
  r.data = std::move(e.data);
  r.metadata = std::move(e.metadata);
  r.created_ms = now_ms_();
  return r;
}

bool WritePath::propose(std::vector<EventRecord>& records) {
  for (auto& r : records) stream_state(r.stream);  // cached before the records are in flight
  return log_.propose(records);
}

// ---------------------------------------------------------------- inputs from the log

void WritePath::on_record_appended(const EventRecord& r) {
  remember_id(r);
  auto it = streams_.find(r.stream);
  if (it != streams_.end()) {
    it->second.last_number = r.number;
    it->second.inflight += 1;
  }
  if (is_metastream(r.stream)) {
    metadata_[std::string(original_stream(r.stream))] =
        std::make_shared<StreamMetadata>(parse_metadata(r.data));
  }
}

void WritePath::load_settings(std::optional<EventRecord> newest_in_log) {
  settings_pending_ = std::move(newest_in_log);
}

void WritePath::on_truncated(int64_t position) {
  recent_ids_.truncate(position);
  // Stream versions and metadata may include truncated records: reload them on demand.
  streams_.clear();
  metadata_.clear();
  // Settings in force are committed and stay; a pending record that left the log never took
  // effect, and the newest one before it (perhaps committed, perhaps not) waits in its place.
  if (settings_pending_ && settings_pending_->position.prepare >= position) {
    settings_pending_ = store_.last_record_before(std::string(kSettingsStream), position);
  }
}

void WritePath::on_visible(int64_t visible_end) {
  if (!settings_pending_ || settings_pending_->log_end > visible_end) return;
  settings_ = std::make_shared<SystemSettings>(parse_settings(settings_pending_->data));
  settings_pending_.reset();
}

void WritePath::on_record_committed(const EventRecord& r) {
  auto it = streams_.find(r.stream);
  if (it != streams_.end()) it->second.inflight = std::max(0, it->second.inflight - 1);
  // Settings change ACLs only once committed: a truncated $settings event never took effect.
  if (r.stream == kSettingsStream) {
    settings_ = std::make_shared<SystemSettings>(parse_settings(r.data));
    settings_pending_.reset();  // older than anything appended in this run
  }
  trim_stream_cache();
}

void WritePath::on_leader_ready() {
  // Everything before our epoch record is durable here now: reload versions from storage.
  streams_.clear();
  metadata_.clear();
}

void WritePath::on_leadership_lost() {
  transactions_.clear();
  transactions_bytes_ = 0;
}

// ---------------------------------------------------------------- appends

void WritePath::answer_idempotent(const WriteResult& r, int64_t end,
                                  const std::function<void(WriteResult)>& done) {
  if (end <= log_.visible_end()) return done(r);
  answer_later<WriteResult>(log_, end, r, done);
}

void WritePath::append(const Principal& who, const std::string& stream, int64_t expected,
                       std::vector<NewEvent> events, bool check_acl,
                       std::function<void(WriteResult)> done) {
  WriteResult r;
  auto fail = [&](OperationResult result, std::string message) {
    r.result = result;
    r.message = std::move(message);
    r.first_event_number = std::numeric_limits<int32_t>::min();
    r.last_event_number = std::numeric_limits<int32_t>::min();
    done(r);
  };
  if (const auto why = log_.refusal(); why != NotHandledReason::None) {
    r.not_handled = why;
    r.message = log_.refusal_message();
    return done(r);
  }
  if (log_.storage_failed()) return fail(OperationResult::PrepareTimeout, "Storage failed.");
  if (stream.empty()) return fail(OperationResult::InvalidTransaction, "Empty stream name.");
  for (const auto& e : events) {
    if (e.data.size() + e.metadata.size() > kEventBytesMax) {
      return fail(OperationResult::InvalidTransaction,
                  "Event of " + describe_size(e.data.size() + e.metadata.size()) +
                      " exceeds the limit of " + describe_size(kEventBytesMax) + ".");
    }
  }
  if (check_acl && !can_access(stream, StreamAccess::Write, who)) {
    return fail(OperationResult::AccessDenied, "Access denied.");
  }
  const auto state = write_state(stream);
  std::vector<Guid> ids;
  for (const auto& e : events) ids.push_back(e.event_id);
  // Where the last id matched sits in the log (for an idempotent answer): from the recent ids,
  // or for an explicit expected version, from the stream in storage.
  int64_t found_position = 0, found_end = 0;
  const auto number_of = [&](const Guid& id) -> std::optional<int64_t> {
    const auto* hit = recent_ids_.find(id, stream);
    if (!hit) return std::nullopt;
    found_position = hit->position;
    found_end = hit->end;
    return hit->number;
  };
  const auto id_at = [&](int64_t number) -> std::optional<Guid> {
    const auto record = store_.record(stream, number);
    if (!record) return std::nullopt;
    found_position = record->position.prepare;
    found_end = record->log_end;
    return record->event_id;
  };
  const auto check = check_write(state, expected, ids, number_of, id_at);
  switch (check.decision) {
    case WriteDecision::StreamDeleted:
      return fail(OperationResult::StreamDeleted, "Stream deleted.");
    case WriteDecision::WrongExpectedVersion:
      r.current_version = state.last_event_number;
      return fail(OperationResult::WrongExpectedVersion, "Wrong expected version.");
    case WriteDecision::Idempotent: {
      r.first_event_number = check.first_existing;
      r.last_event_number = check.first_existing + static_cast<int64_t>(ids.size()) - 1;
      r.position = Position{found_end, found_position};
      return answer_idempotent(r, found_end, done);
    }
    case WriteDecision::Append:
      break;
  }
  if (events.empty()) {
    r.first_event_number = state.last_event_number + 1;
    r.last_event_number = state.last_event_number;
    const int64_t head = log_.visible_end();
    r.position = Position{head, head - 1};
    return done(r);
  }
  std::vector<EventRecord> records;
  const int64_t first = state.last_event_number + 1;
  if (state.soft_deleted && !is_metastream(stream)) {
    // Writing to a soft-deleted stream undeletes it: old events stay hidden behind $tb.
    const auto meta_stream = metastream_of(stream);
    const auto old = store_.last_record(meta_stream);
    NewEvent m{random_guid(),
               kMetadataEventType,
               true,
               false,
               metadata_with_truncate_before(old ? old->data : "{}", first),
               ""};
    records.push_back(
        make_record(meta_stream, stream_state(meta_stream).last_number + 1, std::move(m)));
  }
  records.reserve(records.size() + events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    records.push_back(make_record(stream, first + static_cast<int64_t>(i), std::move(events[i])));
  }
  if (!propose(records)) {
    return fail(OperationResult::PrepareTimeout, "The node could not take the write.");
  }
  r.first_event_number = first;
  r.last_event_number = first + static_cast<int64_t>(events.size()) - 1;
  r.position = records.back().position;
  answer_later<WriteResult>(log_, records.back().log_end, r, std::move(done));
}

void WritePath::delete_stream(const Principal& who, const std::string& stream, int64_t expected,
                              bool hard, std::function<void(DeleteResult)> done) {
  DeleteResult r;
  auto fail = [&](OperationResult result, std::string message) {
    r.result = result;
    r.message = std::move(message);
    done(r);
  };
  if (const auto why = log_.refusal(); why != NotHandledReason::None) {
    r.not_handled = why;
    r.message = log_.refusal_message();
    return done(r);
  }
  if (log_.storage_failed()) return fail(OperationResult::PrepareTimeout, "Storage failed.");
  if (stream.empty()) return fail(OperationResult::InvalidTransaction, "Empty stream name.");
  if (!can_access(stream, StreamAccess::Delete, who)) {
    return fail(OperationResult::AccessDenied, "Access denied.");
  }
  auto state = write_state(stream);
  const auto check = check_write(state, expected, {}, [](const Guid&) { return std::nullopt; });
  if (check.decision == WriteDecision::StreamDeleted) {
    return fail(OperationResult::StreamDeleted, "Stream deleted.");
  }
  if (check.decision != WriteDecision::Append) {
    r.current_version = state.last_event_number;
    return fail(OperationResult::WrongExpectedVersion, "Wrong expected version.");
  }
  std::vector<EventRecord> records;
  if (hard) {
    NewEvent t{random_guid(), kTombstoneEventType, false, false, "", ""};
    records.push_back(make_record(stream, kDeletedStreamNumber, t));
  } else {
    const auto meta_stream = metastream_of(stream);
    NewEvent m{random_guid(),
               kMetadataEventType,
               true,
               false,
               "{\"$tb\":" + std::to_string(kDeletedStreamNumber) + "}",
               ""};
    records.push_back(make_record(meta_stream, stream_state(meta_stream).last_number + 1, m));
  }
  if (!propose(records)) {
    return fail(OperationResult::PrepareTimeout, "The node could not take the delete.");
  }
  r.position = records.back().position;
  answer_later<DeleteResult>(log_, records.back().log_end, r, std::move(done));
}

// ---------------------------------------------------------------- transactions

// Unique in the cluster, as EventStore's ids (the log position of a transaction's first record)
// are: a client's id from a deposed leader names nothing on the new one, whose epoch differs.
// Ids can be guessed; what protects a transaction is its owner (refuse_transaction).
std::optional<int64_t> WritePath::new_transaction_id() {
  const int64_t epoch = log_.epoch();
  if (epoch != id_epoch_) {
    id_epoch_ = epoch;
    id_sequence_ = 0;
  }
  if (id_sequence_ == kTransactionsPerEpochMax) return std::nullopt;
  id_sequence_ += 1;
  return ((epoch & kTransactionEpochMask) << kTransactionSequenceBits) | id_sequence_;
}

bool WritePath::expired(const Transaction& tx, int64_t now) const {
  return now - tx.last_used_ms > transaction_timeout_ms_;
}

void WritePath::drop_transaction(std::map<int64_t, Transaction>::iterator it) {
  transactions_bytes_ -= it->second.bytes;
  transactions_.erase(it);
}

namespace {

// The owner's login may use its transaction from any connection; a request on the connection
// that started it may too, whatever its credentials (node-eventstore-client sends
// TransactionWrite without the credentials given to startTransaction). An anonymous owner has
// only its connection; one that a follower passed on (no connection known) is open to anonymous
// requests, like the anonymous writes it collects.
bool may_use(const Principal& owner, uint64_t connection, const Principal& who) {
  if (connection != 0 && who.client_connection == connection) return true;
  if (!owner.anonymous()) return who.login == owner.login;
  return connection == 0 && who.anonymous();
}

}  // namespace

std::optional<TransactionResult> WritePath::refuse_transaction(int64_t id, const Principal& who) {
  TransactionResult r;
  r.transaction_id = id;
  if (const auto why = log_.refusal(); why != NotHandledReason::None) {
    r.not_handled = why;
    r.message = log_.refusal_message();
    return r;
  }
  auto it = transactions_.find(id);
  if (it == transactions_.end()) {
    r.result = OperationResult::InvalidTransaction;
    r.message = "Unknown transaction " + std::to_string(id) + ".";
    return r;
  }
  if (!may_use(it->second.owner, it->second.connection, who)) {
    r.result = OperationResult::AccessDenied;
    r.message = "The transaction belongs to another user.";
    return r;
  }
  if (expired(it->second, now_ms_())) {
    drop_transaction(it);
    r.result = OperationResult::InvalidTransaction;
    r.message = "Transaction " + std::to_string(id) + " expired: idle for more than " +
                std::to_string(transaction_timeout_ms_) + " ms.";
    return r;
  }
  return std::nullopt;
}

void WritePath::transaction_start(const Principal& who, const std::string& stream, int64_t expected,
                                  std::function<void(TransactionResult)> done) {
  TransactionResult r;
  if (const auto why = log_.refusal(); why != NotHandledReason::None) {
    r.not_handled = why;
    r.message = log_.refusal_message();
    return done(r);
  }
  if (now_ms_() - last_sweep_ms_ >= kTransactionSweepIntervalMs) expire_transactions();
  // Expected version and deleted state are checked at commit, as EventStore does.
  if (stream.empty() || !can_access(stream, StreamAccess::Write, who)) {
    r.result = stream.empty() ? OperationResult::InvalidTransaction : OperationResult::AccessDenied;
    r.message = stream.empty() ? "Empty stream name." : "Access denied.";
    return done(r);
  }
  if (transactions_.size() >= kTransactionsOpenMax) {
    r.result = OperationResult::PrepareTimeout;
    r.message = "Too many open transactions.";
    return done(r);
  }
  const auto id = new_transaction_id();
  if (!id) {
    r.result = OperationResult::PrepareTimeout;
    r.message = "This leader has given all its transaction ids; try again after an election.";
    return done(r);
  }
  r.transaction_id = *id;
  transactions_.emplace(
      *id, Transaction{who, who.client_connection, stream, expected, {}, 0, now_ms_()});
  done(r);
}

void WritePath::transaction_write(const Principal& who, int64_t id, std::vector<NewEvent> events,
                                  std::function<void(TransactionResult)> done) {
  if (auto refused = refuse_transaction(id, who)) return done(*refused);
  auto& tx = transactions_.at(id);
  TransactionResult r;
  r.transaction_id = id;
  const size_t bytes = event_bytes(events);
  if (tx.bytes + bytes > kTransactionBytesMax) {
    r.result = OperationResult::InvalidTransaction;
    r.message = "Transaction exceeds " + describe_size(kTransactionBytesMax) + ".";
    return done(r);
  }
  if (transactions_bytes_ + bytes > kTransactionsBytesMax) {
    r.result = OperationResult::PrepareTimeout;
    r.message = "Open transactions hold more than " + describe_size(kTransactionsBytesMax) +
                "; try again later.";
    return done(r);
  }
  tx.bytes += bytes;
  transactions_bytes_ += bytes;
  tx.last_used_ms = now_ms_();
  for (auto& e : events) tx.events.push_back(std::move(e));
  done(r);
}

void WritePath::transaction_commit(const Principal& who, int64_t id,
                                   std::function<void(TransactionResult)> done) {
  if (auto refused = refuse_transaction(id, who)) return done(*refused);
  auto node = transactions_.extract(id);
  Transaction tx = std::move(node.mapped());
  transactions_bytes_ -= tx.bytes;
  // The owner's access is checked again: the stream's ACL may have changed since the start.
  append(tx.owner, tx.stream, tx.expected_version, std::move(tx.events), true,
         [id, done](const WriteResult& w) {
           TransactionResult r;
           r.transaction_id = id;
           r.not_handled = w.not_handled;
           r.result = w.result;
           r.message = w.message;
           r.first_event_number = w.first_event_number;
           r.last_event_number = w.last_event_number;
           r.position = w.position;
           done(r);
         });
}

void WritePath::expire_transactions() {
  const int64_t now = now_ms_();
  last_sweep_ms_ = now;
  for (auto it = transactions_.begin(); it != transactions_.end();) {
    auto next = std::next(it);
    if (expired(it->second, now)) drop_transaction(it);
    it = next;
  }
}

}  // namespace chorus
