// Conversions between the engine's value types (worker/engine/types.hpp) and EventStore's
// protobuf messages (common/proto/messages.proto). Replies always carry every proto2 `required`
// field (node-eventstore-client 0.2.19 decodes strictly, PROTOCOL.md C1/H3); GUIDs inside payloads
// are in .NET byte order (A2). Pure functions; any thread.
#pragma once

#include "common/framing.hpp"
#include "messages.pb.h"
#include "worker/engine/types.hpp"
#include "worker/subscriptions/persistent_api.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chorus::tcp {

namespace pb = EventStore::Client::Messages;

// .NET ticks at the Unix epoch; `created` = ms * 10,000 + this (DateTime ticks, UTC).
inline constexpr int64_t kDotnetTicksAtUnixEpoch = 621355968000000000;
inline constexpr int64_t kDotnetTicksPerMs = 10000;
// What EventStore puts in first/last_event_number of a failed write (int.MinValue).
inline constexpr int64_t kInvalidEventNumber = -2147483648LL;

// Request side. nullopt when an event id is not 16 bytes.
std::optional<NewEvent> from_proto(const pb::NewEvent& event);
std::optional<std::vector<NewEvent>> from_proto(
    const google::protobuf::RepeatedPtrField<pb::NewEvent>& events);
// The same, moving the strings out of the messages (an event's data is not copied again).
std::optional<std::vector<NewEvent>> take_from_proto(
    google::protobuf::RepeatedPtrField<pb::NewEvent>& events);

// Message builders (used by the reply serializers and the tests).
void to_proto(const EventRecord& record, pb::EventRecord* out);
void to_proto(const ResolvedEvent& event, pb::ResolvedIndexedEvent* out);
// With the $all position of the original record (link if any, else event).
void to_proto(const ResolvedEvent& event, pb::ResolvedEvent* out);

// A forwarded request's answer (from the leader) that reports a successful write
// (WriteEventsCompleted, DeleteStreamCompleted, TransactionCommitCompleted): its commit position,
// the log position its last record ends at. nullopt for any other answer.
std::optional<int64_t> written_end(wire::Command command, const std::string& payload);
// That answer as CommitTimeout: the write was not visible on this node within the commit
// timeout (it may still have happened, as after any CommitTimeout; a retry is idempotent).
std::string as_commit_timeout(wire::Command command, const std::string& payload);
inline constexpr const char* kNotVisibleInTime =
    "committed by the leader but not visible on this node within the commit timeout";

// A read reply written as the engine reads its events (ReadSink): each event is appended in
// protobuf's wire format straight from storage's memory; finish() adds the reply's other fields.
// The bytes are those of read_stream_completed / read_all_completed for the same result with its
// events. One reply per encoder; used by one thread at a time.
class ReadReplyEncoder final : public ReadSink {
 public:
  // Stream: ReadStreamEventsCompleted; All: ReadAllEventsCompleted; Appeared: one
  // StreamEventAppeared (catch-up subscriptions).
  enum class Kind { Stream, All, Appeared };
  explicit ReadReplyEncoder(Kind kind);
  void start(const Position& from) override;
  void expect(size_t rows_max) override;
  void row(const RecordView& record) override;
  void resolved(const ResolvedEvent& event) override;
  void discard() override;
  // Events written so far.
  int32_t events() const { return events_; }
  std::string finish(const ReadStreamResult& result);  // Stream; result.events is not written
  std::string finish(const ReadAllResult& result);     // All; result.events is not written
  std::string finish_appeared();                       // Appeared

 private:
  Kind kind_;
  std::string out_;
  bool started_ = false;
  size_t rows_expected_ = 0;
  int32_t events_ = 0;
};

// The most a read reply reserves up front, guessed from its first event times the events that
// may follow; past it the reply grows as it is written.
inline constexpr size_t kReadReplyReserveBytesMax = size_t{16} * 1024 * 1024;

// Serialized reply payloads.
std::string write_completed(const WriteResult& result);
std::string delete_completed(const DeleteResult& result);
std::string transaction_start_completed(const TransactionResult& result);
std::string transaction_write_completed(const TransactionResult& result,
                                        int64_t request_transaction_id);
std::string transaction_commit_completed(const TransactionResult& result,
                                         int64_t request_transaction_id);
std::string read_event_completed(const ReadEventResult& result);
std::string read_stream_completed(const ReadStreamResult& result);
std::string read_all_completed(const ReadAllResult& result);
std::string subscription_confirmation(int64_t last_commit_position,
                                      std::optional<int64_t> last_event_number);
std::string stream_event_appeared(const ResolvedEvent& event);
std::string subscription_dropped(DropReason reason);
std::string scavenge_failed(const std::string& error);
// ScavengeDatabaseCompleted laid out so that both protocol versions read it (PROTOCOL.md C2):
// field 1 is 0.2.19's result (Success 0, InProgress 1, Failed 2) and 23.10's (Started 0,
// InProgress 1, Unauthorized 2); field 2 is 0.2.19's error and 23.10's scavengeId; the
// 0.2.19-required time and space fields are 0 (the scavenge has only begun).
enum class ScavengeAnswer { Started = 0, InProgress = 1, Unauthorized = 2 };
std::string scavenge_response(ScavengeAnswer answer, const std::string& scavenge_id);
// Persistent subscriptions. `error` is set when the request names an unknown strategy.
struct PersistentSettingsRequest {
  PersistentSettings settings;
  std::string error;
};
PersistentSettingsRequest settings_from_proto(const pb::CreatePersistentSubscription& m);
PersistentSettingsRequest settings_from_proto(const pb::UpdatePersistentSubscription& m);
std::string create_persistent_completed(const PersistentResult& result);
std::string update_persistent_completed(const PersistentResult& result);
std::string delete_persistent_completed(const PersistentResult& result);
std::string persistent_confirmation(const std::string& subscription_id,
                                    int64_t last_commit_position, int64_t last_event_number);
std::string persistent_event_appeared(const ResolvedEvent& event, int32_t retry_count);
std::string not_handled(pb::NotHandled::NotHandledReason reason,
                        const std::optional<std::string>& additional_info);

}  // namespace chorus::tcp
