// PersistentCore: the dispatch rules of one persistent-subscription group (competing consumers),
// as a pure state machine in the style of a raft core. It is fed events (read pages, live
// records), consumer connects/disconnects, acks, naks and ticks, with time as an input, and
// hands back actions: deliveries, reads to issue, parks, checkpoint writes and consumer drops.
// No I/O, threads or clocks inside; one thread at a time (the leader service's core thread).
#pragma once

#include "common/guid.hpp"
#include "worker/engine/types.hpp"

#include <boost/functional/hash.hpp>
#include <boost/uuid/uuid_hash.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace chorus {

// Limits of the dispatch core (one place, with their reasons).
// Messages one consumer may hold unacknowledged, whatever it asks for: bounds the memory and the
// redelivery a dead consumer causes.
inline constexpr int32_t kPersistentInFlightMax = 10'000;
// Buffer sizes a group may be configured with: they are held in memory per group.
inline constexpr int32_t kPersistentBufferMax = 100'000;
// Consumers one group serves when its own limit is 0 (unlimited in EventStore).
inline constexpr int32_t kPersistentConsumersMax = 1'000;
// Pinned strategy: source streams are hashed into this many buckets, each owned by one consumer.
inline constexpr uint32_t kPinnedBuckets = 1024;
// extraStatistics: the latest delivery-to-ack times kept per consumer (EventStore's window).
inline constexpr size_t kLatencyWindow = 1'000;

enum class ConsumerStrategy { RoundRobin, DispatchToSingle, Pinned };
std::optional<ConsumerStrategy> parse_strategy(const std::string& name);
std::string strategy_name(ConsumerStrategy strategy);

// A group's settings (PROTOCOL.md G1); defaults are EventStore's HTTP defaults.
struct PersistentSettings {
  bool resolve_link_tos = false;
  int64_t start_from = 0;  // -1: only events written after the group was created
  bool extra_statistics = false;
  int32_t message_timeout_ms = 10'000;
  int32_t max_retry_count = 10;
  int32_t live_buffer_size = 500;
  int32_t read_batch_size = 20;
  int32_t buffer_size = 500;
  int32_t checkpoint_after_ms = 1'000;
  int32_t min_checkpoint_count = 10;
  int32_t max_checkpoint_count = 500;
  int32_t max_subscriber_count = 10;  // 0: unlimited (bounded by kPersistentConsumersMax)
  ConsumerStrategy strategy = ConsumerStrategy::RoundRobin;
};

// Why settings cannot be used, or nullopt when they can (EventStore's validation plus our limits).
std::optional<std::string> validate(const PersistentSettings& settings);

enum class NakAction { Unknown = 0, Park = 1, Retry = 2, Skip = 3, Stop = 4 };

// GCC 12 reports a false "maybe uninitialized" for the uuid inside moves of std::variant.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// One event of the subscribed stream. `number` is its number in that stream (the link's number
// when resolved through a link); `id` is what consumers ack (the original record's id).
struct PersistentMessage {
  int64_t number = 0;
  Guid id{};
  std::string source_stream;  // the pinned strategy's key
  std::shared_ptr<const ResolvedEvent> event;
  int32_t retry_count = 0;
  bool replayed = false;  // a parked message replayed: outside the checkpoint's sequence
};
#pragma GCC diagnostic pop

namespace persistent {
struct Deliver {
  uint64_t consumer = 0;
  PersistentMessage message;
};
struct Read {
  int64_t from = 0;
  int32_t count = 0;
};
struct Park {
  PersistentMessage message;
  std::string reason;
};
struct Checkpoint {
  int64_t number = 0;  // the last event number processed in sequence
};
struct Drop {
  uint64_t consumer = 0;
  DropReason reason = DropReason::Unsubscribed;
};
using Action = std::variant<Deliver, Read, Park, Checkpoint, Drop>;
}  // namespace persistent

// One of EventStore's extra statistics ("Mean", "Median", "90%", ...), in milliseconds.
struct LatencyMeasurement {
  std::string key;
  int64_t value = 0;
  bool operator==(const LatencyMeasurement&) const = default;
};

// EventStore's extra statistics over delivery-to-ack times: Mean, Median, Fastest, Quintile 1-5,
// 90%, 95%, 99%, 99.5%, 99.9%, Highest (each a sample, not an interpolation); empty without
// samples.
std::vector<LatencyMeasurement> latency_statistics(std::vector<int64_t> samples_ms);

struct ConsumerStats {
  uint64_t id = 0;
  int32_t in_flight = 0;
  int32_t slots = 0;
  int64_t delivered = 0;
  int64_t acked = 0;
  // Only with the group's extraStatistics: times from delivery to ack or nak.
  std::vector<LatencyMeasurement> extra_statistics;
};

enum class GroupState { Live, Behind };

// A group loaded by a leader after a leader change (or a restart): every event after the
// checkpoint it resumed from that already existed then may have been handed out by the previous
// leader, so delivering it again may be a redelivery.
struct ResumeStats {
  int64_t checkpoint = -1;  // the last number treated as processed at load
  // Events after `checkpoint` up to the stream's last number at load: an upper bound of the
  // redeliveries the leader change causes (gaps, deleted events and events the previous leader
  // never handed out make the real number smaller).
  int64_t bound = 0;
  // Of those, how many this leader has handed out since load (each counted once).
  int64_t delivered = 0;
};

class PersistentCore {
 public:
  // `checkpoint` is the last processed number loaded from the checkpoint stream (nullopt: none);
  // `last_number` is the stream's last event number now (-1 when it has none).
  PersistentCore(PersistentSettings settings, std::optional<int64_t> checkpoint,
                 int64_t last_number, int64_t now_ms);

  // Consumers. connect() returns false (and queues a Drop) when the group is full.
  bool connect(uint64_t consumer, int32_t allowed_in_flight, int64_t now_ms);
  // The consumer left: its unacknowledged messages go to the others.
  void disconnect(uint64_t consumer, int64_t now_ms);
  // Messages handed out without a connection (HTTP competing reads), marked in flight.
  std::vector<PersistentMessage> pull(int32_t count, int64_t now_ms);

  void ack(const std::vector<Guid>& ids, int64_t now_ms);
  void nak(uint64_t consumer, const std::vector<Guid>& ids, NakAction action,
           const std::string& reason, int64_t now_ms);

  // A page read from `from` (what Read asked for); `end_of_stream` when it reached the end.
  void on_read(int64_t from, std::vector<PersistentMessage> messages, int64_t next_number,
               bool end_of_stream, int64_t now_ms);
  // The read could not be done: it is asked again at the next tick.
  void on_read_failed();
  // A record committed to the stream. Without an event (a link to resolve) it only tells the
  // core that there is something to read.
  void on_live(int64_t number, std::optional<PersistentMessage> message, int64_t now_ms);
  // A park write finished: the message is done.
  void on_parked(const PersistentMessage& message);
  // Parked messages to deliver again (replayParked).
  void replay(std::vector<PersistentMessage> messages, int64_t now_ms);

  void tick(int64_t now_ms);
  // Drops every consumer with `reason` (delete, update, leadership lost).
  void drop_all(DropReason reason);
  // The group was loaded after a leader change or restart (not created or updated here): start
  // counting what may be delivered again (see ResumeStats). Call before the first dispatch.
  void mark_resumed();

  std::vector<persistent::Action> take_actions();

  // Observability.
  GroupState state() const { return live_ ? GroupState::Live : GroupState::Behind; }
  int64_t last_checkpoint() const { return last_checkpoint_; }
  int64_t last_known_number() const { return last_known_; }
  int64_t last_processed_number() const { return low_water() - 1; }
  int64_t processed_total() const { return processed_total_; }
  size_t buffered() const { return buffer_.size(); }
  size_t retry_buffered() const { return retry_.size(); }
  size_t in_flight() const { return in_flight_.size(); }
  // `with_extra_statistics`: also compute the extraStatistics (a sort of each consumer's window,
  // so only for one group's /info, not for lists and metrics).
  std::vector<ConsumerStats> consumers(bool with_extra_statistics) const;
  size_t consumer_count() const { return order_.size(); }
  const PersistentSettings& settings() const { return settings_; }
  // Milliseconds since a message was last handed out while messages were waiting (0 otherwise).
  int64_t stalled_ms(int64_t now_ms) const;
  // Set by mark_resumed(); nullopt for a group created or updated on this leader.
  const std::optional<ResumeStats>& resume_stats() const { return resume_; }

 private:
  struct Consumer {
    int32_t slots = 0;
    std::set<Guid> in_flight;
    int64_t delivered = 0;
    int64_t acked = 0;
    std::deque<int64_t> latencies_ms;  // extraStatistics: the latest kLatencyWindow answers
  };
  struct InFlight {
    PersistentMessage message;
    uint64_t consumer = 0;  // 0: pulled over HTTP
    int64_t deadline_ms = 0;
    int64_t handed_out_ms = 0;
  };

  void dispatch(int64_t now_ms);
  bool dispatch_one(PersistentMessage& message, int64_t now_ms);
  std::optional<uint64_t> pick(const PersistentMessage& message);
  void hand_out(uint64_t consumer, PersistentMessage message, int64_t now_ms);
  void retry(PersistentMessage message, const std::string& reason);
  void done(const PersistentMessage& message);
  void maybe_read();
  void maybe_checkpoint(int64_t now_ms, bool timed);
  int64_t low_water() const;
  std::optional<PersistentMessage> take_in_flight(const Guid& id);
  // extraStatistics: the consumer answered (ack or nak) the message handed out in `entry`.
  void measure(const InFlight& entry, int64_t now_ms);
  // A message of the sequence leaves the buffer for the first time.
  void first_hand_out(int64_t number);

  PersistentSettings settings_;
  std::map<uint64_t, Consumer> consumers_;
  std::vector<uint64_t> order_;  // connect order: round robin rotates over it
  size_t next_round_robin_ = 0;
  std::deque<PersistentMessage> retry_;   // delivered again before the buffer
  std::deque<PersistentMessage> buffer_;  // read or live, not handed out yet
  std::unordered_map<Guid, InFlight, boost::hash<Guid>> in_flight_;
  std::multiset<int64_t> outstanding_;  // numbers handed out or retried or parking, not done

  bool live_ = false;             // reading caught up: live records go straight into the buffer
  bool reading_ = false;          // a Read is out
  bool read_after_tick_ = false;  // the last read found nothing new: the next tick reads
  int64_t next_number_ = 0;       // the next number to read or take live
  int64_t last_known_ = -1;       // the stream's last number as far as we know
  int64_t last_checkpoint_ = -1;
  bool has_checkpoint_ = false;
  int64_t acked_since_checkpoint_ = 0;
  int64_t last_checkpoint_ms_ = 0;
  int64_t processed_total_ = 0;
  int64_t last_hand_out_ms_ = 0;
  std::optional<ResumeStats> resume_;
  int64_t resume_last_ = -1;  // the stream's last number at load
  std::vector<persistent::Action> actions_;
};

}  // namespace chorus
