// PersistentSubscriptions: see persistent_subscriptions.hpp. Design notes:
// - Live records reach a group through on_record_committed (the runtime's committed-record
//   publication); a link that must be resolved, a gap or a full live buffer makes the core read
//   instead, so resolution and ACL-free reading happen on reader threads.
// - Deliveries call the consumer's callback on the core thread with a shared event; front ends
//   post it to their own strand and serialize it there.
// - Management writes (config, checkpoints, parks) are ordinary appends through the write path:
//   they replicate and are refused once this node stops leading.
#include "worker/services/persistent_subscriptions.hpp"

#include "worker/engine/reads.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <iostream>
#include <sstream>

namespace chorus {
namespace {

const Principal kSystem{"$system", {"$admins"}};
constexpr const char* kCheckpointEventType = "SubscriptionCheckpoint";

std::string to_json(const Poco::JSON::Object::Ptr& o) {
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

PersistentSettings settings_from_json(const Poco::JSON::Object::Ptr& e) {
  PersistentSettings s;
  s.resolve_link_tos = e->optValue<bool>("ResolveLinkTos", s.resolve_link_tos);
  s.extra_statistics = e->optValue<bool>("ExtraStatistics", s.extra_statistics);
  s.message_timeout_ms = e->optValue<int32_t>("MessageTimeout", s.message_timeout_ms);
  s.start_from = e->optValue<int64_t>("StartFrom", s.start_from);
  s.live_buffer_size = e->optValue<int32_t>("LiveBufferSize", s.live_buffer_size);
  s.buffer_size = e->optValue<int32_t>("HistoryBufferSize", s.buffer_size);
  s.max_retry_count = e->optValue<int32_t>("MaxRetryCount", s.max_retry_count);
  s.read_batch_size = e->optValue<int32_t>("ReadBatchSize", s.read_batch_size);
  s.checkpoint_after_ms = e->optValue<int32_t>("CheckPointAfter", s.checkpoint_after_ms);
  s.min_checkpoint_count = e->optValue<int32_t>("MinCheckPointCount", s.min_checkpoint_count);
  s.max_checkpoint_count = e->optValue<int32_t>("MaxCheckPointCount", s.max_checkpoint_count);
  s.max_subscriber_count = e->optValue<int32_t>("MaxSubscriberCount", s.max_subscriber_count);
  s.strategy = parse_strategy(e->optValue<std::string>("NamedConsumerStrategy", "RoundRobin"))
                   .value_or(ConsumerStrategy::RoundRobin);
  return s;
}

// The stream a link record points at ("<number>@<stream>").
std::string link_target_stream(const EventRecord& link) {
  const auto at = link.data.find('@');
  return at == std::string::npos ? link.stream : link.data.substr(at + 1);
}

}  // namespace

std::string persistent_key(const std::string& stream, const std::string& group) {
  return stream + "::" + group;
}
std::string checkpoint_stream(const std::string& stream, const std::string& group) {
  return "$persistentsubscription-" + persistent_key(stream, group) + "-checkpoint";
}
std::string parked_stream(const std::string& stream, const std::string& group) {
  return "$persistentsubscription-" + persistent_key(stream, group) + "-parked";
}

PersistentSubscriptions::PersistentSubscriptions(Post post, NowMs now_ms)
    : post_(std::move(post)), now_ms_(std::move(now_ms)) {}

// ---------------------------------------------------------------- start and stop

void PersistentSubscriptions::start(LeaderContext& context) {
  context_ = &context;
  running_ = std::make_shared<std::atomic<bool>>(true);
  loaded_ = false;
  groups_.clear();
  tick_armed_ = false;  // a tick armed before stop() sees its token dead
  load_config();
}

void PersistentSubscriptions::stop() {
  if (running_) running_->store(false);
  // Consumers learn that the group is not served here any more and reconnect to the new leader.
  for (auto& [id, c] : consumers_) {
    if (c.callbacks.dropped) c.callbacks.dropped(DropReason::NotFound);
  }
  consumers_.clear();
  groups_.clear();
  loaded_ = false;
  for (auto& work : waiting_) work();  // each answers NotLeader now that running_ is false
  waiting_.clear();
}

void PersistentSubscriptions::when_ready(std::function<void()> work, std::function<void()> refuse) {
  post_([this, work = std::move(work), refuse = std::move(refuse)]() mutable {
    if (!alive(running_)) return refuse();
    if (loaded_) return work();
    if (waiting_.size() >= kPersistentWaitingMax) return refuse();
    waiting_.push_back([this, work = std::move(work), refuse = std::move(refuse)] {
      if (alive(running_) && loaded_) return work();
      refuse();
    });
  });
}

void PersistentSubscriptions::load_config() {
  auto token = running_;
  context_->read_stream(
      kPersistentConfigStream, -1, 1, false, false, [this, token](ReadStreamResult r) {
        if (!alive(token)) return;
        std::string json;
        if (r.status == ReadStreamStatus::Success && !r.events.empty() && r.events.front().event) {
          json = r.events.front().event->data;
        }
        on_config_loaded(json);
      });
}

void PersistentSubscriptions::on_config_loaded(const std::string& json) {
  if (!json.empty()) {
    try {
      Poco::JSON::Parser parser;
      auto root = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
      auto entries = root->getArray("Entries");
      for (size_t i = 0; entries && i < entries->size(); ++i) {
        auto e = entries->getObject(static_cast<unsigned>(i));
        if (!e) continue;
        const auto stream = e->optValue<std::string>("Stream", "");
        const auto group = e->optValue<std::string>("Group", "");
        if (stream.empty() || group.empty()) continue;
        Group& g = groups_[persistent_key(stream, group)];
        g.stream = stream;
        g.group = group;
        g.settings = settings_from_json(e);
      }
    } catch (const std::exception& e) {
      std::cerr << "chorus-worker: " << kPersistentConfigStream << " is not valid JSON ("
                << e.what() << "); starting without persistent subscriptions" << std::endl;
      groups_.clear();
    }
  }
  loads_pending_ = groups_.size();
  if (loads_pending_ == 0) return finish_loading();
  std::vector<std::string> keys;
  for (const auto& [key, g] : groups_) keys.push_back(key);
  for (const auto& key : keys) load_group(key);
}

void PersistentSubscriptions::load_group(const std::string& key) {
  auto token = running_;
  const Group& g = groups_.at(key);
  context_->read_stream(checkpoint_stream(g.stream, g.group), -1, 1, false, false,
                        [this, token, key](ReadStreamResult r) {
                          if (!alive(token)) return;
                          auto it = groups_.find(key);
                          if (it != groups_.end()) {
                            std::optional<int64_t> checkpoint;
                            if (r.status == ReadStreamStatus::Success && !r.events.empty() &&
                                r.events.front().event) {
                              try {
                                checkpoint = std::stoll(r.events.front().event->data);
                              } catch (const std::exception&) {
                                std::cerr << "chorus-worker: bad checkpoint in group " << key
                                          << std::endl;
                              }
                            }
                            start_group(it->second, checkpoint, true);
                          }
                          if (--loads_pending_ == 0) finish_loading();
                        });
  // The parked count and the oldest parked message, for /info.
  context_->read_stream(parked_stream(g.stream, g.group), 0, kReadCountMax, true, false,
                        [this, token, key](ReadStreamResult r) {
                          if (!alive(token)) return;
                          auto it = groups_.find(key);
                          if (it == groups_.end() || r.status != ReadStreamStatus::Success) return;
                          it->second.parked_count = static_cast<int64_t>(r.events.size());
                          if (!r.events.empty() && r.events.front().event) {
                            it->second.oldest_parked_ms = r.events.front().event->created_ms;
                          }
                        });
}

void PersistentSubscriptions::finish_loading() {
  loaded_ = true;
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& work : waiting) work();
}

void PersistentSubscriptions::start_group(Group& g, std::optional<int64_t> checkpoint,
                                          bool loaded) {
  const int64_t now = now_ms_();
  g.core = std::make_unique<PersistentCore>(g.settings, checkpoint, context_->last_number(g.stream),
                                            now);
  if (loaded) g.core->mark_resumed();
  g.window_start_ms = now;
  arm_tick();
  process(g);
}

// ---------------------------------------------------------------- the cores' actions

void PersistentSubscriptions::process(Group& g) {
  // Actions may lead to more (a delivery callback is plain; a read answers later), so loop.
  for (int round = 0; round < 4 && g.core; ++round) {
    auto actions = g.core->take_actions();
    if (actions.empty()) return;
    for (auto& action : actions) {
      if (auto* d = std::get_if<persistent::Deliver>(&action)) {
        auto c = consumers_.find(d->consumer);
        if (c != consumers_.end() && c->second.callbacks.event_appeared) {
          c->second.callbacks.event_appeared(d->message.event, d->message.retry_count);
        }
      } else if (auto* r = std::get_if<persistent::Read>(&action)) {
        do_read(g, *r);
      } else if (auto* p = std::get_if<persistent::Park>(&action)) {
        do_park(g, *p);
      } else if (auto* cp = std::get_if<persistent::Checkpoint>(&action)) {
        do_checkpoint(g, cp->number);
      } else if (auto* drop = std::get_if<persistent::Drop>(&action)) {
        auto c = consumers_.find(drop->consumer);
        if (c == consumers_.end()) continue;
        auto callbacks = std::move(c->second.callbacks);
        consumers_.erase(c);
        if (callbacks.dropped) callbacks.dropped(drop->reason);
      }
    }
  }
}

std::optional<PersistentMessage> PersistentSubscriptions::to_message(const ResolvedEvent& e) const {
  if (!e.event && !e.link) return std::nullopt;
  const EventRecord& original = e.original();
  PersistentMessage m;
  m.number = original.number;
  m.id = original.event_id;
  if (e.link && e.event) {
    m.source_stream = e.event->stream;
  } else if (original.event_type == kLinkEventType) {
    m.source_stream = link_target_stream(original);
  } else {
    m.source_stream = original.stream;
  }
  m.event = std::make_shared<const ResolvedEvent>(e);
  return m;
}

void PersistentSubscriptions::do_read(Group& g, const persistent::Read& read) {
  auto token = running_;
  const std::string key = persistent_key(g.stream, g.group);
  context_->read_stream(
      g.stream, read.from, read.count, true, g.settings.resolve_link_tos,
      [this, token, key, read](ReadStreamResult r) {
        if (!alive(token)) return;
        auto it = groups_.find(key);
        if (it == groups_.end() || !it->second.core) return;
        Group& group = it->second;
        if (r.status == ReadStreamStatus::Error || r.status == ReadStreamStatus::AccessDenied) {
          group.core->on_read_failed();  // asked again at the next tick
          return;
        }
        std::vector<PersistentMessage> messages;
        for (const auto& e : r.events) {
          if (auto m = to_message(e)) messages.push_back(std::move(*m));
        }
        group.taken_total += static_cast<int64_t>(messages.size());
        group.window_taken += static_cast<int64_t>(messages.size());
        const bool found = r.status == ReadStreamStatus::Success;
        const int64_t next = found ? std::max(r.next_event_number, read.from) : read.from;
        group.core->on_read(read.from, std::move(messages), next, !found || r.is_end_of_stream,
                            now_ms_());
        process(group);
      });
}

void PersistentSubscriptions::do_park(Group& g, const persistent::Park& park) {
  const EventRecord& original = park.message.event->original();
  Poco::JSON::Object::Ptr meta = new Poco::JSON::Object;
  meta->set("Added", now_ms_());
  meta->set("Reason", park.reason);
  meta->set("SubscriptionEventNumber", park.message.number);
  NewEvent link{random_guid(),
                kLinkEventType,
                false,
                true,
                std::to_string(original.number) + "@" + original.stream,
                to_json(meta)};
  auto token = running_;
  const std::string key = persistent_key(g.stream, g.group);
  const PersistentMessage message = park.message;
  context_->append(
      kSystem, parked_stream(g.stream, g.group), kExpectedAny, {link},
      [this, token, key, message](const WriteResult& w) {
        if (!alive(token)) return;
        auto it = groups_.find(key);
        if (it == groups_.end() || !it->second.core) return;
        if (w.not_handled != NotHandledReason::None || w.result != OperationResult::Success) {
          std::cerr << "chorus-worker: parking a message of " << key << " failed: " << w.message
                    << std::endl;
          return;
        }
        Group& group = it->second;
        group.parked_count += 1;
        if (group.oldest_parked_ms == 0) group.oldest_parked_ms = now_ms_();
        group.core->on_parked(message);
        process(group);
      });
}

void PersistentSubscriptions::do_checkpoint(Group& g, int64_t number) {
  NewEvent e{random_guid(), kCheckpointEventType, true, false, std::to_string(number), ""};
  context_->append(kSystem, checkpoint_stream(g.stream, g.group), kExpectedAny, {e},
                   [](const WriteResult&) {});
}

void PersistentSubscriptions::on_record_committed(const EventRecord& record) {
  if (!loaded_ || record.number == kDeletedStreamNumber) return;
  for (auto& [key, g] : groups_) {
    if (g.stream != record.stream || !g.core) continue;
    std::optional<PersistentMessage> message;
    if (!(g.settings.resolve_link_tos && record.event_type == kLinkEventType)) {
      ResolvedEvent e;
      e.event = record;
      message = to_message(e);
      g.taken_total += 1;
      g.window_taken += 1;
    }
    g.core->on_live(record.number, std::move(message), now_ms_());
    process(g);
  }
}

void PersistentSubscriptions::tick() {
  const int64_t now = now_ms_();
  for (auto& [key, g] : groups_) {
    if (!g.core) continue;
    g.core->tick(now);
    measure(g, now);
    process(g);
  }
  arm_tick();
}

void PersistentSubscriptions::arm_tick() {
  if (tick_armed_ || groups_.empty()) return;
  tick_armed_ = true;
  auto token = running_;
  context_->after(kPersistentTickMs, [this, token] {
    if (!alive(token)) return;
    tick_armed_ = false;
    tick();
  });
}

void PersistentSubscriptions::measure(Group& g, int64_t now) {
  const int64_t window_ms = now - g.window_start_ms;
  if (window_ms < 1000) return;
  const int64_t processed = g.core->processed_total();
  g.rate_in = static_cast<double>(g.window_taken) * 1000.0 / static_cast<double>(window_ms);
  g.rate_out =
      static_cast<double>(processed - g.window_processed) * 1000.0 / static_cast<double>(window_ms);
  g.window_processed = processed;
  g.window_taken = 0;
  g.window_start_ms = now;
}

}  // namespace chorus
