// Stateless request handling: decodes one client package, asks the Engine, and hands the encoded
// reply to `reply` (exactly once, or never for commands without a reply). Session state
// (authentication, subscriptions, ordering) stays in Session. Call from the session's strand;
// `reply` is called later from an engine thread and must be thread-safe (it posts).
#pragma once

#include "common/framing.hpp"
#include "worker/engine/engine.hpp"
#include "worker/tcp/routing.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::tcp {

using ReplyFn = std::function<void(wire::Command command, std::string payload)>;

enum class DispatchOutcome {
  Submitted,     // `reply` will be called once
  NoReply,       // handled; the command has no reply (persistent-subscription acks)
  DecodeFailed,  // the payload is not a valid message of the command
  Unsupported,   // not a request command this module handles
};

// A connection's read-ahead. A client reading a stream or $all forward asks for the next page
// only after it has parsed the last one, so the server's work and the client's run in series.
// After a full page, the next one is read at once on a reader thread while the client parses,
// and kept here encoded. It is served only to the same principal asking for exactly that page
// while the committed position is the one it was read at (so ACLs, $maxCount, $tb, deletes and
// $settings are as they were; committed records are never truncated) and before any event in it
// passes its $maxAge; reads that resolve links are not read ahead (the targets have rules of
// their own). A page is read ahead only when the connection's last two pages saw the same
// committed position, so concurrent writes cost at most one discarded page. Thread-safe.
class ReadAhead {
 public:
  struct Key {
    wire::Command command{};
    std::string stream;  // empty for $all
    int64_t from_number = 0;
    Position from_position;
    int32_t count = 0;
    std::string login;
    std::vector<std::string> roles;
    bool operator==(const Key&) const = default;
  };
  // What a page answered, for chaining the next one.
  struct Page {
    std::string payload;
    int64_t committed_position = 0;
    int64_t expires_at_ms = 0;
    std::optional<Key> next;  // set when the page was full and not the end
  };

  ReadAhead() = default;
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;
  ~ReadAhead();

  // Called with the page read ahead for a request that came while it was being read (nullopt
  // when that read failed or was superseded); it decides itself whether it may be served.
  using Waiter = std::function<void(std::optional<Page>)>;
  // The page kept for `key` when it may be served now (the slot is emptied either way). When the
  // page for `key` is still being read, `waiter` gets it later and take() returns true in
  // `waiting`.
  std::optional<Page> take(const Key& key, int64_t committed_now, int64_t now_ms, Waiter waiter,
                           bool* waiting);
  // Whether a page just answered (at `committed_position`) should have its next one read ahead;
  // if so, the slot now waits for `next` and the returned ticket names the read.
  std::optional<uint64_t> expect(const std::optional<Key>& next, int64_t committed_position);
  // Hands a page read ahead under `ticket` to its waiter, or keeps it unless the slot moved on
  // or the node's budget (kReadAheadBytesMax) is spent. nullopt: the read failed.
  void fill(uint64_t ticket, std::optional<Page> page);

 private:
  void release_locked();
  std::mutex mutex_;
  uint64_t ticket_ = 0;
  std::optional<Key> key_;
  std::optional<Page> page_;
  Waiter waiter_;
  size_t bytes_held_ = 0;
  int64_t last_committed_seen_ = -1;
};

// Bytes of pages read ahead that the node holds at most over all connections (a page is up to a
// frame, 64 MiB): beyond it pages are not kept.
inline constexpr size_t kReadAheadBytesMax = size_t{64} * 1024 * 1024;

// A WriteEvents or TransactionWrite request decoded from its payload. The session decodes a large
// one before its dispatch, on another thread than its own (see kDecodeElsewhereFrameBytesMin).
struct DecodedWrite {
  std::string stream;            // WriteEvents
  int64_t expected_version = 0;  // WriteEvents
  int64_t transaction_id = 0;    // TransactionWrite
  bool require_master = false;
  std::vector<NewEvent> events;
};
// nullopt when the payload is not a valid message of `command` (WriteEvents or TransactionWrite)
// or an event id is not 16 bytes. Pure; any thread.
std::optional<DecodedWrite> decode_write(wire::Command command, std::string_view payload);

// `cluster` (null for a single node) decides whether the request is served here, passed to the
// leader, or refused with NotHandled. `read_ahead` (null: none) is the connection's. `decoded`
// (null: decoded here) is the request's payload decoded beforehand by decode_write(); its events
// move into the engine.
DispatchOutcome dispatch_request(Engine& engine, const Principal& who, const wire::Package& package,
                                 ReplyFn reply, const ClusterState* cluster = nullptr,
                                 std::shared_ptr<ReadAhead> read_ahead = nullptr,
                                 DecodedWrite* decoded = nullptr);

// The text of the BadRequest for an undecodable payload, as EventStore words it.
std::string unwrap_error_text(uint8_t command);

}  // namespace chorus::tcp
