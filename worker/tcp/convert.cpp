// Engine types <-> EventStore protobuf messages; see convert.hpp.
#include "worker/tcp/convert.hpp"

#include "common/guid.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace chorus::tcp {
namespace {

int32_t content_type(bool is_json) { return is_json ? 1 : 0; }

// Writes `position` into a reply's prepare/commit fields; failures carry -1 as EventStore does.
template <typename Reply>
void set_positions(Reply* reply, bool success, const Position& position) {
  reply->set_prepare_position(success ? position.prepare : -1);
  reply->set_commit_position(success ? position.commit : -1);
}

// Read replies are written straight in protobuf's wire format: building a 4,096-event page as
// messages copied every string into the message, serialized it and then destroyed it, about a
// third of a stream read's CPU (docs/benchmarks.md, "Read path hotspots"). The writers below
// give the bytes SerializeAsString gives for the message to_proto builds (the same fields, in
// field-number order), each event sized exactly first; tcp_convert_test compares the two.
// Events are appended as they come (ReadReplyEncoder takes them from SQLite's memory, with no
// EventRecord in between).
using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

// Every field number of these messages is below 16: its tag is one byte.
constexpr size_t kTagBytes = 1;

size_t varint_field(int64_t value) { return kTagBytes + WireFormatLite::Int64Size(value); }
size_t bytes_field(size_t length) {
  return kTagBytes + WireFormatLite::LengthDelimitedSize(length);
}

constexpr size_t kGuidBytes = 16;
// Where each byte of a Guid's .NET wire order comes from in its RFC order (guid.hpp: the first
// three groups little-endian); written in place, as to_dotnet_bytes would allocate per event.
constexpr std::array<uint8_t, kGuidBytes> kDotnetByteSource = {3, 2, 1,  0,  5,  4,  7,  6,
                                                               8, 9, 10, 11, 12, 13, 14, 15};

int64_t dotnet_ticks(int64_t ms) { return ms * kDotnetTicksPerMs + kDotnetTicksAtUnixEpoch; }

size_t record_bytes(const RecordView& r) {
  return bytes_field(r.stream.size()) + varint_field(r.number) + bytes_field(kGuidBytes) +
         bytes_field(r.event_type.size()) + 2 * varint_field(content_type(r.data_is_json)) +
         bytes_field(r.data.size()) + bytes_field(r.metadata.size()) +
         varint_field(dotnet_ticks(r.created_ms)) + varint_field(r.created_ms);
}

// Appends `bytes` bytes of fields to a reply, sized exactly before they are written (one resize
// per event instead of an append per field).
class Appender {
 public:
  Appender(std::string& out, size_t bytes) {
    const size_t at = out.size();
    out.resize(at + bytes);
    p_ = reinterpret_cast<uint8_t*>(out.data()) + at;
    end_ = p_ + bytes;
  }
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;
  // Anything but exactly the bytes announced is a sizing bug.
  ~Appender() {
    if (p_ == end_) return;
    std::fprintf(stderr, "tcp: a read reply was sized wrongly\n");
    std::abort();
  }
  // int32, int64, enum and bool fields alike: protobuf writes a negative int32 as 10 bytes too.
  void varint(int field, int64_t value) {
    p_ = WireFormatLite::WriteInt64ToArray(field, value, p_);
  }
  void length_delimited(int field, size_t length) {
    p_ = WireFormatLite::WriteTagToArray(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, p_);
    p_ = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(length), p_);
  }
  void bytes(int field, std::string_view value) {
    length_delimited(field, value.size());
    p_ = CodedOutputStream::WriteRawToArray(value.data(), static_cast<int>(value.size()), p_);
  }
  void guid(int field, std::string_view raw) {
    length_delimited(field, kGuidBytes);
    for (const uint8_t source : kDotnetByteSource) {
      *p_++ = raw.size() == kGuidBytes ? static_cast<uint8_t>(raw[source]) : 0;
    }
  }
  void record(int field, const RecordView& r, size_t size) {
    length_delimited(field, size);
    bytes(1, r.stream);
    varint(2, r.number);
    guid(3, r.event_id);
    bytes(4, r.event_type);
    varint(5, content_type(r.data_is_json));
    varint(6, content_type(r.data_is_json));  // the data's content type, as to_proto says
    bytes(7, r.data);
    bytes(8, r.metadata);
    varint(9, dotnet_ticks(r.created_ms));
    varint(10, r.created_ms);
  }

 private:
  uint8_t* p_;
  uint8_t* end_;
};

}  // namespace

// ---- ReadReplyEncoder

ReadReplyEncoder::ReadReplyEncoder(Kind kind) : kind_(kind) {}

void ReadReplyEncoder::start(const Position& from) {
  if (started_) return;
  started_ = true;
  if (kind_ != Kind::All) return;
  Appender a(out_, varint_field(from.commit) + varint_field(from.prepare));
  a.varint(1, from.commit);
  a.varint(2, from.prepare);
}

void ReadReplyEncoder::expect(size_t rows_max) { rows_expected_ = rows_max; }

void ReadReplyEncoder::row(const RecordView& record) {
  const size_t size = record_bytes(record);
  size_t message = bytes_field(size);  // ResolvedIndexedEvent: the record as its field 1
  if (kind_ != Kind::Stream) {
    message += varint_field(record.position.commit) + varint_field(record.position.prepare);
  }
  const size_t total = bytes_field(message);
  if (events_ == 0 && rows_expected_ > 1) {
    // Sized once from the first event (a page of similar events), so the reply is not moved as
    // it grows; a later larger event grows it as usual.
    out_.reserve(out_.size() + std::min(total * rows_expected_, kReadReplyReserveBytesMax));
  }
  ++events_;
  Appender a(out_, total);
  // Stream reads: ResolvedIndexedEvent as field 1; $all: ResolvedEvent as field 3;
  // StreamEventAppeared: ResolvedEvent as field 1.
  a.length_delimited(kind_ == Kind::All ? 3 : 1, message);
  a.record(1, record, size);
  if (kind_ == Kind::Stream) return;
  a.varint(3, record.position.commit);
  a.varint(4, record.position.prepare);
}

void ReadReplyEncoder::resolved(const ResolvedEvent& e) {
  ++events_;
  std::optional<RecordView> event;
  std::optional<RecordView> link;
  if (e.event) event = view_of(*e.event);
  if (e.link) link = view_of(*e.link);
  const size_t event_size = event ? record_bytes(*event) : 0;
  const size_t link_size = link ? record_bytes(*link) : 0;
  size_t message = (event ? bytes_field(event_size) : 0) + (link ? bytes_field(link_size) : 0);
  const Position position = e.link || e.event ? e.original().position : Position{};
  if (kind_ != Kind::Stream)
    message += varint_field(position.commit) + varint_field(position.prepare);
  Appender a(out_, bytes_field(message));
  a.length_delimited(kind_ == Kind::All ? 3 : 1, message);
  if (event) a.record(1, *event, event_size);
  if (link) a.record(2, *link, link_size);
  if (kind_ == Kind::Stream) return;
  a.varint(3, position.commit);
  a.varint(4, position.prepare);
}

void ReadReplyEncoder::discard() {
  out_.clear();
  started_ = false;
  events_ = 0;
}

std::string ReadReplyEncoder::finish(const ReadStreamResult& result) {
  const int32_t status = static_cast<int32_t>(result.status);
  size_t bytes = varint_field(status) + varint_field(result.next_event_number) +
                 varint_field(result.last_event_number) + varint_field(result.is_end_of_stream) +
                 varint_field(result.last_commit_position);
  if (!result.error.empty()) bytes += bytes_field(result.error.size());
  {
    Appender a(out_, bytes);
    a.varint(2, status);
    a.varint(3, result.next_event_number);
    a.varint(4, result.last_event_number);
    a.varint(5, result.is_end_of_stream);
    a.varint(6, result.last_commit_position);
    if (!result.error.empty()) a.bytes(7, result.error);
  }
  return std::move(out_);
}

std::string ReadReplyEncoder::finish(const ReadAllResult& result) {
  start(result.from);  // no event came (a refusal, or nothing to read): the start goes first
  const int32_t status = static_cast<int32_t>(result.status);
  size_t bytes =
      varint_field(result.next.commit) + varint_field(result.next.prepare) + varint_field(status);
  if (!result.error.empty()) bytes += bytes_field(result.error.size());
  {
    Appender a(out_, bytes);
    a.varint(4, result.next.commit);
    a.varint(5, result.next.prepare);
    a.varint(6, status);
    if (!result.error.empty()) a.bytes(7, result.error);
  }
  return std::move(out_);
}

std::string ReadReplyEncoder::finish_appeared() { return std::move(out_); }

namespace {}  // namespace

std::optional<NewEvent> from_proto(const pb::NewEvent& event) {
  const std::optional<Guid> id = from_dotnet_bytes(event.event_id());
  if (!id) return std::nullopt;
  NewEvent out;
  out.event_id = *id;
  out.event_type = event.event_type();
  out.data_is_json = event.data_content_type() == 1;
  out.metadata_is_json = event.metadata_content_type() == 1;
  out.data = event.data();
  out.metadata = event.metadata();
  return out;
}

std::optional<std::vector<NewEvent>> from_proto(
    const google::protobuf::RepeatedPtrField<pb::NewEvent>& events) {
  std::vector<NewEvent> out;
  out.reserve(static_cast<size_t>(events.size()));
  for (const pb::NewEvent& e : events) {
    std::optional<NewEvent> converted = from_proto(e);
    if (!converted) return std::nullopt;
    out.push_back(std::move(*converted));
  }
  return out;
}

std::optional<std::vector<NewEvent>> take_from_proto(
    google::protobuf::RepeatedPtrField<pb::NewEvent>& events) {
  std::vector<NewEvent> out;
  out.reserve(static_cast<size_t>(events.size()));
  for (pb::NewEvent& e : events) {
    const std::optional<Guid> id = from_dotnet_bytes(e.event_id());
    if (!id) return std::nullopt;
    NewEvent& event = out.emplace_back();
    event.event_id = *id;
    event.event_type = std::move(*e.mutable_event_type());
    event.data_is_json = e.data_content_type() == 1;
    event.metadata_is_json = e.metadata_content_type() == 1;
    event.data = std::move(*e.mutable_data());
    event.metadata = std::move(*e.mutable_metadata());
  }
  return out;
}

void to_proto(const EventRecord& record, pb::EventRecord* out) {
  out->set_event_stream_id(record.stream);
  out->set_event_number(record.number);
  out->set_event_id(to_dotnet_bytes(record.event_id));
  out->set_event_type(record.event_type);
  out->set_data_content_type(content_type(record.data_is_json));
  // EventStore echoes the data's content type here, whatever the client sent (PROTOCOL.md C3).
  out->set_metadata_content_type(content_type(record.data_is_json));
  out->set_data(record.data);
  out->set_metadata(record.metadata);
  out->set_created(record.created_ms * kDotnetTicksPerMs + kDotnetTicksAtUnixEpoch);
  out->set_created_epoch(record.created_ms);
}

void to_proto(const ResolvedEvent& event, pb::ResolvedIndexedEvent* out) {
  if (event.event) to_proto(*event.event, out->mutable_event());
  if (event.link) to_proto(*event.link, out->mutable_link());
}

void to_proto(const ResolvedEvent& event, pb::ResolvedEvent* out) {
  if (event.event) to_proto(*event.event, out->mutable_event());
  if (event.link) to_proto(*event.link, out->mutable_link());
  Position position;
  if (event.link || event.event) position = event.original().position;
  out->set_commit_position(position.commit);
  out->set_prepare_position(position.prepare);
}

std::string write_completed(const WriteResult& result) {
  pb::WriteEventsCompleted reply;
  const bool ok = result.result == OperationResult::Success;
  reply.set_result(static_cast<pb::OperationResult>(result.result));
  if (!result.message.empty()) reply.set_message(result.message);
  reply.set_first_event_number(ok ? result.first_event_number : kInvalidEventNumber);
  reply.set_last_event_number(ok ? result.last_event_number : kInvalidEventNumber);
  set_positions(&reply, ok, result.position);
  reply.set_current_version(ok ? result.last_event_number : result.current_version);
  return reply.SerializeAsString();
}

std::string delete_completed(const DeleteResult& result) {
  pb::DeleteStreamCompleted reply;
  const bool ok = result.result == OperationResult::Success;
  reply.set_result(static_cast<pb::OperationResult>(result.result));
  if (!result.message.empty()) reply.set_message(result.message);
  set_positions(&reply, ok, result.position);
  if (!ok) reply.set_current_version(result.current_version);
  return reply.SerializeAsString();
}

std::string transaction_start_completed(const TransactionResult& result) {
  pb::TransactionStartCompleted reply;
  reply.set_transaction_id(result.transaction_id);
  reply.set_result(static_cast<pb::OperationResult>(result.result));
  if (!result.message.empty()) reply.set_message(result.message);
  return reply.SerializeAsString();
}

std::string transaction_write_completed(const TransactionResult& result,
                                        int64_t request_transaction_id) {
  pb::TransactionWriteCompleted reply;
  reply.set_transaction_id(result.transaction_id >= 0 ? result.transaction_id
                                                      : request_transaction_id);
  reply.set_result(static_cast<pb::OperationResult>(result.result));
  if (!result.message.empty()) reply.set_message(result.message);
  return reply.SerializeAsString();
}

std::string transaction_commit_completed(const TransactionResult& result,
                                         int64_t request_transaction_id) {
  pb::TransactionCommitCompleted reply;
  const bool ok = result.result == OperationResult::Success;
  reply.set_transaction_id(result.transaction_id >= 0 ? result.transaction_id
                                                      : request_transaction_id);
  reply.set_result(static_cast<pb::OperationResult>(result.result));
  if (!result.message.empty()) reply.set_message(result.message);
  reply.set_first_event_number(ok ? result.first_event_number : kInvalidEventNumber);
  reply.set_last_event_number(ok ? result.last_event_number : kInvalidEventNumber);
  set_positions(&reply, ok, result.position);
  return reply.SerializeAsString();
}

std::string read_event_completed(const ReadEventResult& result) {
  pb::ReadEventCompleted reply;
  reply.set_result(static_cast<pb::ReadEventCompleted::ReadEventResult>(result.status));
  // Required even when there is no event: an empty sub-message (PROTOCOL.md H3).
  pb::ResolvedIndexedEvent* event = reply.mutable_event();
  if (result.status == ReadEventStatus::Success && result.event) to_proto(*result.event, event);
  if (!result.error.empty()) reply.set_error(result.error);
  return reply.SerializeAsString();
}

std::string read_stream_completed(const ReadStreamResult& result) {
  ReadReplyEncoder encoder(ReadReplyEncoder::Kind::Stream);
  for (const ResolvedEvent& e : result.events) encoder.resolved(e);
  return encoder.finish(result);
}

std::string read_all_completed(const ReadAllResult& result) {
  ReadReplyEncoder encoder(ReadReplyEncoder::Kind::All);
  encoder.start(result.from);
  for (const ResolvedEvent& e : result.events) encoder.resolved(e);
  return encoder.finish(result);
}

std::string subscription_confirmation(int64_t last_commit_position,
                                      std::optional<int64_t> last_event_number) {
  pb::SubscriptionConfirmation reply;
  reply.set_last_commit_position(last_commit_position);
  // Present (even -1 for a missing stream) for a stream, absent for $all (PROTOCOL.md C7).
  if (last_event_number) reply.set_last_event_number(*last_event_number);
  return reply.SerializeAsString();
}

std::string stream_event_appeared(const ResolvedEvent& event) {
  // Catch-up subscriptions send one of these per event read; written as the read replies are.
  ReadReplyEncoder encoder(ReadReplyEncoder::Kind::Appeared);
  encoder.resolved(event);
  return encoder.finish_appeared();
}

std::string subscription_dropped(DropReason reason) {
  pb::SubscriptionDropped reply;
  reply.set_reason(static_cast<pb::SubscriptionDropped::SubscriptionDropReason>(reason));
  return reply.SerializeAsString();
}

std::string scavenge_failed(const std::string& error) {
  pb::ScavengeDatabaseCompleted reply;
  reply.set_result(pb::ScavengeDatabaseCompleted::Failed);
  reply.set_error(error);
  reply.set_total_time_ms(0);
  reply.set_total_space_saved(0);
  return reply.SerializeAsString();
}

std::string scavenge_response(ScavengeAnswer answer, const std::string& scavenge_id) {
  pb::ScavengeDatabaseCompleted reply;
  reply.set_result(static_cast<pb::ScavengeDatabaseCompleted::ScavengeResult>(answer));
  if (!scavenge_id.empty()) reply.set_error(scavenge_id);
  reply.set_total_time_ms(0);
  reply.set_total_space_saved(0);
  return reply.SerializeAsString();
}

namespace {

template <typename Reply>
std::string persistent_completed(const PersistentResult& r) {
  Reply reply;
  using Result = decltype(reply.result());
  reply.set_result(static_cast<Result>(static_cast<int>(r.status)));
  if (!r.reason.empty()) reply.set_reason(r.reason);
  return reply.SerializeAsString();
}

template <typename Request>
PersistentSettingsRequest settings_of(const Request& m) {
  PersistentSettingsRequest out;
  PersistentSettings& s = out.settings;
  s.resolve_link_tos = m.resolve_link_tos();
  s.start_from = m.start_from();
  s.message_timeout_ms = m.message_timeout_milliseconds();
  s.extra_statistics = m.record_statistics();
  s.live_buffer_size = m.live_buffer_size();
  s.read_batch_size = m.read_batch_size();
  s.buffer_size = m.buffer_size();
  s.max_retry_count = m.max_retry_count();
  s.checkpoint_after_ms = m.checkpoint_after_time();
  s.max_checkpoint_count = m.checkpoint_max_count();
  s.min_checkpoint_count = m.checkpoint_min_count();
  s.max_subscriber_count = m.subscriber_max_count();
  // Older clients name no strategy: prefer_round_robin chooses between the two original ones.
  if (m.has_named_consumer_strategy() && !m.named_consumer_strategy().empty()) {
    const auto strategy = parse_strategy(m.named_consumer_strategy());
    if (!strategy) {
      out.error = "unknown consumer strategy '" + m.named_consumer_strategy() + "'";
    } else {
      s.strategy = *strategy;
    }
  } else {
    s.strategy =
        m.prefer_round_robin() ? ConsumerStrategy::RoundRobin : ConsumerStrategy::DispatchToSingle;
  }
  return out;
}

}  // namespace

PersistentSettingsRequest settings_from_proto(const pb::CreatePersistentSubscription& m) {
  return settings_of(m);
}

PersistentSettingsRequest settings_from_proto(const pb::UpdatePersistentSubscription& m) {
  return settings_of(m);
}

std::string create_persistent_completed(const PersistentResult& r) {
  return persistent_completed<pb::CreatePersistentSubscriptionCompleted>(r);
}

std::string update_persistent_completed(const PersistentResult& r) {
  return persistent_completed<pb::UpdatePersistentSubscriptionCompleted>(r);
}

std::string delete_persistent_completed(const PersistentResult& r) {
  return persistent_completed<pb::DeletePersistentSubscriptionCompleted>(r);
}

std::string persistent_confirmation(const std::string& subscription_id,
                                    int64_t last_commit_position, int64_t last_event_number) {
  pb::PersistentSubscriptionConfirmation reply;
  reply.set_last_commit_position(last_commit_position);
  reply.set_subscription_id(subscription_id);
  reply.set_last_event_number(last_event_number);
  return reply.SerializeAsString();
}

std::string persistent_event_appeared(const ResolvedEvent& event, int32_t retry_count) {
  pb::PersistentSubscriptionStreamEventAppeared reply;
  to_proto(event, reply.mutable_event());
  reply.set_retry_count(retry_count);
  return reply.SerializeAsString();
}

std::string not_handled(pb::NotHandled::NotHandledReason reason,
                        const std::optional<std::string>& additional_info) {
  pb::NotHandled reply;
  reply.set_reason(reason);
  if (additional_info) reply.set_additional_info(*additional_info);
  return reply.SerializeAsString();
}

namespace {

// The commit position of a successful completed write, whichever of the three messages it is.
template <typename Message>
std::optional<int64_t> success_end(const std::string& payload) {
  Message m;
  if (!m.ParseFromString(payload) || m.result() != pb::Success || m.commit_position() <= 0) {
    return std::nullopt;
  }
  return m.commit_position();
}

template <typename Message>
std::string to_commit_timeout(const std::string& payload) {
  Message m;
  m.ParsePartialFromString(payload);
  m.set_result(pb::CommitTimeout);
  m.set_message(kNotVisibleInTime);
  m.set_prepare_position(-1);
  m.set_commit_position(-1);
  if constexpr (requires { m.set_first_event_number(0); }) {
    m.set_first_event_number(kInvalidEventNumber);
    m.set_last_event_number(kInvalidEventNumber);
  }
  return m.SerializePartialAsString();
}

}  // namespace

std::optional<int64_t> written_end(wire::Command command, const std::string& payload) {
  switch (command) {
    case wire::Command::WriteEventsCompleted:
      return success_end<pb::WriteEventsCompleted>(payload);
    case wire::Command::DeleteStreamCompleted:
      return success_end<pb::DeleteStreamCompleted>(payload);
    case wire::Command::TransactionCommitCompleted:
      return success_end<pb::TransactionCommitCompleted>(payload);
    default:
      return std::nullopt;
  }
}

std::string as_commit_timeout(wire::Command command, const std::string& payload) {
  switch (command) {
    case wire::Command::WriteEventsCompleted:
      return to_commit_timeout<pb::WriteEventsCompleted>(payload);
    case wire::Command::DeleteStreamCompleted:
      return to_commit_timeout<pb::DeleteStreamCompleted>(payload);
    case wire::Command::TransactionCommitCompleted:
      return to_commit_timeout<pb::TransactionCommitCompleted>(payload);
    default:
      return payload;
  }
}

}  // namespace chorus::tcp
