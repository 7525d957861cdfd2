// SubscriptionHub: every live subscription of a node (TCP volatile and catch-up subscriptions'
// live phase, HTTP long polls; persistent subscriptions build on it). The core thread publishes
// each committed record once, as a shared pointer; each subscriber has a bounded queue, and a
// delivery thread resolves links with the subscriber's rights and runs its callbacks, so the core
// thread neither copies nor serializes per subscriber. Every subscriber that sees a record as it
// is (no link to resolve) gets the same SharedEvent, so the record is copied and encoded once
// however many subscribers it has (issue 10, hole 7). A subscriber that falls too far behind is
// dropped (SlowConsumer) instead of growing without bound.
// Threading: add/remove/forget/publish/clear on one thread (the engine's core thread); callbacks
// run on the hub's delivery thread, in order per subscriber: confirmed or dropped first.
#pragma once

#include "worker/engine/types.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>

namespace chorus {

// Limits of the hub (one place, with their reasons).
// Events and bytes queued for one subscriber before it counts as too slow and is dropped: a
// subscriber that cannot keep up re-reads from storage (catch-up) instead of holding memory.
inline constexpr size_t kSubscriberQueueEventsMax = 10'000;
inline constexpr size_t kSubscriberQueueBytesMax = 64u * 1024u * 1024u;
// Items one subscriber gets per turn of the delivery thread, so one busy subscriber cannot
// starve the others.
inline constexpr size_t kDeliveryBatchMax = 64;

// One committed event as the hub hands it over: the same object for every subscriber that sees
// it in the same form. `encoded` is a slot for the bytes the first subscriber encodes, for the
// others to share; only the delivery thread touches it.
struct SharedEvent {
  std::shared_ptr<const ResolvedEvent> event;
  mutable std::shared_ptr<const std::string> encoded;
};

struct SubscriptionCallbacks {
  // last_event_number is nullopt for $all, -1 for a stream that does not exist.
  std::function<void(int64_t last_commit_position, std::optional<int64_t> last_event_number)>
      confirmed;
  std::function<void(const ResolvedEvent&)> event_appeared;
  // Preferred over event_appeared when set: the event with its shared encoding slot.
  std::function<void(const SharedEvent&)> shared_event_appeared;
  std::function<void(DropReason)> dropped;
};

class SubscriptionHub {
 public:
  // What `who` sees of a record that needs resolving (a link, resolved only where `who` may read
  // the target), or nullopt when the record is seen as it is. Runs on the delivery thread.
  using Resolve = std::function<std::optional<ResolvedEvent>(
      const EventRecord&, const Principal& who, bool resolve_links)>;

  explicit SubscriptionHub(Resolve resolve);
  ~SubscriptionHub();
  SubscriptionHub(const SubscriptionHub&) = delete;
  SubscriptionHub& operator=(const SubscriptionHub&) = delete;

  // Registers a confirmed subscription to `stream` ("" = $all); `confirmed` runs first.
  void add(uint64_t id, Principal who, std::string stream, bool resolve_links,
           SubscriptionCallbacks callbacks, int64_t commit_position,
           std::optional<int64_t> last_event_number);
  // Ends a subscription; `dropped(reason)` runs after what was queued before it.
  void remove(uint64_t id, DropReason reason);
  // Ends a subscription silently: nothing more is delivered (its connection went away).
  void forget(uint64_t id);
  // Queues a committed record for every subscriber of its stream and of $all.
  void publish(const std::shared_ptr<const EventRecord>& record);
  // Forgets every subscription (shutdown).
  void forget_all();
  size_t size() const { return subscribers_.size(); }
  // Stops the delivery thread after it has delivered what is queued. Idempotent.
  void stop();

 private:
  struct Confirm {
    int64_t commit_position = 0;
    std::optional<int64_t> last_event_number;
  };
  struct Drop {
    DropReason reason = DropReason::Unsubscribed;
  };
  // A published record and the form every subscriber that needs no resolution shares (made by
  // the first such delivery; delivery thread only).
  struct Publication {
    std::shared_ptr<const EventRecord> record;
    std::shared_ptr<const SharedEvent> as_is;
  };
  using Item = std::variant<Confirm, std::shared_ptr<Publication>, Drop>;
  struct Subscriber {
    Principal who;
    std::string stream;
    bool resolve_links = false;
    SubscriptionCallbacks callbacks;
    std::mutex mutex;  // guards the fields below (core thread pushes, delivery thread pops)
    std::deque<Item> queue;
    size_t queued_bytes = 0;
    bool scheduled = false;  // a drain is posted to the delivery thread
    bool silenced = false;   // forgotten: deliver nothing more
  };

  void push(const std::shared_ptr<Subscriber>& s, Item item, size_t bytes);
  void drain(const std::shared_ptr<Subscriber>& s);
  void deliver(Subscriber& s, Item& item);
  void deliver_event(Subscriber& s, Publication& publication);
  void unlink(uint64_t id, const std::string& stream);

  Resolve resolve_;
  std::unordered_map<uint64_t, std::shared_ptr<Subscriber>> subscribers_;
  std::unordered_map<std::string, std::set<uint64_t>> by_stream_;
  boost::asio::io_context delivery_io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread delivery_thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace chorus
