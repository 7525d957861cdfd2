// Public value types of the Chorus C++ client: events as written and as read, positions in $all,
// the results of each operation and the error a failed operation reports. Plain data; any thread.
#pragma once

#include <boost/uuid/uuid.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace chorus::client {

using Guid = boost::uuids::uuid;

// Expected versions of a write or delete (EventStore's constants; numbers >= 0 mean "the stream's
// last event number must be this").
inline constexpr int64_t kExpectedVersionAny = -2;
inline constexpr int64_t kExpectedVersionNoStream = -1;
inline constexpr int64_t kExpectedVersionStreamExists = -4;
// Event number -1: the stream's last event (read_event) or its end (backward reads).
inline constexpr int64_t kStreamEnd = -1;
// The largest page a read may ask for; the EventStore clients refuse more, servers cap there.
inline constexpr int kReadCountMax = 4096;

struct Credentials {
  std::string login;
  std::string password;
};

// A position in $all: (commit, prepare), compared lexicographically. (-1, -1) is the end.
struct Position {
  int64_t commit = 0;
  int64_t prepare = 0;
  static Position start() { return {0, 0}; }
  static Position end() { return {-1, -1}; }
  auto operator<=>(const Position&) const = default;
};

// A new random (version 4) id for an event to append.
Guid new_event_id();

// An event to append. The id makes retries idempotent: keep it when resending the same write.
struct EventData {
  Guid id{};
  std::string type;
  bool is_json = true;
  std::string data;
  std::string metadata;
};

struct RecordedEvent {
  std::string stream;
  int64_t number = 0;
  Guid id{};
  std::string type;
  bool is_json = false;
  std::string data;
  std::string metadata;
  int64_t created_epoch_ms = 0;
};

// A read event: `event` is the event itself (or a link's target), `link` the link event when one
// was resolved; `position` only for $all reads and live events.
struct ResolvedEvent {
  std::optional<RecordedEvent> event;
  std::optional<RecordedEvent> link;
  std::optional<Position> position;
  // The event as it sits in the stream that was read (the link when there is one).
  const RecordedEvent* original() const { return link ? &*link : event ? &*event : nullptr; }
};

enum class ErrorKind {
  WrongExpectedVersion,  // the stream's version did not match; Error::current_version is set
  StreamDeleted,         // the stream was hard-deleted (or soft-deleted, for StreamExists)
  AccessDenied,          // the user may not do this
  NotAuthenticated,      // the credentials were refused
  BadRequest,            // the server could not understand the request
  ServerError,           // the server reported an error while serving the request
  RetryLimitReached,     // retried max_retries times (timeouts, NotReady, TooBusy, lost links)
  QueueFull,             // more than max_queue_size operations waiting
  ConnectionClosed,      // the client closed, or gave up reconnecting / discovering
  InvalidArgument,       // refused before sending (e.g. a read count over kReadCountMax)
  ProtocolError,         // an unexpected or undecodable reply
};

const char* to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::ServerError;
  std::string message;
  std::optional<int64_t> current_version;  // WrongExpectedVersion, when the server said
};

// Either a value or an Error.
template <class T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return value_.has_value(); }
  const T& value() const { return *value_; }
  T& value() { return *value_; }
  const Error& error() const { return error_; }

 private:
  std::optional<T> value_;
  Error error_;
};

struct WriteResult {
  int64_t next_expected_version = 0;  // the last event number written
  Position position;
};

struct DeleteResult {
  Position position;
};

// How a read found the stream or event. Success also for an empty page.
enum class ReadStatus { Success, NotFound, NoStream, StreamDeleted };
const char* to_string(ReadStatus status);

struct EventReadResult {
  ReadStatus status = ReadStatus::Success;
  std::optional<ResolvedEvent> event;  // only with Success
};

enum class ReadDirection { Forward, Backward };

struct StreamSlice {
  ReadStatus status = ReadStatus::Success;
  std::vector<ResolvedEvent> events;
  int64_t next_event_number = 0;
  int64_t last_event_number = 0;
  bool is_end_of_stream = false;
  int64_t last_commit_position = 0;
};

struct AllSlice {
  Position from;  // the position the server resolved the request to (head for end())
  Position next;
  std::vector<ResolvedEvent> events;
  bool is_end_of_stream = false;  // no events came back
};

struct StreamMetadataResult {
  std::string stream;
  bool is_stream_deleted = false;
  int64_t metastream_version = -1;  // -1: no metadata was ever set
  std::string json;                 // "" when none
};

struct SubscriptionConfirmation {
  int64_t last_commit_position = 0;
  std::optional<int64_t> last_event_number;  // absent for $all; -1 for a missing stream
};

enum class DropReason {
  Unsubscribed,      // unsubscribe() was called (no error)
  AccessDenied,      // the user may not read the stream
  NotFound,          // the server does not know the subscription
  NotAuthenticated,  // the credentials were refused
  ConnectionClosed,  // the connection dropped; volatile subscriptions are not resumed
  ServerError,       // BadRequest or an unexpected reply
};
const char* to_string(DropReason reason);

}  // namespace chorus::client
