// PersistentApi: what the front ends (TCP, HTTP) may ask of persistent subscriptions (competing
// consumers). They live on the leader only: on another node every call answers NotLeader.
// Every method may be called from any thread and returns at once; callbacks run later on the
// engine's core thread and must not block (post to your own executor for real work).
#pragma once

#include "worker/engine/types.hpp"
#include "worker/subscriptions/persistent_core.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chorus {

// Messages one HTTP competing read may take (EventStore caps them at 100).
inline constexpr int32_t kPersistentPullMax = 100;

// Results of create/update/delete/replay as EventStore's TCP codes: Success 0, AlreadyExists
// (create) or DoesNotExist (update, delete) 1, Fail 2, AccessDenied 3.
enum class PersistentStatus {
  Success = 0,
  Exists = 1,
  DoesNotExist = 1,
  Fail = 2,
  AccessDenied = 3
};

struct PersistentResult {
  NotHandledReason not_handled = NotHandledReason::None;
  PersistentStatus status = PersistentStatus::Success;
  bool not_found = false;  // distinguishes DoesNotExist from AlreadyExists (same code)
  std::string reason;
};

struct PersistentCallbacks {
  // This node does not lead (or is not ready): the connect was not taken.
  std::function<void(NotHandledReason)> not_handled;
  // subscription_id is "<stream>::<group>"; last_event_number -1 for an empty stream.
  std::function<void(const std::string& subscription_id, int64_t last_commit_position,
                     int64_t last_event_number)>
      confirmed;
  std::function<void(std::shared_ptr<const ResolvedEvent> event, int32_t retry_count)>
      event_appeared;
  std::function<void(DropReason)> dropped;
};

struct PersistentConsumerInfo {
  uint64_t id = 0;
  std::string from;  // the peer's address
  std::string username;
  int32_t in_flight = 0;
  int32_t slots = 0;
  int64_t delivered = 0;
  int64_t acked = 0;
  // The group's extraStatistics: EventStore's delivery-to-ack time statistics; filled by info()
  // only (else empty).
  std::vector<LatencyMeasurement> extra_statistics;
};

// One group as /info and the dashboard show it.
struct PersistentGroupInfo {
  std::string stream;
  std::string group;
  PersistentSettings settings;
  std::string status;  // Live, Behind, Paused (no consumer), Stuck (nothing delivered lately)
  int64_t last_checkpoint = -1;
  int64_t last_processed_number = -1;
  int64_t last_known_number = -1;
  int64_t total_processed = 0;
  double rate_in_per_second = 0;   // events taken from the stream
  double rate_out_per_second = 0;  // events acknowledged, skipped or parked
  int64_t parked_count = 0;
  int64_t oldest_parked_age_ms = 0;
  int64_t read_buffer_count = 0;
  int64_t retry_buffer_count = 0;
  int64_t in_flight = 0;
  std::vector<PersistentConsumerInfo> consumers;
  // Set when this leader loaded the group after a leader change or restart (ResumeStats):
  // the checkpoint it resumed from, the upper bound of redeliveries and how many of those events
  // it has delivered since. nullopt: created or updated on this leader.
  std::optional<ResumeStats> resumed;
};

struct PersistentListResult {
  NotHandledReason not_handled = NotHandledReason::None;
  std::vector<PersistentGroupInfo> groups;
};

struct PersistentInfoResult {
  NotHandledReason not_handled = NotHandledReason::None;
  PersistentStatus status = PersistentStatus::Success;  // DoesNotExist or AccessDenied
  std::optional<PersistentGroupInfo> info;
};

struct PersistentPullResult {
  NotHandledReason not_handled = NotHandledReason::None;
  PersistentStatus status = PersistentStatus::Success;
  struct Item {
    std::shared_ptr<const ResolvedEvent> event;
    int32_t retry_count = 0;
  };
  std::vector<Item> items;
};

class PersistentApi {
 public:
  virtual ~PersistentApi() = default;
  virtual void create(Principal who, std::string stream, std::string group,
                      PersistentSettings settings, std::function<void(PersistentResult)> done) = 0;
  virtual void update(Principal who, std::string stream, std::string group,
                      PersistentSettings settings, std::function<void(PersistentResult)> done) = 0;
  virtual void remove(Principal who, std::string stream, std::string group,
                      std::function<void(PersistentResult)> done) = 0;
  // Returns the consumer id for ack/nak/disconnect. `from` names the peer for /info.
  virtual uint64_t connect(Principal who, std::string stream, std::string group,
                           int32_t allowed_in_flight, std::string from,
                           PersistentCallbacks callbacks) = 0;
  virtual void ack(uint64_t consumer, std::vector<Guid> ids) = 0;
  virtual void nak(uint64_t consumer, std::vector<Guid> ids, NakAction action,
                   std::string reason) = 0;
  // The consumer leaves; with `notify` its `dropped(Unsubscribed)` runs.
  virtual void disconnect(uint64_t consumer, bool notify) = 0;

  // HTTP competing reads and acks by id (needs read access on the stream).
  virtual void pull(Principal who, std::string stream, std::string group, int32_t count,
                    std::function<void(PersistentPullResult)> done) = 0;
  virtual void ack_ids(Principal who, std::string stream, std::string group, std::vector<Guid> ids,
                       std::optional<NakAction> nak,
                       std::function<void(PersistentResult)> done) = 0;
  virtual void replay_parked(Principal who, std::string stream, std::string group,
                             std::function<void(PersistentResult)> done) = 0;
  // Groups whose stream `who` may read; `stream` empty: every stream.
  virtual void list(Principal who, std::string stream,
                    std::function<void(PersistentListResult)> done) = 0;
  virtual void info(Principal who, std::string stream, std::string group,
                    std::function<void(PersistentInfoResult)> done) = 0;
};

}  // namespace chorus
