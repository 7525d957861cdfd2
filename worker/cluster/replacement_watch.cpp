// ReplacementWatch; see replacement_watch.hpp.
#include "worker/cluster/replacement_watch.hpp"

#include <boost/asio/post.hpp>

#include <chrono>

namespace chorus::cluster {
namespace {

const Principal kSystem{"$system", {"$admins"}};

}  // namespace

ReplacementWatch::ReplacementWatch(boost::asio::io_context& io, Engine& engine, VoterBook& voters,
                                   UseVoters use)
    : io_(io), engine_(engine), voters_(voters), use_(std::move(use)), timer_(io) {}

void ReplacementWatch::start() {
  boost::asio::post(io_, [self = shared_from_this()] { self->subscribe(); });
}

void ReplacementWatch::stop() {
  stopped_ = true;
  timer_.cancel();
  if (subscription_ != 0) engine_.forget_subscription(subscription_);
  subscription_ = 0;
}

// Subscribes first and reads afterwards, so that nothing committed in between is missed.
void ReplacementWatch::subscribe() {
  if (stopped_) return;
  std::weak_ptr<ReplacementWatch> weak = weak_from_this();
  SubscriptionCallbacks callbacks;
  callbacks.confirmed = [weak](int64_t, std::optional<int64_t>) {
    if (auto self = weak.lock()) {
      boost::asio::post(self->io_, [self] { self->read_from(0); });
    }
  };
  callbacks.event_appeared = [weak](const ResolvedEvent& event) {
    if (auto self = weak.lock()) {
      boost::asio::post(self->io_, [self, record = event.original()] { self->apply(record); });
    }
  };
  callbacks.dropped = [weak](DropReason) {
    if (auto self = weak.lock()) {
      boost::asio::post(self->io_, [self] {
        self->subscription_ = 0;
        self->retry();
      });
    }
  };
  subscription_ = engine_.subscribe(kSystem, kVotersStream, false, std::move(callbacks));
}

void ReplacementWatch::read_from(int64_t event_number) {
  if (stopped_) return;
  std::weak_ptr<ReplacementWatch> weak = weak_from_this();
  engine_.read_stream(kSystem, kVotersStream, event_number, kReplacementReadCount, true, false,
                      [weak](ReadStreamResult result) {
                        auto self = weak.lock();
                        if (!self) return;
                        boost::asio::post(self->io_, [self, result = std::move(result)] {
                          if (result.status == ReadStreamStatus::NoStream)
                            return;  // nothing replaced yet
                          if (result.status != ReadStreamStatus::Success) return self->retry();
                          for (const ResolvedEvent& event : result.events)
                            self->apply(event.original());
                          if (!result.is_end_of_stream) self->read_from(result.next_event_number);
                        });
                      });
}

void ReplacementWatch::apply(const EventRecord& record) {
  if (stopped_ || record.event_type != kMemberReplacedEventType) return;
  std::string error;
  const std::optional<Replacement> replacement = replacement_from_json(record.data, &error);
  if (!replacement) return;  // not one this node can read: the others' pins decide
  if (auto changed = voters_.apply_replacement(*replacement)) use_(*changed);
}

// Resubscribes (and reads again) a little later: the node may be catching up or changing role.
void ReplacementWatch::retry() {
  if (stopped_) return;
  if (subscription_ != 0) engine_.forget_subscription(subscription_);
  subscription_ = 0;
  timer_.expires_after(std::chrono::milliseconds(kReplacementRetryMs));
  timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!ec && self) self->subscribe();
  });
}

}  // namespace chorus::cluster
