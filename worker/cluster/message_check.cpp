// Field range checks of internal messages (see message_check.hpp).
#include "worker/cluster/message_check.hpp"

#include "common/cluster_auth.hpp"
#include "common/guid.hpp"
#include "worker/replication/core.hpp"

namespace chorus::cluster {
namespace {

bool position_ok(int64_t p) { return p >= 0 && p <= kPositionMax; }
bool epoch_ok(int64_t e) { return e >= 0 && e <= kEpochMax; }

// An entry's fields, from either form of an Append (protobuf's, or read from the frame).
struct EntryFields {
  int64_t position = 0;
  int64_t end = 0;
  int64_t epoch = 0;
  bool is_epoch_record = false;
  bool is_gap = false;
  std::string_view payload;
};
EntryFields fields_of(const internal::Entry& e) {
  return {e.position(), e.end(), e.epoch(), e.is_epoch_record(), e.is_gap(), e.payload()};
}
EntryFields fields_of(const replication::Entry& e) {
  return {e.position, e.end, e.epoch, e.is_epoch_record, e.is_gap, e.payload.view()};
}

template <typename Entries>
std::string check_entries(int64_t epoch, int64_t start, const Entries& entries) {
  int64_t expected = start;
  for (const auto& entry : entries) {
    const EntryFields e = fields_of(entry);
    if (e.position != expected) return "Append entries not contiguous from start";
    if (e.is_gap) {
      // A scavenged range: nothing inside, any length.
      if (e.is_epoch_record || !e.payload.empty() || !position_ok(e.end) || e.end <= e.position) {
        return "Append carries a malformed gap";
      }
      expected = e.end;
      continue;
    }
    const auto size = static_cast<int64_t>(e.payload.size()) + replication::kEntryOverheadBytes;
    if (!position_ok(e.end) || e.end != e.position + size) return "Append entry end wrong";
    if (!epoch_ok(e.epoch) || e.epoch > epoch) return "Append entry epoch out of range";
    if (e.is_epoch_record) {
      const auto record = replication::Core::parse_epoch_payload(e.payload);
      if (!record || record->number != e.epoch || record->position != e.position) {
        return "Append carries a malformed epoch record";
      }
    }
    expected = e.end;
  }
  return "";
}

template <typename Entries>
std::string check_append(int64_t epoch, int64_t start, int64_t commit_end, const Entries& entries) {
  if (!epoch_ok(epoch) || !position_ok(start) || !position_ok(commit_end)) {
    return "Append out of range";
  }
  return check_entries(epoch, start, entries);
}

std::string check_envelope(std::string_view from, std::string_view to,
                           std::string_view from_instance, std::string_view to_instance) {
  if (from.empty() || from.size() > auth::kNodeIdBytesMax) return "bad sender id";
  if (to.empty() || to.size() > auth::kNodeIdBytesMax) return "bad recipient id";
  // Nodes are known by instance id: a message without one comes from a node of an older
  // version (or a forger), and cannot be matched to a voter.
  if (!parse_guid(from_instance)) return "no sender instance id";
  if (!parse_guid(to_instance)) return "no recipient instance id";
  return "";
}

std::string check_subscribe(const internal::Subscribe& s) {
  if (!epoch_ok(s.epoch()) || !position_ok(s.log_end())) return "Subscribe out of range";
  if (s.epochs_size() > kSubscribeEpochsMax) return "Subscribe lists too many epochs";
  int64_t number = -1;
  int64_t position = -1;
  for (const auto& e : s.epochs()) {
    if (!epoch_ok(e.number()) || !position_ok(e.position()) || e.position() > s.log_end()) {
      return "Subscribe epoch record out of range";
    }
    if (e.number() <= number || e.position() < position || e.number() > s.epoch()) {
      return "Subscribe epoch records not ascending";
    }
    if (e.id().size() != 16) return "Subscribe epoch id is not 16 bytes";
    number = e.number();
    position = e.position();
  }
  return "";
}

std::string check_body(const internal::ReplicationMessage& m) {
  switch (m.body_case()) {
    case internal::ReplicationMessage::kVoteRequest: {
      const auto& v = m.vote_request();
      if (!epoch_ok(v.epoch()) || !epoch_ok(v.last_epoch()) || v.last_epoch() > v.epoch() ||
          !position_ok(v.log_end())) {
        return "VoteRequest out of range";
      }
      return "";
    }
    case internal::ReplicationMessage::kVoteResponse:
      return epoch_ok(m.vote_response().epoch()) ? "" : "VoteResponse epoch out of range";
    case internal::ReplicationMessage::kSubscribe:
      return check_subscribe(m.subscribe());
    case internal::ReplicationMessage::kAppend: {
      const auto& a = m.append();
      return check_append(a.epoch(), a.start(), a.commit_end(), a.entries());
    }
    case internal::ReplicationMessage::kAppendAck: {
      const auto& a = m.append_ack();
      if (!epoch_ok(a.epoch()) || !position_ok(a.log_end()) || !position_ok(a.durable_end()) ||
          a.durable_end() > a.log_end()) {
        return "AppendAck out of range";
      }
      return "";
    }
    case internal::ReplicationMessage::kForward: {
      const auto& f = m.forward();
      if (f.command() > 0xFF) return "Forward command is not a byte";
      if (f.login().size() > kLoginBytesMax) return "Forward login too long";
      // The leader resolves groups itself; a claimed list is refused, not ignored.
      if (f.groups_size() != 0) return "Forward claims groups";
      return "";
    }
    case internal::ReplicationMessage::kForwardReply:
      return m.forward_reply().command() > 0xFF ? "ForwardReply command is not a byte" : "";
    default:
      return "message without a known body";
  }
}

}  // namespace

std::string check_message_fields(const internal::ReplicationMessage& m) {
  std::string problem = check_envelope(m.from(), m.to(), m.from_instance(), m.to_instance());
  return problem.empty() ? check_body(m) : problem;
}

std::string check_message_fields(const AppendFrame& f) {
  std::string problem = check_envelope(f.from, f.to, f.from_instance, f.to_instance);
  if (!problem.empty()) return problem;
  const auto& a = f.append;
  return check_append(a.epoch, a.start, a.commit_end, a.entries);
}

}  // namespace chorus::cluster
