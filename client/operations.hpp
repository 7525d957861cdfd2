// Operations of the client: each one holds its request (serialized once, so every resend carries
// the same body and event ids), decides what a reply means (done, retry, reconnect to the leader,
// subscribed) and hands its result to the user's handler exactly once. Pure: no sockets, clocks
// or threads; the ClientCore calls them on its strand.
#pragma once

#include <chorus/client.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/framing.hpp"

namespace chorus::client {

struct Decision {
  enum class Kind {
    Complete,    // the operation is finished (its handler has run)
    Retry,       // resend the same request later (NotReady, TooBusy, timeouts of the server)
    Reconnect,   // NotHandled(NotLeader): connect to `leader`, then resend
    Subscribed,  // a subscription was confirmed; it now lives until dropped
  };
  Kind kind = Kind::Complete;
  Endpoint leader;
};

class Operation {
 public:
  Operation(wire::Command command, std::string payload);
  virtual ~Operation() = default;
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  wire::Command command() const { return command_; }
  const std::string& payload() const { return payload_; }
  // Decides what a reply with this operation's correlation id means; may run the handler.
  Decision inspect(const wire::Package& package);
  // Finishes the operation with `error` (retry limit, queue full, client closed). Idempotent.
  virtual void fail(Error error) = 0;
  // For subscriptions: the id unsubscribe() names; 0 for other operations.
  virtual uint64_t subscription_id() const { return 0; }

  // Kept by the OperationTable.
  Guid correlation_id{};
  int retries = 0;
  int64_t sent_ms = -1;

 protected:
  virtual Decision inspect_reply(const wire::Package& package) = 0;
  Decision fail_with(ErrorKind kind, std::string message);

 private:
  wire::Command command_;
  std::string payload_;
};

// Reads the MasterInfo/LeaderInfo of a NotHandled(NotLeader) payload: the leader's external TCP
// endpoint, or nullopt when the payload does not name one.
std::optional<Endpoint> leader_from_not_handled(const std::string& payload);

// Factories. Arguments are checked by the Client before these are called.
std::unique_ptr<Operation> make_append(const std::string& stream, int64_t expected_version,
                                       const std::vector<EventData>& events, bool require_leader,
                                       Handler<WriteResult> done);
std::unique_ptr<Operation> make_read_event(const std::string& stream, int64_t event_number,
                                           bool resolve_links, bool require_leader,
                                           Handler<EventReadResult> done);
std::unique_ptr<Operation> make_read_stream(const std::string& stream, int64_t from, int count,
                                            ReadDirection direction, bool resolve_links,
                                            bool require_leader, Handler<StreamSlice> done);
std::unique_ptr<Operation> make_read_all(Position from, int count, ReadDirection direction,
                                         bool resolve_links, bool require_leader,
                                         Handler<AllSlice> done);
std::unique_ptr<Operation> make_delete(const std::string& stream, int64_t expected_version,
                                       bool hard_delete, bool require_leader,
                                       Handler<DeleteResult> done);
std::unique_ptr<Operation> make_get_metadata(const std::string& stream, bool require_leader,
                                             Handler<StreamMetadataResult> done);

// A volatile subscription: an Operation until confirmed, then fed live packages.
class SubscriptionOperation : public Operation {
 public:
  SubscriptionOperation(uint64_t id, const std::string& stream, bool resolve_links,
                        SubscriptionHandlers handlers);
  void fail(Error error) override;
  uint64_t subscription_id() const override { return id_; }
  // A package for a confirmed subscription; true when it ended the subscription.
  bool handle_live(const wire::Package& package);
  // Ends the subscription (once); later calls do nothing.
  void drop(DropReason reason, const std::string& message);
  bool dropped() const { return dropped_; }

 protected:
  Decision inspect_reply(const wire::Package& package) override;

 private:
  uint64_t id_;
  SubscriptionHandlers handlers_;
  bool dropped_ = false;
};

}  // namespace chorus::client
