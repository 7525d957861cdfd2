// PersistentSubscriptions: the PersistentApi the front ends call (create/update/delete, connect,
// acks, HTTP reads, replay of parked messages, list and info). Each call posts to the core
// thread, waits there until the groups are loaded, and answers NotLeader when this node does
// not lead. Authorization: $admins or $ops manage groups and replay parked messages; connecting,
// reading and acknowledging need read access to the stream (EventStore's rules).
#include "worker/services/persistent_subscriptions.hpp"

#include "worker/engine/reads.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <algorithm>
#include <sstream>

namespace chorus {
namespace {

const Principal kSystem{"$system", {"$admins"}};

PersistentResult not_leader() {
  PersistentResult r;
  r.not_handled = NotHandledReason::NotLeader;
  return r;
}

PersistentResult result(PersistentStatus status, std::string reason, bool not_found = false) {
  PersistentResult r;
  r.status = status;
  r.reason = std::move(reason);
  r.not_found = not_found;
  return r;
}

PersistentResult does_not_exist(const std::string& stream, const std::string& group) {
  return result(PersistentStatus::DoesNotExist,
                "Subscription group " + group + " on stream " + stream + " does not exist.", true);
}

std::optional<std::string> bad_target(const std::string& stream, const std::string& group) {
  if (stream.empty() || stream == "$all") {
    return std::string("persistent subscriptions to $all are not supported; name a stream");
  }
  if (group.empty()) return std::string("the group name may not be empty");
  return std::nullopt;
}

}  // namespace

bool PersistentSubscriptions::allowed_to_manage(const Principal& who) const {
  return who.in_role("$admins") || who.in_role("$ops");
}

// ---------------------------------------------------------------- management

void PersistentSubscriptions::create(Principal who, std::string stream, std::string group,
                                     PersistentSettings settings,
                                     std::function<void(PersistentResult)> done) {
  when_ready(
      [this, who, stream, group, settings, done] {
        if (!allowed_to_manage(who))
          return done(result(PersistentStatus::AccessDenied, "Access denied."));
        if (auto bad = bad_target(stream, group)) return done(result(PersistentStatus::Fail, *bad));
        if (auto invalid = validate(settings)) {
          return done(result(PersistentStatus::Fail, *invalid));
        }
        const std::string key = persistent_key(stream, group);
        if (groups_.count(key) != 0) {
          return done(result(PersistentStatus::Exists,
                             "Group '" + group + "' already exists on stream '" + stream + "'."));
        }
        if (groups_.size() >= kPersistentGroupsMax) {
          return done(result(PersistentStatus::Fail, "this node already has " +
                                                         std::to_string(kPersistentGroupsMax) +
                                                         " persistent subscription groups"));
        }
        Group& g = groups_[key];
        g.stream = stream;
        g.group = group;
        g.settings = settings;
        ensure_metadata(checkpoint_stream(stream, group),
                        R"({"$maxCount":2,"$acl":{"$r":"$admins","$w":"$admins","$d":"$admins",)"
                        R"("$mw":"$admins","$mr":"$all"}})");
        start_group(g, std::nullopt);
        write_config([this, key, done](bool ok, std::string error) {
          if (ok) return done(result(PersistentStatus::Success, ""));
          if (alive(running_)) drop_group(key, DropReason::PersistentSubscriptionDeleted);
          done(result(PersistentStatus::Fail, "the configuration was not written: " + error));
        });
      },
      [done] { done(not_leader()); });
}

void PersistentSubscriptions::update(Principal who, std::string stream, std::string group,
                                     PersistentSettings settings,
                                     std::function<void(PersistentResult)> done) {
  when_ready(
      [this, who, stream, group, settings, done] {
        if (!allowed_to_manage(who))
          return done(result(PersistentStatus::AccessDenied, "Access denied."));
        if (auto bad = bad_target(stream, group)) return done(result(PersistentStatus::Fail, *bad));
        if (auto invalid = validate(settings)) {
          return done(result(PersistentStatus::Fail, *invalid));
        }
        const std::string key = persistent_key(stream, group);
        auto it = groups_.find(key);
        if (it == groups_.end()) return done(does_not_exist(stream, group));
        // The group restarts with the new settings from where it is checkpointed; its consumers
        // are dropped and reconnect (EventStore's behaviour).
        const int64_t checkpoint = it->second.core->last_checkpoint();
        for (auto c = consumers_.begin(); c != consumers_.end();) {
          if (c->second.key != key) {
            ++c;
            continue;
          }
          auto callbacks = std::move(c->second.callbacks);
          c = consumers_.erase(c);
          if (callbacks.dropped) callbacks.dropped(DropReason::PersistentSubscriptionDeleted);
        }
        it->second.settings = settings;
        start_group(it->second, checkpoint);
        write_config([done](bool ok, std::string error) {
          if (ok) return done(result(PersistentStatus::Success, ""));
          done(result(PersistentStatus::Fail, "the configuration was not written: " + error));
        });
      },
      [done] { done(not_leader()); });
}

void PersistentSubscriptions::remove(Principal who, std::string stream, std::string group,
                                     std::function<void(PersistentResult)> done) {
  when_ready(
      [this, who, stream, group, done] {
        if (!allowed_to_manage(who))
          return done(result(PersistentStatus::AccessDenied, "Access denied."));
        const std::string key = persistent_key(stream, group);
        if (groups_.count(key) == 0) return done(does_not_exist(stream, group));
        drop_group(key, DropReason::PersistentSubscriptionDeleted);
        // A group created again later under this name starts afresh.
        for (const auto& s : {checkpoint_stream(stream, group), parked_stream(stream, group)}) {
          context_->delete_stream(kSystem, s, kExpectedAny, false, [](const DeleteResult&) {});
        }
        write_config([done](bool ok, std::string error) {
          if (ok) return done(result(PersistentStatus::Success, ""));
          done(result(PersistentStatus::Fail, "the configuration was not written: " + error));
        });
      },
      [done] { done(not_leader()); });
}

void PersistentSubscriptions::drop_group(const std::string& key, DropReason reason) {
  for (auto c = consumers_.begin(); c != consumers_.end();) {
    if (c->second.key != key) {
      ++c;
      continue;
    }
    auto callbacks = std::move(c->second.callbacks);
    c = consumers_.erase(c);
    if (callbacks.dropped) callbacks.dropped(reason);
  }
  groups_.erase(key);
}

void PersistentSubscriptions::ensure_metadata(const std::string& stream, const std::string& json) {
  const std::string meta = "$$" + stream;
  if (context_->last_number(meta) >= 0) return;
  NewEvent e{random_guid(), kMetadataEventType, true, false, json, ""};
  context_->append(kSystem, meta, kExpectedAny, {e}, [](const WriteResult&) {});
}

void PersistentSubscriptions::write_config(std::function<void(bool ok, std::string error)> done) {
  ensure_metadata(kPersistentConfigStream, R"({"$maxCount":2})");
  Poco::JSON::Object::Ptr root = new Poco::JSON::Object;
  root->set("Version", "2");
  root->set("Updated", now_ms_());
  root->set("UpdatedBy", "$system");
  Poco::JSON::Array::Ptr entries = new Poco::JSON::Array;
  for (const auto& [key, g] : groups_) {
    Poco::JSON::Object::Ptr e = new Poco::JSON::Object;
    e->set("Stream", g.stream);
    e->set("Group", g.group);
    const PersistentSettings& s = g.settings;
    e->set("ResolveLinkTos", s.resolve_link_tos);
    e->set("ExtraStatistics", s.extra_statistics);
    e->set("MessageTimeout", s.message_timeout_ms);
    e->set("StartFrom", s.start_from);
    e->set("LiveBufferSize", s.live_buffer_size);
    e->set("HistoryBufferSize", s.buffer_size);
    e->set("MaxRetryCount", s.max_retry_count);
    e->set("ReadBatchSize", s.read_batch_size);
    e->set("PreferRoundRobin", s.strategy == ConsumerStrategy::RoundRobin);
    e->set("CheckPointAfter", s.checkpoint_after_ms);
    e->set("MinCheckPointCount", s.min_checkpoint_count);
    e->set("MaxCheckPointCount", s.max_checkpoint_count);
    e->set("MaxSubscriberCount", s.max_subscriber_count);
    e->set("NamedConsumerStrategy", strategy_name(s.strategy));
    entries->add(e);
  }
  root->set("Entries", entries);
  std::ostringstream json;
  root->stringify(json);
  NewEvent e{random_guid(), "PersistentConfig1", true, false, json.str(), ""};
  context_->append(kSystem, kPersistentConfigStream, kExpectedAny, {e},
                   [done = std::move(done)](const WriteResult& w) {
                     const bool ok = w.not_handled == NotHandledReason::None &&
                                     w.result == OperationResult::Success;
                     done(ok, ok ? "" : (w.message.empty() ? "not the leader" : w.message));
                   });
}

// ---------------------------------------------------------------- consumers

uint64_t PersistentSubscriptions::connect(Principal who, std::string stream, std::string group,
                                          int32_t allowed_in_flight, std::string from,
                                          PersistentCallbacks callbacks) {
  const uint64_t id = next_consumer_++;
  auto shared = std::make_shared<PersistentCallbacks>(std::move(callbacks));
  when_ready(
      [this, id, who, stream, group, allowed_in_flight, from, shared] {
        auto& cb = *shared;
        if (!context_->can_access(stream, StreamAccess::Read, who)) {
          return cb.dropped(DropReason::AccessDenied);
        }
        const std::string key = persistent_key(stream, group);
        auto it = groups_.find(key);
        if (it == groups_.end() || !it->second.core) return cb.dropped(DropReason::NotFound);
        if (consumers_.size() >= kPersistentConsumersTotalMax) {
          return cb.dropped(DropReason::SubscriberMaxCountReached);
        }
        Group& g = it->second;
        consumers_[id] = Consumer{key, who, from, std::move(cb)};
        const int64_t now = now_ms_();
        if (g.core->connect(id, allowed_in_flight, now)) {
          const auto& confirmed = consumers_[id].callbacks.confirmed;
          if (confirmed) confirmed(key, context_->commit_position(), g.core->last_known_number());
        }
        process(g);
      },
      [shared] {
        if (shared->not_handled) shared->not_handled(NotHandledReason::NotLeader);
      });
  return id;
}

void PersistentSubscriptions::ack(uint64_t consumer, std::vector<Guid> ids) {
  post_([this, consumer, ids = std::move(ids)] {
    auto c = consumers_.find(consumer);
    if (!alive(running_) || c == consumers_.end()) return;
    auto g = groups_.find(c->second.key);
    if (g == groups_.end() || !g->second.core) return;
    g->second.core->ack(ids, now_ms_());
    process(g->second);
  });
}

void PersistentSubscriptions::nak(uint64_t consumer, std::vector<Guid> ids, NakAction action,
                                  std::string reason) {
  post_([this, consumer, ids = std::move(ids), action, reason = std::move(reason)] {
    auto c = consumers_.find(consumer);
    if (!alive(running_) || c == consumers_.end()) return;
    auto g = groups_.find(c->second.key);
    if (g == groups_.end() || !g->second.core) return;
    g->second.core->nak(consumer, ids, action, reason.empty() ? "nacked" : reason, now_ms_());
    process(g->second);
  });
}

void PersistentSubscriptions::disconnect(uint64_t consumer, bool notify) {
  post_([this, consumer, notify] {
    auto c = consumers_.find(consumer);
    if (c == consumers_.end()) return;
    auto callbacks = std::move(c->second.callbacks);
    const std::string key = c->second.key;
    consumers_.erase(c);
    if (notify && callbacks.dropped) callbacks.dropped(DropReason::Unsubscribed);
    auto g = groups_.find(key);
    if (!alive(running_) || g == groups_.end() || !g->second.core) return;
    g->second.core->disconnect(consumer, now_ms_());
    process(g->second);
  });
}

// ---------------------------------------------------------------- HTTP reads and acks

void PersistentSubscriptions::pull(Principal who, std::string stream, std::string group,
                                   int32_t count, std::function<void(PersistentPullResult)> done) {
  when_ready(
      [this, who, stream, group, count, done] {
        PersistentPullResult r;
        auto it = groups_.find(persistent_key(stream, group));
        if (it == groups_.end() || !it->second.core) {
          r.status = PersistentStatus::DoesNotExist;
          return done(std::move(r));
        }
        if (!context_->can_access(stream, StreamAccess::Read, who)) {
          r.status = PersistentStatus::AccessDenied;
          return done(std::move(r));
        }
        const int32_t n = std::clamp(count, 1, kPersistentPullMax);
        for (auto& m : it->second.core->pull(n, now_ms_())) {
          r.items.push_back({m.event, m.retry_count});
        }
        process(it->second);
        done(std::move(r));
      },
      [done] {
        PersistentPullResult r;
        r.not_handled = NotHandledReason::NotLeader;
        done(std::move(r));
      });
}

void PersistentSubscriptions::ack_ids(Principal who, std::string stream, std::string group,
                                      std::vector<Guid> ids, std::optional<NakAction> nak,
                                      std::function<void(PersistentResult)> done) {
  when_ready(
      [this, who, stream, group, ids, nak, done] {
        auto it = groups_.find(persistent_key(stream, group));
        if (it == groups_.end() || !it->second.core) return done(does_not_exist(stream, group));
        if (!context_->can_access(stream, StreamAccess::Read, who)) {
          return done(result(PersistentStatus::AccessDenied, "Access denied."));
        }
        if (nak) {
          it->second.core->nak(0, ids, *nak, "nacked over HTTP", now_ms_());
        } else {
          it->second.core->ack(ids, now_ms_());
        }
        process(it->second);
        done(result(PersistentStatus::Success, ""));
      },
      [done] { done(not_leader()); });
}

void PersistentSubscriptions::replay_parked(Principal who, std::string stream, std::string group,
                                            std::function<void(PersistentResult)> done) {
  when_ready(
      [this, who, stream, group, done] {
        if (!allowed_to_manage(who))
          return done(result(PersistentStatus::AccessDenied, "Access denied."));
        auto it = groups_.find(persistent_key(stream, group));
        if (it == groups_.end() || !it->second.core) return done(does_not_exist(stream, group));
        do_replay(it->second, done);
      },
      [done] { done(not_leader()); });
}

void PersistentSubscriptions::do_replay(Group& g, std::function<void(PersistentResult)> done) {
  auto token = running_;
  const std::string key = persistent_key(g.stream, g.group);
  const std::string parked = parked_stream(g.stream, g.group);
  context_->read_stream(
      parked, 0, kReplayParkedMax, true, true,
      [this, token, key, parked, done](ReadStreamResult r) {
        if (!alive(token)) return done(not_leader());
        auto it = groups_.find(key);
        if (it == groups_.end() || !it->second.core)
          return done(result(PersistentStatus::Fail, ""));
        if (r.status != ReadStreamStatus::Success || r.events.empty()) {
          return done(result(PersistentStatus::Success, ""));
        }
        std::vector<PersistentMessage> messages;
        for (const auto& e : r.events) {
          if (!e.event || !e.link) continue;  // the parked event itself is gone
          ResolvedEvent target;
          target.event = e.event;
          if (auto m = to_message(target)) messages.push_back(std::move(*m));
        }
        const int64_t last = r.events.back().original().number;
        const bool more = !r.is_end_of_stream;
        // Parked messages taken back are hidden by truncating the parked stream before them.
        NewEvent tb{random_guid(),
                    kMetadataEventType,
                    true,
                    false,
                    "{\"$tb\":" + std::to_string(last + 1) + "}",
                    ""};
        context_->append(
            kSystem, "$$" + parked, kExpectedAny, {tb},
            [this, token, key, messages = std::move(messages), more, done](const WriteResult& w) {
              if (!alive(token)) return done(not_leader());
              auto found = groups_.find(key);
              if (found == groups_.end() || !found->second.core) {
                return done(result(PersistentStatus::Fail, "the group was deleted meanwhile"));
              }
              if (w.not_handled != NotHandledReason::None || w.result != OperationResult::Success) {
                return done(result(PersistentStatus::Fail, "truncating the parked stream failed"));
              }
              Group& group = found->second;
              const auto replayed = static_cast<int64_t>(messages.size());
              group.parked_count = more ? std::max<int64_t>(0, group.parked_count - replayed) : 0;
              if (!more) group.oldest_parked_ms = 0;
              group.core->replay(messages, now_ms_());
              process(group);
              done(result(PersistentStatus::Success, ""));
            });
      });
}

// ---------------------------------------------------------------- observability

PersistentGroupInfo PersistentSubscriptions::describe(const Group& g, int64_t now,
                                                      bool detail) const {
  PersistentGroupInfo info;
  info.stream = g.stream;
  info.group = g.group;
  info.settings = g.settings;
  info.parked_count = g.parked_count;
  info.oldest_parked_age_ms = g.oldest_parked_ms > 0 ? now - g.oldest_parked_ms : 0;
  info.rate_in_per_second = g.rate_in;
  info.rate_out_per_second = g.rate_out;
  if (!g.core) {
    info.status = "Loading";
    return info;
  }
  const PersistentCore& core = *g.core;
  info.last_checkpoint = core.last_checkpoint();
  info.last_processed_number = core.last_processed_number();
  info.last_known_number = core.last_known_number();
  info.total_processed = core.processed_total();
  info.read_buffer_count = static_cast<int64_t>(core.buffered());
  info.retry_buffer_count = static_cast<int64_t>(core.retry_buffered());
  info.in_flight = static_cast<int64_t>(core.in_flight());
  info.resumed = core.resume_stats();
  for (const auto& c : core.consumers(detail)) {
    PersistentConsumerInfo ci{c.id, "", "", c.in_flight, c.slots, c.delivered, c.acked, {}};
    ci.extra_statistics = c.extra_statistics;
    auto found = consumers_.find(c.id);
    if (found != consumers_.end()) {
      ci.from = found->second.from;
      ci.username = found->second.who.login;
    }
    info.consumers.push_back(std::move(ci));
  }
  const bool waiting = info.read_buffer_count + info.retry_buffer_count > 0;
  if (waiting && info.consumers.empty()) {
    info.status = "Paused";  // messages wait and nobody is connected
  } else if (waiting && core.stalled_ms(now) > g.settings.message_timeout_ms) {
    info.status = "Stuck";  // consumers are connected but nothing moved for a message timeout
  } else {
    info.status = core.state() == GroupState::Live ? "Live" : "Behind";
  }
  return info;
}

void PersistentSubscriptions::list(Principal who, std::string stream,
                                   std::function<void(PersistentListResult)> done) {
  when_ready(
      [this, who, stream, done] {
        PersistentListResult r;
        const int64_t now = now_ms_();
        for (const auto& [key, g] : groups_) {
          if (!stream.empty() && g.stream != stream) continue;
          if (!context_->can_access(g.stream, StreamAccess::Read, who)) continue;
          r.groups.push_back(describe(g, now, false));
        }
        done(std::move(r));
      },
      [done] {
        PersistentListResult r;
        r.not_handled = NotHandledReason::NotLeader;
        done(std::move(r));
      });
}

void PersistentSubscriptions::info(Principal who, std::string stream, std::string group,
                                   std::function<void(PersistentInfoResult)> done) {
  when_ready(
      [this, who, stream, group, done] {
        PersistentInfoResult r;
        auto it = groups_.find(persistent_key(stream, group));
        if (it == groups_.end()) {
          r.status = PersistentStatus::DoesNotExist;
        } else if (!context_->can_access(stream, StreamAccess::Read, who)) {
          r.status = PersistentStatus::AccessDenied;
        } else {
          r.info = describe(it->second, now_ms_(), true);
        }
        done(std::move(r));
      },
      [done] {
        PersistentInfoResult r;
        r.not_handled = NotHandledReason::NotLeader;
        done(std::move(r));
      });
}

}  // namespace chorus
