// Proves that the subscription hub shares each committed event among its subscribers (issue 10,
// hole 7): one event delivered to many subscribers is one object, encoded once and the bytes
// shared, instead of a copy and an encoding per subscriber; a link that a subscriber resolves
// is resolved with that subscriber's own rights; a subscriber that falls behind is dropped.
#include "worker/subscriptions/hub.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

namespace chorus {
namespace {

using namespace std::chrono_literals;

EventRecord record_of(const std::string& stream, const std::string& type, std::string data) {
  EventRecord r;
  r.stream = stream;
  r.event_type = type;
  r.data = std::move(data);
  return r;
}

// Counts deliveries and waits for them with a deadline.
class Deliveries {
 public:
  void add(const void* event, const void* encoded) {
    std::lock_guard lock(mutex_);
    events_.insert(event);
    encodings_.insert(encoded);
    count_ += 1;
    changed_.notify_all();
  }
  bool wait_for(size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return count_ >= n; });
  }
  size_t distinct_events() {
    std::lock_guard lock(mutex_);
    return events_.size();
  }
  size_t distinct_encodings() {
    std::lock_guard lock(mutex_);
    return encodings_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<const void*> events_, encodings_;
  size_t count_ = 0;
};

// A resolver as the engine's: only a link read with resolve_links needs this subscriber's view.
class HubTest : public ::testing::Test {
 protected:
  HubTest()
      : hub_([this](const EventRecord& record, const Principal& who,
                    bool resolve_links) -> std::optional<ResolvedEvent> {
          if (!resolve_links || record.event_type != "$>") return std::nullopt;
          resolutions_ += 1;
          ResolvedEvent e;
          if (who.is_admin()) e.event = record_of("target", "Secret", "pin");
          e.link = record;
          return e;
        }) {}

  // A subscriber that encodes the event the way the TCP session does: only if no one did.
  SubscriptionCallbacks encoding_subscriber() {
    SubscriptionCallbacks cb;
    cb.shared_event_appeared = [this](const SharedEvent& e) {
      if (!e.encoded) {
        encodings_ += 1;
        e.encoded = std::make_shared<const std::string>("encoded:" + e.event->original().data);
      }
      deliveries_.add(e.event.get(), e.encoded.get());
    };
    return cb;
  }

  std::atomic<int> resolutions_{0};
  std::atomic<int> encodings_{0};
  Deliveries deliveries_;
  SubscriptionHub hub_;
};

TEST_F(HubTest, Hole7OneEventForManySubscribersIsOneObjectEncodedOnce) {
  constexpr int kSubscribers = 200;
  for (int i = 0; i < kSubscribers; ++i) {
    hub_.add(static_cast<uint64_t>(i + 1), Principal::anon(), i % 2 == 0 ? "s" : "", i % 3 == 0,
             encoding_subscriber(), 0, -1);
  }
  // 16 MiB: copied and encoded once per subscriber this was 200 copies (3.2 GB) and more.
  const std::string big(16u * 1024u * 1024u, 'x');
  hub_.publish(std::make_shared<const EventRecord>(record_of("s", "Big", big)));
  ASSERT_TRUE(deliveries_.wait_for(kSubscribers));
  EXPECT_EQ(deliveries_.distinct_events(), 1u);
  EXPECT_EQ(deliveries_.distinct_encodings(), 1u);
  EXPECT_EQ(encodings_.load(), 1);
  EXPECT_EQ(resolutions_.load(), 0);
}

TEST_F(HubTest, Hole7ALinkIsResolvedWithEachSubscribersRights) {
  std::mutex mutex;
  std::vector<std::optional<EventRecord>> seen(2);
  std::atomic<int> got{0};
  for (int i = 0; i < 2; ++i) {
    SubscriptionCallbacks cb;
    cb.shared_event_appeared = [&, i](const SharedEvent& e) {
      std::lock_guard lock(mutex);
      seen[static_cast<size_t>(i)] = e.event->event;
      got += 1;
    };
    hub_.add(static_cast<uint64_t>(i + 1), i == 0 ? Principal{"admin", {"$admins"}} : Principal{},
             "links", true, std::move(cb), 0, -1);
  }
  hub_.publish(std::make_shared<const EventRecord>(record_of("links", "$>", "0@target")));
  for (int i = 0; i < 1000 && got < 2; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(got.load(), 2);
  EXPECT_EQ(resolutions_.load(), 2);
  std::lock_guard lock(mutex);
  ASSERT_TRUE(seen[0]);
  EXPECT_EQ(seen[0]->data, "pin");
  EXPECT_FALSE(seen[1]);  // anonymous may not read the target: it resolves as missing
}

TEST_F(HubTest, Hole7PlainCallbackGetsTheSharedEvent) {
  std::atomic<const void*> plain{nullptr};
  SubscriptionCallbacks cb;
  cb.event_appeared = [&](const ResolvedEvent& e) { plain = &e; };
  hub_.add(1, Principal::anon(), "s", false, std::move(cb), 0, -1);
  hub_.add(2, Principal::anon(), "s", false, encoding_subscriber(), 0, -1);
  hub_.publish(std::make_shared<const EventRecord>(record_of("s", "E", "{}")));
  ASSERT_TRUE(deliveries_.wait_for(1));
  for (int i = 0; i < 1000 && plain.load() == nullptr; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_NE(plain.load(), nullptr);
  EXPECT_EQ(deliveries_.distinct_events(), 1u);
}

}  // namespace
}  // namespace chorus
