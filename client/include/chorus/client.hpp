// Client: a connection to a Chorus (or EventStore) cluster over the external TCP protocol. It
// discovers a node through gossip seeds or DNS, connects, authenticates and identifies, keeps the
// link alive with heartbeats, and runs operations with the official clients' retry rules:
// NotHandled(NotLeader) reconnects to the leader, NotReady/TooBusy/timeouts resend the same body
// with a new correlation id (so writes stay idempotent), lost connections are re-established.
//
// Threading: every method may be called from any thread. Handlers run on the client's strand
// (the client's own thread, or the given io_context's threads) and must not block it; use the
// blocking `wait()` helper from other threads only.
#pragma once

#include <chorus/settings.hpp>
#include <chorus/types.hpp>

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace chorus::client {

class ClientCore;

template <class T>
using Handler = std::function<void(Result<T>)>;

struct SubscriptionHandlers {
  std::function<void(const SubscriptionConfirmation&)> confirmed;
  std::function<void(const ResolvedEvent&)> event_appeared;
  // Called once, last; `message` explains errors ("" for Unsubscribed).
  std::function<void(DropReason reason, const std::string& message)> dropped;
};

class Client {
 public:
  // Runs on a thread of its own.
  explicit Client(Settings settings);
  // Runs on `io`, which the caller runs (several clients may share one io_context).
  Client(boost::asio::io_context& io, Settings settings);
  // Closes: pending operations fail with ConnectionClosed, subscriptions drop.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects now instead of at the first operation; `done` runs once the first connection is
  // ready, or with the error that closed the client.
  void connect(Handler<Endpoint> done);

  void append(std::string stream, int64_t expected_version, std::vector<EventData> events,
              Handler<WriteResult> done);
  void read_event(std::string stream, int64_t event_number, bool resolve_links,
                  Handler<EventReadResult> done);
  void read_stream(std::string stream, int64_t from_event_number, int count,
                   ReadDirection direction, bool resolve_links, Handler<StreamSlice> done);
  void read_all(Position from, int count, ReadDirection direction, bool resolve_links,
                Handler<AllSlice> done);
  void delete_stream(std::string stream, int64_t expected_version, bool hard_delete,
                     Handler<DeleteResult> done);
  void get_stream_metadata(std::string stream, Handler<StreamMetadataResult> done);
  // Writes `json` (an object) as the stream's metadata; `expected_metastream_version` as for
  // append (kExpectedVersionAny to overwrite whatever is there).
  void set_stream_metadata(std::string stream, int64_t expected_metastream_version,
                           std::string json, Handler<WriteResult> done);

  // A volatile subscription to `stream` ("" or "$all" for every event). Returns an id for
  // unsubscribe(). Not resumed after a connection loss (dropped with ConnectionClosed).
  uint64_t subscribe(std::string stream, bool resolve_links, SubscriptionHandlers handlers);
  void unsubscribe(uint64_t subscription_id);

  // Closes the client; idempotent. Pending operations fail with ConnectionClosed.
  void close();

 private:
  std::shared_ptr<ClientCore> core_;
  struct OwnThread;
  std::unique_ptr<OwnThread> own_thread_;
};

// Blocks the calling thread (never a client's strand) until `start(handler)` calls the handler.
template <class T, class Start>
Result<T> wait(Start&& start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  std::future<Result<T>> future = promise->get_future();
  start([promise](Result<T> result) { promise->set_value(std::move(result)); });
  return future.get();
}

}  // namespace chorus::client
