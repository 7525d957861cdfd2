// SubscriptionHub: per-subscriber queues filled on the core thread and drained on the delivery
// thread. A subscriber's items keep their order (confirm, events, drop); different subscribers
// are served in turns of at most kDeliveryBatchMax items.
#include "worker/subscriptions/hub.hpp"

#include "common/thread_name.hpp"

#include <boost/asio/post.hpp>

#include <pthread.h>

namespace chorus {

namespace asio = boost::asio;

SubscriptionHub::SubscriptionHub(Resolve resolve)
    : resolve_(std::move(resolve)), work_(asio::make_work_guard(delivery_io_)) {
  delivery_thread_ = std::thread([this] {
    set_thread_name("subscriptions");
    delivery_io_.run();
  });
}

SubscriptionHub::~SubscriptionHub() { stop(); }

void SubscriptionHub::stop() {
  if (stopped_.exchange(true)) return;
  work_.reset();
  if (delivery_thread_.joinable()) delivery_thread_.join();
}

void SubscriptionHub::add(uint64_t id, Principal who, std::string stream, bool resolve_links,
                          SubscriptionCallbacks callbacks, int64_t commit_position,
                          std::optional<int64_t> last_event_number) {
  auto s = std::make_shared<Subscriber>();
  s->who = std::move(who);
  s->stream = std::move(stream);
  s->resolve_links = resolve_links;
  s->callbacks = std::move(callbacks);
  by_stream_[s->stream].insert(id);
  subscribers_.emplace(id, s);
  push(s, Confirm{commit_position, last_event_number}, 0);
}

void SubscriptionHub::unlink(uint64_t id, const std::string& stream) {
  auto found = by_stream_.find(stream);
  if (found == by_stream_.end()) return;
  found->second.erase(id);
  if (found->second.empty()) by_stream_.erase(found);
}

void SubscriptionHub::remove(uint64_t id, DropReason reason) {
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  auto s = std::move(it->second);
  subscribers_.erase(it);
  unlink(id, s->stream);
  push(s, Drop{reason}, 0);
}

void SubscriptionHub::forget(uint64_t id) {
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  auto s = std::move(it->second);
  subscribers_.erase(it);
  unlink(id, s->stream);
  std::lock_guard lock(s->mutex);
  s->silenced = true;
  s->queue.clear();
  s->queued_bytes = 0;
}

void SubscriptionHub::forget_all() {
  std::vector<uint64_t> ids;
  ids.reserve(subscribers_.size());
  for (const auto& [id, s] : subscribers_) ids.push_back(id);
  for (auto id : ids) forget(id);
}

void SubscriptionHub::publish(const std::shared_ptr<const EventRecord>& record) {
  if (subscribers_.empty()) return;
  const size_t bytes = record->data.size() + record->metadata.size();
  // One publication for all subscribers: they share the record and its encoding. Made at the
  // first subscriber that takes the record: most events have none (no allocation then).
  std::shared_ptr<Publication> publication;
  std::vector<uint64_t> too_slow;
  static const std::string kAllStreams;  // "" keys the subscribers of $all
  for (const std::string* key : {&record->stream, &kAllStreams}) {
    auto found = by_stream_.find(*key);
    if (found == by_stream_.end()) continue;
    for (auto id : found->second) {
      const auto& s = subscribers_.at(id);
      std::unique_lock lock(s->mutex);
      if (s->queue.size() >= kSubscriberQueueEventsMax ||
          s->queued_bytes + bytes > kSubscriberQueueBytesMax) {
        too_slow.push_back(id);
        continue;
      }
      lock.unlock();
      if (!publication) publication = std::make_shared<Publication>(Publication{record, nullptr});
      push(s, publication, bytes);
    }
  }
  for (auto id : too_slow) remove(id, DropReason::SlowConsumer);
}

void SubscriptionHub::push(const std::shared_ptr<Subscriber>& s, Item item, size_t bytes) {
  {
    std::lock_guard lock(s->mutex);
    if (s->silenced) return;
    s->queue.push_back(std::move(item));
    s->queued_bytes += bytes;
    if (s->scheduled) return;
    s->scheduled = true;
  }
  asio::post(delivery_io_, [this, s] { drain(s); });
}

void SubscriptionHub::drain(const std::shared_ptr<Subscriber>& s) {
  std::deque<Item> batch;
  {
    std::lock_guard lock(s->mutex);
    while (!s->queue.empty() && batch.size() < kDeliveryBatchMax) {
      batch.push_back(std::move(s->queue.front()));
      s->queue.pop_front();
    }
  }
  for (auto& item : batch) {
    {
      std::lock_guard lock(s->mutex);
      if (s->silenced) break;
    }
    deliver(*s, item);
  }
  std::lock_guard lock(s->mutex);
  if (s->queue.empty() || s->silenced) {
    s->scheduled = false;
    return;
  }
  asio::post(delivery_io_, [this, s] { drain(s); });
}

void SubscriptionHub::deliver(Subscriber& s, Item& item) {
  if (auto* c = std::get_if<Confirm>(&item)) {
    if (s.callbacks.confirmed) s.callbacks.confirmed(c->commit_position, c->last_event_number);
  } else if (auto* d = std::get_if<Drop>(&item)) {
    if (s.callbacks.dropped) s.callbacks.dropped(d->reason);
    std::lock_guard lock(s.mutex);
    s.silenced = true;  // a drop is the last thing a subscriber hears
  } else {
    deliver_event(s, *std::get<std::shared_ptr<Publication>>(item));
  }
}

void SubscriptionHub::deliver_event(Subscriber& s, Publication& publication) {
  const EventRecord& record = *publication.record;
  {
    std::lock_guard lock(s.mutex);
    s.queued_bytes -= std::min(s.queued_bytes, record.data.size() + record.metadata.size());
  }
  if (!s.callbacks.shared_event_appeared && !s.callbacks.event_appeared) return;
  std::shared_ptr<const SharedEvent> event;
  if (auto own = resolve_(record, s.who, s.resolve_links)) {
    // Resolved with this subscriber's rights: its own copy (a link is small; its target is read).
    event = std::make_shared<const SharedEvent>(
        SharedEvent{std::make_shared<const ResolvedEvent>(std::move(*own)), nullptr});
  } else {
    if (!publication.as_is) {
      publication.as_is = std::make_shared<const SharedEvent>(SharedEvent{
          std::make_shared<const ResolvedEvent>(ResolvedEvent{record, std::nullopt}), nullptr});
    }
    event = publication.as_is;
  }
  if (s.callbacks.shared_event_appeared) {
    s.callbacks.shared_event_appeared(*event);
  } else {
    s.callbacks.event_appeared(*event->event);
  }
}

}  // namespace chorus
