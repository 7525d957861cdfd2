// Value types of the database engine's API: events, positions, principals and the results of
// every operation. Shared by the TCP and HTTP front ends so that both speak one model. Plain data;
// any thread.
#pragma once

#include "common/guid.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

// Expected-version constants, as EventStore's clients send them.
inline constexpr int64_t kExpectedAny = -2;
inline constexpr int64_t kExpectedNoStream = -1;
inline constexpr int64_t kExpectedStreamExists = -4;
// The event number of a hard-delete tombstone and the "deleted" $tb of a soft delete.
inline constexpr int64_t kDeletedStreamNumber = std::numeric_limits<int64_t>::max();
// The largest event (data + metadata) a client may write, as EventStore's log record cap.
inline constexpr size_t kEventBytesMax = 16u * 1024u * 1024u;
// The most events one read may return (clients refuse to ask for more).
inline constexpr int32_t kReadCountMax = 4096;

// A position in $all: (commit, prepare), compared lexicographically. (-1, -1) means "the end".
struct Position {
  int64_t commit = 0;
  int64_t prepare = 0;
  static Position start() { return {0, 0}; }
  static Position end() { return {-1, -1}; }
  bool is_end() const { return commit < 0 || prepare < 0; }
  friend auto operator<=>(const Position&, const Position&) = default;
};

// Who performs an operation. An empty login is the anonymous user.
struct Principal {
  std::string login;
  std::vector<std::string> groups;  // e.g. "$admins", "$ops"
  // The client TCP connection the request came on, unique in this process; 0 when there is none
  // (HTTP, a request a follower passed on, the node itself). Transactions are bound to it.
  uint64_t client_connection = 0;
  bool anonymous() const { return login.empty(); }
  bool in_role(const std::string& role) const;  // login or one of the groups
  bool is_admin() const { return in_role("$admins"); }
  static Principal anon() { return {}; }
};

// The answer to a credentials check (Engine::authenticate).
struct AuthResult {
  std::optional<Principal> principal;  // set: the credentials are right
  // Neither right nor wrong: this node cannot answer yet, as EventStore's "auth backend not
  // ready" (a check of a built-in login held past its deadline on a forming cluster, or one
  // refused because too many such checks wait). Transports answer it as not ready (TCP
  // NotHandled NotReady, HTTP 503), which says nothing about the password.
  bool not_ready = false;
  static AuthResult unavailable() { return AuthResult{std::nullopt, true}; }
};

struct NewEvent {
  Guid event_id{};
  std::string event_type;
  bool data_is_json = false;
  bool metadata_is_json = false;
  std::string data;
  std::string metadata;
};

struct EventRecord {
  std::string stream;
  int64_t number = 0;
  Guid event_id{};
  std::string event_type;
  bool data_is_json = false;
  bool metadata_is_json = false;
  std::string data;
  std::string metadata;
  int64_t created_ms = 0;  // milliseconds since the Unix epoch
  Position position;       // where the event sits in $all
  int64_t log_end = 0;     // the log position just after this record
};

// An event record as storage holds it, without copies: the views are valid only during the call
// that hands it over (ReadSink, ReadConnection::range_rows).
struct RecordView {
  std::string_view stream;
  int64_t number = 0;
  std::string_view event_id;  // raw bytes (to_raw_bytes); an id that is not 16 bytes reads as 0s
  std::string_view event_type;
  bool data_is_json = false;
  bool metadata_is_json = false;
  std::string_view data;
  std::string_view metadata;
  int64_t created_ms = 0;
  Position position;
  int64_t log_end = 0;
};
RecordView view_of(const EventRecord& record);
EventRecord to_record(const RecordView& view);

// A read result entry: `event` is the target (or the record itself), `link` the `$>` record
// when a link was resolved. For a link whose target is gone, `event` is empty and `link` is set.
struct ResolvedEvent {
  std::optional<EventRecord> event;
  std::optional<EventRecord> link;
  // The record that sits in the stream or $all being read: link if any, else event.
  const EventRecord& original() const { return link ? *link : *event; }
};

enum class OperationResult : int {
  Success = 0,
  PrepareTimeout = 1,
  CommitTimeout = 2,
  ForwardTimeout = 3,
  WrongExpectedVersion = 4,
  StreamDeleted = 5,
  InvalidTransaction = 6,
  AccessDenied = 7,
};

// Why a node did not handle a write: it is not the leader (or not ready to lead yet).
enum class NotHandledReason { None = -1, NotReady = 0, TooBusy = 1, NotLeader = 2 };

struct WriteResult {
  NotHandledReason not_handled = NotHandledReason::None;
  OperationResult result = OperationResult::Success;
  std::string message;
  int64_t first_event_number = 0;
  int64_t last_event_number = 0;
  Position position;             // of the last event written (or of the original, on a retry)
  int64_t current_version = -1;  // the stream's version, for WrongExpectedVersion
};

struct DeleteResult {
  NotHandledReason not_handled = NotHandledReason::None;
  OperationResult result = OperationResult::Success;
  std::string message;
  Position position;
  int64_t current_version = -1;
};

struct TransactionResult {
  NotHandledReason not_handled = NotHandledReason::None;
  int64_t transaction_id = -1;
  OperationResult result = OperationResult::Success;
  std::string message;
  // Only for commit:
  int64_t first_event_number = 0;
  int64_t last_event_number = 0;
  Position position;
};

enum class ReadEventStatus {
  Success = 0,
  NotFound = 1,
  NoStream = 2,
  StreamDeleted = 3,
  Error = 4,
  AccessDenied = 5
};
struct ReadEventResult {
  ReadEventStatus status = ReadEventStatus::Success;
  std::optional<ResolvedEvent> event;
  std::string error;
};

enum class ReadStreamStatus {
  Success = 0,
  NoStream = 1,
  StreamDeleted = 2,
  NotModified = 3,
  Error = 4,
  AccessDenied = 5
};
struct ReadStreamResult {
  ReadStreamStatus status = ReadStreamStatus::Success;
  std::vector<ResolvedEvent> events;  // in read order
  int64_t next_event_number = -1;
  int64_t last_event_number = -1;
  bool is_end_of_stream = true;
  int64_t last_commit_position = 0;
  // The first time (ms since the epoch) at which an event in `events` passes its stream's
  // $maxAge: until then the same read gives the same events (a TCP read-ahead relies on it).
  int64_t expires_at_ms = std::numeric_limits<int64_t>::max();
  std::string error;
};

// Takes a read's events as they are read, in order, on the reader thread, so that a front end
// can encode them at once instead of copying every record into a result first (TCP's read
// replies). The result passed to the read's `done` then has no events.
class ReadSink {
 public:
  virtual ~ReadSink() = default;
  // $all reads: the resolved start position, before any event.
  virtual void start(const Position& /*from*/) {}
  // Before the events: at most this many will follow (for sizing buffers).
  virtual void expect(size_t /*rows_max*/) {}
  // An event as stored (every event unless links are resolved and it is a `$>` link).
  virtual void row(const RecordView& record) = 0;
  // A `$>` link record read with resolve_links, with its target as the reader may see it.
  virtual void resolved(const ResolvedEvent& event) = 0;
  // The read failed after some events (a storage error): they are not part of its answer.
  virtual void discard() {}
};

enum class ReadAllStatus { Success = 0, NotModified = 1, Error = 2, AccessDenied = 3 };
struct ReadAllResult {
  ReadAllStatus status = ReadAllStatus::Success;
  Position from;  // the resolved start (the head position when asked from the end)
  Position next;
  std::vector<ResolvedEvent> events;  // positions in `original().position`
  int64_t last_commit_position = 0;   // the committed position the read saw
  std::string error;
};

enum class DropReason {
  Unsubscribed = 0,
  AccessDenied = 1,
  NotFound = 2,
  PersistentSubscriptionDeleted = 3,
  SubscriberMaxCountReached = 4,
  // Not on the wire: the subscriber fell too far behind; front ends close its connection.
  SlowConsumer = 100
};

}  // namespace chorus
